"""CTF model, spectrum smoothing and the defocus likelihood of :mod:`faket.noise.ctf_fit`.

Everything here works on radial spectra: float64 tensors whose last axis is the ring bin
``b`` at the frequency ``b / t`` cycles/pixel of a ``t``-pixel Welch tile.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch_ctf

_OVERSAMPLE = 8
"""Sub-samples per ring bin when averaging CTF^2 over the bin's width."""

_HANN_SMEAR = (1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0)
"""Expected smear of a Hann-windowed periodogram along one axis, per Fourier bin."""

_CHI2_1_MEDIAN = 0.454936
"""Median of a chi-square variable with one degree of freedom."""


@dataclass(frozen=True)
class Optics:
    """Lens parameters of the CTF model (torch-ctf conventions).

    Attributes
    ----------
    pixel_size_a : float
        Pixel size, Å.
    voltage_kv : float
        Acceleration voltage, kV.
    spherical_aberration_mm : float
        Cs, mm.
    amplitude_contrast : float
        Amplitude contrast fraction ``A`` in ``[0, 1)``.
    """

    pixel_size_a: float
    voltage_kv: float
    spherical_aberration_mm: float
    amplitude_contrast: float

    def wavelength_a(self) -> float:
        """Return the relativistic electron wavelength in Å (torch-ctf's formula)."""
        volts = torch.tensor(self.voltage_kv * 1e3, dtype=torch.float64)
        return float(torch_ctf.calculate_relativistic_electron_wavelength(volts)) * 1e10


def ctf_curve(freq_px: torch.Tensor, defocus_um: torch.Tensor, optics: Optics) -> torch.Tensor:
    """Return the CTF ``sqrt(1 - A^2) sin(chi) + A cos(chi)`` at radial frequencies.

    ``chi(k) = pi lambda df k^2 - pi/2 Cs lambda^3 k^4`` with underfocus ``df`` positive,
    computed by torch-ctf (whose real CTF ``-sin(-chi - asin(A))`` this is).

    Parameters
    ----------
    freq_px : torch.Tensor
        ``(n,)`` float64 frequencies in cycles/pixel.
    defocus_um : torch.Tensor
        ``(...)`` float64 defoci in µm, underfocus positive.
    optics : Optics
        Lens parameters.

    Returns
    -------
    torch.Tensor
        ``(..., n)`` float64 CTF, ``A`` at ``k = 0`` (positive at low frequency).
    """
    device = freq_px.device

    def scalar(v: float) -> torch.Tensor:
        return torch.tensor(v, dtype=torch.float64, device=device)

    phase = torch_ctf.calculate_total_phase_shift(
        defocus_um=defocus_um[..., None],
        voltage_kv=scalar(optics.voltage_kv),
        spherical_aberration_mm=scalar(optics.spherical_aberration_mm),
        phase_shift_degrees=scalar(0.0),
        amplitude_contrast_fraction=scalar(optics.amplitude_contrast),
        fftfreq_grid_angstrom_squared=(freq_px / optics.pixel_size_a).square(),
    )
    return -torch.sin(phase.to(torch.float64))


def measured_ctf2(n_bins: int, tile: int, defocus_um: torch.Tensor, optics: Optics) -> torch.Tensor:
    """Return CTF^2 as a Welch radial spectrum sees it: ring-averaged and window-smeared.

    Each bin ``b`` averages the Fourier samples with radius in ``[b - 1/2, b + 1/2] / t``
    (weighted by the radius, as a ring's area is), and the Hann window smears the
    periodogram by ``(1/6, 2/3, 1/6)`` per bin (its kernel has the same variance, 1/3
    bin^2, as the continuous one).

    Parameters
    ----------
    n_bins : int
        Number of ring bins (frequencies ``0 .. (n_bins - 1) / tile``).
    tile : int
        Tile side ``t`` in pixels.
    defocus_um : torch.Tensor
        ``(...)`` float64 defoci in µm.
    optics : Optics
        Lens parameters.

    Returns
    -------
    torch.Tensor
        ``(..., n_bins)`` float64 in ``[0, 1]``.
    """
    f64, device = torch.float64, defocus_um.device
    offsets = (torch.arange(_OVERSAMPLE, dtype=f64, device=device) + 0.5) / _OVERSAMPLE - 0.5
    radius = (torch.arange(n_bins, dtype=f64, device=device)[:, None] + offsets).clamp_min(0.0)
    weight = radius.clamp_min(0.25)
    ctf2 = ctf_curve(radius.flatten() / tile, defocus_um, optics).square()
    ctf2 = ctf2.reshape(*defocus_um.shape, n_bins, _OVERSAMPLE)
    ring = (ctf2 * weight).sum(-1) / weight.sum(-1)
    padded = torch.cat([ring[..., 1:2], ring, ring[..., -2:-1]], dim=-1)
    side, centre, _ = _HANN_SMEAR
    return side * (padded[..., :-2] + padded[..., 2:]) + centre * padded[..., 1:-1]


