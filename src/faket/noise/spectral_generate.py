"""Make noisy tilt-series with the spectral noise model.

Per tilt ``i``: standardise the noiseless tilt, filter it by the radial transfer
``T_i(|k|)``, add Gaussian noise coloured to the noise power ``N_i(|k|)`` (times
``sigma_scale``), then give the result exactly the target mean and std, as
:func:`faket.noise.apply_noise` does for the published model.

The white field is drawn exactly as :func:`faket.noise.apply_noise` draws it (a
``torch.Generator`` on the input's device seeded with ``seed``, a part of whole tilts at
a time: :func:`faket.noise.generate.noise_field_part`), then filtered by ``sqrt(N)`` with
an orthonormal FFT: the same seed gives the same underlying field in both models and in
every modality, so CONTENT is NOISY's noise at a quarter of its amplitude, and white
``N = sigma**2`` with a flat ``T = r`` reproduces the published model.

Borders: an FFT filter treats the image as periodic. The noise is made periodic on purpose
(filtering a white field on its own grid keeps it stationary up to the borders). The
signal is not periodic: filtering it on its own grid would wrap each border's content,
and the ringing of a sign-flipping ``T``, into the opposite border. It is therefore
reflect-padded by ``pad`` of each side before filtering and cropped back. Measured on
64-pixel crops of larger synthetic images filtered by a CTF-like ``T`` (the truth is the
crop of the filtered large image): with smooth content (power ~ ``k**-4``) the rms error
in a 6-pixel border drops from about 0.45 of the signal's std (wrap-around) to 0.16
(reflection), with ``k**-2`` content from 0.46 to 0.41; what lies outside the field of
view cannot be recovered either way. The cost is a 1.5 x larger FFT per side at 0.25.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from faket.conventions import TiltStack
from faket.noise._rings import half_plane_radius, interpolate_radial
from faket.noise.generate import (
    _check_noise_settings,
    _check_noiseless,
    _checked_part,
    _compute_dtype,
    _standardise_or_zero,
    _tilt_parts,
    collect_parts,
    noise_field_part,
    parts_device,
)
from faket.noise.stats import TiltStats

__all__ = ["DEFAULT_PAD", "apply_spectral_noise", "radial_filter", "spectral_noise_parts"]

DEFAULT_PAD = 0.25
"""Reflect padding of the signal on each side, as a fraction of that side's length."""

_CHUNK_VALUES = 2**23
"""Tilts are filtered in chunks of about this many (padded) pixels."""


