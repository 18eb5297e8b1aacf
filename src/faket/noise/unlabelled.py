"""Noise statistics of a reference tilt-series without a noiseless counterpart.

A user usually has tilt-series of their own microscope but not the noiseless projections
of the same content, so the paired estimator (:func:`faket.noise.estimate_tilt_stats`)
cannot be used. This module estimates the same quantities from the reference alone:

- ``mean`` and ``std``: measured directly on each tilt (population std).
- noise variance: the mean of the tilt's power spectrum over a high-frequency band
  (a ring given in fractions of Nyquist, 0.7 to 0.95 by default).
- ``sigma = sqrt(noise variance) / std`` (the noise level in standardised units), clipped
  to ``[0, 1]``; ``r = sqrt(1 - sigma**2)``: for standardised data signal and noise
  variances add up to one, so whatever is not noise is signal. The paired estimator
  satisfies the same identity ``r**2 + sigma**2 = 1`` exactly.

The power spectrum is a Welch estimate: the image is cut into half-overlapping tiles,
each tile has its mean removed and is multiplied by a periodic 2D Hann window, and the
squared Fourier magnitudes are averaged over tiles and divided by the window's power
``sum(w**2)``. With that normalisation white noise of variance ``v`` has an expected
power of exactly ``v`` at every frequency. The window's smooth taper removes the jumps at
the tile edges (an FFT treats the tile as periodic): without it, those jumps spread power
as ``1/f**2`` over all frequencies, including the band, and would be read as noise.

Assumptions, and what happens when they fail
--------------------------------------------
- The noise is white (flat spectrum) up to the band, so its level in the band is its level
  everywhere. Real detectors are not quite white: a detector MTF or a CTF envelope that
  damps the noise at high frequencies makes the band read low and biases ``sigma`` low
  (and ``r`` high). Noise that rises towards high frequencies biases it high.
- The signal has decayed in the band (its power there is negligible next to the noise).
  Residual signal power in the band is counted as noise and biases ``sigma`` high (and
  ``r`` low). Binned or low-pass filtered data violate this less than raw data with sharp
  features such as gold fiducials.
- Noise is independent of the signal and stationary across each tilt.

For low signal-to-noise data (``r`` small, ``sigma`` close to 1), ``r = sqrt(1 - sigma**2)``
magnifies small errors of ``sigma``: ``dr = -(sigma / r) dsigma``. Expect the unlabelled
``r`` to be much less precise than its ``sigma`` there.

``r = sqrt(1 - sigma**2)`` is also not what the paired estimator measures on data with a
CTF: it measures the correlation with the noiseless projection, which the CTF's phase
flips lower, so ``r**2 + sigma**2 < 1`` there. On the built-in microscope (counting
detector, 10 and 7.3 Å) this estimator's ``sigma`` is close to the noise's share (within
0.05) but its ``r`` reads 0.2-0.3 above the paired one.
:func:`faket.noise.estimate_reference_stats` estimates the paired ``r`` itself.
"""

from __future__ import annotations

import math

import torch

from faket.conventions import TiltAngles
from faket.errors import FaketInputError
from faket.noise.stats import TiltStats, _as_angles, _check_tilt_series, _constant_tilts

__all__ = ["estimate_tilt_stats_unlabelled", "radial_power_spectrum"]