@functools.lru_cache(maxsize=16)
def smoothing_matrix(
    n: int, sigma_bins: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Return the ``(n, n)`` matrix ``M`` with ``x @ M`` = :func:`gaussian_smooth` of ``x``.

    Cached per geometry (a few small constant matrices; do not modify the result).
    """
    half = min(int(math.ceil(3.0 * sigma_bins)), n - 1)
    taps = torch.arange(-half, half + 1, dtype=dtype, device=device)
    kernel = torch.exp(-0.5 * (taps / sigma_bins).square())
    kernel = kernel / kernel.sum()
    source = torch.arange(n, device=device)[:, None] + taps.to(torch.int64)[None, :]
    source = source.abs()
    source = torch.where(source > n - 1, 2 * (n - 1) - source, source)  # mirror at both ends
    matrix = torch.zeros((n, n), dtype=dtype, device=device)
    rows = torch.arange(n, device=device)[:, None].expand_as(source)
    matrix.index_put_((source, rows), kernel.expand_as(source), accumulate=True)
    return matrix


def gaussian_smooth(x: torch.Tensor, sigma_bins: float) -> torch.Tensor:
    """Smooth along the last axis with a normalised Gaussian, mirrored at both ends.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., n)`` float64.
    sigma_bins : float
        Standard deviation of the kernel, in bins (> 0).

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.
    """
    return x @ smoothing_matrix(x.shape[-1], sigma_bins, x.dtype, x.device)


@functools.lru_cache(maxsize=8)
def trend_matrix(
    n: int, sigma_bins: float, first: int, last: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Return the ``(n, n)`` matrix ``M`` of a local quadratic regression: ``x @ M``.

    Each output ring is the value there of the quadratic fitted by least squares to the
    rings ``first .. last`` of ``x`` (the fit band: what lies outside, such as a specimen's
    strong low-resolution structure, cannot leak in) with Gaussian weights of width
    ``sigma_bins``. It follows any locally quadratic trend exactly, so the smooth curvature
    of a background leaves no residual that a slowly varying ring model could fit, while
    rings whose period is shorter than about ``2 pi sigma_bins`` pass. Cached per geometry
    (do not modify the result).
    """
    index = torch.arange(n, dtype=torch.float64)
    offset = index[None, :] - index[:, None]  # (out, in)
    inside = (index >= first) & (index <= last)
    weight = torch.exp(-0.5 * (offset / sigma_bins).square()) * inside[None, :]
    design = torch.stack([torch.ones_like(offset), offset, offset.square()], dim=-1)  # (o, i, 3)
    normal = design.transpose(-1, -2) @ (weight[..., None] * design)  # (o, 3, 3)
    normal = normal + 1e-9 * torch.eye(3, dtype=torch.float64)  # rings far from the band
    rows = torch.linalg.solve(normal, (weight[..., None] * design).transpose(-1, -2))[:, 0, :]
    return rows.T.contiguous().to(dtype=dtype, device=device)


def local_trend(x: torch.Tensor, sigma_bins: float, band: torch.Tensor) -> torch.Tensor:
    """Return the local quadratic trend of ``(..., n)`` curves within ``band`` (contiguous)."""
    inside = torch.nonzero(band).flatten()
    first, last = int(inside[0]), int(inside[-1])
    return x @ trend_matrix(x.shape[-1], sigma_bins, first, last, x.dtype, x.device)


def ring_contrast(power: torch.Tensor, sigma_bins: float, band: torch.Tensor) -> torch.Tensor:
    """Return ``P / P_trend - 1``: the Thon-ring modulation of radial spectra.

    ``P_trend`` is the local quadratic trend of ``log P`` (:func:`local_trend`; bin 0, ~0
    after the mean removal, is replaced by bin 1 first).

    Parameters
    ----------
    power : torch.Tensor
        ``(..., n_bins)`` float64 positive radial spectra.
    sigma_bins : float
        Width of the smoothing, bins.

    Returns
    -------
    torch.Tensor
        ``(..., n_bins)`` float64.
    """
    safe = power.clamp_min(torch.finfo(power.dtype).tiny).clone()
    safe[..., 0] = safe[..., 1]
    return safe / torch.exp(local_trend(safe.log(), sigma_bins, band)) - 1.0


