"""Precision names of the networks' convolutions and their autocast contexts.

``fp32`` runs as is; ``bf16`` and ``fp16`` autocast the convolutions (bf16 is fast on
CPUs with AMX and on recent GPUs). Callers keep their reductions in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial

import torch

__all__ = ["PRECISIONS", "autocast_context"]

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Precision names -> autocast dtype of the convolutions (None: no autocast)."""


def autocast_context(
    device: torch.device, precision: str
) -> Callable[[], AbstractContextManager[object]]:
    """Return a factory of the autocast context for ``precision`` on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return nullcontext
    return partial(torch.autocast, device_type=device.type, dtype=dtype)
