"""Split a radial spectrum into noise background and signal; the scalar equivalents.

Private helpers of :mod:`faket.noise.ctf_fit` and :mod:`faket.noise.even_odd`.

- Background on the Welch rings of the defocus fit (float64 ``(m, n_bins)`` on the rings
  ``b / t`` cycles/pixel of a ``t``-pixel tile; ``counts`` the Fourier samples per ring,
  whose noise variance is about ``P^2 / counts``): :func:`ring_background` reads it
  between the Thon rings of a fitted CTF, :func:`smooth_background` fits the spectrum's
  lower side with ``c0 + c1 k^2`` where rings are not resolved, and
  :func:`background_fits_under` tells whether the first is possible at all.
- Signal, transfer and the published model's numbers on the paired estimator's ring grid
  (:func:`ring_power`, :func:`signal_power`, :func:`transfer_from_signal`,
  :func:`paired_equivalent_r`, :func:`noise_share`).
"""

from __future__ import annotations

import torch

from faket.noise._ctf_model import gaussian_smooth
from faket.noise._rings import (
    binomial_kernel,
    default_bin_width,
    half_plane_weight,
    ring_grid,
    smooth_rings,
)
from faket.noise.spectral_estimate import DEFAULT_SMOOTH_BINS, DEFAULT_TAPER, tukey_window

BACKGROUND_DEGREE = 3
"""The ring-read background is a polynomial in ``k^2`` of this degree (``k^0 .. k^6``)."""

_CHI2_1_MEDIAN = 0.454936
"""Median of a chi-square variable with one degree of freedom."""

_INFORMATIVE = 0.02
"""Rings with less precision than this fraction of the best ring's hold a neighbour's B."""

_FULL_RING = 0.5
"""Rings with fewer samples than this fraction of the fullest ring (the grid's corners)
hold the background of the last fuller ring."""

ABOVE_SPECTRUM = 1.15
"""A ring-read background that exceeds the locally smoothed spectrum by this factor
somewhere in the fit band is impossible (the signal's power is >= 0): the rings were not
resolved, and :func:`smooth_background` is used instead. Measured: 0.76-0.99 on clear
synthetic rings, 1.01-1.08 on white noise, 1.8-2.5 on the built-in microscope's 256-px
counting-detector tilts at 7.3-10 Å, whose Thon rings drown in the shot noise."""

_SIGNAL_CUT = 2.0
"""Rings more than this many noise standard deviations above the smooth background are
signal; their weight in the background fit falls as ``(cut / z)^2``."""

_IRLS_ROUNDS = 30
"""Rounds of the reweighted fit of :func:`smooth_background`."""

_CHUNK_VALUES = 2**24
"""Tilts are transformed in chunks of about this many pixels."""

_EMPTY_POWER = 1e-12
"""Rings where ``P_C`` is below this carry no signal: ``T = 0`` there."""


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


def _even_basis(k: torch.Tensor, k_last: float, degree: int) -> torch.Tensor:
    """Return ``(..., degree + 1)`` powers of ``(k / k_last)^2`` (``k`` held at ``k_last``)."""
    x = (k.clamp_max(k_last) / k_last).square()
    return torch.stack([x**j for j in range(degree + 1)], dim=-1)


