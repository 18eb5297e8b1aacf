"""Cytoskeletal filaments: helical lattices of monomers along worm-like axes.

Coordinates
-----------
A filament's axis is a polyline of points ``(z, y, x)`` in A in the box frame: the centre
of voxel ``k`` lies at ``k x voxel_size_a`` (the convention of
`faket.phantom.potential.splat_gaussians`). Monomer positions are in the same frame;
monomer rotations are ZXZ Euler angles in degrees (`faket.phantom.specimen`), mapping the
monomer reference's ``x`` to the outward radial direction, ``y`` to the azimuthal
direction and ``z`` to the axis direction (see `faket.phantom._helix`).

Lattices
--------
* Actin (F-actin) as a one-start left-handed helix: rise 27.7 A and twist -166.6 deg per
  subunit (the genetic helix; every second subunit forms the two right-handed long-pitch
  strands, turning +26.8 deg per 55.4 A and crossing over every ~37 nm), subunit centres
  20 A from the axis, a filament 7-8 nm wide (Holmes et al. 1990, Nature 347:44; von der
  Ecken et al. 2015, Nature 519:114).
* Microtubule: 13 protofilaments parallel to the axis (a 13_3 lattice has no supertwist),
  tubulin monomers 40 A apart along each (the alpha/beta dimer repeats every 80 A),
  neighbouring protofilaments offset axially by 3 x 40 / 13 = 9.23 A, so that the lateral
  contacts form a left-handed 3-start helix; alpha meets alpha laterally (B lattice) except
  at one seam, where alpha meets beta; monomer centres 104 A from the axis, an outer
  diameter of 25 nm and a lumen of about 17 nm (Mandelkow et al. 1986, J. Cell Biol.
  102:1067; Chretien & Wade 1991, Biol. Cell 71:161; Kikkawa et al. 1994, J. Cell Biol.
  127:1965, the seam; Nogales et al. 1999, Cell 96:79). Beta-tubulin is towards the axis's
  last point (the plus end).
* Any helix of a user's monomer map: rise, twist, radius and number of starts (the
  ``C_starts`` point symmetry of helical reconstruction), see `helical_monomers`.

Persistence lengths (defaults, `DEFAULT_PERSISTENCE_LENGTH_A`): actin 10 um (Isambert et
al. 1995, J. Biol. Chem. 270:11437: about 9 um, 18 um with phalloidin; Gittes et al. 1993,
J. Cell Biol. 120:923: 17.7 um), microtubules 1 mm (Gittes et al. 1993: 5.2 mm for long
taxol-stabilised microtubules; Pampaloni et al. 2006, PNAS 103:10248: about 0.1 to 5 mm,
growing with length, so less for the < 1 um pieces in a tomogram). Every request can set
its own.

Potential and labels
--------------------
Built-in monomers are small sums of Gaussian blobs in the monomer frame (sizes of the
0.2-of-maximum region, axial x azimuthal x radial: actin 5.6 x 3.8 x 3.4 nm, four
subdomains; tubulin 4.0 x 5.0 x 4.2 nm, beta's outer ridge placed differently from
alpha's), drawn with one `splat_gaussians` call per filament. Each monomer carries the
integrated potential of protein filling its molecular volume (`monomer_integral_v_a3`:
mass / 0.81 Da/A^3 x `protein_potential_density`; actin 41.8 kDa, tubulin 50 kDa), the
same at every voxel size, as the built-in particles (`faket.phantom.builtin`). A user's
monomer map is rotated and added per monomer (`faket.phantom.specimen.rotate_map`) as it
is. A filament's label is where its potential exceeds ``label_fraction`` (0.2) of one
monomer map's maximum (the built-ins: one monomer drawn centred on a voxel; alpha or beta,
whichever is higher); the whole filament is one instance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faket.errors import FaketInputError
from faket.phantom._bodies import Body, mark, overlaps
from faket.phantom._filament_bodies import (
    HelixLattice,
    actin_filament,
    check_monomer,
    check_voxel,
    helical_filament,
    microtubule_filament,
)
from faket.phantom._helix import actin_monomers, helical_monomers, microtubule_monomers
from faket.phantom._monomers import monomer_integral_v_a3
from faket.phantom._wormlike import random_filament_path, worm_like_path

__all__ = [
    "DEFAULT_PERSISTENCE_LENGTH_A",
    "FilamentRequest",
    "HelixLattice",
    "actin_filament",
    "actin_monomers",
    "filament_body",
    "filament_radius_a",
    "helical_filament",
    "helical_monomers",
    "microtubule_filament",
    "microtubule_monomers",
    "monomer_integral_v_a3",
    "place_filaments",
    "random_filament_path",
    "worm_like_path",
]

DEFAULT_PERSISTENCE_LENGTH_A: dict[str, float] = {"actin": 1.0e5, "microtubule": 1.0e7}
"""Default persistence lengths in A by filament type (user types: actin's)."""


@dataclass(frozen=True)
class FilamentRequest:
    """Filaments of one type to place.

    Attributes
    ----------
    kind : str
        ``"actin"``, ``"microtubule"``, or a user's name (then ``monomer`` and
        ``lattice`` are needed).
    count : int
        How many filaments.
    length_a : tuple of float
        ``(shortest, longest)`` arc length in A before the box cuts it; each filament
        draws its length uniformly in this range.
    persistence_length_a : float, optional
        Persistence length in A; default `DEFAULT_PERSISTENCE_LENGTH_A`.
    monomer : np.ndarray, optional
        A user type's ``(n, n, n)`` monomer map in V, ``n`` odd, centred.
    lattice : HelixLattice, optional
        A user type's helical symmetry.
    """

    kind: str
    count: int
    length_a: tuple[float, float]
    persistence_length_a: float | None = None
    monomer: np.ndarray | None = None
    lattice: HelixLattice | None = None


def filament_body(
    request: FilamentRequest, polyline_zyx_a: np.ndarray, voxel_size_a: float, phase_deg: float
) -> Body:
    """Return the body of one filament of a request's type along an axis."""
    if request.kind == "actin":
        return actin_filament(polyline_zyx_a, voxel_size_a, phase_deg=phase_deg)
    if request.kind == "microtubule":
        return microtubule_filament(polyline_zyx_a, voxel_size_a, phase_deg=phase_deg)
    if request.monomer is None or request.lattice is None:
        raise ValueError(f"the filament type {request.kind!r} needs a monomer map and a lattice")
    return helical_filament(
        polyline_zyx_a,
        request.monomer,
        voxel_size_a,
        request.lattice,
        name=request.kind,
        phase_deg=phase_deg,
    )


def filament_radius_a(request: FilamentRequest, voxel_size_a: float) -> float:
    """Return the largest distance in A of a request's label from its axis (straight)."""
    axis = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 400.0]])
    body = filament_body(request, axis, voxel_size_a, 0.0)
    idx = np.argwhere(body.label) + np.asarray(body.corner_zyx)
    r = np.sqrt((idx[:, 0] ** 2 + idx[:, 1] ** 2).max()) if len(idx) else 0.0
    return float(r + math.sqrt(2) / 2) * voxel_size_a


