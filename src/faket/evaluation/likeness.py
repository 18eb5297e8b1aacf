"""How alike two tilt-series look: power spectrum, grey values and a domain classifier.

FakET's promise is data that looks like the user's microscope, so each modality is
compared with a reference tilt-series of ANOTHER tomogram (other content, same
microscope), next to the floor of two references of different tomograms. Three views:

- :func:`spectrum_log_distance`: the mean absolute difference of the log10 radially
  averaged power spectra of per-tilt standardised images (decades; 0 = same shape).
- :func:`grey_value_distance`: the Wasserstein-1 distance between the standardised
  grey values (pooled over tilts; in units of one tilt's std).
- :func:`domain_auc`: the held-out ROC AUC of a small CNN trained to tell patches of one
  tilt-series from patches of the other (0.5 = indistinguishable, 1 = separable).

Every tilt is standardised on its own (mean 0, population std 1) before anything is
measured, so a global offset or gain of the detector does not count, but the shape of the
spectrum and of the grey-value distribution does. All functions are pure: no file I/O,
no printing; tensors follow their input's device. Results are returned on the CPU.
The classifier and the ROC AUC live in :mod:`faket.evaluation.likeness_domain` and are
re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import wasserstein_distance

from faket.evaluation._tilt_series import (
    TiltSeriesLike,
    as_tilt_series,
    check_pair,
    smallest_side,
    standardise_tilts,
)
from faket.evaluation.likeness_domain import DomainAuc, default_patch, domain_auc, roc_auc
from faket.noise import radial_power_spectrum

__all__ = [
    "DomainAuc",
    "SpectrumDistance",
    "TiltSeriesLike",
    "TiltSeriesLikeness",
    "compare_tilt_series",
    "default_patch",
    "default_spectrum_tile",
    "domain_auc",
    "grey_value_distance",
    "log_power_spectra",
    "roc_auc",
    "spectrum_log_distance",
    "standardise_tilts",
]

LOG_POWER_FLOOR = 1e-12
"""Powers (of standardised images, total about 1) below this are clipped before log10."""


# --------------------------------------------------------------------- power spectrum


@dataclass(frozen=True)
class SpectrumDistance:
    """The power-spectrum log-distance of two tilt-series, with the spectra it compared.

    Attributes
    ----------
    distance : float
        Mean of `per_tilt` over tilts, in decades (log10 units): 0 means the same spectral
        shape; 0.3 means the spectra differ by a factor of 2 on average.
    per_tilt : numpy.ndarray
        ``(n_tilts,)`` float64 mean over frequency bins of ``|log10 P_a - log10 P_b|``.
    freqs : numpy.ndarray
        ``(n_bins,)`` float64 bin frequencies in cycles/pixel, ``k / tile`` for
        ``k = 1 .. tile // 2`` (DC left out, up to Nyquist 0.5).
    log_power_a, log_power_b : numpy.ndarray
        ``(n_tilts, n_bins)`` float64 log10 power of each standardised tilt (the mean
        power over all Fourier samples is about 1, the tilt's variance).
    tile : int
        Side in pixels of the Welch tiles both spectra were computed with.
    """

    distance: float
    per_tilt: np.ndarray
    freqs: np.ndarray
    log_power_a: np.ndarray
    log_power_b: np.ndarray
    tile: int


def default_spectrum_tile(smallest_side: int) -> int:
    """Return the Welch tile side used for images whose shortest side is ``smallest_side``.

    Half the shortest side (so a 64 px image averages 3 x 3 half-overlapping tiles),
    even, between 8 and 128 pixels, never above the side itself.
    """
    if smallest_side < 4:
        raise ValueError(f"images must be at least 4 pixels on a side, got {smallest_side}")
    tile = min(128, max(8, smallest_side // 2))
    return min(tile - tile % 2, smallest_side)


def log_power_spectra(tilt_series: TiltSeriesLike, *, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the log10 radially averaged power spectrum of each standardised tilt.

    Parameters
    ----------
    tilt_series : torch.Tensor or numpy.ndarray
        ``(n_tilts, ny, nx)`` floating tilt-series.
    tile : int
        Welch tile side in pixels (at least 4, at most the shorter image side); see
        `faket.noise.radial_power_spectrum`.

    Returns
    -------
    freqs : numpy.ndarray
        ``(n_bins,)`` float64 cycles/pixel, ``k / tile`` for ``k = 1 .. tile // 2``.
    log_power : numpy.ndarray
        ``(n_tilts, n_bins)`` float64 ``log10`` of the power (clipped below at
        `LOG_POWER_FLOOR`), in units of the tilt's variance per Fourier sample.
    """
    x = standardise_tilts(tilt_series)
    if isinstance(tile, bool) or not isinstance(tile, int) or not 4 <= tile <= min(x.shape[-2:]):
        raise ValueError(
            f"tile must be an integer from 4 to the shorter image side "
            f"({min(x.shape[-2:])} px), got {tile!r}"
        )
    freqs, power = radial_power_spectrum(x, tile=tile)
    keep = (freqs > 0) & (freqs <= 0.5 + 1e-12)
    log_power = torch.log10(power[:, keep].clamp_min(LOG_POWER_FLOOR))
    return freqs[keep].cpu().numpy(), log_power.cpu().numpy()


def spectrum_log_distance(
    a: TiltSeriesLike, b: TiltSeriesLike, *, tile: int | None = None
) -> SpectrumDistance:
    """Compare the radially averaged power spectra of two tilt-series, tilt by tilt.

    Each tilt is standardised, its Welch power spectrum (Hann-windowed, half-overlapping
    square tiles of one side for both series) is averaged in rings of width
    ``1 / tile`` cycles/pixel, and the distance of tilt ``i`` is the mean over the rings
    ``0 < k <= 0.5`` cycles/pixel of ``|log10 P_a,i(k) - log10 P_b,i(k)|``. The same tile
    for both puts both spectra on one cycles/pixel grid even when the images differ in
    size. The L1 of the log ratio is symmetric, 0 for identical spectral shapes, and reads
    as "on average the spectra differ by a factor 10**d". The rings are linear in
    frequency, so the high frequencies (where the noise lives) hold most of the weight.

    Parameters
    ----------
    a, b : torch.Tensor or numpy.ndarray
        ``(n_tilts, ny, nx)`` tilt-series with the same number of tilts (tilt ``i`` of one
        is compared with tilt ``i`` of the other); the image sizes may differ.
    tile : int, optional
        Welch tile side in pixels, clipped to the shortest image side of both; default
        `default_spectrum_tile` of that side.

    Returns
    -------
    SpectrumDistance
    """
    ta, tb = check_pair(a, b)
    side = smallest_side(ta, tb)
    t = default_spectrum_tile(side) if tile is None else min(int(tile), side)
    freqs, log_a = log_power_spectra(ta, tile=t)
    _, log_b = log_power_spectra(tb, tile=t)
    per_tilt = np.abs(log_a - log_b).mean(axis=1)
    return SpectrumDistance(
        distance=float(per_tilt.mean()),
        per_tilt=per_tilt,
        freqs=freqs,
        log_power_a=log_a,
        log_power_b=log_b,
        tile=t,
    )


# ------------------------------------------------------------------------ grey values


def _subsample(values: torch.Tensor, max_samples: int, seed: int) -> np.ndarray:
    """Return at most ``max_samples`` of ``values`` without replacement, as float64.

    The subsample is drawn before the float64 copy, so a large series is never copied
    whole (a fixed seed: the same picks for the same size).
    """
    flat = values.flatten()
    if flat.numel() > max_samples:
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(flat.numel(), size=max_samples, replace=False))
        flat = flat[torch.from_numpy(picked).to(flat.device)]
    return flat.cpu().numpy().astype(np.float64)