def _weighted_polyfit(
    basis: torch.Tensor, values: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Return ``(m, q)`` weighted least-squares coefficients (a tiny ridge keeps it solvable)."""
    normal = basis.transpose(-1, -2) @ (weight[..., None] * basis)
    ridge = 1e-12 * normal.diagonal(dim1=-2, dim2=-1).amax(-1).clamp_min(1e-300)
    eye = torch.eye(basis.shape[-1], dtype=basis.dtype, device=basis.device)
    rhs = basis.transpose(-1, -2) @ (weight * values)[..., None]
    return torch.linalg.solve(normal + ridge[..., None, None] * eye, rhs).squeeze(-1)


def _fit_background(
    frequency: torch.Tensor, intercept: torch.Tensor, precision: torch.Tensor, last: int
) -> torch.Tensor:
    """Fit each row's local intercepts with an even polynomial in ``k`` (weights: precision).

    The polynomial is trusted only between the first ring with some information
    (precision above 2 % of the row's best; below it the signal swamps the noise) and
    ring ``last`` (past it the grid's corners hold partial rings); outside, the end
    values are held.
    """
    weight = precision.clamp_min(0.0).clone()
    weight[:, 0] = 0.0  # the DC bin carries no information
    index = torch.arange(weight.shape[-1], device=weight.device)
    informative = weight > _INFORMATIVE * weight.amax(dim=1, keepdim=True)
    first = torch.where(informative, index, last).amin(dim=1, keepdim=True).clamp_max(last)
    k = frequency[torch.maximum(index.clamp_max(last), first)]  # (m, n)
    basis = _even_basis(k, float(frequency[last]), BACKGROUND_DEGREE)
    coef = _weighted_polyfit(basis, intercept, weight)
    return (basis @ coef[..., None]).squeeze(-1).clamp_min(0.0)


def _last_full_ring(counts: torch.Tensor) -> int:
    return int(torch.nonzero(counts >= _FULL_RING * counts.max()).flatten()[-1])


def ring_background(
    power: torch.Tensor, counts: torch.Tensor, ctf2: torch.Tensor, sigma_bins: float
) -> torch.Tensor:
    """Return the noise background ``B`` of ``P = S CTF^2 + B`` read between Thon rings.

    A local weighted regression of ``P`` on ``[1, CTF^2]`` (Gaussian window of
    ``sigma_bins``) reads ``B`` where the rings make signal and noise separable; an even
    polynomial of degree 6 in ``k`` is fitted to those values weighted by their precision,
    and held constant below the first informative ring and in the grid's corners
    (partial rings).

    Parameters
    ----------
    power : torch.Tensor
        ``(m, n_bins)`` measured radial spectra.
    counts : torch.Tensor
        ``(n_bins,)`` Fourier samples per ring.
    ctf2 : torch.Tensor
        ``(m, n_bins)`` CTF^2 as the spectrum sees it (ring-averaged, smeared).
    sigma_bins : float
        Width of the local windows, bins.

    Returns
    -------
    torch.Tensor
        ``(m, n_bins)`` float64 background, ``>= 0``.
    """
    expected = torch.exp(gaussian_smooth(power.clamp_min(1e-300).log(), sigma_bins))
    weight = counts / expected.square()
    weight[:, 0] = 0.0
    intercept, precision = _local_regression(power, ctf2, weight, sigma_bins)
    frequency = torch.arange(power.shape[-1], dtype=power.dtype, device=power.device)
    return _fit_background(frequency, intercept, precision, _last_full_ring(counts))


def background_fits_under(
    background: torch.Tensor, power: torch.Tensor, band: torch.Tensor, sigma_bins: float
) -> torch.Tensor:
    """Return ``(m,)`` bool: the background stays below :data:`ABOVE_SPECTRUM` x the spectrum.

    The spectrum is smoothed by a Gaussian of ``sigma_bins`` first (its ring noise would
    otherwise trip the test); ``band`` ``(n_bins,)`` selects the rings that are checked.
    """
    smooth = gaussian_smooth(power, sigma_bins).clamp_min(1e-300)
    ratio = torch.where(band, background / smooth, torch.zeros_like(smooth))
    return ratio.amax(dim=-1) <= ABOVE_SPECTRUM


def smooth_background(
    frequency: torch.Tensor,
    power: torch.Tensor,
    counts: torch.Tensor,
    scale: float,
    first: int = 2,
) -> torch.Tensor:
    """Fit ``B = c0 + c1 k^2`` to the lower side of each spectrum (signal is one-sided).

    For spectra whose Thon rings are not resolved. The signal only adds power, so rings
    more than :data:`_SIGNAL_CUT` noise standard deviations above the fit are taken as
    signal and down-weighted, ``(cut / z)^2``, while rings at or below it are noise.
    Iteratively reweighted least squares, weights ``counts / B^2``, over the rings
    ``first`` to the last full ring; the ends are held beyond.

    Two coefficients, not more: where the signal dominates (below about 0.3 cycles/pixel
    on low-dose 10 Å tilts) nothing in the spectrum pins ``B``, and ``c0 + c1 k^2``
    extrapolates as a counting detector's noise behaves (flat at ``k = 0``, falling with
    the pixel aperture: ``sinc^2`` within 5 % up to Nyquist). Degree 2 and 3 read
    20-40 % high at low frequency on the built-in microscope (measured on 4 specimens).

    Parameters
    ----------
    frequency : torch.Tensor
        ``(n_bins,)`` ring centres, cycles/pixel.
    power : torch.Tensor
        ``(m, n_bins)`` radial spectra.
    counts : torch.Tensor
        ``(n_bins,)`` Fourier samples per ring.
    scale : float
        Noise of a ring: ``var(P) = scale P^2 / counts`` (about 4 for one Hann tile,
        divided by the number of tiles averaged). Given, not measured: the residuals of a
        two-coefficient fit hold its misfit, which would loosen the cut.
    first : int, default 2
        First ring of the fit (ring 1 holds the window's leakage of the mean).

    Returns
    -------
    torch.Tensor
        ``(m, n_bins)`` float64 background, ``> 0``.
    """
    last = _last_full_ring(counts)
    rings = slice(first, last + 1)
    p, n = power[:, rings], counts[rings].expand_as(power[:, rings])
    k_last = float(frequency[last])
    basis = _even_basis(frequency[rings], k_last, 1)
    background = p.median(dim=1, keepdim=True).values.expand_as(p)
    floor = 1e-3 * background[:, :1]
    coef = torch.zeros((p.shape[0], 2), dtype=p.dtype, device=p.device)
    for _ in range(_IRLS_ROUNDS):
        z = (p - background) / (background * (scale / n).sqrt())
        down = torch.where(z > _SIGNAL_CUT, (_SIGNAL_CUT / z).square(), torch.ones_like(z))
        coef = _weighted_polyfit(basis, p, n / background.square() * down)
        background = torch.maximum((basis @ coef[..., None]).squeeze(-1), floor)
    return torch.maximum((_even_basis(frequency, k_last, 1) @ coef[..., None]).squeeze(-1), floor)


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


# --- the paired estimator's ring grid ------------------------------------------------------


def ring_power(
    images: torch.Tensor, bin_width: float | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the radial power of images as the paired estimator measures ``S_rr``.

    The same Tukey taper, orthonormal FFT, ring grid and ring smoothing as
    :func:`faket.noise.estimate_tilt_spectra` (its defaults), so the curves compare ring
    by ring with paired spectra; no standardisation here.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, ny, nx)`` floating images (float64 inside), any device.
    bin_width : float, optional
        Ring spacing, cycles/pixel; default ``1 / min(ny, nx)``.

    Returns
    -------
    frequency : torch.Tensor
        ``(n_bins,)`` ring centres from 0 (DC) to the grid's corner.
    power : torch.Tensor
        ``(n, n_bins)`` mean power per Fourier sample; the DC bin copies ring 1.
    counts : torch.Tensor
        ``(n_bins,)`` Fourier samples per ring (DC 0), unsmoothed.
    """
    n_img, ny, nx = images.shape
    device = images.device
    width = default_bin_width(ny, nx) if bin_width is None else float(bin_width)
    frequency, index = ring_grid(ny, nx, width)
    n_bins = frequency.shape[0]
    weight = half_plane_weight(ny, nx, device).flatten()
    flat_index = index.to(device).flatten()
    window = tukey_window(ny, nx, DEFAULT_TAPER, device)
    sums = torch.zeros((n_img, n_bins), dtype=torch.float64, device=device)
    chunk = max(1, _CHUNK_VALUES // (ny * nx))
    for start in range(0, n_img, chunk):
        x = images[start : start + chunk].to(torch.float64)
        f = torch.fft.rfft2(x * window, norm="ortho").flatten(1)
        sums[start : start + chunk].index_add_(
            1, flat_index, (f.real.square() + f.imag.square()) * weight
        )
    counts = torch.zeros(n_bins, dtype=torch.float64, device=device).index_add_(
        0, flat_index, weight
    )
    smoothed = smooth_rings(counts, DEFAULT_SMOOTH_BINS)
    smoothed[0] = 1.0
    power = smooth_rings(sums, DEFAULT_SMOOTH_BINS) / smoothed
    power[:, 0] = power[:, 1]
    return frequency.to(device), power, counts


def ring_samples(counts: torch.Tensor) -> torch.Tensor:
    """Return the independent samples behind each smoothed ring mean of :func:`ring_power`.

    Conjugate pairs count once (``counts / 2``); the binomial smoothing averages
    ``1 / sum(kernel^2)`` rings' worth (8/3 for ``[1, 2, 1] / 4``).
    """
    gain = 1.0 / float(binomial_kernel(DEFAULT_SMOOTH_BINS).square().sum())
    return (smooth_rings(counts, DEFAULT_SMOOTH_BINS) / 2.0 * gain).clamp_min(1.0)


def signal_power(
    power: torch.Tensor, noise: torch.Tensor, samples: torch.Tensor, *, noise_measured: bool
) -> torch.Tensor:
    """Return the signal's power ``P - N``, shrunk towards 0 where it is within the noise.

    Positive-part James-Stein, ``v max(0, 1 - var / v^2)``, with ``var = P^2 / samples``
    (plus ``N^2 / samples`` when ``noise`` is itself a ring estimate, e.g. from even-odd
    halves): clear values are kept (3 sd loses 11 %), ring noise goes to 0.
    """
    excess = power - noise
    variance = power.square() / samples
    if noise_measured:
        variance = variance + noise.square() / samples
    factor = (1.0 - variance / excess.square().clamp_min(1e-300)).clamp_min(0.0)
    return (excess * factor).clamp_min(0.0)


def transfer_from_signal(
    signal: torch.Tensor, ctf: torch.Tensor, noiseless_power: torch.Tensor
) -> torch.Tensor:
    """Return ``T = sign(CTF) sqrt(signal / P_C)``, 0 where ``P_C`` is ~0; DC copies ring 1."""
    defined = noiseless_power > _EMPTY_POWER
    gain = signal / noiseless_power.clamp_min(_EMPTY_POWER)
    transfer = torch.sign(ctf) * torch.where(defined, gain, torch.zeros_like(gain)).sqrt()
    transfer[:, 0] = transfer[:, 1]
    return transfer


def paired_equivalent_r(
    transfer: torch.Tensor, noiseless_power: torch.Tensor, power: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """Return ``(m,)`` ``sum w T P_C / sqrt(sum w P_C sum w P)`` over the rings (DC left out).

    What the paired estimator measures, ``r = corr(P, C)``, for a reference of spectrum
    ``P = T^2 P_C + N``: by Parseval the covariance of the standardised images is the sum
    of ``T |C|^2`` over the Fourier samples, their variances the sums of ``|C|^2`` and
    ``|P|^2`` (``w`` = samples per ring).
    """
    w = counts[1:]
    num = (w * transfer[:, 1:] * noiseless_power[:, 1:]).sum(-1)
    den = ((w * noiseless_power[:, 1:]).sum(-1) * (w * power[:, 1:]).sum(-1)).sqrt()
    return (num / den.clamp_min(1e-300)).clamp(-1.0, 1.0)


def noise_share(noise: torch.Tensor, power: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Return ``(m,)`` ``sqrt(sum w N / sum w P)``: the noise's share of the std, in [0, 1]."""
    w = counts[1:]
    share = (w * noise[:, 1:]).sum(-1) / (w * power[:, 1:]).sum(-1).clamp_min(1e-300)
    return share.clamp(0.0, 1.0).sqrt()
