"""Defocus search of :mod:`faket.noise.ctf_fit`: settings, ring contrast, likelihood, grids.

Spectra are float64 ``(m, n_bins)`` on the rings ``b / t`` cycles/pixel of a ``t``-pixel
Welch tile, ``counts`` the Fourier samples per ring.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from faket.noise import _ctf_model as model

_CONTRAST_SIGMA = 0.08
"""Width (cycles/pixel) of the local quadratic trend of ``log P`` that the rings are
measured against (rings with a period under about 0.5 cycles/pixel pass)."""

_AMPLITUDE_SIGMA = 0.04
"""Width (cycles/pixel) over which the ring amplitude is taken as constant in the fit."""

_MIN_EVIDENCE = 12.0
"""Log-likelihood gain a tilt needs over the series' defocus to be given a defocus of its
own; below it, it keeps the series' defocus. Pure noise reaches 4-8 (measured on 256-px
tiles of white noise: the best of many defoci always fits some noise)."""

_PRIOR_ROUNDS = 3
"""Rounds that move the prior's centre to the median of the tilts' estimates."""

_FINE_STEPS = 31
"""Points of the fine defocus grid, over +-1.5 coarse steps."""

_MAX_STEP_UM = 0.05
"""Largest step of the coarse defocus grid, µm."""


def defocus_grid(
    defocus_range_um: tuple[float, float], optics: model.Optics, top_px: float, device: torch.device
) -> torch.Tensor:
    """Return the coarse defocus grid: CTF phase steps of at most pi/4 at ``top_px``."""
    lo, hi = defocus_range_um
    k_a = top_px / optics.pixel_size_a
    step = min(_MAX_STEP_UM, 1e-4 / (4.0 * optics.wavelength_a() * k_a**2))
    n = max(2, math.ceil((hi - lo) / step) + 1)
    return torch.linspace(lo, hi, n, dtype=torch.float64, device=device)


@dataclass(frozen=True)
class Search:
    """What every defocus search shares: ring contrast, weights, band and grid."""

    contrast: torch.Tensor  # (m, n_bins)
    counts: torch.Tensor  # (n_bins,)
    band: torch.Tensor  # (n_bins,) bool
    scale: torch.Tensor  # (m,)
    grid: torch.Tensor  # (d,)
    tile: int
    optics: model.Optics

    def ring_model(self, defocus_um: torch.Tensor) -> torch.Tensor:
        """High-passed measured CTF^2, ``(..., n_bins)``."""
        ctf2 = model.measured_ctf2(self.contrast.shape[-1], self.tile, defocus_um, self.optics)
        return model.high_pass(ctf2, _CONTRAST_SIGMA * self.tile, self.band)

    def residual_scale(self, defocus_um: torch.Tensor) -> torch.Tensor:
        """Noise scale ``(m,)`` of the contrast left after the rings of ``defocus_um`` ``(m,)``.

        The first scale (:func:`~faket.noise._ctf_model.noise_scale`) counts strong rings
        as noise, which would make clear tilts look less certain than they are.
        """
        h = self.ring_model(defocus_um)
        weight = self.counts * self.band.to(h.dtype)
        sigma = _AMPLITUDE_SIGMA * self.tile
        amplitude = model.gaussian_smooth(weight * self.contrast * h, sigma).clamp_min(0.0)
        amplitude = amplitude / model.gaussian_smooth(weight * h.square(), sigma).clamp_min(1e-300)
        return model.noise_scale(self.contrast - amplitude * h, self.counts, self.band)

    def log_likelihood(self, defocus_um: torch.Tensor) -> torch.Tensor:
        """``(m, d)`` log-likelihood for a shared ``(d,)`` or per-spectrum ``(m, d)`` grid."""
        return model.log_likelihood(
            self.contrast,
            self.ring_model(defocus_um),
            self.counts,
            self.band,
            self.scale,
            _AMPLITUDE_SIGMA * self.tile,
        )


def make_search(
    power: torch.Tensor,
    counts: torch.Tensor,
    tile: int,
    band: torch.Tensor,
    grid: torch.Tensor,
    optics: model.Optics,
) -> Search:
    """Prepare the defocus search of ``(m, n_bins)`` radial spectra on a ``tile``'s rings."""
    contrast = model.ring_contrast(power, _CONTRAST_SIGMA * tile, band)
    scale = model.noise_scale(contrast, counts, band)
    return Search(contrast, counts, band, scale, grid, tile, optics)


