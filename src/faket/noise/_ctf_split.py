"""Split a radial spectrum into noise background and CTF signal, given the fitted CTF.

Private helpers of :mod:`faket.noise.ctf_fit`. Spectra are float64 ``(m, n_bins)`` on the
rings ``b / t`` cycles/pixel of a ``t``-pixel tile; ``counts`` are the Fourier samples per
ring (their noise variance is about ``P^2 / counts``).
"""

from __future__ import annotations

import torch

from faket.noise._ctf_model import gaussian_smooth, smoothing_matrix

BACKGROUND_DEGREE = 3
"""The background is a polynomial in ``k^2`` of this degree (``k^0 .. k^6``)."""

_CTF2_FLOOR = 1e-3
"""Smallest CTF^2 divided by where the envelope is read pointwise."""

_CHI2_1_MEDIAN = 0.454936
"""Median of a chi-square variable with one degree of freedom."""

_INFORMATIVE = 0.02
"""Rings with less precision than this fraction of the best ring's hold a neighbour's B."""

_FULL_RING = 0.5
"""Rings with fewer samples than this fraction of the fullest ring (the grid's corners)
hold the background of the last fuller ring."""


def _local_regression(
    power: torch.Tensor, ctf2: torch.Tensor, weight: torch.Tensor, sigma_bins: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ``P = b + s CTF^2`` in a Gaussian window around every ring.

    Returns
    -------
    intercept : torch.Tensor
        ``(m, n_bins)`` local ``b``.
    precision : torch.Tensor
        ``(m, n_bins)`` relative precision of ``b``, ``det / sum(w c^2)`` (0 where the
        window's CTF^2 does not vary, so that ``b`` and ``s`` cannot be told apart).
    """

    def window(x: torch.Tensor) -> torch.Tensor:
        return gaussian_smooth(x, sigma_bins)

    s0, s1, s2 = window(weight), window(weight * ctf2), window(weight * ctf2.square())
    y0, y1 = window(weight * power), window(weight * ctf2 * power)
    det = (s0 * s2 - s1.square()).clamp_min(0.0)
    safe = det.clamp_min(1e-300)
    intercept = torch.where(det > 0, (s2 * y0 - s1 * y1) / safe, torch.zeros_like(det))
    precision = det / s2.clamp_min(1e-300)
    return intercept, precision


def _fit_background(
    frequency: torch.Tensor, intercept: torch.Tensor, precision: torch.Tensor, last: int
) -> torch.Tensor:
    """Fit each row's local intercepts with an even polynomial in ``k`` (weights: precision).

    The polynomial is trusted only between the first ring with some information
    (precision above 2 % of the row's best; below it the signal swamps the noise) and
    ring ``last`` (past it the grid's corners hold partial rings); outside, the end
    values are held.

    Returns
    -------
    torch.Tensor
        ``(m, n_bins)`` background on every ring, ``>= 0``.
    """
    weight = precision.clamp_min(0.0).clone()
    weight[:, 0] = 0.0  # the DC bin carries no information
    index = torch.arange(weight.shape[-1], device=weight.device)
    informative = weight > _INFORMATIVE * weight.amax(dim=1, keepdim=True)
    first = torch.where(informative, index, last).amin(dim=1, keepdim=True).clamp_max(last)
    k = frequency[torch.maximum(index.clamp_max(last), first)]  # (m, n)
    x = (k / frequency[last]).square()
    basis = torch.stack([x**j for j in range(BACKGROUND_DEGREE + 1)], dim=-1)  # (m, n, q)
    normal = basis.transpose(-1, -2) @ (weight[..., None] * basis)  # (m, q, q)
    ridge = 1e-12 * normal.diagonal(dim1=-2, dim2=-1).amax(-1).clamp_min(1e-300)
    eye = torch.eye(basis.shape[-1], dtype=basis.dtype, device=basis.device)
    rhs = basis.transpose(-1, -2) @ (weight * intercept)[..., None]
    coef = torch.linalg.solve(normal + ridge[:, None, None] * eye, rhs)
    return (basis @ coef).squeeze(-1).clamp_min(0.0)


def _local_scale(
    excess: torch.Tensor, ctf2: torch.Tensor, weight: torch.Tensor, sigma_bins: float
) -> torch.Tensor:
    """Return the least-squares scale of ``ctf2`` in ``excess`` in a window around each ring."""
    num = gaussian_smooth(weight * excess * ctf2, sigma_bins)
    den = gaussian_smooth(weight * ctf2.square(), sigma_bins).clamp_min(1e-300)
    return num / den


def _residual_scale(
    residual: torch.Tensor, counts: torch.Tensor, expected: torch.Tensor, use: torch.Tensor
) -> torch.Tensor:
    """Return ``(m, 1)`` ``scale`` with ``var(P_k) = scale P_k^2 / counts_k``, from residuals.

    The median of ``counts r^2 / P^2`` over the rings ``use`` divided by the median of a
    chi-square with one degree of freedom (robust to the few rings the model misses).
    """
    z2 = counts * (residual / expected).square()
    z2 = torch.where(use & (counts > 0), z2, torch.full_like(z2, float("nan")))
    return (z2.nanmedian(dim=1, keepdim=True).values / _CHI2_1_MEDIAN).nan_to_num(1.0)


def _shrink(value: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Positive-part James-Stein shrinkage ``v max(0, 1 - var / v^2)``, then ``>= 0``.

    Keeps clear values (``v = 3 sd`` loses 11 %) and sends noise-level ones to 0, so a
    spectrum without signal gets an envelope near 0 rather than its positive noise.
    """
    factor = (1.0 - variance / value.square().clamp_min(1e-300)).clamp_min(0.0)
    return (value * factor).clamp_min(0.0)


def split_spectrum(
    power: torch.Tensor,
    counts: torch.Tensor,
    ctf2: torch.Tensor,
    first_peak_bin: torch.Tensor,
    sigma_bins: float,
    frequency: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the noise background ``B`` and the signal envelope ``S`` of ``P = S CTF^2 + B``.

    Parameters
    ----------
    power : torch.Tensor
        ``(m, n_bins)`` measured radial spectra.
    counts : torch.Tensor
        ``(n_bins,)`` Fourier samples per ring.
    ctf2 : torch.Tensor
        ``(m, n_bins)`` CTF^2 as the spectrum sees it (ring-averaged, smeared).
    first_peak_bin : torch.Tensor
        ``(m,)`` bin (float) of the first CTF maximum.
    sigma_bins : float
        Width of the local windows, bins.
    frequency : torch.Tensor
        ``(n_bins,)`` ring centres, cycles/pixel.

    Returns
    -------
    background, envelope : torch.Tensor
        ``(m, n_bins)`` float64, both ``>= 0``.
    """
    expected = torch.exp(gaussian_smooth(power.clamp_min(1e-300).log(), sigma_bins))
    weight = counts / expected.square()
    weight[:, 0] = 0.0
    intercept, precision = _local_regression(power, ctf2, weight, sigma_bins)
    full_rings = torch.nonzero(counts >= _FULL_RING * counts.max()).flatten()
    background = _fit_background(frequency, intercept, precision, int(full_rings[-1]))
    excess = power - background
    bins = torch.arange(power.shape[-1], device=power.device, dtype=power.dtype)
    below_peak = bins[None, :] < first_peak_bin[:, None]
    local = _local_scale(excess, ctf2, weight, sigma_bins)
    scale = _residual_scale(excess - local.clamp_min(0.0) * ctf2, counts, expected, ~below_peak)
    den = gaussian_smooth(weight * ctf2.square(), sigma_bins).clamp_min(1e-300)
    window_sq = smoothing_matrix(power.shape[-1], sigma_bins, power.dtype, power.device)
    local = _shrink(local, scale * window_sq.square().sum(0).amax() / den)
    pointwise = _shrink(excess, scale * expected.square() / counts.clamp_min(1.0))
    pointwise = pointwise / ctf2.clamp_min(_CTF2_FLOOR)
    envelope = torch.where(below_peak, pointwise, local)
    envelope[:, 0] = 0.0
    return background, envelope


def power_law_spectrum(
    frequency: torch.Tensor, fit_frequency: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """Return ``c / max(k, k1)^2`` with unit mean over the Fourier samples of the fit grid.

    Parameters
    ----------
    frequency : torch.Tensor
        ``(n,)`` where to evaluate it, cycles/pixel.
    fit_frequency : torch.Tensor
        ``(n_bins,)`` rings of the measured spectrum; ``k1`` is its first ring.
    counts : torch.Tensor
        ``(n_bins,)`` Fourier samples per ring (the DC bin excluded from the mean).

    Returns
    -------
    torch.Tensor
        ``(n,)`` float64: the spectrum of a standardised image whose power falls as
        ``1/k^2``.
    """
    k1 = float(fit_frequency[1])
    shape = fit_frequency.clamp_min(k1).pow(-2.0)
    total = (counts * shape)[1:].sum() / counts.sum()
    return frequency.clamp_min(k1).pow(-2.0) / total
