"""Ring geometry, ring smoothing and radial interpolation for the spectral noise model.

Private helpers shared by :mod:`faket.noise.spectral_estimate` and
:mod:`faket.noise.spectral_generate`; see :mod:`faket.noise.spectral` for the conventions.
"""

from __future__ import annotations

import math

import torch

_HALF_UP = 0.5 + 1e-9
"""Added before flooring radius / bin_width: rounds half-way radii (common for non-square
images, e.g. 2.5 rings) up, consistently across ways of computing the radius."""


def half_plane_radius(ny: int, nx: int, device: torch.device) -> torch.Tensor:
    """Return the ``(ny, nx // 2 + 1)`` float64 radius in cycles/pixel of ``rfft2``'s grid."""
    fy = torch.fft.fftfreq(ny, dtype=torch.float64, device=device)
    fx = torch.fft.rfftfreq(nx, dtype=torch.float64, device=device)
    return torch.sqrt(fy[:, None].square() + fx[None, :].square())


def half_plane_weight(ny: int, nx: int, device: torch.device) -> torch.Tensor:
    """Return how many full-grid Fourier samples each ``rfft2`` sample stands for.

    Column 0 (and column ``nx / 2`` for even ``nx``) stands for itself; every other
    column also for its complex conjugate, which the half plane leaves out. The DC sample
    gets weight 0: it is excluded from every ring.
    """
    n_cols = nx // 2 + 1
    weight = torch.full((ny, n_cols), 2.0, dtype=torch.float64, device=device)
    weight[:, 0] = 1.0
    if nx % 2 == 0:
        weight[:, -1] = 1.0
    weight[0, 0] = 0.0
    return weight


def default_bin_width(ny: int, nx: int) -> float:
    """Return the default ring width in cycles/pixel: one Fourier sample of the shorter side."""
    return 1.0 / min(ny, nx)


def ring_grid(ny: int, nx: int, bin_width: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the ring centres and each half-plane sample's ring of an ``ny x nx`` image.

    Parameters
    ----------
    ny, nx : int
        Image size in pixels.
    bin_width : float
        Ring spacing in cycles/pixel, ``1 / min(ny, nx) <= bin_width <= 0.25`` (narrower
        rings could be empty).

    Returns
    -------
    frequency : torch.Tensor
        ``(n_bins,)`` float64 centres ``b * bin_width`` from 0 to the grid's corner (CPU).
    index : torch.Tensor
        ``(ny, nx // 2 + 1)`` int64 ring of each ``rfft2`` sample: its radius divided by
        ``bin_width``, rounded (a radius exactly half-way goes to the outer ring, whatever
        the last bit of its floating-point value), and at least 1 (ring 0 is the DC bin;
        a non-square image's samples closer to DC than half a ring go to ring 1). CPU.
    """
    if not 1.0 / min(ny, nx) - 1e-12 <= bin_width <= 0.25:
        raise ValueError(
            f"bin_width must lie in [1 / min(ny, nx), 0.25] = [{1.0 / min(ny, nx):.4g}, 0.25] "
            f"cycles/pixel for a {ny} x {nx} image, got {bin_width}"
        )
    radius = half_plane_radius(ny, nx, torch.device("cpu"))
    index = torch.floor(radius / bin_width + _HALF_UP).to(torch.int64).clamp_min(1)
    n_bins = int(index.max()) + 1
    frequency = torch.arange(n_bins, dtype=torch.float64) * bin_width
    return frequency, index


def binomial_kernel(half_width: int) -> torch.Tensor:
    """Return the ``(2 * half_width + 1,)`` float64 binomial kernel, summing to 1.

    ``half_width=1`` gives ``[1, 2, 1] / 4``; its variance is ``half_width / 2`` bins**2.
    """
    n = 2 * half_width
    return torch.tensor([math.comb(n, j) for j in range(n + 1)], dtype=torch.float64) / 2**n


def smooth_rings(values: torch.Tensor, half_width: int) -> torch.Tensor:
    """Convolve ``(..., n_bins)`` curves with a binomial kernel, leaving bin 0 (DC) out.

    Bins beyond either end count as zero: apply it to ring *sums* and ring *counts* and
    divide, so that the result is a sample-count-weighted local mean that renormalises
    itself at the ends.
    """
    if half_width == 0:
        return values
    kernel = binomial_kernel(half_width).to(values.device)
    rings = values[..., 1:].reshape(-1, 1, values.shape[-1] - 1)
    smoothed = torch.nn.functional.conv1d(rings, kernel[None, None], padding=half_width)
    out = values.clone()
    out[..., 1:] = smoothed.reshape(*values.shape[:-1], -1)
    return out


def interpolate_radial(
    curves: torch.Tensor, frequency: torch.Tensor, radius: torch.Tensor
) -> torch.Tensor:
    """Evaluate piecewise-linear radial curves at every radius.

    Parameters
    ----------
    curves : torch.Tensor
        ``(batch, n_bins)`` values at the ring centres.
    frequency : torch.Tensor
        ``(n_bins,)`` strictly increasing ring centres, cycles/pixel.
    radius : torch.Tensor
        ``(...)`` radii, cycles/pixel, on the curves' device.

    Returns
    -------
    torch.Tensor
        ``(batch, ...)`` float64: linear between centres, the end values beyond the ends.
    """
    f = frequency.to(device=radius.device, dtype=torch.float64)
    r = radius.to(torch.float64)
    hi = torch.searchsorted(f, r.contiguous()).clamp(1, f.shape[0] - 1)
    lo = hi - 1
    frac = ((r - f[lo]) / (f[hi] - f[lo])).clamp(0.0, 1.0)
    c = curves.to(device=radius.device, dtype=torch.float64)
    return c[:, lo] * (1.0 - frac) + c[:, hi] * frac