def _gaussian_log_prior(
    defocus_um: torch.Tensor, centre: torch.Tensor | None, spread_um: float | None
) -> torch.Tensor:
    """Return ``-((df - centre) / spread)^2 / 2`` for ``(m, d)`` defoci; 0 without a prior."""
    if centre is None or spread_um is None:
        return torch.zeros_like(defocus_um)
    return -0.5 * ((defocus_um - centre[:, None]) / spread_um).square()


def fit_defocus(
    search: Search, centre: torch.Tensor | None, spread_um: float | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return the ``(m,)`` maximum a posteriori defocus of each spectrum (µm), and the prior.

    Without ``centre`` (``(m,)``) or ``spread_um`` every spectrum is fitted alone (maximum
    likelihood). With them, a Gaussian prior of width ``spread_um`` ties the spectra to a
    common defocus; its centre starts at ``centre`` and is moved to the median of the
    spectra's coarse estimates a few times (tilts with clear rings then set it, rather
    than the mean spectrum, whose rings the tilts' different defoci blur). A spectrum
    whose best defocus explains it by less than ``_MIN_EVIDENCE`` log units better than
    the centre does keeps the centre (noise peaks of a ringless tilt do not reach it).
    The returned centre is the final one (None without a prior).
    """
    grid = search.grid
    lo, hi = float(grid[0]), float(grid[-1])
    grids = grid.expand(search.contrast.shape[0], -1)
    coarse = search.log_likelihood(grid)  # (m, d), independent of the prior
    # Rescale to the noise left after each spectrum's best rings (LL is ~ 1 / scale).
    residual = search.residual_scale(grid[coarse.argmax(dim=1)])
    coarse = coarse * (search.scale / residual)[:, None]
    search = dataclasses.replace(search, scale=residual)
    best = grids[:, 0]
    for _ in range(_PRIOR_ROUNDS if centre is not None else 1):
        best = grid[(coarse + _gaussian_log_prior(grids, centre, spread_um)).argmax(dim=1)]
        if centre is not None:
            centre = best.quantile(0.5).expand_as(best)
    if centre is not None:  # a tilt must earn its departure from the series
        at_centre = (grid[None, :] - centre[:, None]).abs().argmin(dim=1)
        rows = torch.arange(coarse.shape[0], device=coarse.device)
        at_best = (grid[None, :] - best[:, None]).abs().argmin(dim=1)
        gain = coarse[rows, at_best] - coarse[rows, at_centre]
        best = torch.where(gain >= _MIN_EVIDENCE, best, grid[at_centre])
    step = float(grid[1] - grid[0])
    offsets = torch.linspace(
        -1.5 * step, 1.5 * step, _FINE_STEPS, dtype=grid.dtype, device=grid.device
    )
    fine = (best[:, None] + offsets).clamp(lo, hi)
    score = search.log_likelihood(fine) + _gaussian_log_prior(fine, centre, spread_um)
    return _parabola_peak(fine, score), centre


def _parabola_peak(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the vertex of the parabola through each row's best point and neighbours."""
    i = y.argmax(dim=1).clamp(1, x.shape[1] - 2)
    rows = torch.arange(x.shape[0], device=x.device)
    y0, y1, y2 = y[rows, i - 1], y[rows, i], y[rows, i + 1]
    h = x[rows, i + 1] - x[rows, i]
    curvature = y0 - 2 * y1 + y2
    shift = torch.where(curvature < 0, 0.5 * h * (y0 - y2) / curvature.clamp(max=-1e-300), 0.0)
    return x[rows, i] + shift.clamp(-h, h)


def fit_score(search: Search, defocus_um: torch.Tensor) -> torch.Tensor:
    """Return the ``(m,)`` correlation of the fitted ring model with the ring contrast."""
    h = search.ring_model(defocus_um)  # (m, n_bins)
    weight = search.counts * search.band.to(h.dtype)
    return model.weighted_correlation(search.contrast, h, weight)


# --- the fit's settings ---------------------------------------------------------------------

_LOW_RESOLUTION_A = 30.0
"""Default low-resolution end of the fit band, Å."""

_MIN_BAND, _MAX_LOW_BAND, _TOP_BAND = 0.1, 0.4, 0.95
"""Default band limits in fractions of Nyquist: the low end is 30 Å clipped to
``[0.1, 0.4]`` (pixels above 6 Å keep 0.4), the high end 0.95."""


MIN_SIDE = 32
"""Smallest tile side (and image side) in pixels that the fit accepts."""


@dataclass(frozen=True)
class Settings:
    """The checked settings of one fit."""

    optics: model.Optics
    defocus_range_um: tuple[float, float]
    fit_band: tuple[float, float]
    bin_width: float | None
    tile: int
    spread_um: float | None


def fit_settings(
    pixel_size_a: float,
    voltage_kv: float,
    spherical_aberration_mm: float,
    amplitude_contrast: float,
    defocus_range_um: tuple[float, float],
    fit_band: tuple[float, float] | None,
    bin_width: float | None,
    tile: int,
    spread_um: float | None,
) -> Settings:
    """Check the fit's parameters (ValueError naming the bad one) and fill in the band."""
    optics = _check_optics(pixel_size_a, voltage_kv, spherical_aberration_mm, amplitude_contrast)
    if fit_band is None:
        low = min(max(_MIN_BAND, 2.0 * optics.pixel_size_a / _LOW_RESOLUTION_A), _MAX_LOW_BAND)
        fit_band = (low, _TOP_BAND)
    _check_ranges(defocus_range_um, fit_band, tile, bin_width, spread_um)
    band = (float(fit_band[0]), float(fit_band[1]))
    defoci = (float(defocus_range_um[0]), float(defocus_range_um[1]))
    return Settings(optics, defoci, band, bin_width, tile, spread_um)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_optics(
    pixel_size_a: float, voltage_kv: float, cs_mm: float, amplitude_contrast: float
) -> model.Optics:
    """Return the optics, or raise ValueError naming the bad parameter."""
    for name, value, ok in (
        ("pixel_size_a", pixel_size_a, _finite(pixel_size_a) and pixel_size_a > 0),
        ("voltage_kv", voltage_kv, _finite(voltage_kv) and voltage_kv > 0),
        ("spherical_aberration_mm", cs_mm, _finite(cs_mm) and cs_mm >= 0),
        (
            "amplitude_contrast",
            amplitude_contrast,
            _finite(amplitude_contrast) and 0 <= amplitude_contrast < 1,
        ),
    ):
        if not ok:
            raise ValueError(f"{name} is out of range: got {value!r}")
    return model.Optics(
        float(pixel_size_a), float(voltage_kv), float(cs_mm), float(amplitude_contrast)
    )


def _check_ranges(
    defocus_range_um: tuple[float, float],
    fit_band: tuple[float, float],
    tile: int,
    bin_width: float | None,
    spread_um: float | None,
) -> None:
    """Raise ValueError for a search range, band, tile, ring width or prior out of range."""
    lo, hi = (float(v) for v in defocus_range_um)
    if not 0 < lo < hi <= 100:
        raise ValueError(
            f"defocus_range_um must satisfy 0 < low < high <= 100 (µm, underfocus "
            f"positive), got {defocus_range_um}"
        )
    low, high = (float(v) for v in fit_band)
    if not 0 < low < high <= 1:
        raise ValueError(
            f"fit_band must satisfy 0 < low < high <= 1 (fractions of Nyquist), got {fit_band}"
        )
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < MIN_SIDE:
        raise ValueError(f"tile must be an integer of at least {MIN_SIDE} pixels, got {tile!r}")
    if bin_width is not None and not (_finite(bin_width) and 0 < bin_width <= 0.25):
        raise ValueError(f"bin_width must lie in (0, 0.25] cycles/pixel, got {bin_width!r}")
    if spread_um is not None and not (_finite(spread_um) and spread_um > 0):
        raise ValueError(f"tilt_defocus_spread_um must be positive or None, got {spread_um!r}")
