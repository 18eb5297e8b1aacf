"""Process-wide runtime settings that make CPU runs faster; used by the CLI and benchmarks.

glibc serves every allocation above 32 MiB with a fresh ``mmap`` and returns it to the
system on ``free``, so each large activation of a network is faulted in and zeroed by the
kernel again, page by page. For the style transfer at 1024^2 that cost a third of the
run time (measured: 1.4 million page faults and 2.1 s of system time per tilt). Keeping
large blocks in the heap for reuse removes it. The library itself never calls this: it
changes the whole process, so only entry points opt in.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_RETURNED = {_M_MMAP_MAX: 65536, _M_MMAP_THRESHOLD: 32 * 2**20, _M_TRIM_THRESHOLD: 64 * 2**20}
"""glibc's default heap in its steady state (``mallopt(3)``: the most mmaps, and the
largest thresholds its dynamic adjustment reaches), set by :func:`returning_freed_memory`."""
_KEPT = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 2**31 - 1}
"""No mmap for large blocks (they come from the heap), and never trim the heap's top."""
_kept = False
"""Whether :func:`keep_freed_memory_for_reuse` took effect in this process."""


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """Return the C library on Linux, loaded once (None elsewhere or if it won't load)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def keep_freed_memory_for_reuse() -> bool:
    """Ask glibc to serve large blocks from the heap and keep freed ones for reuse.

    Returns
    -------
    bool
        True if the setting took effect (glibc on Linux), False elsewhere (no change).
    """
    global _kept
    _kept = _set_heap(_KEPT)
    return _kept


def _set_heap(options: dict[int, int]) -> bool:
    """Set glibc ``mallopt`` options (parameter: value); return whether all took effect."""
    libc = _glibc()
    mallopt = None if libc is None else getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all([bool(mallopt(key, value)) for key, value in options.items()])


@contextmanager
def returning_freed_memory() -> Iterator[None]:
    """Within the block, large freed blocks go back to the system, as by glibc's default.

    Keeping freed memory (:func:`keep_freed_memory_for_reuse`) pays where the same large
    blocks are allocated again and again (a network's activations: the style transfer
    ran at half speed without it), but in a stage whose temporaries differ in size (the
    phantom builder, the projection, the microscope's volumes and tilts) the kept blocks
    are not reused and add to its peak: measured at 61 x 3500^2, 0.2 to 3 GiB a stage
    (the reconstruction's varying from run to run), for at most 2x the time of the
    microscope and 1.3x that of the reconstruction, the others' unchanged. Such a stage
    runs inside this block; where freed memory is not kept it changes nothing. On exit
    the heap is trimmed and the setting restored.
    """
    if not _kept:
        yield
        return
    _set_heap(_RETURNED)
    release_free_memory()
    try:
        yield
    finally:
        release_free_memory()
        _set_heap(_KEPT)


def freed_memory_kept() -> bool:
    """Return whether this process keeps freed memory for reuse.

    A spawned worker process starts with glibc's defaults; an entry point that opted in
    passes this to its workers (:func:`faket._workers.start_worker`), so that they run
    as fast as the process itself.
    """
    return _kept


def release_free_memory() -> None:
    """Return the heap's free pages to the system (glibc ``malloc_trim``); no-op elsewhere.

    With :func:`keep_freed_memory_for_reuse`, long-lived small blocks can pin the heap
    so that it grows from one tilt to the next; trimming between batches bounds the
    resident memory while keeping the reuse within a batch.
    """
    libc = _glibc()
    trim = None if libc is None else getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


def resident_bytes() -> int:
    """Return this process's resident memory in bytes (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def reset_peak_resident() -> bool:
    """Reset this process's peak resident memory (Linux ``/proc/self/clear_refs``).

    Returns whether it took effect; after it, :func:`peak_resident_bytes` measures the
    peak from now on. It also resets what ``getrusage`` reports as ``ru_maxrss``.
    """
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def peak_resident_bytes() -> int:
    """Return this process's peak resident memory in bytes (Linux ``VmHWM``; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def release_free_memory_above(limit_bytes: int) -> bool:
    """Trim the heap (:func:`release_free_memory`) when resident memory exceeds a limit.

    Returns
    -------
    bool
        Whether it trimmed.
    """
    if resident_bytes() <= limit_bytes:
        return False
    release_free_memory()
    return True


def heap_trimmer(budget_bytes: int) -> Callable[[int], None]:
    """Return a per-batch callback that trims the heap beyond today's memory plus a budget.

    Pass it (or call it from) the ``progress`` callback of a batched stage such as
    :func:`faket.style.series.stylize_tilt_series`, so that heap reuse cannot grow the
    resident memory from batch to batch or tomogram to tomogram.

    Parameters
    ----------
    budget_bytes : int
        Working memory allowed on top of the resident memory at the time of the call.
    """
    limit = resident_bytes() + budget_bytes

    def trim(_done: int) -> None:
        release_free_memory_above(limit)

    return trim
