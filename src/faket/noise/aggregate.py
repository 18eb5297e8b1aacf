"""Smooth and pool per-tilt statistics: polynomial fits over the tilt index.

FakET fits, per tomogram, a polynomial over the tilt index ``0 .. n_tilts - 1`` to each of
``r``, ``sigma``, ``mean`` and ``std``, and averages the fits over the training tomograms
(order 2 for the "noisy" and "content" modalities, order 0, i.e. one global value each, for
the baseline). Averaging the coefficients and averaging the fitted curves are the same
thing, since evaluating a polynomial is linear in its coefficients. Spectra, when every
tomogram has them, are pooled the same way but over the tilt angle, ring by ring
(:mod:`faket.noise.spectral_aggregate`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from faket.noise.spectral import TiltSpectra
from faket.noise.spectral_aggregate import aggregate_tilt_spectra
from faket.noise.stats import TiltStats

__all__ = [
    "aggregate_tilt_stats",
    "evaluate_polynomial",
    "fit_polynomial_coefficients",
    "fit_tilt_stats",
]

_FIELDS = ("r", "sigma", "mean", "std")


def _check_order(order: int, n_tilts: int) -> None:
    if isinstance(order, bool) or not isinstance(order, int | np.integer):
        raise ValueError(f"polynomial order must be an integer, got {order!r}")
    if not 0 <= order < n_tilts:
        raise ValueError(
            f"polynomial order must satisfy 0 <= order < n_tilts = {n_tilts}, got {order}"
        )


def fit_polynomial_coefficients(values: torch.Tensor, order: int) -> torch.Tensor:
    """Fit a polynomial over the tilt index to each curve by least squares.

    Parameters
    ----------
    values : torch.Tensor
        ``(..., n_tilts)`` curves, one value per tilt, sampled at the tilt indices
        ``0, 1, ..., n_tilts - 1``.
    order : int
        Polynomial degree, ``0 <= order < n_tilts``.

    Returns
    -------
    torch.Tensor
        ``(..., order + 1)`` float64 coefficients, lowest degree first (the
        ``numpy.polynomial`` convention): ``sum_k c[k] * i**k`` at tilt index ``i``.
        On ``values``' device.

    Notes
    -----
    Fitted with :func:`numpy.polynomial.polynomial.polyfit` in float64, which scales the
    Vandermonde columns for a well-conditioned least-squares solve.
    """
    values = torch.as_tensor(values)
    if values.ndim < 1:
        raise ValueError("values must have a last axis of tilts")
    n_tilts = values.shape[-1]
    _check_order(order, n_tilts)
    y = values.detach().to("cpu", torch.float64).numpy().reshape(-1, n_tilts)
    x = np.arange(n_tilts, dtype=np.float64)
    coef = np.polynomial.polynomial.polyfit(x, y.T, int(order))  # (order + 1, batch)
    out = torch.from_numpy(np.ascontiguousarray(coef.T)).reshape(*values.shape[:-1], order + 1)
    return out.to(values.device)


def evaluate_polynomial(coefficients: torch.Tensor, n_tilts: int) -> torch.Tensor:
    """Evaluate polynomials at the tilt indices ``0 .. n_tilts - 1``.

    Parameters
    ----------
    coefficients : torch.Tensor
        ``(..., order + 1)`` coefficients, lowest degree first, as returned by
        :func:`fit_polynomial_coefficients`.
    n_tilts : int
        Number of tilt indices to evaluate at.

    Returns
    -------
    torch.Tensor
        ``(..., n_tilts)`` float64 curves on ``coefficients``' device.
    """
    c = torch.as_tensor(coefficients).to(torch.float64)
    x = torch.arange(n_tilts, dtype=torch.float64, device=c.device)
    powers = x[:, None] ** torch.arange(c.shape[-1], dtype=torch.float64, device=c.device)
    return c @ powers.T


def _curves(stats: Sequence[TiltStats], field: str) -> torch.Tensor:
    device = stats[0].r.device
    return torch.stack([getattr(s, field).to(device) for s in stats])


def _common_angles(stats: Sequence[TiltStats]) -> torch.Tensor | None:
    """Return the tilt angles if every tomogram has the same ones, else None."""
    first = stats[0].tilt_angles_deg
    if first is None:
        return None
    for s in stats[1:]:
        if s.tilt_angles_deg is None or not torch.allclose(
            s.tilt_angles_deg.to(first.device), first, rtol=0.0, atol=1e-6
        ):
            return None
    return first


def _fit_mean_curves(stats: Sequence[TiltStats], order: int) -> dict[str, torch.Tensor]:
    n_tilts = stats[0].n_tilts
    curves = {}
    for field in _FIELDS:
        coef = fit_polynomial_coefficients(_curves(stats, field), order).mean(dim=0)
        curves[field] = evaluate_polynomial(coef, n_tilts)
    # A fit can overshoot a bound the data respect; keep the noise std and r meaningful.
    curves["sigma"] = curves["sigma"].clamp_min(0.0)
    curves["r"] = curves["r"].clamp(-1.0, 1.0)
    if not bool((curves["std"] > 0).all()):
        raise ValueError(
            f"the order-{order} fit of the tilt std is not positive at every tilt; "
            "use a lower order"
        )
    return curves


def _check_stats(stats: Sequence[TiltStats]) -> None:
    if isinstance(stats, TiltStats):
        raise ValueError("expected a sequence of TiltStats, got a single TiltStats; wrap it")
    if len(stats) == 0:
        raise ValueError("need the statistics of at least one tomogram, got none")
    for i, s in enumerate(stats):
        if not isinstance(s, TiltStats):
            raise ValueError(f"item {i} is a {type(s).__name__}, not TiltStats")
    counts = [s.n_tilts for s in stats]
    if len(set(counts)) != 1:
        raise ValueError(
            f"all tomograms must have the same number of tilts to be aggregated, got {counts}"
        )


def fit_tilt_stats(stats: TiltStats, order: int) -> TiltStats:
    """Fit one tomogram's curves with polynomials of ``order`` over the tilt index.

    Useful to plot each tomogram's fitted curves next to its measurements.

    Parameters
    ----------
    stats : TiltStats
        Per-tilt measurements of one tomogram.
    order : int
        Polynomial degree, ``0 <= order < stats.n_tilts``.

    Returns
    -------
    TiltStats
        The fitted curves evaluated at the tilt indices, ``method="aggregated"``; ``sigma``
        is clipped at 0 and ``r`` to ``[-1, 1]``.
    """
    return aggregate_tilt_stats([stats], order)


def aggregate_tilt_stats(stats: Sequence[TiltStats], order: int) -> TiltStats:
    """Fit polynomials over the tilt index per tomogram and average the fits.

    Parameters
    ----------
    stats : sequence of TiltStats
        Per-tilt measurements of one or more tomograms, all with the same ``n_tilts``.
    order : int
        Polynomial degree, ``0 <= order < n_tilts``. Order 0 gives one global value per
        quantity: its mean over tilts and tomograms.

    Returns
    -------
    TiltStats
        ``(n_tilts,)`` curves: the mean over tomograms of each tomogram's least-squares
        fit, evaluated at tilt indices ``0 .. n_tilts - 1``. ``method="aggregated"``;
        ``sigma`` is clipped at 0 and ``r`` to ``[-1, 1]`` in case a fit overshoots.
        Tilt angles are kept when every tomogram has the same ones. float64 on the first
        tomogram's device. When every tomogram has ``spectra``, the result carries their
        aggregate (:func:`faket.noise.aggregate_tilt_spectra` with the same order: a
        polynomial in the tilt angle per ring on a common frequency grid, evaluated at
        the tilt angles averaged over tomograms); otherwise ``spectra`` is None.

    Raises
    ------
    ValueError
        If ``stats`` is empty, the tomograms have different tilt counts, the order is out
        of range, or the fitted std is not positive at some tilt.
    """
    _check_stats(stats)
    _check_order(order, stats[0].n_tilts)
    curves = _fit_mean_curves(stats, int(order))
    spectra = _aggregate_spectra(stats, int(order))
    sources = [s.source for s in stats if s.source]
    source = f"order-{int(order)} polynomial fit averaged over {len(stats)} tomogram(s)"
    if sources:
        source += ": " + ", ".join(sources)
    return TiltStats(
        **curves,
        tilt_angles_deg=_common_angles(stats),
        method="aggregated",
        source=source,
        spectra=spectra,
    )


def _aggregate_spectra(stats: Sequence[TiltStats], order: int) -> TiltSpectra | None:
    """Aggregate the spectra over the tilt angle when every tomogram has them, else None.

    The fits are evaluated at the tilt angles averaged over tomograms (the tilt index when
    some tomogram's angles are unknown).
    """
    spectra = [s.spectra for s in stats]
    if any(sp is None for sp in spectra):
        return None
    device = stats[0].r.device
    return aggregate_tilt_spectra(
        [sp.to(device) for sp in spectra if sp is not None],
        order,
        tilt_angles_deg=[s.tilt_angles_deg for s in stats],
    )
