"""Membrane proteins: particles set on membranes, their axis along the membrane's normal.

A protein is placed at a membrane's surface sample ``s`` (see
`faket.phantom.membranes`) with unit normal ``n``: its centre is ``s + offset n``
(``offset_a = 0``: centred on the midplane, a transmembrane protein; positive: outside,
on the normal's side). Its rotation maps the structure's axis ``a`` (its own ``(x, y,
z)`` frame; default Z) onto ``n`` by the shortest turn, then spins it about ``n`` by a
uniform angle. The rotation is stored as ZXZ Euler angles (the convention of
`faket.phantom.specimen`) and the map is drawn with the rotation rebuilt from them, so
``rotate_map(reference, Rotation.from_euler("ZXZ", angles, degrees=True), frac)`` at the
listed centre (``frac`` = centre - its rounding) reproduces the potential and label
exactly. Label: rotated map > ``label_fraction`` x the reference's maximum.

A protein's label lies wholly inside the box and slab and touches no other protein, no
other membrane and nothing in ``occupied`` -- except its own membrane, which it may cut
into (draw it with ``paste(..., replace=True)``: it displaces the lipid in its label).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.phantom._bodies import Body, clip_window, mark
from faket.phantom.specimen import _zxz_degrees, rotate_map

_MAX_ATTEMPTS = 400


@dataclass(frozen=True)
class MembraneProteinRequest:
    """One class of membrane proteins to place.

    Attributes
    ----------
    name : str
        Class name (the bodies' ``class_name``).
    density : np.ndarray
        ``(n, n, n)`` float32 reference map in V, ``n`` odd, centred at ``(n // 2,) * 3``.
    count : int
        How many to place.
    axis_xyz : tuple of float
        The structure's axis that is set along the membrane normal, in its ``(x, y, z)``
        frame (normalised here); default its Z axis.
    offset_a : float
        Distance in A of the centre from the midplane along the normal (0: centred on
        the membrane; positive: outside a closed membrane).
    hosts : tuple of int, optional
        Indices (in ``membranes``) of the membranes it may sit on; default all.
    """

    name: str
    density: np.ndarray
    count: int
    axis_xyz: tuple[float, float, float] = (0.0, 0.0, 1.0)
    offset_a: float = 0.0
    hosts: tuple[int, ...] | None = None


def axis_to_normal(axis_xyz: np.ndarray, normal_xyz: np.ndarray, spin_deg: float) -> Rotation:
    """Return the rotation that maps ``axis_xyz`` onto ``normal_xyz``, then spins about it.

    Parameters
    ----------
    axis_xyz, normal_xyz : np.ndarray
        ``(3,)`` unit vectors ``(x, y, z)``.
    spin_deg : float
        Turn about the normal in degrees, after the shortest turn of the axis onto it.

    Returns
    -------
    Rotation
        ``R`` with ``R axis = normal`` (acting on ``(x, y, z)``).
    """
    a = np.asarray(axis_xyz, dtype=np.float64)
    n = np.asarray(normal_xyz, dtype=np.float64)
    v = np.cross(a, n)
    s, c = float(np.linalg.norm(v)), float(a @ n)
    if s > 1e-12:
        align = Rotation.from_rotvec(v / s * math.atan2(s, c))
    elif c > 0:
        align = Rotation.identity()
    else:  # antiparallel: half a turn about any axis normal to a
        other = np.eye(3)[int(np.argmin(np.abs(a)))]
        w = np.cross(a, other)
        align = Rotation.from_rotvec(w / np.linalg.norm(w) * math.pi)
    return Rotation.from_rotvec(n * math.radians(spin_deg)) * align


def _label_in(body: Body, corner: tuple[int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """Return ``body``'s label on the grid of ``shape`` at box index ``corner`` (False off it)."""
    out = np.zeros(shape, dtype=bool)
    window = clip_window(
        tuple(b - c for b, c in zip(body.corner_zyx, corner, strict=True)),  # type: ignore[arg-type]
        body.label.shape,
        shape,
    )
    if window is not None:
        grid, local = window
        out[grid] = body.label[local]
    return out


def _labelled(body: Body, zyx: tuple[int, int, int]) -> bool:
    """Return whether ``body``'s label holds box voxel ``zyx``."""
    i = tuple(z - c for z, c in zip(zyx, body.corner_zyx, strict=True))
    return all(0 <= a < n for a, n in zip(i, body.label.shape, strict=True)) and bool(body.label[i])


def place_membrane_proteins(
    requests: Sequence[MembraneProteinRequest],
    membranes: Sequence[Body],
    box_shape: tuple[int, int, int],
    voxel_size_a: float,
    *,
    rng: np.random.Generator,
    slab_voxels: int | None = None,
    occupied: np.ndarray | None = None,
    label_fraction: float = 0.2,
) -> list[Body]:
    """Place proteins on membranes, without overlaps, the largest maps first.

    Each protein tries up to 400 surface samples (uniform over the samples of its host
    membranes, i.e. by area) and spins until its label fits. Place all membrane proteins
    of a scene in one call: ``occupied`` must not hold earlier membrane proteins (a
    protein may cut into its membrane's label, so its own label would be excused there).

    Parameters
    ----------
    requests : sequence of MembraneProteinRequest
        The protein classes.
    membranes : sequence of Body
        Membranes from `faket.phantom.membranes` (``extra`` with ``"surface_zyx"`` and
        ``"normals_zyx"``); their labels are avoided, except the host's.
    box_shape : tuple of int
        ``(nz, ny, nx)`` of the box in voxels.
    voxel_size_a : float
        Voxel size in A.
    rng : np.random.Generator
        Source of every random draw (the same seed gives identical bodies).
    slab_voxels : int, optional
        Thickness of the slab (centred in Z) in voxels; default the box.
    occupied : np.ndarray, optional
        ``(nz, ny, nx)`` bool: voxels already taken (membranes may be in it; left
        unchanged).
    label_fraction : float
        Label threshold as a fraction of each reference map's maximum.

    Returns
    -------
    list of Body
        ``class_name`` = the request's name, potential ``(n, n, n)`` float32 in V,
        ``centre_zyx`` in box voxels, ``angles_zxz_deg`` of the rotation used, ``extra``:
        ``"membrane"`` (host index), ``"normal_zyx"``, ``"offset_a"``.

    Raises
    ------
    FaketInputError
        When a class cannot be placed as often as asked (saying how many fit).
    ValueError
        For a bad map, axis, host index, box or slab.
    """
    nz, ny, nx = box_shape
    h = float(voxel_size_a)
    if not h > 0:
        raise ValueError(f"the voxel size must be positive, got {voxel_size_a} A")
    slab = nz if slab_voxels is None else int(slab_voxels)
    if not 0 < slab <= nz:
        raise ValueError(f"the slab must be 1 to {nz} voxels thick (the box), got {slab}")
    z_lo = (nz - slab) / 2.0
    lo = np.array([math.ceil(z_lo - 0.5), 0, 0])
    hi = np.array([math.ceil(z_lo + slab - 0.5), ny, nx])
    if occupied is not None and occupied.shape != tuple(box_shape):
        raise ValueError(f"occupied must have the box's shape {box_shape}, got {occupied.shape}")
    proteins = np.zeros(tuple(box_shape), dtype=bool)
    extents = np.array(
        [[b.corner_zyx, np.add(b.corner_zyx, b.label.shape)] for b in membranes]
    ).reshape(-1, 2, 3)
    order = sorted(range(len(requests)), key=lambda i: -requests[i].density.shape[0])
    placed: list[Body] = []
    for i in order:
        req = requests[i]
        reference = np.asarray(req.density, dtype=np.float32)
        if reference.ndim != 3 or len(set(reference.shape)) != 1 or reference.shape[0] % 2 == 0:
            raise ValueError(f"the map of {req.name!r} must be an odd cube, got {reference.shape}")
        if req.count < 0:
            raise ValueError(f"the count of {req.name!r} must not be negative")
        axis = np.asarray(req.axis_xyz, dtype=np.float64)
        if axis.shape != (3,) or not np.linalg.norm(axis) > 0:
            raise ValueError(f"the axis of {req.name!r} must be a non-zero (x, y, z) vector")
        axis = axis / np.linalg.norm(axis)
        hosts = tuple(range(len(membranes))) if req.hosts is None else req.hosts
        if any(not 0 <= m < len(membranes) for m in hosts):
            raise ValueError(f"the hosts of {req.name!r} must be membrane indices")
        points = [np.asarray(membranes[m].extra["surface_zyx"]).reshape(-1, 3) for m in hosts]
        surface = np.concatenate([np.zeros((0, 3)), *points])
        owner = np.concatenate(
            [np.zeros(0, int)] + [np.full(len(points[i]), m) for i, m in enumerate(hosts)]
        )
        normals = np.concatenate(
            [np.zeros((0, 3))]
            + [np.asarray(membranes[m].extra["normals_zyx"]).reshape(-1, 3) for m in hosts]
        )
        threshold = label_fraction * float(reference.max())
        half = reference.shape[0] // 2
        # Rotated and shifted by < 1 voxel, the centre voxel samples the central 3^3.
        core = reference[half - 1 : half + 2, half - 1 : half + 2, half - 1 : half + 2]
        solid = half > 0 and float(core.min()) > threshold
        for k in range(req.count):
            body: Body | None = None
            for _ in range(_MAX_ATTEMPTS if len(surface) else 0):
                j = int(rng.integers(len(surface)))
                spin = float(rng.uniform(0.0, 360.0))
                centre = surface[j] + req.offset_a / h * normals[j]
                base = np.rint(centre).astype(np.int64)
                corner = base - half
                if np.any(corner < lo - half) or np.any(corner + 2 * half >= hi + half):
                    continue  # the centre is outside the box or slab
                at = (int(base[0]), int(base[1]), int(base[2]))
                if solid and (
                    proteins[at]
                    or (
                        occupied is not None
                        and occupied[at]
                        and not _labelled(membranes[int(owner[j])], at)
                    )
                ):
                    continue  # its centre voxel, surely labelled, is taken
                turn = axis_to_normal(axis, normals[j][::-1], spin)
                angles = _zxz_degrees(turn)
                rotation = Rotation.from_euler("ZXZ", angles, degrees=True)
                moved = rotate_map(reference, rotation, centre - base)
                label = moved > threshold
                key = _fit(
                    label, corner, lo, hi, proteins, occupied, membranes, extents, int(owner[j])
                )
                if key is None:
                    continue
                c = (float(centre[0]), float(centre[1]), float(centre[2]))
                body = Body(req.name, moved, label, key, c, angles)
                body.extra = {
                    "membrane": int(owner[j]),
                    "normal_zyx": normals[j].copy(),
                    "offset_a": float(req.offset_a),
                }
                break
            if body is None:
                raise FaketInputError(
                    f"only {k} of {req.count} {req.name!r} membrane proteins fit on the "
                    f"membranes without overlaps ({len(placed)} placed in all); lower the "
                    "count or add membranes"
                )
            mark(proteins, body)
            placed.append(body)
    return placed


def _fit(
    label: np.ndarray,
    corner: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    proteins: np.ndarray,
    occupied: np.ndarray | None,
    membranes: Sequence[Body],
    extents: np.ndarray,
    host: int,
) -> tuple[int, int, int] | None:
    """Return the corner if ``label`` at ``corner`` is free (bar its host), else None."""
    nz = np.nonzero(label.any(axis=(1, 2)))[0]
    ny = np.nonzero(label.any(axis=(0, 2)))[0]
    nx = np.nonzero(label.any(axis=(0, 1)))[0]
    if not len(nz):
        return None
    first = corner + np.array([nz[0], ny[0], nx[0]])
    last = corner + np.array([nz[-1], ny[-1], nx[-1]])
    if np.any(first < lo) or np.any(last >= hi):
        return None  # the label leaves the box or slab
    key = (int(corner[0]), int(corner[1]), int(corner[2]))
    window = clip_window(key, label.shape, proteins.shape)
    if window is None:
        return None
    box, local = window
    if np.any(proteins[box][label[local]]):
        return None
    end = corner + np.array(label.shape)
    near = np.nonzero(np.all((extents[:, 0] < end) & (extents[:, 1] > corner), axis=1))[0]
    for m in near.tolist():
        if m != host and np.any(_label_in(membranes[m], key, label.shape) & label):
            return None
    if occupied is not None:
        hits = occupied[box] & label[local]
        if host in near:
            hits &= ~_label_in(membranes[host], key, label.shape)[local]
        if np.any(hits):
            return None
    return key