def high_pass(x: torch.Tensor, sigma_bins: float, band: torch.Tensor) -> torch.Tensor:
    """Return ``x`` minus its local quadratic trend in ``band`` (a CTF^2 model's rings)."""
    return x - local_trend(x, sigma_bins, band)


def noise_scale(contrast: torch.Tensor, counts: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
    """Estimate the variance of ``counts * contrast`` (the ring noise), robustly.

    Parameters
    ----------
    contrast : torch.Tensor
        ``(m, n_bins)`` ring contrast (:func:`ring_contrast`).
    counts : torch.Tensor
        ``(n_bins,)`` Fourier samples per ring.
    band : torch.Tensor
        ``(n_bins,)`` bool, the bins of the fit band.

    Returns
    -------
    torch.Tensor
        ``(m,)``: the median of ``counts * contrast^2`` over the band divided by the
        median of a chi-square with one degree of freedom. Strong rings inflate it, which
        only makes the likelihood more cautious.
    """
    values = (counts * contrast.square())[:, band]
    floor = torch.finfo(contrast.dtype).tiny
    return (values.median(dim=1).values / _CHI2_1_MEDIAN).clamp_min(floor)


def log_likelihood(
    contrast: torch.Tensor,
    model: torch.Tensor,
    counts: torch.Tensor,
    band: torch.Tensor,
    scale: torch.Tensor,
    sigma_bins: float,
) -> torch.Tensor:
    """Profile log-likelihood of each defocus, with a smooth non-negative ring amplitude.

    Model: ``contrast(k) = a(k) h(k) + noise`` with ``h`` the high-passed measured
    CTF^2 of a defocus, ``a(k) >= 0`` smooth (constant over a Gaussian window of
    ``sigma_bins``) and noise variance ``scale / counts(k)``. Maximising over ``a`` in
    every window gives ``LL = 1/2 sum_k max(0, <n c h>_k)^2 / (<n h^2>_k scale)`` with
    ``<.>_k`` the window average around bin ``k``: a generalised likelihood ratio
    against "no rings", in log units. Rings that fade (or that a defocus puts in
    anti-phase) neither cost nor earn.

    Parameters
    ----------
    contrast : torch.Tensor
        ``(m, n_bins)`` ring contrast of ``m`` spectra.
    model : torch.Tensor
        ``(d, n_bins)`` shared or ``(m, d, n_bins)`` per-spectrum ring models ``h``.
    counts : torch.Tensor
        ``(n_bins,)`` Fourier samples per ring.
    band : torch.Tensor
        ``(n_bins,)`` bool fit band.
    scale : torch.Tensor
        ``(m,)`` noise scale (:func:`noise_scale`).
    sigma_bins : float
        Width of the amplitude window, bins.

    Returns
    -------
    torch.Tensor
        ``(m, d)`` float64 log-likelihood ratios (0 = no evidence of rings).
    """
    weight = counts * band.to(counts.dtype)
    smoother = smoothing_matrix(contrast.shape[-1], sigma_bins, contrast.dtype, contrast.device)
    if model.ndim == 2:  # shared models: their window sums are the same for every spectrum
        den = ((weight * model.square()) @ smoother).clamp_min(1e-300)
        dens = den.expand(contrast.shape[0], *den.shape)
        models = model.expand(contrast.shape[0], *model.shape)
    else:
        models = model
        dens = ((weight * model.square()) @ smoother).clamp_min(1e-300)
    out = []
    for c, h, den, s in zip(contrast, models, dens, scale, strict=True):  # one spectrum at a time
        num = ((weight * c * h) @ smoother).clamp_min(0.0)
        out.append(0.5 * (num.square() / den * band).sum(-1) / s)
    return torch.stack(out)


def weighted_correlation(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Return the weighted Pearson correlation over the last axis (0 where undefined)."""
    total = weight.sum(-1, keepdim=True)
    xc = x - (weight * x).sum(-1, keepdim=True) / total
    yc = y - (weight * y).sum(-1, keepdim=True) / total
    norm = torch.sqrt((weight * xc.square()).sum(-1) * (weight * yc.square()).sum(-1))
    cov = (weight * xc * yc).sum(-1)
    return torch.where(norm > 0, cov / norm.clamp_min(1e-300), torch.zeros_like(cov))
