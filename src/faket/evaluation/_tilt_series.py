"""Tilt-series checks and per-tilt standardisation shared by the likeness measures."""

from __future__ import annotations

import numpy as np
import torch

TiltSeriesLike = torch.Tensor | np.ndarray
"""A ``(n_tilts, ny, nx)`` tilt-series as a torch tensor or a numpy array."""


def as_tilt_series(x: TiltSeriesLike, name: str) -> torch.Tensor:
    """Return ``x`` as a finite 3-D floating tensor (numpy arrays become CPU tensors)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"{name} must be a tilt-series (n_tilts, ny, nx), got {tuple(x.shape)}")
    if x.shape[0] < 1 or x.shape[1] < 2 or x.shape[2] < 2:
        raise ValueError(f"{name} needs at least one tilt of 2 x 2 pixels, got {tuple(x.shape)}")
    if not x.is_floating_point() or x.element_size() < 4:
        x = x.to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} has NaN or Inf values")
    return x


def check_pair(a: TiltSeriesLike, b: TiltSeriesLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Return both tilt-series checked; they must have the same number of tilts."""
    ta, tb = as_tilt_series(a, "a"), as_tilt_series(b, "b")
    if ta.shape[0] != tb.shape[0]:
        raise ValueError(f"a has {ta.shape[0]} tilts and b {tb.shape[0]}; they must agree")
    return ta, tb


def smallest_side(*series: torch.Tensor) -> int:
    """Return the shortest image side (pixels) over all the tilt-series."""
    return min(min(s.shape[-2:]) for s in series)


def standardise_tilts(tilt_series: TiltSeriesLike) -> torch.Tensor:
    """Shift and scale each tilt to mean 0 and population std 1.

    Parameters
    ----------
    tilt_series : torch.Tensor or numpy.ndarray
        ``(n_tilts, ny, nx)`` floating tilt-series (any grey units).

    Returns
    -------
    torch.Tensor
        ``(n_tilts, ny, nx)`` in units of each tilt's std, same device; float32 for inputs
        of float32 or narrower, float64 for float64. Statistics are computed in float64,
        one tilt at a time, so the extra memory is one float64 tilt, not a float64
        copy of the series (6 GB for 61 x 3500^2).

    Raises
    ------
    ValueError
        Not 3-D, NaN/Inf values, or a constant tilt (no std to divide by).
    """
    x = as_tilt_series(tilt_series, "tilt_series")
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        wide = x[i].to(torch.float64)
        std, mean = torch.std_mean(wide, correction=0)
        if std <= 0:
            raise ValueError(f"tilt {i} is constant; it cannot be standardised")
        out[i] = (wide - mean) / std
    return out
