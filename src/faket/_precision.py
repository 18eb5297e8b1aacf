"""Precision names of the networks' convolutions and their autocast contexts.

``fp32`` runs as is; ``bf16`` and ``fp16`` autocast the convolutions (bf16 is fast on
CPUs with AMX or AVX-512 BF16 and on recent GPUs). Callers keep their reductions in
float32. ``auto`` (`resolve_precision`) picks bf16 where the hardware has it and fp32
elsewhere: on a CPU without native bf16 (AVX2 only), bf16 convolutions are emulated and
measured 5-10x SLOWER than fp32.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial

import torch

__all__ = ["PRECISIONS", "PRECISION_CHOICES", "autocast_context", "resolve_precision"]

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Precision names -> autocast dtype of the convolutions (None: no autocast)."""

PRECISION_CHOICES = ("auto", *PRECISIONS)
"""What a user may ask for: a precision, or ``auto`` (see `resolve_precision`)."""


def native_bf16(device: torch.device) -> bool:
    """Return whether ``device`` runs bf16 convolutions natively (fast)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """Return the precision to run: ``precision`` itself, or for ``auto`` bf16 or fp32.

    ``auto`` gives bf16 on a GPU with bf16 and on a CPU with native bf16 (AMX or
    AVX-512 BF16), else fp32.
    """
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(
            f"unknown precision {precision!r}; choose one of {', '.join(PRECISION_CHOICES)}"
        )
    return precision


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
