"""Measure the spectral noise model of a reference tilt-series against its noiseless twin.

Per tilt, both images are standardised (zero mean, unit population std), tapered at
their borders by the same window, and Fourier transformed (orthonormal). Over the Fourier
samples ``k`` of each ring (cycles/pixel, see :mod:`faket.noise.spectral`):

- ``S_rc = <Re(R C*)>``, ``S_cc = <|C|**2>``, ``S_rr = <|R|**2>`` (ring means);
- transfer ``T = S_rc / S_cc``: the least-squares scale of ``C`` in ``R`` within the ring,
  the ring-wise version of the published ``r`` (a Pearson correlation);
- noise power ``N = S_rr - T**2 * S_cc = S_rr - S_rc**2 / S_cc``, clamped at 0: the power of
  ``R`` that ``C`` does not explain, the ring-wise version of ``sigma**2``.

With no taper and no smoothing the rings reproduce the scalar statistics exactly
(Parseval): ``r == sum_k T S_cc / (ny nx)`` and ``1 == sum_k (T**2 S_cc + N) / (ny nx)``.

Choices
-------
- Smoothing (``smooth_bins``): the ring *sums* and ring *sample counts* are convolved with
  the same binomial kernel over neighbouring rings (DC left out) before the ratios, so each
  ring becomes a sample-count-weighted mean over ``2 * smooth_bins + 1`` rings. The default
  ``[1, 2, 1] / 4`` cuts the variance of a ring mean to 6/16 while it keeps a CTF
  oscillation whose period spans 8 rings at 85 % of its amplitude (the kernel's response
  is ``cos(pi / period)**2``; at the default ring width ``1 / n`` that is any period above
  ``8 / n`` cycles/pixel, e.g. 0.008 for a 1024-pixel tilt). Faster oscillations are
  damped, and then ``N`` reads high: the smoothed ``S_rr`` keeps the mean of ``T**2 S_cc``
  while ``S_rc**2 / S_cc`` sees the damped ``T``. Use ``smooth_bins=0`` there, or a
  narrower ``bin_width``. The polynomial fits over tilts average much more afterwards.
- Taper (``taper``): a projection of a slab is not periodic, so its FFT sees jumps at the
  borders whose power leaks along the axes of the spectrum, and the reference's and the
  noiseless tilt's jumps do not obey ``T``. A Tukey window (cosine edges over
  ``taper / 2`` of each side, the same for both images) removes the jumps; its power is
  divided out (``mean(w**2) = 1``), so white noise still reads ``N = v``. Measured on
  128-pixel crops of larger synthetic pairs with a ``1 / k**2`` content spectrum, a taper
  of 0.1 cuts the error of ``T`` at 0.1 to 0.5 cycles/pixel by about 40 % and that of
  ``log N`` by 40 to 55 %. Where the content's spectrum falls much faster than
  ``1 / k**2``, its power at high frequencies is mostly the window's leakage and ``T`` is
  poorly defined there either way. On periodic data (no jumps) no window is the exact
  estimator (``taper=0``).
"""

from __future__ import annotations

import torch

from faket.noise._rings import (
    default_bin_width,
    half_plane_weight,
    ring_grid,
    smooth_rings,
)
from faket.noise.spectral import TiltSpectra
from faket.noise.stats import _check_pair, _standardise64

__all__ = ["DEFAULT_SMOOTH_BINS", "DEFAULT_TAPER", "estimate_tilt_spectra"]

DEFAULT_SMOOTH_BINS = 1
"""Half-width in rings of the binomial smoothing kernel (1: ``[1, 2, 1] / 4``)."""

DEFAULT_TAPER = 0.1
"""Fraction of each image side inside the Tukey window's cosine edges (both together)."""

_CHUNK_VALUES = 2**24
"""Tilts are transformed in chunks of about this many pixels (float64: 128 MiB each)."""

_EMPTY_POWER = 1e-12
"""Rings where the noiseless tilt's mean power is below this (in units of its variance,
which is 1 per Fourier sample on average) have no defined transfer; T = 0 there."""


def tukey_window(ny: int, nx: int, taper: float, device: torch.device) -> torch.Tensor:
    """Return a ``(ny, nx)`` float64 2D Tukey window scaled to ``mean(w**2) == 1``.

    Parameters
    ----------
    ny, nx : int
        Image size in pixels.
    taper : float
        Fraction of each side inside the cosine edges, ``0 <= taper <= 1``: 0 is no window
        (all ones), 1 a Hann window. Sampled at pixel centres, so no pixel is zeroed.
    device : torch.device
        Where to make it.
    """
    if not 0.0 <= taper <= 1.0:
        raise ValueError(f"taper must lie in [0, 1], got {taper}")

    def one_axis(n: int) -> torch.Tensor:
        x = (torch.arange(n, dtype=torch.float64, device=device) + 0.5) / n
        edge = torch.minimum(x, 1.0 - x)  # distance to the nearer border, in [0, 0.5]
        if taper == 0.0:
            return torch.ones_like(x)
        ramp = 0.5 * (1.0 - torch.cos(2.0 * torch.pi * edge / taper))
        return torch.where(edge < taper / 2.0, ramp, torch.ones_like(x))

    w = torch.outer(one_axis(ny), one_axis(nx))
    return w / w.square().mean().sqrt()


