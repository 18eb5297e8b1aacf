"""Reconstruction filters applied to the spectrum of each projection (REFERENCE.md section 4).

Every filter is a function of the image shape that returns the filter on the grid of
``torch.fft.fft2`` of an image of that shape, so it can be inspected and plotted
(``torch.fft.fftshift(h)`` puts the zero frequency in the centre).

Frequency grid
--------------
Frequencies are in cycles per pixel, ``f_y = fftfreq(ny)`` along Y (the tilt axis) and
``f_x = fftfreq(nx)`` along X (across the tilt axis); Nyquist is 0.5. Each axis uses its
own sampling, so a filter means the same physical thing for any image shape.

Filters
-------
``ramp``
    The discrete ramp of Kak & Slaney (1988, ch. 3, eq. 61), built as scikit-image's
    ``iradon`` builds it: the band-limited ramp sampled in real space (``h[0] = 1/4``,
    ``h[k] = -1 / (pi k)^2`` for odd ``k``, 0 for even ``k``, ``k`` the circular distance)
    and Fourier transformed, ``2 Re(FFT(h))``. It is about ``2 |f_x|`` (1 at Nyquist)
    with a small positive value at ``f_x = 0`` that removes the cupping the naive
    ``|f_x|`` with a zero DC term causes. Optional Crowther plateau: flat at ``2 f_c``
    above the Crowther frequency ``f_c`` (cycles per pixel).
``shepp-logan``, ``cosine``
    ramp x ``sinc(f_x)`` (``sin(pi f) / (pi f)``), ramp x ``cos(pi f_x)``; identical to
    ``iradon``'s.
``hamming``, ``hann``
    ramp x ``(0.54 + 0.46 cos(2 pi f_x))``, ramp x ``(0.5 + 0.5 cos(2 pi f_x))``: the
    periodic windows, symmetric in ``f_x``. (``iradon`` uses the symmetric window of
    length ``n``, ``np.hamming(n)``, fft-shifted, which differs by O(1/n).)
``none``
    1 everywhere: plain back-projection.
``approx-shrec``
    The filter reverse-engineered from SHREC 2021 reconstructions by the FakET authors
    (their ``approxShrec``, ``faket/filter.py`` of paloha/faket), reproduced on their
    discrete grid: see :func:`approx_shrec_filter`. In words: (2D Gaussian + 0.33) x
    (ramp across the tilt axis, flat from 0.61 Nyquist) x (disc of radius Nyquist),
    divided by its maximum. ``approx_shrec_filter(shape, variant="continuous")`` is the
    same recipe written in cycles per pixel, without the reference's rounding.

The 1D filters (all but ``approx-shrec``) vary along X only: each image row is filtered
on its own. ``approx-shrec`` varies along Y too and is applied with a 2D FFT.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

FILTER_NAMES = ("ramp", "approx-shrec", "shepp-logan", "cosine", "hamming", "hann", "none")
"""Names accepted by :func:`fourier_filter` and :func:`filter_tilt_series`."""

APPROX_SHREC_SIGMA_X = 0.34
"""Gaussian width along X of the approx-SHREC filter, cycles per pixel (0.34 x size)."""
APPROX_SHREC_SIGMA_Y = 0.20
"""Gaussian width along Y of the approx-SHREC filter, cycles per pixel (0.20 x size)."""
APPROX_SHREC_LIFT = 0.33
"""Constant added to the approx-SHREC Gaussian."""
APPROX_SHREC_RAMP_END_NYQUIST = 0.61
"""Where the approx-SHREC ramp reaches 1, as a fraction of Nyquist."""
APPROX_SHREC_RAMP_END = APPROX_SHREC_RAMP_END_NYQUIST * 0.5
"""Frequency (cycles per pixel) where the approx-SHREC ramp reaches 1: 0.61 Nyquist."""
APPROX_SHREC_VARIANTS = ("reference", "continuous")
"""Variants of :func:`approx_shrec_filter`: the authors' discrete filter, or in cycles/px."""

DEFAULT_MAX_CHUNK_BYTES = 256 * 2**20
"""Default bound on the working memory of one chunk of tilts while filtering (256 MiB)."""

_NYQUIST = 0.5


