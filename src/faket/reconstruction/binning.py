"""Binning (downsampling) of tilt-series before reconstruction.

Both methods first crop Y and X centred (:func:`faket.conventions.centred_crop_start`) to a
multiple of the factor, dropping at most ``factor - 1`` pixels per axis, so that the
pixels stay square and the pixel size becomes exactly ``factor`` times the input's.
Tilts are never binned.

``fourier`` (default)
    Fourier cropping: the image spectrum is cut to the frequencies below the new Nyquist
    frequency (the new Nyquist row and column are zero) and transformed back on the
    coarse grid. An ideal low-pass filter followed by decimation: no aliasing, the mean
    is kept exactly, and output pixel ``j`` sits at input pixel ``factor * j``.
``spline``
    The FakET reference setting: ``scipy.ndimage.zoom(image, 1 / factor, order=3)``
    (cubic B-spline, on the CPU), with ``mode="mirror"``. scipy's default
    ``mode="constant"`` gives the same values except that rounding can put the last
    output row or column just outside the image, where it becomes 0 (it does for
    48 -> 24); ``mirror`` uses the same spline there and avoids that. It samples without
    a low-pass filter (aliasing), and its grid maps the corner pixels onto each other,
    so output pixel ``j`` sits at input pixel ``j (n - 1) / (m - 1)`` (a 0.2 % stretch
    for 1024 -> 512).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import torch

from faket.conventions import centred_crop_start

BINNING_METHODS = ("fourier", "spline")
"""Methods accepted by :func:`bin_tilt_series`."""


def bin_tilt_series(
    tilt_series: torch.Tensor,
    factor: int,
    *,
    method: str = "fourier",
    pixel_size_a: float | None = None,
) -> tuple[torch.Tensor, float | None]:
    """Downsample each projection of a tilt-series by an integer factor along Y and X.

    Parameters
    ----------
    tilt_series : torch.Tensor
        ``(n_tilts, ny, nx)`` floating point, any device.
    factor : int
        Binning factor, at least 1 (1 returns the input unchanged).
    method : {"fourier", "spline"}
        See the module docstring.
    pixel_size_a : float, optional
        Pixel size of the input in Angstrom.

    Returns
    -------
    binned : torch.Tensor
        ``(n_tilts, ny // factor, nx // factor)``, same dtype and device as the input.
    pixel_size_a : float or None
        ``factor * pixel_size_a`` (None when the input's is None).
    """
    if tilt_series.ndim != 3:
        raise ValueError(
            f"tilt_series must be 3-D (n_tilts, ny, nx); got shape {tuple(tilt_series.shape)}"
        )
    if not tilt_series.is_floating_point():
        raise ValueError(f"tilt_series must be floating point; got {tilt_series.dtype}")
    if int(factor) != factor or factor < 1:
        raise ValueError(f"the binning factor must be a whole number >= 1, got {factor}")
    if method not in BINNING_METHODS:
        raise ValueError(f"unknown binning method {method!r}; choose fourier or spline")
    factor = int(factor)
    new_size = None if pixel_size_a is None else float(pixel_size_a) * factor
    if factor == 1:
        return tilt_series, new_size
    _, ny, nx = tilt_series.shape
    my, mx = ny // factor, nx // factor
    if my < 1 or mx < 1:
        raise ValueError(
            f"cannot bin images of {ny} x {nx} pixels by {factor}: fewer than 1 pixel left"
        )
    y0 = centred_crop_start(ny, my * factor)
    x0 = centred_crop_start(nx, mx * factor)
    cropped = tilt_series[:, y0 : y0 + my * factor, x0 : x0 + mx * factor]
    if method == "fourier":
        return _fourier_crop(cropped, my, mx), new_size
    return _spline_zoom(cropped, factor), new_size


def _fourier_crop(images: torch.Tensor, my: int, mx: int) -> torch.Tensor:
    """Keep the frequencies below the new Nyquist of ``(my, mx)`` and invert on that grid."""
    spectrum = torch.fft.rfft2(images, norm="forward")  # coefficient 0 is the mean
    ky = (my - 1) // 2  # highest kept |frequency index| along Y, below the new Nyquist
    kx = (mx - 1) // 2
    small = spectrum.new_zeros((images.shape[0], my, mx // 2 + 1))
    small[:, : ky + 1, : kx + 1] = spectrum[:, : ky + 1, : kx + 1]
    if ky:
        small[:, my - ky :, : kx + 1] = spectrum[:, -ky:, : kx + 1]
    return torch.fft.irfft2(small, s=(my, mx), norm="forward")


def _spline_zoom(images: torch.Tensor, factor: int) -> torch.Tensor:
    """``scipy.ndimage.zoom(image, 1 / factor, order=3, mode="mirror")`` per tilt, on the CPU."""
    array = images.detach().cpu().numpy()
    out = np.stack(
        [scipy.ndimage.zoom(image, 1.0 / factor, order=3, mode="mirror") for image in array]
    )
    return torch.from_numpy(out).to(device=images.device, dtype=images.dtype)
