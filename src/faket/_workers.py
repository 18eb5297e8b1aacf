"""Worker processes that end with the process that started them.

A killed ``faket simulate`` (SIGKILL, an out-of-memory kill, a closed terminal) must not
leave its workers computing and writing into the dataset. On Linux each worker asks the
kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``); elsewhere a daemon thread
polls the parent's pid.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 1.0


def start_worker(parent_pid: int, keep_freed_memory: bool) -> None:
    """Initialise a worker process (a pool's ``initializer``) like the process that made it.

    The worker ends when ``parent_pid`` ends (:func:`die_with_parent`), and keeps freed
    memory for reuse (:func:`faket._runtime.keep_freed_memory_for_reuse`) when the
    parent does, which a spawned process does not inherit: without it, the style
    transfer in a worker took twice as long as in the process itself (2-core CPU).
    """
    die_with_parent(parent_pid)
    if keep_freed_memory:
        from faket._runtime import keep_freed_memory_for_reuse

        keep_freed_memory_for_reuse()


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` ends (a pool's ``initializer``)."""
    if sys.platform.startswith("linux") and _set_parent_death_signal():
        if os.getppid() != parent_pid:  # the parent died before the request took effect
            os._exit(1)
        return
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _set_parent_death_signal() -> bool:
    """Ask Linux to send SIGKILL to this process when its parent dies; return success."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    """Exit this process as soon as its parent is gone (polling fallback)."""
    while os.getppid() == parent_pid:
        time.sleep(_POLL_SECONDS)
    os._exit(1)