def frequency_grid(shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the frequencies of an ``fft2`` grid, in cycles per pixel.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image.

    Returns
    -------
    f_y, f_x : torch.Tensor
        float64 ``(ny, 1)`` and ``(1, nx)``: ``fftfreq(ny)`` and ``fftfreq(nx)``,
        broadcastable to ``(ny, nx)``.
    """
    ny, nx = _check_shape(shape)
    f_y = torch.fft.fftfreq(ny, dtype=torch.float64)[:, None]
    f_x = torch.fft.fftfreq(nx, dtype=torch.float64)[None, :]
    return f_y, f_x


def ramp_filter(shape: tuple[int, int], *, crowther_frequency: float | None = None) -> torch.Tensor:
    """Return the discrete ramp filter (Kak & Slaney), optionally with a Crowther plateau.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the (padded) image.
    crowther_frequency : float, optional
        ``f_c`` in cycles per pixel, ``0 < f_c <= 0.5``; above it the filter is flat at
        ``2 f_c``, the ideal ramp's value there.

    Returns
    -------
    torch.Tensor
        float64 ``(ny, nx)``, fft order, constant along Y; about ``2 |f_x|``, 1 at Nyquist.
    """
    ny, nx = _check_shape(shape)
    distance = np.minimum(np.arange(nx), nx - np.arange(nx))
    kernel = np.zeros(nx)
    kernel[0] = 0.25
    odd = distance % 2 == 1
    kernel[odd] = -1.0 / (math.pi * distance[odd]) ** 2
    row = torch.from_numpy(2.0 * np.real(np.fft.fft(kernel)))
    if crowther_frequency is not None:
        if not 0 < crowther_frequency <= _NYQUIST:
            raise ValueError(
                "the Crowther frequency must be in (0, 0.5] cycles per pixel; "
                f"got {crowther_frequency}"
            )
        row = row.clamp(max=2.0 * crowther_frequency)
    return row[None, :].expand(ny, nx)


def shepp_logan_filter(shape: tuple[int, int]) -> torch.Tensor:
    """Return the Shepp-Logan filter: ramp x ``sinc(f_x)``, float64 ``(ny, nx)``, fft order."""
    _, f_x = frequency_grid(shape)
    return ramp_filter(shape) * torch.sinc(f_x)


def cosine_filter(shape: tuple[int, int]) -> torch.Tensor:
    """Return the cosine filter: ramp x ``cos(pi f_x)``, float64 ``(ny, nx)``, fft order."""
    _, f_x = frequency_grid(shape)
    return ramp_filter(shape) * torch.cos(math.pi * f_x)


def hamming_filter(shape: tuple[int, int]) -> torch.Tensor:
    """Return the Hamming filter: ramp x ``(0.54 + 0.46 cos(2 pi f_x))``, float64, fft order."""
    _, f_x = frequency_grid(shape)
    return ramp_filter(shape) * (0.54 + 0.46 * torch.cos(2 * math.pi * f_x))


def hann_filter(shape: tuple[int, int]) -> torch.Tensor:
    """Return the Hann filter: ramp x ``(0.5 + 0.5 cos(2 pi f_x))``, float64, fft order."""
    _, f_x = frequency_grid(shape)
    return ramp_filter(shape) * (0.5 + 0.5 * torch.cos(2 * math.pi * f_x))


def no_filter(shape: tuple[int, int]) -> torch.Tensor:
    """Return the identity filter (plain back-projection): ones, float64 ``(ny, nx)``."""
    ny, nx = _check_shape(shape)
    return torch.ones((1, 1), dtype=torch.float64).expand(ny, nx)


def approx_shrec_filter(shape: tuple[int, int], *, variant: str = "reference") -> torch.Tensor:
    """Return the approximate SHREC 2021 filter of the FakET authors.

    ``variant="reference"`` (the default) is the authors' ``approxShrec`` as they apply it
    (``ifft2(fft2(p) * h).real`` on each projection, no padding). On the grid of a square
    image of side ``S`` (all the reference used: 1024^2 binned to 512^2), with signed
    frequency indices ``k_y, k_x`` (``fftfreq(S) * S``):

    - ramp ``min(|k_x| / c, 1)``, ``c = int(0.61 * (S // 2))`` samples (312 for S = 1024);
    - Gaussian ``exp(-(k_x + o)^2 / (2 s_x^2) - (k_y + o)^2 / (2 s_y^2)) + 0.33`` with
      ``s_x = int(0.34 S)``, ``s_y = int(0.20 S)`` samples (348 and 204 for S = 1024), and
      its centre one sample off, at ``k = (-o, -o)``, ``o = 1`` for even ``S``
      (``o = 0`` for odd ``S``);
    - disc ``k_x^2 + k_y^2 < (S // 2 + 1)^2``: it keeps a ring of samples just outside
      Nyquist (``S / 2 < |k| < S / 2 + 1``), e.g. the Nyquist column up to
      ``|k_y| < sqrt(S + 1)``;
    - divided by the maximum over the grid.

    Because the authors keep the real part of the inverse FFT, what acts on a real image
    is the even part of that array, ``(h(k) + h(-k)) / 2`` (index ``-k`` modulo the grid),
    which is what this function returns: the off-centre Gaussian becomes the mean of two
    Gaussians one sample either side of zero (relative to a centred Gaussian: 7e-5 for
    S = 1024, 3e-4 for 512, 2.4e-2 for 64; on the Nyquist row and column, their own
    mirror images, it stays one sample off: 1.2e-2 for 1024), and its maximum is a little
    below 1 (0.9983 for S = 1024, 0.9965 for 512, 0.970 for 64), since the authors
    normalise before the symmetrisation.

    Shapes the reference never used, where its code misplaces the zero frequency, are
    generalised rather than copied: for odd ``S`` the authors' ``fftshift`` (instead of
    ``ifftshift``) puts the whole filter's centre at ``k = (-1, -1)``, so that the zero
    frequency passes with weight ``1 / c``; here the centre is at zero. For a non-square
    image (``S = max(ny, nx)``) the authors cut the middle ``ny x nx`` block out of the
    fft-ordered ``S x S`` array, which drops the low frequencies of the shorter axis;
    here each axis keeps its own frequencies, ``k = fftfreq(n) * S`` (same cycles per
    pixel on both axes), and the maximum is still the one of the ``S x S`` grid, so a
    grid whose sides divide ``S`` samples the square filter exactly.

    ``variant="continuous"``: the same recipe in cycles per pixel, ``f = fftfreq(n)``
    per axis, without the rounding to whole samples or the offset:
    ``(exp(-f_x^2 / (2 0.34^2) - f_y^2 / (2 0.20^2)) + 0.33) * min(|f_x| / 0.305, 1)``
    inside the disc ``|f| <= 0.5`` (no outer ring), zero outside, divided by its maximum
    on the grid (so the maximum is 1). The same physical filter for every image size;
    it differs from the reference mostly on the ring outside Nyquist (up to 0.67 there);
    inside the disc, scaled to the same peak, by the rounding (2.5e-3 for S = 512 and
    1024, 4.3e-2 for S = 64). In a reconstruction the two are nearly the same (the
    correlation of two filtered back-projections of a phantom: 0.9999).

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the (padded) image; Y is the tilt axis; the larger side at least
        5 pixels for ``reference``.
    variant : {"reference", "continuous"}
        See above.

    Returns
    -------
    torch.Tensor
        float64 ``(ny, nx)``, fft order, even (``h(k) = h(-k)``), values in [0, 1]; zero at
        ``f_x = 0`` (the ramp) and outside the Nyquist disc (for ``reference``, outside
        the disc of radius ``S / 2 + 1`` samples).
    """
    if variant == "reference":
        return _approx_shrec_reference(shape)
    if variant == "continuous":
        return _approx_shrec_continuous(shape)
    raise ValueError(
        f"unknown approx-SHREC variant {variant!r}; choose one of "
        f"{', '.join(APPROX_SHREC_VARIANTS)}"
    )


def _signed_indices(n: int) -> torch.Tensor:
    """Return the signed frequency indices of an ``n``-point FFT, ``fftfreq(n) * n``, float64."""
    k = torch.arange(n, dtype=torch.int64)
    return torch.where(k < (n + 1) // 2, k, k - n).to(torch.float64)


def _approx_shrec_reference(shape: tuple[int, int]) -> torch.Tensor:
    """Return the authors' discrete filter's even part; see :func:`approx_shrec_filter`."""
    ny, nx = _check_shape(shape)
    size = max(ny, nx)
    if size < 5:
        raise ValueError(
            f"the approx-SHREC filter needs an image side of at least 5 pixels (its Gaussian "
            f"width is 0.20 x the side in whole samples); got shape {tuple(shape)}"
        )
    half = size // 2
    sigma_x = int(APPROX_SHREC_SIGMA_X * size)
    sigma_y = int(APPROX_SHREC_SIGMA_Y * size)
    ramp_end = int(APPROX_SHREC_RAMP_END_NYQUIST * half)
    offset = 1 - size % 2  # the Gaussian's centre: k = -1 on even grids, 0 on odd ones
    radius = half + 1

    def raw(k_y: torch.Tensor, k_x: torch.Tensor) -> torch.Tensor:
        gauss = torch.exp(
            -((k_x + offset) ** 2 / (2.0 * sigma_x**2) + (k_y + offset) ** 2 / (2.0 * sigma_y**2))
        )
        ramp = (k_x.abs() / ramp_end).clamp(max=1.0)
        disc = (k_x**2 + k_y**2) < radius**2
        return ramp * (gauss + APPROX_SHREC_LIFT) * disc

    # The maximum of the size x size grid lies on the row k_y = -offset, where the
    # Gaussian's Y factor is 1 (on integer grids the disc there is as wide as on k_y = 0).
    k_square = _signed_indices(size)
    peak = raw(torch.tensor([[-float(offset)]], dtype=torch.float64), k_square[None, :]).max()
    k_y = _signed_indices(ny)[:, None] * (size / ny)
    k_x = _signed_indices(nx)[None, :] * (size / nx)
    out = raw(k_y, k_x) / peak
    # The real part of ifft2(fft2(p) h) applies the even part of h: index -k mod n.
    mirrored = torch.roll(torch.flip(out, dims=(0, 1)), shifts=(1, 1), dims=(0, 1))
    return 0.5 * (out + mirrored)


def _approx_shrec_continuous(shape: tuple[int, int]) -> torch.Tensor:
    """Return the recipe in cycles per pixel; see :func:`approx_shrec_filter`."""
    f_y, f_x = frequency_grid(shape)
    gauss = torch.exp(
        -(f_x**2) / (2 * APPROX_SHREC_SIGMA_X**2) - f_y**2 / (2 * APPROX_SHREC_SIGMA_Y**2)
    )
    ramp = (f_x.abs() / APPROX_SHREC_RAMP_END).clamp(max=1.0)
    disc = (f_x**2 + f_y**2) <= _NYQUIST**2
    out = (gauss + APPROX_SHREC_LIFT) * ramp * disc
    peak = out.max()
    if peak <= 0:  # a 1-pixel-wide image has only f_x = 0, where the ramp is 0
        raise ValueError(f"the approx-SHREC filter is zero on a grid of shape {tuple(shape)}")
    return out / peak


_FILTERS: dict[str, tuple[Callable[[tuple[int, int]], torch.Tensor], bool]] = {
    # name: (function of the shape, varies along X only)
    "approx-shrec": (approx_shrec_filter, False),
    "shepp-logan": (shepp_logan_filter, True),
    "cosine": (cosine_filter, True),
    "hamming": (hamming_filter, True),
    "hann": (hann_filter, True),
    "none": (no_filter, True),
}


def fourier_filter(
    name: str, shape: tuple[int, int], *, crowther_frequency: float | None = None
) -> torch.Tensor:
    """Return the filter called ``name`` on the ``fft2`` grid of an image of ``shape``.

    Parameters
    ----------
    name : str
        One of :data:`FILTER_NAMES`.
    shape : tuple of int
        ``(ny, nx)`` of the (padded) image.
    crowther_frequency : float, optional
        Only for ``ramp``: the plateau frequency in cycles per pixel.

    Returns
    -------
    torch.Tensor
        float64 ``(ny, nx)`` in fft order (zero frequency at ``[0, 0]``).
    """
    if name == "ramp":
        return ramp_filter(shape, crowther_frequency=crowther_frequency)
    if name not in _FILTERS:
        raise ValueError(f"unknown filter {name!r}; choose one of {', '.join(FILTER_NAMES)}")
    if crowther_frequency is not None:
        raise ValueError(f"a Crowther frequency applies to the ramp filter only, not {name!r}")
    return _FILTERS[name][0](shape)


def is_separable(name: str) -> bool:
    """Return True if filter ``name`` varies along X only (each image row filtered alone)."""
    if name == "ramp":
        return True
    if name not in _FILTERS:
        raise ValueError(f"unknown filter {name!r}; choose one of {', '.join(FILTER_NAMES)}")
    return _FILTERS[name][1]


def padded_length(n: int) -> int:
    """Return the zero-padded FFT length for an axis of ``n`` pixels.

    ``max(64, 2 ** ceil(log2(2 n)))``, scikit-image ``iradon``'s rule: at least twice the
    length, so the circular convolution of the FFT does not wrap around.
    """
    if n < 1:
        raise ValueError(f"an axis needs at least 1 pixel, got {n}")
    return max(64, 2 ** math.ceil(math.log2(2 * n)))


def filter_tilt_series(
    tilt_series: torch.Tensor,
    filter_name: str = "ramp",
    *,
    crowther_frequency: float | None = None,
    pad: bool = True,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Filter every projection of a tilt-series in Fourier space.

    1D filters multiply the ``rfft`` of each image row (along X); ``approx-shrec``
    multiplies the ``rfft2`` of each image. With ``pad`` the filtered axes are first
    zero-padded at their end to :func:`padded_length` (as scikit-image's ``iradon`` does
    along the detector), and the filter is evaluated on the padded grid; the result is
    cropped back. Without it the convolution is circular (the FakET reference's
    approx-SHREC setting).

    Parameters
    ----------
    tilt_series : torch.Tensor
        ``(n_tilts, ny, nx)`` floating point, any device; tilt axis = Y.
    filter_name : str
        One of :data:`FILTER_NAMES`; see the module docstring.
    crowther_frequency : float, optional
        Only for ``ramp``: the plateau frequency in cycles per pixel.
    pad : bool
        Zero-pad before the FFT (default) or filter circularly.
    max_chunk_bytes : int
        Bound on the working memory (padded spectra) per chunk of tilts.
    out : torch.Tensor, optional
        Where to write the result, ``tilt_series`` itself included (each chunk of tilts
        is read before it is overwritten); default a new tensor.

    Returns
    -------
    torch.Tensor
        ``(n_tilts, ny, nx)``, same dtype and device as ``tilt_series``.
    """
    if out is not None and (out.shape != tilt_series.shape or out.dtype != tilt_series.dtype):
        raise ValueError(
            f"out must be {tuple(tilt_series.shape)} {tilt_series.dtype}; "
            f"got {tuple(out.shape)} {out.dtype}"
        )
    if tilt_series.ndim != 3:
        raise ValueError(
            f"tilt_series must be 3-D (n_tilts, ny, nx); got shape {tuple(tilt_series.shape)}"
        )
    if not tilt_series.is_floating_point():
        raise ValueError(f"tilt_series must be floating point; got {tilt_series.dtype}")
    n_tilts, ny, nx = tilt_series.shape
    separable = is_separable(filter_name)
    nxp = padded_length(nx) if pad else nx
    nyp = ny if separable or not pad else padded_length(ny)
    h = fourier_filter(
        filter_name, (1 if separable else nyp, nxp), crowther_frequency=crowther_frequency
    )
    # rfft keeps the non-negative X frequencies; every filter is even in f_x.
    h = h[:, : nxp // 2 + 1].to(device=tilt_series.device, dtype=tilt_series.dtype)
    out = torch.empty_like(tilt_series) if out is None else out
    bytes_per_tilt = 2 * tilt_series.element_size() * nyp * (nxp // 2 + 1) * 2
    chunk = max(1, min(n_tilts, max_chunk_bytes // bytes_per_tilt))
    for t0 in range(0, n_tilts, chunk):
        images = tilt_series[t0 : t0 + chunk]
        if separable:
            spectrum = torch.fft.rfft(images, n=nxp, dim=-1) * h
            out[t0 : t0 + chunk] = torch.fft.irfft(spectrum, n=nxp, dim=-1)[..., :nx]
        else:
            spectrum = torch.fft.rfft2(images, s=(nyp, nxp)) * h
            out[t0 : t0 + chunk] = torch.fft.irfft2(spectrum, s=(nyp, nxp))[..., :ny, :nx]
    return out


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """Return ``shape`` as two positive ints, or raise ValueError."""
    if len(shape) != 2 or min(int(s) for s in shape) < 1:
        raise ValueError(f"shape must be (ny, nx) with positive sizes; got {tuple(shape)}")
    return int(shape[0]), int(shape[1])
