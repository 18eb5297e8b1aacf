"""Helical lattices along a curved axis: parallel-transported frames and monomer poses.

Frames
------
Points and vectors are ``(z, y, x)`` in A in the box frame (voxel centre ``k`` at
``k x voxel_size_a``); cross products and handedness are those of the right-handed
``(x, y, z)`` frame. Along a polyline, each segment ``i`` carries a unit tangent ``t_i``
and a unit normal ``u_i`` that is parallel-transported from segment to segment (the
rotation-minimising frame: ``u_{i+1}`` is ``u_i`` turned by the smallest rotation taking
``t_i`` to ``t_{i+1}``), so the frame itself adds no twist; ``v_i = t_i x u_i``.

A point at azimuth ``phi`` (degrees) around the axis lies along
``e_r = cos(phi) u + sin(phi) v``: increasing ``phi`` turns right-handedly about the
tangent. A helix with a positive rise and a positive twist is right-handed.

Monomer frame
-------------
Each monomer's rotation ``R`` (acting on ``(x, y, z)``, ZXZ Euler angles as in
`faket.phantom.specimen`) maps the monomer reference's axes onto the filament's:
reference ``x`` -> radial ``e_r`` (outwards), reference ``y`` -> azimuthal
``e_phi = t x e_r`` (direction of increasing ``phi``), reference ``z`` -> the axis
tangent ``t`` (the polyline's direction). So a monomer map is drawn with its outer face
towards ``+x`` and the filament's direction along ``+z``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.spatial.transform import Rotation

ACTIN_RISE_A = 27.7
ACTIN_TWIST_DEG = -166.6
ACTIN_RADIUS_A = 20.0
MT_PROTOFILAMENTS = 13
MT_START = 3
MT_MONOMER_SPACING_A = 40.0
MT_RADIUS_A = 104.0


def cross_zyx(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the right-handed cross product of ``(z, y, x)`` vectors, as ``(z, y, x)``."""
    return np.cross(a[..., ::-1], b[..., ::-1])[..., ::-1]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def arc_lengths(polyline_zyx_a: np.ndarray) -> np.ndarray:
    """Return the cumulative arc length at each vertex, ``(n,)`` in A, starting at 0."""
    seg = np.linalg.norm(np.diff(polyline_zyx_a, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def check_polyline(polyline_zyx_a: np.ndarray) -> np.ndarray:
    """Return the polyline as float64 ``(n, 3)``, refusing fewer than two distinct points."""
    p = np.asarray(polyline_zyx_a, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) < 2:
        raise ValueError(f"a filament axis must be (n, 3) points with n >= 2, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("a filament axis has NaN or infinite points")
    if np.any(np.linalg.norm(np.diff(p, axis=0), axis=1) <= 0):
        raise ValueError("a filament axis has two equal successive points")
    return p


def transported_frames(polyline_zyx_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return per-segment tangents and parallel-transported normals of a polyline.

    The first normal is the box ``+z`` direction made perpendicular to the first tangent
    (``+x`` for a segment along ``z``); the others follow by the double-reflection
    rotation-minimising frame (Wang et al. 2008, ACM Trans. Graph. 27:2).

    Parameters
    ----------
    polyline_zyx_a : np.ndarray
        ``(n, 3)`` vertices ``(z, y, x)`` in A, ``n >= 2``.

    Returns
    -------
    tangents : np.ndarray
        ``(n - 1, 3)`` unit tangents ``(z, y, x)`` of the segments.
    normals : np.ndarray
        ``(n - 1, 3)`` unit normals ``(z, y, x)``, each perpendicular to its tangent.
    """
    p = check_polyline(polyline_zyx_a)
    d = np.diff(p, axis=0)
    t = _unit(d)
    up = np.array([1.0, 0.0, 0.0]) if abs(t[0, 0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    u = np.empty_like(t)
    u[0] = _unit(up - (up @ t[0]) * t[0])
    mid = 0.5 * (p[1:-1] + p[2:]) - 0.5 * (p[:-2] + p[1:-1])  # between segment midpoints
    for i in range(len(t) - 1):
        v1 = mid[i]
        c1 = float(v1 @ v1)
        if c1 <= 0:
            u[i + 1] = u[i]
            continue
        r_l = u[i] - (2.0 / c1) * (v1 @ u[i]) * v1
        t_l = t[i] - (2.0 / c1) * (v1 @ t[i]) * v1
        v2 = t[i + 1] - t_l
        c2 = float(v2 @ v2)
        r_n = r_l - (2.0 / c2) * (v2 @ r_l) * v2 if c2 > 0 else r_l
        r_n = r_n - (r_n @ t[i + 1]) * t[i + 1]
        u[i + 1] = _unit(r_n)
    return t, u


def axis_frames_at(
    polyline_zyx_a: np.ndarray, s_a: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return axis points, tangents and normals at arc lengths ``s_a`` along a polyline.

    Points are interpolated linearly on the segment that holds each arc length; the
    frame is that segment's (piecewise constant, see `transported_frames`).

    Parameters
    ----------
    polyline_zyx_a : np.ndarray
        ``(n, 3)`` vertices ``(z, y, x)`` in A.
    s_a : np.ndarray
        ``(m,)`` arc lengths in A, within ``[0, total length]``.

    Returns
    -------
    points, tangents, normals : np.ndarray
        Each ``(m, 3)`` ``(z, y, x)``; points in A, the others unit vectors.
    """
    p = check_polyline(polyline_zyx_a)
    t, u = transported_frames(p)
    cum = arc_lengths(p)
    s = np.asarray(s_a, dtype=np.float64).reshape(-1)
    seg = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(t) - 1)
    points = p[seg] + (s - cum[seg])[:, None] * t[seg]
    return points, t[seg], u[seg]


def monomer_poses(
    polyline_zyx_a: np.ndarray, s_a: np.ndarray, phi_deg: np.ndarray, radius_a: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return positions and rotation matrices of monomers at given helical coordinates.

    Parameters
    ----------
    polyline_zyx_a : np.ndarray
        ``(n, 3)`` filament axis ``(z, y, x)`` in A.
    s_a : np.ndarray
        ``(m,)`` arc lengths of the monomers along the axis, in A.
    phi_deg : np.ndarray
        ``(m,)`` azimuths in degrees (see the module docstring).
    radius_a : float
        Distance of the monomers' centres from the axis, in A.

    Returns
    -------
    positions_zyx_a : np.ndarray
        ``(m, 3)`` monomer centres ``(z, y, x)`` in A.
    matrices_xyz : np.ndarray
        ``(m, 3, 3)`` rotations acting on ``(x, y, z)``; columns: ``e_r``, ``e_phi``,
        ``t`` in ``(x, y, z)``.
    """
    points, t, u = axis_frames_at(polyline_zyx_a, s_a)
    v = cross_zyx(t, u)
    phi = np.deg2rad(np.asarray(phi_deg, dtype=np.float64).reshape(-1))
    e_r = np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v
    e_phi = cross_zyx(t, e_r)
    matrices = np.stack([e_r[:, ::-1], e_phi[:, ::-1], t[:, ::-1]], axis=2)
    return points + radius_a * e_r, matrices


def zxz_angles_deg(matrices_xyz: np.ndarray) -> np.ndarray:
    """Return ``(m, 3)`` ZXZ Euler angles in degrees of ``(m, 3, 3)`` rotations on (x, y, z).

    Gimbal-locked rotations get ``psi = 0`` (scipy's choice), silently.
    """
    if len(matrices_xyz) == 0:
        return np.zeros((0, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Rotation.from_matrix(matrices_xyz).as_euler("ZXZ", degrees=True)


def helix_coordinates(
    length_a: float, rise_a: float, twist_deg: float, *, starts: int = 1, phase_deg: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Return arc lengths and azimuths of a helical lattice with ``starts``-fold symmetry.

    Subunit ``(i, k)`` lies at arc length ``i rise`` and azimuth
    ``phase + i twist + 360 k / starts`` (``i >= 0`` while on the axis, ``k < starts``):
    each start is the one-start helix turned by ``360 / starts`` about the axis (the
    ``C_starts`` point symmetry of helical reconstruction).

    Returns
    -------
    s_a : np.ndarray
        ``(m,)`` arc lengths in A, ordered by ``i`` then ``k``.
    phi_deg : np.ndarray
        ``(m,)`` azimuths in degrees.
    """
    if not rise_a > 0:
        raise ValueError(f"the helical rise must be positive, got {rise_a} A")
    if starts < 1:
        raise ValueError(f"a helix needs at least one start, got {starts}")
    n = int(math.floor(length_a / rise_a + 1e-9)) + 1 if length_a >= 0 else 0
    i = np.repeat(np.arange(n), starts)
    k = np.tile(np.arange(starts), n)
    return i * rise_a, phase_deg + i * twist_deg + 360.0 * k / starts


def microtubule_coordinates(
    length_a: float,
    *,
    protofilaments: int,
    start: int,
    monomer_spacing_a: float,
    phase_deg: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the helical coordinates of a microtubule lattice with a seam.

    Protofilament ``p`` runs parallel to the axis at azimuth ``phase - 360 p / N``;
    its monomer ``j`` lies at arc length ``j a + p d`` with ``d = start a / N`` (``N``
    protofilaments, ``a`` the monomer spacing). Going once round the axis therefore
    rises ``start`` monomers: a left-handed ``start``-start helix. Monomers alternate
    alpha (``j`` even) and beta (``j`` odd) along each protofilament, so neighbouring
    protofilaments meet alpha to alpha (B lattice) except across the seam, between
    protofilaments ``N - 1`` and ``0``, where an odd ``start`` puts alpha next to beta.

    Returns
    -------
    s_a : np.ndarray
        ``(m,)`` arc lengths in A.
    phi_deg : np.ndarray
        ``(m,)`` azimuths in degrees.
    protofilament : np.ndarray
        ``(m,)`` int protofilament index ``p``.
    is_beta : np.ndarray
        ``(m,)`` bool, True for beta-tubulin.
    """
    offset = start * monomer_spacing_a / protofilaments
    n = int(math.floor(length_a / monomer_spacing_a + 1e-9)) + 1 if length_a >= 0 else 0
    j = np.tile(np.arange(n), protofilaments)
    p = np.repeat(np.arange(protofilaments), n)
    s = j * monomer_spacing_a + p * offset
    keep = s <= length_a + 1e-9
    phi = phase_deg - 360.0 * p / protofilaments
    return s[keep], phi[keep], p[keep], (j % 2 == 1)[keep]


def actin_monomers(
    polyline_zyx_a: np.ndarray, *, phase_deg: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Return the subunits of an actin filament along an axis.

    Parameters
    ----------
    polyline_zyx_a : np.ndarray
        ``(n, 3)`` axis ``(z, y, x)`` in A.
    phase_deg : float
        Azimuth of the first subunit in degrees (from the transported normal).

    Returns
    -------
    positions_zyx_a : np.ndarray
        ``(m, 3)`` subunit centres ``(z, y, x)`` in A.
    angles_zxz_deg : np.ndarray
        ``(m, 3)`` ZXZ Euler angles in degrees (monomer frame: module docstring).
    """
    return helical_monomers(
        polyline_zyx_a, ACTIN_RISE_A, ACTIN_TWIST_DEG, ACTIN_RADIUS_A, phase_deg=phase_deg
    )


def helical_monomers(
    polyline_zyx_a: np.ndarray,
    rise_a: float,
    twist_deg: float,
    radius_a: float,
    *,
    starts: int = 1,
    phase_deg: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the subunits of a helical lattice along an axis.

    Subunit ``(i, k)`` sits at arc length ``i rise_a``, azimuth
    ``phase + i twist + 360 k / starts`` and distance ``radius_a`` from the axis, for
    every ``i >= 0`` within the axis's length and ``k < starts``.

    Parameters
    ----------
    polyline_zyx_a : np.ndarray
        ``(n, 3)`` axis ``(z, y, x)`` in A.
    rise_a : float
        Axial rise per subunit of one start, in A.
    twist_deg : float
        Twist per subunit in degrees (positive: right-handed).
    radius_a : float
        Radius of the subunits' centres in A (0 puts them on the axis).
    starts : int
        Number of starts (``C_starts`` symmetry about the axis).
    phase_deg : float
        Azimuth of the first subunit in degrees.

    Returns
    -------
    positions_zyx_a : np.ndarray
        ``(m, 3)`` centres ``(z, y, x)`` in A.
    angles_zxz_deg : np.ndarray
        ``(m, 3)`` ZXZ Euler angles in degrees.
    """
    p = check_polyline(polyline_zyx_a)
    if radius_a < 0:
        raise ValueError(f"the helical radius must not be negative, got {radius_a} A")
    s, phi = helix_coordinates(
        float(arc_lengths(p)[-1]), rise_a, twist_deg, starts=starts, phase_deg=phase_deg
    )
    positions, matrices = monomer_poses(p, s, phi, radius_a)
    return positions, zxz_angles_deg(matrices)


def microtubule_monomers(
    polyline_zyx_a: np.ndarray, *, phase_deg: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the tubulin monomers of a 13-protofilament, 3-start microtubule.

    Parameters
    ----------
    polyline_zyx_a : np.ndarray
        ``(n, 3)`` axis ``(z, y, x)`` in A (towards the plus end).
    phase_deg : float
        Azimuth of protofilament 0 in degrees.

    Returns
    -------
    positions_zyx_a : np.ndarray
        ``(m, 3)`` monomer centres ``(z, y, x)`` in A.
    angles_zxz_deg : np.ndarray
        ``(m, 3)`` ZXZ Euler angles in degrees.
    protofilament : np.ndarray
        ``(m,)`` int, 0 to 12; the seam lies between 12 and 0.
    is_beta : np.ndarray
        ``(m,)`` bool: beta-tubulin (else alpha).
    """
    p = check_polyline(polyline_zyx_a)
    s, phi, pf, beta = microtubule_coordinates(
        float(arc_lengths(p)[-1]),
        protofilaments=MT_PROTOFILAMENTS,
        start=MT_START,
        monomer_spacing_a=MT_MONOMER_SPACING_A,
        phase_deg=phase_deg,
    )
    positions, matrices = monomer_poses(p, s, phi, MT_RADIUS_A)
    return positions, zxz_angles_deg(matrices), pf, beta