def _check_request(request: FilamentRequest) -> None:
    lo, hi = request.length_a
    if request.count < 0:
        raise ValueError(f"the count of {request.kind!r} filaments must not be negative")
    if not 0 < lo <= hi:
        raise ValueError(
            f"the lengths of {request.kind!r} filaments must be 0 < shortest <= longest, "
            f"got {request.length_a} A"
        )
    lp = request.persistence_length_a
    if lp is not None and not lp > 0:
        raise ValueError(f"the persistence length of {request.kind!r} must be positive")
    if request.kind not in ("actin", "microtubule"):
        if request.monomer is None or request.lattice is None:
            raise ValueError(f"the filament type {request.kind!r} needs a monomer and a lattice")
        check_monomer(request.monomer, request.kind)


def place_filaments(
    requests: Sequence[FilamentRequest],
    box_shape: tuple[int, int, int],
    voxel_size_a: float,
    *,
    rng: np.random.Generator,
    slab_voxels: int | None = None,
    occupied: np.ndarray | None = None,
    max_attempts: int = 50,
    step_a: float = 20.0,
) -> list[Body]:
    """Place random filaments in a box, touching neither each other nor ``occupied``.

    Types are placed from the widest to the thinnest (microtubules before actin), each
    filament drawing a length, an axis (`random_filament_path`, kept inside the slab so
    that its label is) and a phase, up to ``max_attempts`` times, until its label meets no
    occupied voxel. Filaments leave the box through its Y and X faces, cut there.

    Parameters
    ----------
    requests : sequence of FilamentRequest
        The filament types and counts.
    box_shape : tuple of int
        ``(nz, ny, nx)`` in voxels.
    voxel_size_a : float
        Voxel size in A.
    rng : np.random.Generator
        Source of every draw: the same generator state gives identical bodies.
    slab_voxels : int, optional
        Thickness of the sample slab (centred in Z) in voxels; default the whole box.
    occupied : np.ndarray, optional
        ``(nz, ny, nx)`` bool: voxels already taken (membranes, particles). On success,
        the placed filaments' labels are marked in it (in place).
    max_attempts : int
        Axes tried per filament before giving up.
    step_a : float
        Spacing of the axis points in A.

    Returns
    -------
    list of Body
        One per filament in placement order; ``extra`` also holds
        ``persistence_length_a`` and ``requested_length_a``.

    Raises
    ------
    FaketInputError
        If a type is too wide for the slab, or not every filament fits (the message says
        how many did).
    ValueError
        For a bad shape, voxel size, slab or request.
    """
    if len(box_shape) != 3 or min(box_shape) < 1:
        raise ValueError(f"the box must be three positive sizes (nz, ny, nx), got {box_shape}")
    check_voxel(voxel_size_a)
    nz = int(box_shape[0])
    slab = nz if slab_voxels is None else int(slab_voxels)
    if not 0 < slab <= nz:
        raise ValueError(f"the slab must be 1 to {nz} voxels thick (the box), got {slab}")
    shape = (nz, int(box_shape[1]), int(box_shape[2]))
    if occupied is not None and occupied.shape != shape:
        raise ValueError(f"the occupied mask must have the box's shape {shape}")
    for r in requests:
        _check_request(r)
    taken = np.zeros(shape, bool) if occupied is None else occupied.astype(bool, copy=True)
    z_lo = ((nz - slab) / 2.0 - 0.5) * voxel_size_a
    radii = [filament_radius_a(r, voxel_size_a) if r.count else 0.0 for r in requests]
    bodies: list[Body] = []
    for i in sorted(range(len(requests)), key=lambda k: -radii[k]):
        request, radius = requests[i], radii[i]
        if request.count == 0:
            continue
        z_range = (z_lo + radius, z_lo + slab * voxel_size_a - radius)
        if z_range[1] < z_range[0]:
            raise FaketInputError(
                f"a {request.kind!r} filament ({2 * radius / 10:.0f} nm wide) does not fit in "
                f"a slab of {slab} voxels of {voxel_size_a} A; make the slab thicker"
            )
        lp = request.persistence_length_a
        if lp is None:
            lp = DEFAULT_PERSISTENCE_LENGTH_A.get(
                request.kind, DEFAULT_PERSISTENCE_LENGTH_A["actin"]
            )
        for done in range(request.count):
            body = _place_one(
                request, lp, shape, voxel_size_a, z_range, taken, rng, max_attempts, step_a
            )
            if body is None:
                raise FaketInputError(
                    f"only {done} of {request.count} {request.kind!r} filaments fit without "
                    f"overlaps in {max_attempts} tries each ({len(bodies)} filaments placed in "
                    "all); lower the count or the lengths, or enlarge the box or the slab"
                )
            mark(taken, body)
            bodies.append(body)
    if occupied is not None:
        occupied |= taken
    return bodies


def _place_one(
    request: FilamentRequest,
    persistence_length_a: float,
    shape: tuple[int, int, int],
    voxel_size_a: float,
    z_range_a: tuple[float, float],
    taken: np.ndarray,
    rng: np.random.Generator,
    max_attempts: int,
    step_a: float,
) -> Body | None:
    """Return one filament that meets no taken voxel, or None after ``max_attempts``."""
    for _ in range(max_attempts):
        length = float(rng.uniform(*request.length_a))
        axis = random_filament_path(
            length, persistence_length_a, shape, voxel_size_a, z_range_a, rng, step_a=step_a
        )
        phase = float(rng.uniform(0.0, 360.0))
        if len(axis) < 2:
            continue
        idx = np.clip(np.rint(axis / voxel_size_a).astype(int), 0, np.asarray(shape) - 1)
        if np.any(taken[idx[:, 0], idx[:, 1], idx[:, 2]]):
            continue  # the axis itself is taken: no need to draw the filament
        body = filament_body(request, axis, voxel_size_a, phase)
        if overlaps(taken, body):
            continue
        body.extra["persistence_length_a"] = persistence_length_a
        body.extra["requested_length_a"] = length
        return body
    return None