def _tile_starts(n: int, tile: int) -> list[int]:
    """Return the starts of half-overlapping tiles of length ``tile`` that cover ``n``."""
    if tile >= n:
        return [0]
    step = max(tile // 2, 1)
    n_pos = math.ceil((n - tile) / step) + 1
    return [round(i * (n - tile) / (n_pos - 1)) for i in range(n_pos)]


def _tile_shape(ny: int, nx: int, tile: int | None) -> tuple[int, int]:
    """Return the tile size clipped to the image; ``None`` means the whole image."""
    if tile is None:
        return ny, nx
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 4:
        raise ValueError(f"tile must be an integer of at least 4 pixels or None, got {tile!r}")
    return min(tile, ny), min(tile, nx)


def _welch_periodogram(images: torch.Tensor, tile: int | None) -> torch.Tensor:
    """Average Hann-windowed periodogram of each image, normalised by the window power.

    Parameters
    ----------
    images : torch.Tensor
        ``(batch, ny, nx)`` floating images.
    tile : int or None
        Tile side in pixels (clipped to the image), or None for the whole image.

    Returns
    -------
    torch.Tensor
        ``(batch, ty, tx)`` float64 power in FFT order (frequency 0 at index 0), in squared
        grey units per Fourier sample: white noise of variance ``v`` gives ``v`` everywhere.
    """
    _, ny, nx = images.shape
    ty, tx = _tile_shape(ny, nx, tile)
    f64, device = torch.float64, images.device
    window = torch.outer(
        torch.hann_window(ty, periodic=True, dtype=f64, device=device),
        torch.hann_window(tx, periodic=True, dtype=f64, device=device),
    )
    x_starts = _tile_starts(nx, tx)
    y_starts = _tile_starts(ny, ty)
    acc = torch.zeros((images.shape[0], ty, tx), dtype=f64, device=device)
    for y0 in y_starts:  # one strip of tiles at a time keeps memory at ~ one strip
        strip = images[:, y0 : y0 + ty, :].to(torch.float64)
        tiles = torch.stack([strip[:, :, x0 : x0 + tx] for x0 in x_starts], dim=1)
        tiles = tiles - tiles.mean(dim=(-2, -1), keepdim=True)
        spectrum = torch.fft.fft2(tiles * window)
        acc += (spectrum.real.square() + spectrum.imag.square()).sum(dim=1)
    return acc / (len(x_starts) * len(y_starts) * window.square().sum())


def _radius_cycles_per_pixel(ty: int, tx: int, device: torch.device) -> torch.Tensor:
    """Return the ``(ty, tx)`` float64 frequency magnitude in cycles/pixel, FFT order."""
    fy = torch.fft.fftfreq(ty, dtype=torch.float64, device=device)
    fx = torch.fft.fftfreq(tx, dtype=torch.float64, device=device)
    return torch.sqrt(fy[:, None].square() + fx[None, :].square())


def radial_power_spectrum(
    images: torch.Tensor, *, tile: int | None = 128
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compute the radially averaged power spectrum of each image (Welch, Hann-windowed tiles).

    Parameters
    ----------
    images : torch.Tensor
        ``(ny, nx)`` or ``(..., ny, nx)`` floating images, e.g. a tilt-series
        ``(n_tilts, ny, nx)``; each image gets its own spectrum.
    tile : int or None, default 128
        Side in pixels of the half-overlapping square tiles that are windowed and
        averaged (clipped to the image size). Smaller tiles give a smoother but coarser
        spectrum. None uses one window over the whole image.

    Returns
    -------
    freqs : torch.Tensor
        ``(n_bins,)`` float64 spatial frequencies in cycles/pixel: ``k / t`` for
        ``k = 0, 1, ...`` with ``t`` the shorter tile side; each Fourier sample goes to the
        bin nearest its radius. They run up to the corner of the Fourier grid,
        ``0.5 * sqrt(2)`` for square tiles (the last bin centre may lie up to half a bin
        above it); 0.5 is Nyquist. Bins beyond 0.5 hold only the corners of the grid
        (partial rings); empty bins are left out.
    power : torch.Tensor
        ``(..., n_bins)`` float64 mean power of the Fourier samples whose radius rounds
        to each bin, in squared grey units per Fourier sample. The window's power is
        divided out, so white noise of variance ``v`` has a flat spectrum at ``v``; the
        mean over all Fourier samples is about the image's variance. The tile mean is
        removed, so the zero-frequency bin is about 0.

    Notes
    -----
    Computed in float64 on ``images``' device, one strip of tiles at a time, so the extra
    memory is about one float64 strip of tiles per image (``(..., n_x_tiles, t, t)``).
    """
    if not isinstance(images, torch.Tensor) or images.ndim < 2:
        raise ValueError("images must be a torch.Tensor of shape (ny, nx) or (..., ny, nx)")
    if not images.is_floating_point():
        raise ValueError(f"images must have a floating-point dtype, got {images.dtype}")
    if images.shape[-2] < 2 or images.shape[-1] < 2:
        raise ValueError(f"images must be at least 2 x 2 pixels, got {tuple(images.shape[-2:])}")
    batch_shape = images.shape[:-2]
    flat = images.reshape(-1, *images.shape[-2:])
    power2d = _welch_periodogram(flat, tile)
    ty, tx = power2d.shape[-2:]
    radius = _radius_cycles_per_pixel(ty, tx, images.device)
    t = min(ty, tx)
    index = torch.round(radius * t).to(torch.int64).flatten()
    n_bins = int(index.max()) + 1
    counts = torch.bincount(index, minlength=n_bins)
    sums = torch.zeros((flat.shape[0], n_bins), dtype=torch.float64, device=images.device)
    sums.index_add_(1, index, power2d.flatten(1))
    keep = counts > 0
    freqs = torch.arange(n_bins, dtype=torch.float64, device=images.device)[keep] / t
    power = sums[:, keep] / counts[keep].to(torch.float64)
    return freqs, power.reshape(*batch_shape, -1)


def estimate_tilt_stats_unlabelled(
    reference: torch.Tensor,
    *,
    tilt_angles_deg: TiltAngles | None = None,
    high_freq_band: tuple[float, float] = (0.7, 0.95),
    tile: int | None = 128,
) -> TiltStats:
    """Estimate per-tilt ``r``, ``sigma``, mean and std from a reference tilt-series alone.

    The noise variance of each tilt is the mean Welch power (see
    :func:`radial_power_spectrum`) over the Fourier samples whose radius lies in
    ``high_freq_band``; ``sigma = sqrt(noise variance) / std`` clipped to ``[0, 1]`` and
    ``r = sqrt(1 - sigma**2)``. The module docstring lists the assumptions (white noise in
    the band, signal decayed there) and the direction of the bias when they fail.

    Parameters
    ----------
    reference : torch.Tensor
        ``(n_tilts, ny, nx)`` floating tilt-series, tilt axis Y, in its own grey units.
    tilt_angles_deg : torch.Tensor or sequence of float, optional
        ``(n_tilts,)`` tilt angles in degrees, stored with the result.
    high_freq_band : tuple of float, default (0.7, 0.95)
        ``(low, high)`` radii of the band, in fractions of Nyquist (0.5 cycles/pixel),
        ``0 < low < high <= 1``.
    tile : int or None, default 128
        Side in pixels of the Welch tiles (clipped to the image); None for one window
        over the whole image. Smaller tiles average more tiles (less variance), larger
        tiles resolve the spectrum more finely.

    Returns
    -------
    TiltStats
        ``method="unlabelled"``, float64 on ``reference``'s device.

    Raises
    ------
    faket.errors.FaketInputError
        If ``reference`` is not a finite floating ``(n_tilts, ny, nx)`` tensor, a tilt is
        constant (named by index), or the tilt angles do not match the tilt count.
    ValueError
        If the band or the tile size is invalid, or no Fourier sample falls in the band.

    Notes
    -----
    Memory: one float64 copy of the stack for the mean and std, plus one float64 strip of
    tiles for the spectrum. Tilts are independent, so very large stacks can be measured
    in chunks of tilts and the results concatenated.
    """
    _check_tilt_series(reference, "reference")
    low, high = (float(v) for v in high_freq_band)
    if not 0.0 < low < high <= 1.0:
        raise ValueError(
            f"high_freq_band must satisfy 0 < low < high <= 1 (fractions of Nyquist), "
            f"got {high_freq_band}"
        )
    angles = _as_angles(tilt_angles_deg, reference.shape[0], reference.device)
    constant = _constant_tilts(reference)
    if bool(constant.any()):
        bad = torch.nonzero(constant).flatten().tolist()
        raise FaketInputError(
            f"reference tilt(s) {bad[:10]} are constant images (std 0); "
            "their noise level is undefined"
        )

    x64 = reference.to(torch.float64)
    mean = x64.mean(dim=(-2, -1))
    std = x64.std(dim=(-2, -1), correction=0)
    del x64
    power2d = _welch_periodogram(reference, tile)
    ty, tx = power2d.shape[-2:]
    nyquist_fraction = _radius_cycles_per_pixel(ty, tx, reference.device) / 0.5
    band = (nyquist_fraction >= low) & (nyquist_fraction <= high)
    if not bool(band.any()):
        raise ValueError(
            f"no Fourier sample of a {ty} x {tx} tile lies in the band {high_freq_band} "
            "of Nyquist; widen the band or use larger tiles"
        )
    noise_var = power2d[:, band].mean(dim=1)
    sigma = (noise_var.sqrt() / std).clamp(0.0, 1.0)
    r = (1.0 - sigma.square()).clamp_min(0.0).sqrt()
    return TiltStats(
        r=r, sigma=sigma, mean=mean, std=std, tilt_angles_deg=angles, method="unlabelled"
    )