def grey_value_distance(
    a: TiltSeriesLike, b: TiltSeriesLike, *, max_samples: int = 200_000, seed: int = 0
) -> float:
    """Return the Wasserstein-1 distance between the standardised grey values of a and b.

    Each tilt is standardised on its own; the values of all tilts are pooled and compared
    with `scipy.stats.wasserstein_distance` (the area between the two empirical
    cumulative distributions). Two Gaussians of equal std are 0 apart; a standard
    Gaussian and a standardised exponential are about 0.24 apart.

    Parameters
    ----------
    a, b : torch.Tensor or numpy.ndarray
        ``(n_tilts, ny, nx)`` tilt-series; the numbers of tilts and pixels may differ.
    max_samples : int
        Series with more values are subsampled to this many, without replacement; each
        series' subsample depends only on its size and ``seed``, so the distance stays
        symmetric.
    seed : int
        Seed of the subsample.

    Returns
    -------
    float
        The distance in units of one tilt's std.
    """
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 2:
        raise ValueError(f"max_samples must be an integer of at least 2, got {max_samples!r}")
    xa = _subsample(standardise_tilts(as_tilt_series(a, "a")), max_samples, seed)
    xb = _subsample(standardise_tilts(as_tilt_series(b, "b")), max_samples, seed)
    return float(wasserstein_distance(xa, xb))


# ------------------------------------------------------------------------------- all


@dataclass(frozen=True)
class TiltSeriesLikeness:
    """The three likeness measures of one pair of tilt-series.

    Attributes
    ----------
    spectrum : SpectrumDistance
        Power-spectrum log-distance, per tilt and in all, with the spectra.
    grey_w1 : float
        Wasserstein-1 distance of the standardised grey values (units of a tilt's std).
    domain : DomainAuc
        The domain classifier's held-out AUC.
    """

    spectrum: SpectrumDistance
    grey_w1: float
    domain: DomainAuc


def compare_tilt_series(
    a: TiltSeriesLike,
    b: TiltSeriesLike,
    *,
    tile: int | None = None,
    max_samples: int = 200_000,
    patch: int | None = None,
    steps: int = 300,
    batch_size: int = 32,
    seed: int = 0,
) -> TiltSeriesLikeness:
    """Measure how alike two tilt-series look: spectrum, grey values, domain classifier.

    Parameters
    ----------
    a, b : torch.Tensor or numpy.ndarray
        ``(n_tilts, ny, nx)`` tilt-series with the same number of tilts (at least 2);
        image sizes may differ.
    tile : int, optional
        Welch tile side of `spectrum_log_distance`.
    max_samples : int
        Grey values per series for `grey_value_distance`.
    patch, steps, batch_size : int
        The domain classifier's patch side (default `default_patch`), training steps and
        patches per series per step (`domain_auc`).
    seed : int
        Seed of the grey-value subsample and of the classifier.

    Returns
    -------
    TiltSeriesLikeness
    """
    ta, tb = check_pair(a, b)
    return TiltSeriesLikeness(
        spectrum=spectrum_log_distance(ta, tb, tile=tile),
        grey_w1=grey_value_distance(ta, tb, max_samples=max_samples, seed=seed),
        domain=domain_auc(ta, tb, patch=patch, steps=steps, batch_size=batch_size, seed=seed),
    )