def _ring_sums(
    p: torch.Tensor, c: torch.Tensor, index: torch.Tensor, window: torch.Tensor, n_bins: int
) -> torch.Tensor:
    """Return ``(3, n_tilts, n_bins)`` float64 ring sums of Re(R C*), |C|^2 and |R|^2."""
    n_tilts, ny, nx = p.shape
    weight = half_plane_weight(ny, nx, p.device).flatten()
    flat_index = index.to(p.device).flatten()
    sums = torch.zeros((3, n_tilts, n_bins), dtype=torch.float64, device=p.device)
    chunk = max(1, _CHUNK_VALUES // (ny * nx))
    for start in range(0, n_tilts, chunk):
        stop = min(start + chunk, n_tilts)
        fr = torch.fft.rfft2(p[start:stop] * window, norm="ortho").flatten(1)
        fc = torch.fft.rfft2(c[start:stop] * window, norm="ortho").flatten(1)
        products = (
            fr.real * fc.real + fr.imag * fc.imag,
            fc.real.square() + fc.imag.square(),
            fr.real.square() + fr.imag.square(),
        )
        for q, values in enumerate(products):
            sums[q, start:stop].index_add_(1, flat_index, values * weight)
    return sums


def spectra_of_standardised(
    p: torch.Tensor,
    c: torch.Tensor,
    *,
    bin_width: float | None = None,
    smooth_bins: int = DEFAULT_SMOOTH_BINS,
    taper: float = DEFAULT_TAPER,
) -> TiltSpectra:
    """Measure ``T`` and ``N`` of already standardised float64 tilt pairs (no input checks).

    Parameters
    ----------
    p, c : torch.Tensor
        ``(n_tilts, ny, nx)`` float64 standardised reference and noiseless tilts, same
        device.
    bin_width, smooth_bins, taper
        As in :func:`estimate_tilt_spectra`.

    Returns
    -------
    TiltSpectra
        float64 on ``p``'s device.
    """
    _, ny, nx = p.shape
    if isinstance(smooth_bins, bool) or not isinstance(smooth_bins, int) or smooth_bins < 0:
        raise ValueError(f"smooth_bins must be an integer >= 0, got {smooth_bins!r}")
    width = default_bin_width(ny, nx) if bin_width is None else float(bin_width)
    frequency, index = ring_grid(ny, nx, width)
    n_bins = frequency.shape[0]
    window = tukey_window(ny, nx, float(taper), p.device)
    sums = _ring_sums(p, c, index, window, n_bins)
    weight = half_plane_weight(ny, nx, torch.device("cpu")).flatten()
    counts = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index.flatten(), weight)
    sums = smooth_rings(sums, smooth_bins)
    counts = smooth_rings(counts, smooth_bins).to(p.device)
    counts[0] = 1.0  # the DC bin is empty; it is overwritten below
    s_rc, s_cc, s_rr = sums / counts
    defined = s_cc > _EMPTY_POWER
    transfer = torch.where(defined, s_rc / torch.where(defined, s_cc, 1.0), 0.0)
    noise_power = (s_rr - transfer * s_rc).clamp_min(0.0)
    transfer[:, 0] = transfer[:, 1]
    noise_power[:, 0] = noise_power[:, 1]
    return TiltSpectra(frequency=frequency.to(p.device), transfer=transfer, noise_power=noise_power)


def estimate_tilt_spectra(
    reference: torch.Tensor,
    noiseless: torch.Tensor,
    *,
    bin_width: float | None = None,
    smooth_bins: int = DEFAULT_SMOOTH_BINS,
    taper: float = DEFAULT_TAPER,
) -> TiltSpectra:
    """Measure each tilt's radial signal transfer ``T(k)`` and noise power ``N(k)``.

    See the module docstring for the estimator and its choices.

    Parameters
    ----------
    reference : torch.Tensor
        ``(n_tilts, ny, nx)`` floating tilt-series of the microscope to mimic, tilt axis Y.
    noiseless : torch.Tensor
        ``(n_tilts, ny, nx)`` noiseless projections of the same content, same tilt order.
        Any floating dtype and device; computed in float64 on ``reference``'s device.
    bin_width : float, optional
        Ring spacing in cycles/pixel, ``1 / min(ny, nx) <= bin_width <= 0.25``. Default
        ``1 / min(ny, nx)``: one Fourier sample of the shorter side.
    smooth_bins : int, default 1
        Half-width in rings of the binomial smoothing kernel; 0 disables smoothing.
    taper : float, default 0.1
        Fraction of each side inside the Tukey window's cosine edges (0: no window,
        1: Hann).

    Returns
    -------
    TiltSpectra
        ``(n_tilts, n_bins)`` curves on rings ``0, bin_width, 2 bin_width, ...`` up to the
        corner of the Fourier grid, in units of the standardised reference tilt. float64
        on ``reference``'s device.

    Raises
    ------
    faket.errors.FaketInputError
        If the shapes differ, a tensor is not a finite floating ``(n_tilts, ny, nx)``
        tilt-series, or a tilt of either input is constant (named by index).
    ValueError
        If ``bin_width``, ``smooth_bins`` or ``taper`` is out of range.

    Notes
    -----
    Memory: two float64 copies of the stack plus the transforms of one chunk of tilts
    (about 16 million pixels) at a time.
    """
    _check_pair(reference, noiseless, "the transfer and noise power")
    p, _, _ = _standardise64(reference)
    c, _, _ = _standardise64(noiseless.to(reference.device))
    return spectra_of_standardised(p, c, bin_width=bin_width, smooth_bins=smooth_bins, taper=taper)
