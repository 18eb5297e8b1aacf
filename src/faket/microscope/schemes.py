"""Tilt angles and the order in which a tilt scheme exposes them."""

from __future__ import annotations

import math

import numpy as np

from faket.conventions import MAX_TILT_DEG, TiltAngles
from faket.microscope.settings import SCHEMES


def tilt_range(start_deg: float, stop_deg: float, step_deg: float) -> np.ndarray:
    """Return the angles ``start, start + step, ...`` up to ``stop`` inclusive, in degrees.

    Raises
    ------
    ValueError
        If ``step_deg`` is not positive, ``stop < start`` or an angle leaves
        [-89, 89] (`faket.conventions.MAX_TILT_DEG`).
    """
    if not (math.isfinite(step_deg) and step_deg > 0):
        raise ValueError(f"the tilt step must be a positive number of degrees, got {step_deg}")
    if stop_deg < start_deg:
        raise ValueError(f"the tilt range must go up: {start_deg} to {stop_deg}")
    if start_deg < -MAX_TILT_DEG or stop_deg > MAX_TILT_DEG:
        raise ValueError(
            f"tilt angles must lie within [-{MAX_TILT_DEG:g}, {MAX_TILT_DEG:g}], "
            f"got {start_deg} to {stop_deg}"
        )
    n = int(math.floor((stop_deg - start_deg) / step_deg + 1e-9)) + 1
    return np.round(start_deg + step_deg * np.arange(n), 6)


def acquisition_order(
    tilt_angles_deg: TiltAngles, scheme: str = "dose-symmetric", group_size: int = 2
) -> np.ndarray:
    """Return the exposure rank of each tilt (0 = exposed first).

    Parameters
    ----------
    tilt_angles_deg : sequence of float
        ``(n_tilts,)`` angles in degrees, in image order (any order).
    scheme : str
        ``dose-symmetric`` (Hagen, Wan & Briggs 2017, J. Struct. Biol. 197:191): the tilt
        nearest 0° first, then the positive side, then alternating sides in groups of
        ``group_size`` tilts going outwards (group 2: 0, +3, -3, -6, +6, +9, -9, ...).
        ``sequential``: from the most negative angle to the most positive.
    group_size : int
        Tilts per group of the dose-symmetric scheme.

    Returns
    -------
    np.ndarray
        int64 ``(n_tilts,)``: ``rank[i]`` is when image ``i`` was exposed.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    angles = np.asarray(tilt_angles_deg, dtype=np.float64).reshape(-1)
    n = angles.size
    by_angle = np.argsort(angles, kind="stable")
    if scheme == "sequential":
        order = by_angle
    else:
        first = int(np.argmin(np.abs(angles)))
        rest = [int(i) for i in by_angle if i != first]
        positive = [i for i in rest if angles[i] >= angles[first]]
        negative = [i for i in reversed(rest) if angles[i] < angles[first]]
        sequence = [first]
        # Hagen: one tilt on the positive side, then groups alternating from the negative.
        sides = [positive, negative]
        take = [1, group_size]
        side = 0
        while positive or negative:
            current = sides[side] if sides[side] else sides[1 - side]
            count = take[side] if sides[side] else len(current)
            sequence.extend(current[:count])
            del current[:count]
            take[side] = group_size
            side = 1 - side
        order = np.asarray(sequence, dtype=np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank
