"""Smooth and pool per-tilt statistics: polynomial fits over the tilt angle.

FakET fits, per tomogram, a polynomial to each of ``r``, ``sigma``, ``mean`` and ``std``
over the tilt, and averages the fits over the training tomograms (order 2 for the "noisy"
and "content" modalities, order 0, i.e. one global value each, for the baseline).
Averaging the coefficients and averaging the fitted curves are the same thing, since
evaluating a polynomial is linear in its coefficients.

The authors fit over the tilt index ``0 .. n_tilts - 1``; here the variable is the tilt
angle whenever every tomogram's angles are known. For the evenly spaced, ascending
schemes the authors used the two are the same fit (a polynomial of the index is a
polynomial of the same order of the angle, and least squares does not depend on the
parametrisation), but only the angle is right for a file in acquisition order
(``0, 3, -3, 6, ...``), for references with different schemes or tilt counts, and for a
run whose angles differ from the references' (the fits are evaluated at the run's
angles). Spectra, when every tomogram has them, are pooled the same way, ring by ring
(:mod:`faket.noise.spectral_aggregate`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from faket.conventions import TiltAngles
from faket.noise.spectral import TiltSpectra
from faket.noise.spectral_aggregate import aggregate_tilt_spectra, fit_at
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


def _positions(stats: Sequence[TiltStats]) -> list[np.ndarray] | None:
    """Return each tomogram's tilt angles as float64 arrays, or None if any is unknown."""
    if any(s.tilt_angles_deg is None for s in stats):
        return None
    return [s.tilt_angles_deg.detach().cpu().numpy() for s in stats]  # type: ignore[union-attr]


def _fit_mean_curves(
    stats: Sequence[TiltStats], order: int, at: np.ndarray | None
) -> dict[str, torch.Tensor]:
    xs = _positions(stats)
    device = stats[0].r.device
    curves = {}
    for field in _FIELDS:
        if xs is None:
            coef = fit_polynomial_coefficients(_curves(stats, field), order).mean(dim=0)
            curves[field] = evaluate_polynomial(coef, stats[0].n_tilts)
            continue
        where = np.mean(np.stack(xs), axis=0) if at is None else at
        fits = [
            fit_at(x, getattr(s, field).to(torch.float64)[:, None], order, where)[:, 0]
            for x, s in zip(xs, stats, strict=True)
        ]
        curves[field] = torch.from_numpy(np.mean(fits, axis=0)).to(device)
    # A fit can overshoot a bound the data respect; keep the noise std and r meaningful.
    curves["sigma"] = curves["sigma"].clamp_min(0.0)
    curves["r"] = curves["r"].clamp(-1.0, 1.0)
    if not bool((curves["std"] > 0).all()):
        raise ValueError(
            f"the order-{order} fit of the tilt std is not positive at every tilt; "
            "use a lower order"
        )
    return curves


def _check_stats(stats: Sequence[TiltStats], at: np.ndarray | None) -> None:
    if isinstance(stats, TiltStats):
        raise ValueError("expected a sequence of TiltStats, got a single TiltStats; wrap it")
    if len(stats) == 0:
        raise ValueError("need the statistics of at least one tomogram, got none")
    for i, s in enumerate(stats):
        if not isinstance(s, TiltStats):
            raise ValueError(f"item {i} is a {type(s).__name__}, not TiltStats")
    counts = [s.n_tilts for s in stats]
    if len(set(counts)) == 1:
        return
    if _positions(stats) is None:
        raise ValueError(
            "tomograms with different numbers of tilts aggregate on the tilt angle, but "
            f"some have no tilt angles (tilt counts {counts})"
        )
    if at is None:
        raise ValueError(f"tomograms with different tilt counts {counts} need `at` angles")


def fit_tilt_stats(stats: TiltStats, order: int) -> TiltStats:
    """Fit one tomogram's curves with polynomials of ``order`` over the tilt angle.

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
        The fitted curves evaluated at its own tilts, ``method="aggregated"``; ``sigma``
        is clipped at 0 and ``r`` to ``[-1, 1]``.
    """
    return aggregate_tilt_stats([stats], order)


def aggregate_tilt_stats(
    stats: Sequence[TiltStats], order: int, *, at: TiltAngles | None = None
) -> TiltStats:
    """Fit polynomials over the tilt angle per tomogram and average the fits.

    Parameters
    ----------
    stats : sequence of TiltStats
        Per-tilt measurements of one or more tomograms. With tilt angles (every
        tomogram), each is fitted over its own angles, in any order, and tilt counts may
        differ; without, over the tilt index, and all must have the same ``n_tilts``.
    order : int
        Polynomial degree, ``0 <= order`` and below each tomogram's number of distinct
        tilts. Order 0 gives one global value per quantity: its mean over tilts and
        tomograms.
    at : (n_out,) sequence of float, optional
        Tilt angles (degrees) to evaluate the averaged fits at, e.g. the run's. Default:
        per tilt, the angle averaged over tomograms (equal tilt counts needed), or the
        tilt index when angles are unknown.

    Returns
    -------
    TiltStats
        ``(n_out,)`` curves: the mean over tomograms of each tomogram's least-squares
        fit. ``method="aggregated"``; ``sigma`` is clipped at 0 and ``r`` to ``[-1, 1]``
        in case a fit overshoots. ``tilt_angles_deg`` is ``at`` when given, else the
        angles when every tomogram has the same ones. float64 on the first tomogram's
        device. When every tomogram has ``spectra``, the result carries their aggregate
        (:func:`faket.noise.aggregate_tilt_spectra` with the same order and ``at``);
        otherwise ``spectra`` is None.

    Raises
    ------
    ValueError
        If ``stats`` is empty, tilt counts differ without angles or ``at``, the order is
        out of range, or the fitted std is not positive at some tilt.
    """
    at_np = None if at is None else _as_degrees(at)
    _check_stats(stats, at_np)
    _check_order(order, min(s.n_tilts for s in stats))
    curves = _fit_mean_curves(stats, int(order), at_np)
    spectra = _aggregate_spectra(stats, int(order), at_np)
    sources = [s.source for s in stats if s.source]
    source = f"order-{int(order)} polynomial fit averaged over {len(stats)} tomogram(s)"
    if sources:
        source += ": " + ", ".join(sources)
    return TiltStats(
        **curves,
        tilt_angles_deg=_common_angles(stats) if at_np is None else torch.from_numpy(at_np),
        method="aggregated",
        source=source,
        spectra=spectra,
    )


def _as_degrees(at: TiltAngles) -> np.ndarray:
    """Return ``at`` as a finite float64 array of angles."""
    x = np.asarray(
        at.detach().cpu() if isinstance(at, torch.Tensor) else at, dtype=np.float64
    ).reshape(-1)
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError("`at` must be a non-empty sequence of finite tilt angles")
    return x


def _aggregate_spectra(
    stats: Sequence[TiltStats], order: int, at: np.ndarray | None
) -> TiltSpectra | None:
    """Aggregate the spectra over the tilt angle when every tomogram has them, else None.

    The fits are evaluated at ``at``, by default at the tilt angles averaged over
    tomograms (the tilt index when some tomogram's angles are unknown).
    """
    spectra = [s.spectra for s in stats]
    if any(sp is None for sp in spectra):
        return None
    device = stats[0].r.device
    return aggregate_tilt_spectra(
        [sp.to(device) for sp in spectra if sp is not None],
        order,
        tilt_angles_deg=[s.tilt_angles_deg for s in stats],
        at=at,
    )
