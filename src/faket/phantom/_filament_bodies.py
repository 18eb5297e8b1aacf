"""Filament bodies along a given axis: actin, microtubules and helices of a user's monomer.

Geometry, sources, contrast and labels: see `faket.phantom.filaments`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faket.phantom._bodies import Body
from faket.phantom._helix import (
    ACTIN_RADIUS_A,
    ACTIN_RISE_A,
    ACTIN_TWIST_DEG,
    MT_MONOMER_SPACING_A,
    MT_PROTOFILAMENTS,
    MT_RADIUS_A,
    MT_START,
    actin_monomers,
    arc_lengths,
    check_polyline,
    helical_monomers,
    microtubule_monomers,
)
from faket.phantom._monomers import (
    MONOMER_MASS_DA,
    blob_map,
    monomer_blobs,
    monomer_integral_v_a3,
    render_blob_monomers,
    render_map_monomers,
)


def _body(
    name: str,
    polyline: np.ndarray,
    potential: np.ndarray,
    corner: tuple[int, int, int],
    threshold_v: float,
    voxel_size_a: float,
    monomers: dict[str, np.ndarray],
    helix: dict[str, object],
) -> Body:
    cum = arc_lengths(polyline)
    mid = np.array([np.interp(0.5 * cum[-1], cum, polyline[:, a]) for a in range(3)])
    c = mid / voxel_size_a
    extra: dict[str, object] = {
        "polyline_zyx_a": polyline,
        "length_a": float(cum[-1]),
        "monomers": monomers,
        "helix": helix,
        "label_threshold_v": threshold_v,
    }
    return Body(
        name,
        potential,
        potential > threshold_v,
        corner,
        (float(c[0]), float(c[1]), float(c[2])),
        extra=extra,
    )


def actin_filament(
    polyline_zyx_a: np.ndarray,
    voxel_size_a: float,
    *,
    phase_deg: float = 0.0,
    label_fraction: float = 0.2,
) -> Body:
    """Return an actin filament along an axis, drawn with the built-in blob monomer.

    Parameters
    ----------
    polyline_zyx_a : np.ndarray
        ``(n, 3)`` axis ``(z, y, x)`` in A, box frame.
    voxel_size_a : float
        Voxel size in A.
    phase_deg : float
        Azimuth of the first subunit in degrees.
    label_fraction : float
        Label threshold as a fraction of one monomer map's maximum.

    Returns
    -------
    Body
        Class ``"actin"``; ``extra`` holds ``polyline_zyx_a`` ``(n, 3)``, ``length_a``,
        ``monomers`` (``positions_zyx_a`` ``(m, 3)`` in A, ``angles_zxz_deg``
        ``(m, 3)``), ``helix`` (rise, twist, radius, starts, phase) and
        ``label_threshold_v``.
    """
    check_voxel(voxel_size_a)
    p = check_polyline(polyline_zyx_a)
    positions, angles = actin_monomers(p, phase_deg=phase_deg)
    layouts = monomer_blobs("actin")
    amp = [monomer_integral_v_a3(MONOMER_MASS_DA["actin"])]
    potential, corner = render_blob_monomers(
        positions, angles, layouts, np.zeros(len(positions), int), amp, voxel_size_a
    )
    threshold = label_fraction * float(blob_map(layouts[0], amp[0], voxel_size_a).max())
    helix: dict[str, object] = {
        "rise_a": ACTIN_RISE_A,
        "twist_deg": ACTIN_TWIST_DEG,
        "radius_a": ACTIN_RADIUS_A,
        "starts": 1,
        "phase_deg": phase_deg,
    }
    monomers = {"positions_zyx_a": positions, "angles_zxz_deg": angles}
    return _body("actin", p, potential, corner, threshold, voxel_size_a, monomers, helix)


def microtubule_filament(
    polyline_zyx_a: np.ndarray,
    voxel_size_a: float,
    *,
    phase_deg: float = 0.0,
    label_fraction: float = 0.2,
) -> Body:
    """Return a microtubule along an axis, drawn with built-in alpha/beta blob monomers.

    Parameters
    ----------
    polyline_zyx_a : np.ndarray
        ``(n, 3)`` axis ``(z, y, x)`` in A, towards the plus end.
    voxel_size_a : float
        Voxel size in A.
    phase_deg : float
        Azimuth of protofilament 0 in degrees.
    label_fraction : float
        Label threshold as a fraction of the larger of the alpha and beta monomer maps'
        maxima.

    Returns
    -------
    Body
        Class ``"microtubule"``; ``extra`` as for `actin_filament`, ``monomers`` also
        with ``protofilament`` ``(m,)`` int and ``is_beta`` ``(m,)`` bool, ``helix`` with
        the lattice (protofilaments, start, monomer spacing, protofilament offset, radius).
    """
    check_voxel(voxel_size_a)
    p = check_polyline(polyline_zyx_a)
    positions, angles, pf, beta = microtubule_monomers(p, phase_deg=phase_deg)
    layouts = monomer_blobs("microtubule")
    amp = [monomer_integral_v_a3(MONOMER_MASS_DA["microtubule"])] * 2
    potential, corner = render_blob_monomers(
        positions, angles, layouts, beta.astype(int), amp, voxel_size_a
    )
    peak = max(float(blob_map(b, a, voxel_size_a).max()) for b, a in zip(layouts, amp, strict=True))
    helix: dict[str, object] = {
        "protofilaments": MT_PROTOFILAMENTS,
        "start": MT_START,
        "monomer_spacing_a": MT_MONOMER_SPACING_A,
        "protofilament_offset_a": MT_START * MT_MONOMER_SPACING_A / MT_PROTOFILAMENTS,
        "radius_a": MT_RADIUS_A,
        "phase_deg": phase_deg,
        "seam": (MT_PROTOFILAMENTS - 1, 0),
    }
    monomers = {
        "positions_zyx_a": positions,
        "angles_zxz_deg": angles,
        "protofilament": pf,
        "is_beta": beta,
    }
    return _body(
        "microtubule", p, potential, corner, label_fraction * peak, voxel_size_a, monomers, helix
    )


@dataclass(frozen=True)
class HelixLattice:
    """The helical symmetry of a user's filament.

    Attributes
    ----------
    rise_a : float
        Axial rise per subunit of one start, in A.
    twist_deg : float
        Twist per subunit in degrees (positive: right-handed).
    radius_a : float
        Distance of the monomer's centre from the axis, in A.
    starts : int
        Number of starts (``C_starts`` symmetry).
    """

    rise_a: float
    twist_deg: float
    radius_a: float
    starts: int = 1


def check_voxel(voxel_size_a: float) -> None:
    """Refuse a voxel size that is not positive."""
    if not voxel_size_a > 0:
        raise ValueError(f"the voxel size must be positive, got {voxel_size_a} A")


def check_monomer(monomer: np.ndarray, name: str) -> np.ndarray:
    """Return a monomer map as float32, refusing one not an odd cube or without signal."""
    m = np.asarray(monomer, dtype=np.float32)
    if m.ndim != 3 or len(set(m.shape)) != 1 or m.shape[0] % 2 == 0:
        raise ValueError(f"the monomer map of {name!r} must be an odd cube, got {m.shape}")
    if not np.all(np.isfinite(m)) or not float(m.max()) > 0:
        raise ValueError(f"the monomer map of {name!r} must be finite with a positive maximum")
    return m


def helical_filament(
    polyline_zyx_a: np.ndarray,
    monomer: np.ndarray,
    voxel_size_a: float,
    lattice: HelixLattice,
    *,
    name: str = "filament",
    phase_deg: float = 0.0,
    label_fraction: float = 0.2,
) -> Body:
    """Return a helical filament of a user's monomer map along an axis.

    Parameters
    ----------
    polyline_zyx_a : np.ndarray
        ``(n, 3)`` axis ``(z, y, x)`` in A, box frame.
    monomer : np.ndarray
        ``(n, n, n)`` map in V at ``voxel_size_a``, ``n`` odd, centred at
        ``(n // 2,) * 3``; its ``x`` axis points away from the filament axis, its ``z``
        axis along it.
    voxel_size_a : float
        Voxel size in A.
    lattice : HelixLattice
        Rise, twist, radius and starts.
    name : str
        The body's class name.
    phase_deg : float
        Azimuth of the first subunit in degrees.
    label_fraction : float
        Label threshold as a fraction of the monomer map's maximum.

    Returns
    -------
    Body
        ``extra`` as for `actin_filament`.
    """
    check_voxel(voxel_size_a)
    m = check_monomer(monomer, name)
    p = check_polyline(polyline_zyx_a)
    positions, angles = helical_monomers(
        p,
        lattice.rise_a,
        lattice.twist_deg,
        lattice.radius_a,
        starts=lattice.starts,
        phase_deg=phase_deg,
    )
    potential, corner = render_map_monomers(positions, angles, m, voxel_size_a)
    helix: dict[str, object] = {
        "rise_a": lattice.rise_a,
        "twist_deg": lattice.twist_deg,
        "radius_a": lattice.radius_a,
        "starts": lattice.starts,
        "phase_deg": phase_deg,
    }
    monomers = {"positions_zyx_a": positions, "angles_zxz_deg": angles}
    threshold = label_fraction * float(m.max())
    return _body(name, p, potential, corner, threshold, voxel_size_a, monomers, helix)