def radial_filter(
    images: torch.Tensor,
    gain: torch.Tensor,
    frequency: torch.Tensor,
    *,
    pad: float = 0.0,
) -> torch.Tensor:
    """Multiply each image's orthonormal spectrum by a radial gain curve.

    Parameters
    ----------
    images : torch.Tensor
        ``(n_images, ny, nx)`` float32 or float64 images.
    gain : torch.Tensor
        ``(n_images, n_bins)`` gain per image at the ring centres ``frequency``;
        interpolated linearly at each Fourier sample's radius and held constant beyond
        the last centre.
    frequency : torch.Tensor
        ``(n_bins,)`` strictly increasing ring centres, cycles/pixel.
    pad : float, default 0.0
        Reflect padding on each side before filtering, as a fraction of that side's
        length, ``0 <= pad <= 0.5``; the result is cropped back. 0 filters periodically.

    Returns
    -------
    torch.Tensor
        ``(n_images, ny, nx)`` filtered images, dtype and device of ``images``.
    """
    if not 0.0 <= pad <= 0.5:
        raise ValueError(f"pad must lie in [0, 0.5], got {pad}")
    n, ny, nx = images.shape
    py, px = round(pad * ny), round(pad * nx)
    py, px = min(py, ny - 1), min(px, nx - 1)  # reflection needs pad < size
    hy, hx = ny + 2 * py, nx + 2 * px
    radius = half_plane_radius(hy, hx, images.device)
    out = torch.empty_like(images)
    chunk = max(1, _CHUNK_VALUES // (hy * hx))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        x = images[start:stop]
        if py or px:
            x = torch.nn.functional.pad(x[:, None], (px, px, py, py), mode="reflect")[:, 0]
        g = interpolate_radial(gain[start:stop], frequency, radius).to(images.dtype)
        y = torch.fft.irfft2(torch.fft.rfft2(x, norm="ortho") * g, s=(hy, hx), norm="ortho")
        out[start:stop] = y[:, py : py + ny, px : px + nx]
    return out


def apply_spectral_noise(
    noiseless: torch.Tensor,
    stats: TiltStats,
    *,
    sigma_scale: float = 1.0,
    seed: int,
    name: str | None = None,
    pad: float = DEFAULT_PAD,
) -> torch.Tensor:
    """Make a noisy tilt-series with per-tilt radial transfer and coloured noise.

    For tilt ``i``, with ``F`` the orthonormal 2D FFT and ``n`` standard white Gaussian
    noise: ``x = F^-1[T_i(|k|) F[standardise(noiseless[i])]] + sigma_scale *
    F^-1[sqrt(N_i(|k|)) F[n]]``; the output is ``standardise(x) * std[i] + mean[i]``.
    ``stats.r`` and ``stats.sigma`` are not used: the spectra replace them.

    Parameters
    ----------
    noiseless : torch.Tensor
        ``(n_tilts, ny, nx)`` floating tilt-series, tilt axis Y.
    stats : TiltStats
        Per-tilt targets with ``spectra`` (any ring grid; usually
        :func:`faket.noise.aggregate_tilt_stats` of paired estimates), ``n_tilts`` equal
        to the stack's and ``std > 0``. The spectra are in cycles/pixel, so a stack of
        another size than the references' uses the same curves at its own radii.
    sigma_scale : float, default 1.0
        Factor on the noise amplitude (0.25 for the content modality: 1/16 of ``N``), >= 0.
    seed : int
        Seed of the white field, drawn as in :func:`faket.noise.apply_noise`. The same
        seed, input, dtype and device give bit-identical output.
    name : str, optional
        How errors name ``noiseless``; the message then reads ``"<name>: <problem>"``.
    pad : float, default 0.25
        Reflect padding of the signal on each side before its filtering, as a fraction of
        the side, ``0 <= pad <= 0.5``; 0 filters it periodically. The noise is always
        filtered periodically on the image grid.

    Returns
    -------
    torch.Tensor
        ``(n_tilts, ny, nx)``, dtype and device of ``noiseless``, in the stats' grey units.
        Computed in the input's dtype (float32 for half-precision inputs).

    Raises
    ------
    faket.errors.FaketInputError
        If ``noiseless`` is not a finite floating ``(n_tilts, ny, nx)`` tensor, has a
        constant tilt (named by index) or its tilt count differs from the stats'.
    ValueError
        If ``stats`` has no spectra, ``sigma_scale`` is negative, a ``std`` is not
        positive, ``pad`` is out of range or ``seed`` is not an integer.
    """
    _check_noiseless(noiseless, name, tensor=True)
    parts = spectral_noise_parts(
        noiseless, stats, sigma_scale=sigma_scale, seed=seed, name=name, pad=pad
    )
    return collect_parts(parts, noiseless)


def spectral_noise_parts(
    noiseless: TiltStack,
    stats: TiltStats,
    *,
    sigma_scale: float = 1.0,
    seed: int,
    name: str | None = None,
    pad: float = DEFAULT_PAD,
    device: torch.device | str | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield :func:`apply_spectral_noise`'s output as ``(first tilt, tilts)``, a part at a time.

    ``noiseless`` may be a tilt-series in a file, read a part at a time; ``device``
    (default: ``noiseless``' device, the CPU for a file) is where the parts are made.
    The other arguments are checked when it is called, each part's values as it is read.
    """
    _check_noiseless(noiseless, name, tensor=False)
    _check_noise_settings(noiseless, stats, sigma_scale, seed, name)
    if stats.spectra is None:
        raise ValueError(
            "stats has no spectra for the spectral noise model; measure them with "
            "estimate_tilt_stats(..., spectra=True) or use the published model"
        )
    if not 0.0 <= pad <= 0.5:
        raise ValueError(f"pad must lie in [0, 0.5], got {pad}")
    where = parts_device(noiseless, device)
    return _spectral_parts(noiseless, stats, float(sigma_scale), int(seed), name, pad, where)


def _spectral_parts(
    noiseless: TiltStack,
    stats: TiltStats,
    sigma_scale: float,
    seed: int,
    name: str | None,
    pad: float,
    device: torch.device,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield the parts of :func:`spectral_noise_parts`, whose arguments are checked."""
    spectra = stats.spectra
    assert spectra is not None  # checked by the caller
    frequency = spectra.frequency.to(device)
    amplitude = spectra.noise_power.to(device).sqrt() * sigma_scale
    transfer = spectra.transfer.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    for part in _tilt_parts(torch.Size(noiseless.shape)):
        tilts = _checked_part(noiseless, part, name, device)
        compute = _compute_dtype(tilts.dtype)
        std = stats.std[part].to(device=device, dtype=compute)[:, None, None]
        mean = stats.mean[part].to(device=device, dtype=compute)[:, None, None]
        # As apply_noise: the same white field, drawn a part at a time.
        noise = radial_filter(
            noise_field_part(generator, tilts, compute), amplitude[part], frequency
        )
        signal = _standardise_or_zero(tilts.to(compute))
        signal = radial_filter(signal, transfer[part], frequency, pad=pad)
        out = _standardise_or_zero(signal + noise) * std + mean
        yield part.start, out.to(tilts.dtype)
