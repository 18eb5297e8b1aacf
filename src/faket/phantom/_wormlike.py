"""Worm-like chains: smooth random filament axes with a given persistence length.

A discrete worm-like chain of step ``b`` turns its unit tangent at each step by a
direction drawn from the von Mises-Fisher distribution about the previous tangent, with
concentration ``kappa`` such that the mean cosine of the turn, ``coth(kappa) - 1/kappa``,
equals ``exp(-b / Lp)``. The steps are independent, so the tangent correlation is exactly
``<t(s) . t(0)> = exp(-s / Lp)`` at every multiple ``s`` of the step (``Lp`` the
persistence length).

Points are ``(z, y, x)`` in A in the box frame, voxel centre ``k`` at ``k x voxel_size_a``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq


def concentration(step_a: float, persistence_length_a: float) -> float:
    """Return the von Mises-Fisher concentration of one step of a worm-like chain.

    Solves ``coth(kappa) - 1/kappa = exp(-step / Lp)``; ``kappa ~ Lp / step`` for stiff
    chains.
    """
    if not step_a > 0 or not persistence_length_a > 0:
        raise ValueError("the step and the persistence length must be positive")
    if step_a >= persistence_length_a:
        raise ValueError(
            f"the path's step ({step_a} A) must be shorter than the persistence length "
            f"({persistence_length_a} A)"
        )
    gap = -math.expm1(-step_a / persistence_length_a)  # 1 - mean cosine
    if gap < 0.02:  # coth(kappa) = 1 to double precision for kappa > 50
        return 1.0 / gap
    return float(brentq(lambda k: 1.0 / math.tanh(k) - 1.0 / k - (1.0 - gap), 1e-6, 60.0))


def _turn_cosines(n: int, kappa: float, rng: np.random.Generator) -> np.ndarray:
    """Return ``n`` cosines of von Mises-Fisher turns on the sphere (exact inversion)."""
    u = 1.0 - rng.random(n)  # in (0, 1]
    return 1.0 + np.log(u + (1.0 - u) * math.exp(-2.0 * kappa)) / kappa


def worm_like_path(
    length_a: float,
    persistence_length_a: float,
    start_zyx_a: np.ndarray,
    tangent_zyx: np.ndarray,
    rng: np.random.Generator,
    *,
    step_a: float = 20.0,
    z_range_a: tuple[float, float] | None = None,
) -> np.ndarray:
    """Return a worm-like chain's points, grown from a start along a first tangent.

    Inside a Z range the chain is kept by reflection: a step that would leave the range
    has its tangent's Z component reversed (a glancing bounce off the slab face, a kink of
    ``2 asin|t_z|``, small for the nearly flat filaments of a thin slab); a point that
    would still be outside is clamped to the range.

    Parameters
    ----------
    length_a : float
        Arc length in A (rounded down to whole steps, at least one step).
    persistence_length_a : float
        Persistence length ``Lp`` in A.
    start_zyx_a : np.ndarray
        ``(3,)`` first point ``(z, y, x)`` in A.
    tangent_zyx : np.ndarray
        ``(3,)`` direction of the first step ``(z, y, x)`` (normalised here).
    rng : np.random.Generator
        Source of the turns.
    step_a : float
        Distance between successive points in A.
    z_range_a : tuple of float, optional
        ``(z_min, z_max)`` in A that every point keeps to; default unbounded.

    Returns
    -------
    np.ndarray
        ``(n, 3)`` float64 points ``(z, y, x)`` in A, ``step_a`` apart, ``n >= 2``.
    """
    if not length_a > 0:
        raise ValueError(f"a filament's length must be positive, got {length_a} A")
    kappa = concentration(step_a, persistence_length_a)
    n = max(1, int(math.floor(length_a / step_a + 1e-9)))
    t = np.asarray(tangent_zyx, dtype=np.float64).reshape(3)
    if not np.linalg.norm(t) > 0:
        raise ValueError("the first tangent must not be zero")
    t = t / np.linalg.norm(t)
    lo, hi = (-math.inf, math.inf) if z_range_a is None else z_range_a
    cosines = _turn_cosines(n, kappa, rng)
    sines = np.sqrt(np.clip(1.0 - cosines**2, 0.0, None))
    kicks = rng.normal(size=(n, 3))
    points = np.empty((n + 1, 3))
    points[0] = np.asarray(start_zyx_a, dtype=np.float64).reshape(3)
    for i in range(n):
        if i > 0:  # the first step goes along the given tangent
            e = kicks[i] - (kicks[i] @ t) * t  # a uniform direction perpendicular to t
            t = cosines[i] * t + sines[i] * e / np.linalg.norm(e)
            t /= np.linalg.norm(t)
        nxt = points[i] + step_a * t
        if not lo <= nxt[0] <= hi:
            t[0] = -t[0]
            nxt = points[i] + step_a * t
            nxt[0] = min(max(nxt[0], lo), hi)
        points[i + 1] = nxt
    return points


def cut_to_box(
    points_zyx_a: np.ndarray, keep_index: int, box_shape: tuple[int, ...], voxel_size_a: float
) -> np.ndarray:
    """Return the run of points around ``keep_index`` that stays inside the box in Y and X.

    The box spans ``[-1/2, n - 1/2] x voxel_size_a`` along each axis (voxel edges).

    Parameters
    ----------
    points_zyx_a : np.ndarray
        ``(n, 3)`` points ``(z, y, x)`` in A.
    keep_index : int
        A point inside the box: the run returned contains it.
    box_shape : tuple of int
        ``(nz, ny, nx)``.
    voxel_size_a : float
        Voxel size in A.

    Returns
    -------
    np.ndarray
        ``(k, 3)`` the contiguous points inside (``k >= 1``).
    """
    p = np.asarray(points_zyx_a, dtype=np.float64)
    size = np.asarray(box_shape[1:], dtype=np.float64) * voxel_size_a
    yx = p[:, 1:] + 0.5 * voxel_size_a
    inside = np.all((yx >= 0) & (yx <= size), axis=1)
    if not inside[keep_index]:
        raise ValueError("the kept point of a filament lies outside the box")
    outside = np.flatnonzero(~inside)
    first = outside[outside < keep_index].max() + 1 if np.any(outside < keep_index) else 0
    last = outside[outside > keep_index].min() if np.any(outside > keep_index) else len(p)
    return p[first:last]


def random_filament_path(
    length_a: float,
    persistence_length_a: float,
    box_shape: tuple[int, int, int],
    voxel_size_a: float,
    z_range_a: tuple[float, float],
    rng: np.random.Generator,
    *,
    step_a: float = 20.0,
) -> np.ndarray:
    """Return a random worm-like filament axis in a box, cut where it leaves in Y or X.

    The axis's midpoint is uniform in the box (Y, X) and in ``z_range_a``; its direction
    there is isotropic among those that keep a straight axis of ``length_a`` within the
    Z range (``|t_z|`` uniform up to that limit); each half grows from the midpoint as a
    worm-like chain kept inside the Z range (`worm_like_path`).
    The run of points around the midpoint that stays inside the box's Y and X is kept.

    Parameters
    ----------
    length_a : float
        Arc length before the cut, in A.
    persistence_length_a : float
        Persistence length in A.
    box_shape : tuple of int
        ``(nz, ny, nx)`` in voxels.
    voxel_size_a : float
        Voxel size in A.
    z_range_a : tuple of float
        ``(z_min, z_max)`` of the axis in A (box frame).
    rng : np.random.Generator
        Source of every draw.
    step_a : float
        Distance between the axis's points in A.

    Returns
    -------
    np.ndarray
        ``(n, 3)`` points ``(z, y, x)`` in A, ``step_a`` apart (``n >= 1``).
    """
    lo, hi = z_range_a
    yx = (rng.random(2) * np.asarray(box_shape[1:]) - 0.5) * voxel_size_a
    mid = np.array([lo + rng.random() * (hi - lo), yx[0], yx[1]])
    tz_max = min(1.0, 2.0 * min(mid[0] - lo, hi - mid[0]) / length_a)
    tz = (2.0 * rng.random() - 1.0) * tz_max
    psi = 2.0 * math.pi * rng.random()
    flat = math.sqrt(max(0.0, 1.0 - tz * tz))
    tangent = np.array([tz, flat * math.sin(psi), flat * math.cos(psi)])
    half = max(0.5 * length_a, step_a)
    ahead = worm_like_path(
        half, persistence_length_a, mid, tangent, rng, step_a=step_a, z_range_a=z_range_a
    )
    behind = worm_like_path(
        half, persistence_length_a, mid, -tangent, rng, step_a=step_a, z_range_a=z_range_a
    )
    points = np.concatenate([behind[::-1], ahead[1:]])
    return cut_to_box(points, len(behind) - 1, box_shape, voxel_size_a)
