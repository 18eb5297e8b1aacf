"""Process-wide memory settings (`faket._runtime`) and the workers that inherit them.

The oracle is the kernel's count of this process's resident pages (``/proc``): a freed
256 MiB block that glibc keeps for reuse stays resident; one it returns does not. Each
case runs in a fresh spawned process, since the setting changes the whole process.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from faket._runtime import (
    freed_memory_kept,
    keep_freed_memory_for_reuse,
    release_free_memory,
    resident_bytes,
    returning_freed_memory,
)
from faket._workers import start_worker

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc and /proc are Linux's"
)

BLOCK_MIB = 256
"""Far above glibc's largest mmap threshold (32 MiB), so it is a large block either way."""


def _freed_block_resident_mib() -> float:
    """Allocate, touch and free one block; return how much of it stays resident (MiB)."""
    before = resident_bytes()
    block = np.ones(BLOCK_MIB * 2**20, dtype=np.uint8)
    del block
    return (resident_bytes() - before) / 2**20


def _kept_then_released() -> tuple[float, float]:
    """With the setting on: the freed block's resident MiB, then after release_free_memory."""
    assert keep_freed_memory_for_reuse()
    kept = _freed_block_resident_mib()
    before = resident_bytes()
    release_free_memory()
    return kept, (before - resident_bytes()) / 2**20


def _kept_returned_kept() -> tuple[float, float, float, bool]:
    """Resident MiB of a freed block: kept, inside `returning_freed_memory`, after it."""
    assert keep_freed_memory_for_reuse()
    kept = _freed_block_resident_mib()
    release_free_memory()
    with returning_freed_memory():
        returned = _freed_block_resident_mib()
    release_free_memory()
    return kept, returned, _freed_block_resident_mib(), freed_memory_kept()


def _stage_peaks() -> dict[str, float]:
    """Stage "work" frees a block; stage "next" allocates nothing. Their peaks in GiB."""
    from faket.pipeline.stages import StageTimer

    keep_freed_memory_for_reuse()
    timer = StageTimer()
    with timer("warm-up"):  # imports and first allocations out of the measured stages
        _freed_block_resident_mib()
    release_free_memory()
    base = resident_bytes() / 2**30
    with timer("work"):
        _freed_block_resident_mib()
    with timer("next"):
        pass
    return {"base": base, **timer.peak_gib}


def _in_process(fn, initializer=None, initargs=()):
    """Run ``fn`` in one fresh spawned process (with a pool initializer) and return its value."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, initializer=initializer, initargs=initargs) as p:
        return p.submit(fn).result()


def test_glibc_default_returns_a_freed_large_block_and_the_setting_keeps_it():
    # Default glibc: the block was its own mapping and is unmapped on free (< 10 % stays).
    assert _in_process(_freed_block_resident_mib) < 0.1 * BLOCK_MIB
    kept, released = _in_process(_kept_then_released)
    # Kept: the whole block stays (page rounding aside) ...
    assert kept > 0.9 * BLOCK_MIB
    # ... and malloc_trim gives it back.
    assert released > 0.9 * BLOCK_MIB


def test_a_block_of_code_can_return_freed_memory_while_the_process_keeps_it():
    kept, returned, kept_again, flag = _in_process(_kept_returned_kept)
    assert kept > 0.9 * BLOCK_MIB
    assert returned < 0.1 * BLOCK_MIB  # inside the block: glibc's default heap
    assert kept_again > 0.9 * BLOCK_MIB and flag  # the setting restored on exit
    assert _in_process(_returned_by_default) < 0.1 * BLOCK_MIB  # and a no-op without it


def _returned_by_default() -> float:
    """The block's resident MiB inside `returning_freed_memory` in a default process."""
    with returning_freed_memory():
        return _freed_block_resident_mib()


@pytest.mark.parametrize("keep", [True, False])
def test_a_worker_keeps_freed_memory_exactly_when_its_parent_says_so(keep):
    resident = _in_process(
        _freed_block_resident_mib, initializer=start_worker, initargs=(os.getpid(), keep)
    )
    assert (resident > 0.9 * BLOCK_MIB) if keep else (resident < 0.1 * BLOCK_MIB)


def test_a_stage_does_not_carry_the_memory_the_previous_stage_freed():
    peaks = _in_process(_stage_peaks)
    block_gib = BLOCK_MIB / 2**10
    # The working stage's peak holds the block; the next starts with it returned
    # (without the trim it would start, and peak, at base + the block).
    assert peaks["work"] > peaks["base"] + 0.9 * block_gib
    assert peaks["next"] < peaks["base"] + 0.25 * block_gib
