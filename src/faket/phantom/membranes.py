"""Lipid membranes of any shape, drawn as bilayers around a midplane surface.

Each shape is an implicit surface ``f(p) = 0`` in its own frame (``p`` = ``(x, y, z)``
in A from the membrane's centre, box axes turned by the membrane's rotation), with
``f < 0`` inside a closed surface. A voxel's signed distance to the midplane is taken to
first order, ``d = f / |grad f|`` (exact for the sphere, torus and tube), and the
potential is the bilayer profile `bilayer_profile` of ``d``. Distances are evaluated only
in blocks (16^3, then 4^3 and 2^3 voxels) that can come within reach of the surface, and
the body's grid is cut to the voxels within reach, inside the box and the slab. Label:
``|d| <`` `bilayer_half_width_a`, the outer crossings of 0.2 x the profile's peak (the
vesicles' rule), the dip between the leaflets included (0.13 of the peak at 10 A voxels).

Shapes and the meaning of their size ``size_a`` (A)
---------------------------------------------------
- ``sphere``: radius of the midplane.
- ``ellipsoid``: the largest semi-axis; the two others are 0.6 to 1 times it (random).
- ``blob``: mean radius of a sphere deformed by a random radial perturbation of degree
  2 and 3 (spherical harmonics), at most 20 % of the radius.
- ``torus``: major radius; the minor (tube) radius is 0.3 to 0.5 times it.
- ``tube`` (open): radius of a tubule along a straight or gently curved axis (bend
  radius at least twice the box diagonal) through the centre, cut by the box.
- ``sheet`` (open): largest height of a smooth random height field (three waves of
  0.5 to 1.5 box widths) above its mean plane through the centre, cut by the box.

Records
-------
A membrane is a `Body` of class ``"membrane"`` (angles NaN) whose ``extra`` holds
``"shape"``; ``"surface_zyx"`` ``(m, 3)`` float64 midplane points in box voxels, about one
per ``spacing^2`` of area (lattice points within half a spacing of the surface, projected
onto it), inside the box and slab only; ``"normals_zyx"`` ``(m, 3)`` unit normals (outward
for closed shapes; a sheet's point to its frame's +z side, a tube's away from its axis);
``"area_a2"``: the midplane area inside the box and slab in A^2, ``h^2 sum K(d / h)`` over
its voxels with ``K`` the unit hat function (a level-set estimate, within 1 % for smooth
surfaces); ``"parameters"``: the shape's drawn parameters (A); ``"frame_xyz"``: the
``(3, 3)`` rotation whose columns are the shape's x, y, z axes in box ``(x, y, z)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.phantom._bodies import Body, mark, overlaps
from faket.phantom._membrane_shapes import _dot, _draw_surface, _norm, _Surface
from faket.phantom.builtin import leaflet_peak_v

_SHAPES: dict[str, tuple[str, tuple[float, float]]] = {  # description, default sizes (A)
    "sphere": ("closed sphere (radius)", (200.0, 500.0)),
    "ellipsoid": ("closed ellipsoid, random axes (largest semi-axis)", (250.0, 600.0)),
    "blob": ("closed sphere, smooth random radial deformation (mean radius)", (250.0, 500.0)),
    "torus": ("closed torus (major radius)", (250.0, 500.0)),
    "tube": ("open tubule, straight or gently curved axis (radius)", (150.0, 300.0)),
    "sheet": ("open sheet, smooth random height field (largest height)", (0.0, 300.0)),
}
MEMBRANE_SHAPES: dict[str, str] = {name: text for name, (text, _) in _SHAPES.items()}
"""Membrane shapes: name -> description (what ``size_a`` means)."""
_CLOSED = ("sphere", "ellipsoid", "blob", "torus")
_BLOCK = 16  # distances are first evaluated at the centres of blocks of 16^3 voxels
_MAX_ATTEMPTS = 300
_MOVES_PER_DRAW = 20  # positions tried for each drawn closed shape


def _sigma2(voxel_size_a: float, leaflet_sigma_a: float) -> float:
    return leaflet_sigma_a**2 + voxel_size_a**2 / 12.0


def bilayer_profile(
    distance_a: np.ndarray,
    voxel_size_a: float,
    *,
    leaflet_distance_a: float = 40.0,
    leaflet_sigma_a: float = 8.0,
) -> np.ndarray:
    """Return a lipid bilayer's potential at signed distances from its midplane.

    ``A [g(d - t/2) + g(d + t/2)]``: two Gaussian leaflets of unit peak, ``t`` apart,
    ``sigma^2 = leaflet_sigma_a^2 + voxel^2 / 12`` (a voxel's box average), ``A`` =
    `faket.phantom.builtin.leaflet_peak_v` (a DOPC bilayer's potential per area) -- the
    radial profile of `faket.phantom.builtin.vesicle_map`, as a function of ``d``.

    Parameters
    ----------
    distance_a : np.ndarray
        Signed distances ``d`` from the midplane in A, any shape.
    voxel_size_a : float
        Voxel size in A.
    leaflet_distance_a : float
        Distance ``t`` between the leaflets' centres in A.
    leaflet_sigma_a : float
        Standard deviation of each leaflet in A.

    Returns
    -------
    np.ndarray
        float32 potential in V, the shape of ``distance_a``.
    """
    d = np.asarray(distance_a, dtype=np.float64)
    sigma2 = _sigma2(voxel_size_a, leaflet_sigma_a)
    half = leaflet_distance_a / 2.0
    g = np.exp(-((d - half) ** 2) / (2 * sigma2)) + np.exp(-((d + half) ** 2) / (2 * sigma2))
    return (leaflet_peak_v(sigma2) * g).astype(np.float32)


def bilayer_half_width_a(
    voxel_size_a: float,
    *,
    leaflet_distance_a: float = 40.0,
    leaflet_sigma_a: float = 8.0,
    label_fraction: float = 0.2,
) -> float:
    """Return the label's half thickness: where the profile falls to a fraction of its peak.

    A voxel belongs to a membrane when ``|d|`` is below this (the outer crossings of
    ``label_fraction`` x the peak of `bilayer_profile`, as for vesicles; the dip between
    the leaflets is labelled too). About 34 A for the defaults at 10 A voxels.
    """
    sigma = math.sqrt(_sigma2(voxel_size_a, leaflet_sigma_a))
    d = np.linspace(0.0, leaflet_distance_a / 2 + 6 * sigma, 20001)
    kw = {"leaflet_distance_a": leaflet_distance_a, "leaflet_sigma_a": leaflet_sigma_a}
    p = bilayer_profile(d, voxel_size_a, **kw).astype(np.float64)
    above = np.nonzero(p > label_fraction * p.max())[0]
    return float(d[above[-1]])


# --- evaluation on lattices -----------------------------------------------------------


def _near_lattice(
    surface: _Surface,
    centre_zyx: np.ndarray,
    h: float,
    lo_zyx: np.ndarray,
    counts: np.ndarray,
    step: float,
    band_a: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return lattice indices ``(n, 3)`` and distances (A) of points within ``band_a``.

    The lattice is ``lo_zyx + step * k`` (box voxels), ``0 <= k < counts``. Blocks of
    16^3, 4^3 and 2^3 points are dropped when their centre is too far for any of their points
    to be within the band (with a margin of 1.5 where ``d`` is only first order).
    """
    margin = 1.0 if surface.shape in ("sphere", "torus", "tube") else 1.5
    grid = [np.arange(0, n, _BLOCK, dtype=np.int32) for n in counts]
    origins = np.stack(np.meshgrid(*grid, indexing="ij"), -1).reshape(-1, 3)
    for size, sub in ((_BLOCK, 4), (4, 2), (2, 1)):
        centres = lo_zyx + step * (origins + (size - 1) / 2.0)
        reach = band_a + math.sqrt(3) * step * (size - 1) / 2.0 * h
        origins = origins[np.abs(surface.distance(centres, centre_zyx, h)) <= margin * reach]
        n = size // sub
        children = np.stack(np.meshgrid(*[np.arange(n, dtype=np.int32)] * 3, indexing="ij"), -1)
        origins = (origins[:, None, :] + sub * children.reshape(-1, 3)).reshape(-1, 3)
    ks, ds = [np.zeros((0, 3), np.int32)], [np.zeros(0)]
    for start in range(0, len(origins), 1 << 19):
        k = origins[start : start + (1 << 19)]
        dk = surface.distance(lo_zyx + step * k, centre_zyx, h)
        keep = np.abs(dk) < band_a
        keep[keep] = (k[keep] < counts).all(1)
        ks.append(k[keep])
        ds.append(dk[keep])
    return np.concatenate(ks), np.concatenate(ds)


@dataclass(frozen=True)
class _Scene:
    h: float  # voxel size in A
    box: tuple[int, int, int]
    z_range: tuple[int, int]  # the slab's first and last-plus-one Z index
    leaflets: tuple[float, float]  # leaflet distance and sigma in A
    spacing_a: float  # surface sample spacing

    @property
    def lo(self) -> np.ndarray:  # the box and slab's first voxel; `hi`: one past the last
        return np.array([self.z_range[0], 0, 0])

    @property
    def hi(self) -> np.ndarray:
        return np.array([self.z_range[1], self.box[1], self.box[2]])


def _reach_a(sc: _Scene) -> float:
    """Return how far from the midplane (A) the potential is drawn: t/2 + 4 sigma."""
    return sc.leaflets[0] / 2 + 4 * math.sqrt(_sigma2(sc.h, sc.leaflets[1]))


def _scene(
    box_shape: tuple[int, int, int],
    voxel_size_a: float,
    slab_voxels: int | None,
    leaflets: tuple[float, float],
    sample_spacing_a: float | None,
) -> _Scene:
    """Check the box, voxel size and slab (centred in Z) and bundle them."""
    if len(box_shape) != 3 or min(box_shape) < 1:
        raise ValueError(f"the box must be three positive sizes (nz, ny, nx), got {box_shape}")
    if not voxel_size_a > 0:
        raise ValueError(f"the voxel size must be positive, got {voxel_size_a} A")
    nz = box_shape[0]
    slab = nz if slab_voxels is None else int(slab_voxels)
    if not 0 < slab <= nz:
        raise ValueError(f"the slab must be 1 to {nz} voxels thick (the box), got {slab}")
    if sample_spacing_a is not None and not sample_spacing_a > 0:
        raise ValueError(f"the sample spacing must be positive, got {sample_spacing_a} A")
    z_lo = (nz - slab) / 2.0
    z_range = (math.ceil(z_lo - 0.5), math.ceil(z_lo + slab - 0.5))
    spacing = float(voxel_size_a if sample_spacing_a is None else sample_spacing_a)
    box = (int(box_shape[0]), int(box_shape[1]), int(box_shape[2]))
    return _Scene(float(voxel_size_a), box, z_range, leaflets, spacing)


@dataclass
class _Shell:
    """A drawn membrane before it is placed: its centre may be moved by whole voxels."""

    surface: _Surface
    centre: np.ndarray
    corner: np.ndarray  # box index of the grid's voxel (0, 0, 0)
    potential: np.ndarray
    label: np.ndarray
    near_k: np.ndarray  # (n, 3) grid indices of the voxels within one voxel of the midplane
    near_d: np.ndarray  # (n,) their distances in A


def _render(surface: _Surface, centre: np.ndarray, sc: _Scene) -> _Shell | None:
    """Draw a closed shape whole around ``centre``, an open one inside the box and slab."""
    h, (t, sigma) = sc.h, sc.leaflets
    if surface.bound_a is None:
        lo, counts = sc.lo, sc.hi - sc.lo
    else:
        half = math.ceil((surface.bound_a + _reach_a(sc)) / h) + 1
        lo, counts = np.floor(centre).astype(np.int64) - half, np.full(3, 2 * half + 2)
    k, d = _near_lattice(surface, centre, h, lo, counts, 1.0, _reach_a(sc))
    if not len(k):
        return None
    k_min = k.min(0)
    k -= k_min
    idx = tuple(k.T)
    potential = np.zeros(tuple(k.max(0) + 1), dtype=np.float32)
    potential[idx] = bilayer_profile(d, h, leaflet_distance_a=t, leaflet_sigma_a=sigma)
    label = np.zeros(potential.shape, dtype=bool)
    label[idx] = np.abs(d) < bilayer_half_width_a(h, leaflet_distance_a=t, leaflet_sigma_a=sigma)
    near = np.abs(d) < h
    return _Shell(surface, centre, lo + k_min, potential, label, k[near], d[near])


def _project(
    surface: _Surface, zyx: np.ndarray, centre: np.ndarray, h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return points ``(m, 3)`` (box voxels) moved onto the midplane and their unit normals."""
    p = surface.local(zyx, centre, h)
    for _ in range(4):  # Newton steps onto f = 0
        f, g = surface.field(p)
        p = p - (f / (g * g).sum(1).clip(1e-18))[:, None] * g
    _, g = surface.field(p)
    normals = _dot(g / _norm(g)[:, None], surface.frame.T)
    return centre + _dot(p, surface.frame.T)[:, ::-1] / h, normals[:, ::-1]


def _samples(shell: _Shell, sc: _Scene) -> tuple[np.ndarray, np.ndarray]:
    """Return a shell's midplane samples and normals, one per ``spacing^2`` of area.

    The lattice points of that spacing within half a spacing of the midplane, projected.
    """
    h, surface = sc.h, shell.surface
    if sc.spacing_a == h:  # the render's own voxels
        points = shell.corner + shell.near_k[np.abs(shell.near_d) < h / 2]
        return _project(surface, points, shell.centre, h)
    lo, step = shell.corner - 2.0, sc.spacing_a / h
    counts = np.ceil((np.array(shell.label.shape) + 4.0) / step).astype(np.int64) + 1
    k, _ = _near_lattice(surface, shell.centre, h, lo, counts, step, sc.spacing_a / 2.0)
    return _project(surface, lo + step * k, shell.centre, h)


def _place_shell(shell: _Shell, shift: np.ndarray, sc: _Scene) -> Body | None:
    """Return the shell moved by an integer ``shift``, cut to the box and slab (views)."""
    corner = shell.corner + shift
    a = np.maximum(corner, sc.lo)
    b = np.minimum(corner + shell.label.shape, sc.hi)
    if np.any(b <= a):
        return None
    cut = tuple(slice(int(i), int(j)) for i, j in zip(a - corner, b - corner, strict=True))
    if not shell.label[cut].any():
        return None
    c = shell.centre + shift
    corner_zyx = (int(a[0]), int(a[1]), int(a[2]))
    centre_zyx = (float(c[0]), float(c[1]), float(c[2]))
    return Body("membrane", shell.potential[cut], shell.label[cut], corner_zyx, centre_zyx)


def _finish(body: Body, shell: _Shell, shift: np.ndarray, sc: _Scene) -> Body:
    """Copy a placed body's arrays and record its surface samples, normals and area."""
    points, normals = _samples(shell, sc)
    points = points + shift
    inside = np.all((points >= sc.lo - 0.5) & (points < sc.hi - 0.5), axis=1)
    k = shell.near_k + shell.corner + shift
    in_box = np.all((k >= sc.lo) & (k < sc.hi), axis=1)
    body.potential = np.ascontiguousarray(body.potential)  # copies a cut shell only
    body.label = np.ascontiguousarray(body.label)
    body.extra = {
        "shape": shell.surface.shape,
        "surface_zyx": points[inside],
        "normals_zyx": normals[inside],
        "area_a2": float(sc.h * (sc.h - np.abs(shell.near_d[in_box])).sum()),
        "parameters": {k: np.array(v) for k, v in shell.surface.params.items()},
        "frame_xyz": shell.surface.frame.copy(),
    }
    return body


def make_membrane(
    shape: str,
    size_a: float,
    centre_zyx: Sequence[float],
    box_shape: tuple[int, int, int],
    voxel_size_a: float,
    rng: np.random.Generator,
    *,
    rotation: Rotation | None = None,
    slab_voxels: int | None = None,
    leaflet_distance_a: float = 40.0,
    leaflet_sigma_a: float = 8.0,
    sample_spacing_a: float | None = None,
) -> Body:
    """Return one membrane of a shape and size at a centre, cut to the box and slab.

    Parameters
    ----------
    shape : str
        One of `MEMBRANE_SHAPES`.
    size_a : float
        The shape's size in A (see the module docstring: radius, largest semi-axis, ...).
    centre_zyx : sequence of float
        The shape's centre in box voxels ``(z, y, x)`` (a sheet's mean plane and a tube's
        axis pass through it).
    box_shape : tuple of int
        ``(nz, ny, nx)`` of the box in voxels.
    voxel_size_a : float
        Voxel size in A.
    rng : np.random.Generator
        Source of the shape's random parameters (and of the rotation when not given).
    rotation : Rotation, optional
        Turns the shape's frame (acting on ``(x, y, z)``); default uniform on SO(3).
    slab_voxels, leaflet_distance_a, leaflet_sigma_a, sample_spacing_a
        As for `place_membranes`.

    Returns
    -------
    Body
        ``"membrane"``, float32 potential in V, label ``|d| <`` `bilayer_half_width_a`,
        ``extra`` as in the module docstring.

    Raises
    ------
    ValueError
        For an unknown shape, a size too small for the bilayer, or a membrane with no
        voxel in the box and slab.
    """
    sc = _scene(
        box_shape,
        voxel_size_a,
        slab_voxels,
        (leaflet_distance_a, leaflet_sigma_a),
        sample_spacing_a,
    )
    rot = Rotation.random(random_state=rng) if rotation is None else rotation
    surface = _draw_surface(shape, size_a, rot, np.array(sc.box) * sc.h, rng, leaflet_distance_a)
    shell = _render(surface, np.asarray(centre_zyx, dtype=np.float64), sc)
    zero = np.zeros(3, dtype=np.int64)
    body = None if shell is None else _place_shell(shell, zero, sc)
    if shell is None or body is None:
        raise ValueError(f"the {shape} membrane at {tuple(centre_zyx)} misses the box and slab")
    return _finish(body, shell, zero, sc)


@dataclass(frozen=True)
class MembraneRequest:
    """Membranes of one shape to place.

    Attributes
    ----------
    shape : str
        One of `MEMBRANE_SHAPES`.
    count : int, optional
        How many; give this or ``area_fraction``.
    area_fraction : float, optional
        Place membranes of this shape until their midplane area inside the box and slab
        reaches this fraction of the slab's XY area (``ny x nx`` voxels): 1.0 is as much
        membrane as one flat sheet across the box.
    size_a : tuple of float, optional
        Range of sizes in A (uniform; meaning per shape in the module docstring); default
        a typical range per shape.
    """

    shape: str
    count: int | None = None
    area_fraction: float | None = None
    size_a: tuple[float, float] | None = None


def place_membranes(
    requests: Sequence[MembraneRequest],
    box_shape: tuple[int, int, int],
    voxel_size_a: float,
    *,
    rng: np.random.Generator,
    slab_voxels: int | None = None,
    occupied: np.ndarray | None = None,
    leaflet_distance_a: float = 40.0,
    leaflet_sigma_a: float = 8.0,
    sample_spacing_a: float | None = None,
) -> list[Body]:
    """Place membranes at random, touching neither ``occupied`` nor one another.

    Open shapes (sheets, tubes) are placed first, then the closed ones, each request in
    order. A membrane draws a size, a rotation (uniform on SO(3)) and a centre (uniform
    over the box in X and Y, over the slab in Z: closed shapes may be cut by the slab
    faces and box sides); a closed shape is drawn once and tried at up to 20 positions
    before it is drawn again. Up to 300 tries per membrane.

    Parameters
    ----------
    requests : sequence of MembraneRequest
        What to place.
    box_shape : tuple of int
        ``(nz, ny, nx)`` of the box in voxels.
    voxel_size_a : float
        Voxel size in A.
    rng : np.random.Generator
        Source of every random draw (the same seed gives identical bodies).
    slab_voxels : int, optional
        Thickness of the slab (centred in Z) in voxels; default the box.
    occupied : np.ndarray, optional
        ``(nz, ny, nx)`` bool: voxels already taken (left unchanged).
    leaflet_distance_a, leaflet_sigma_a : float
        Bilayer profile (see `bilayer_profile`).
    sample_spacing_a : float, optional
        Spacing of the surface samples in A; default one voxel.

    Returns
    -------
    list of Body
        In placement order; see `make_membrane`.

    Raises
    ------
    FaketInputError
        When a request cannot be met without overlaps (the message says how many fit).
    ValueError
        For a bad request, box, voxel size or slab.
    """
    t = leaflet_distance_a
    sc = _scene(box_shape, voxel_size_a, slab_voxels, (t, leaflet_sigma_a), sample_spacing_a)
    taken = np.zeros(sc.box, bool) if occupied is None else occupied.copy()
    if taken.shape != sc.box:
        raise ValueError(f"occupied must have the box's shape {sc.box}, got {taken.shape}")
    for r in requests:
        if r.shape not in _SHAPES:
            raise ValueError(
                f"unknown membrane shape {r.shape!r}; choose one of {', '.join(_SHAPES)}"
            )
        if (r.count is None) == (r.area_fraction is None):
            raise ValueError(f"give a count or an area fraction for the {r.shape} membranes")
        if (r.count or 0) < 0 or (r.area_fraction or 0.0) < 0:
            raise ValueError(f"the {r.shape} membranes' count or area fraction is negative")
        low, high = r.size_a or _SHAPES[r.shape][1]
        if not low <= high:
            raise ValueError(f"the {r.shape} membranes' sizes must be a range, got {r.size_a}")
        # Refuse, up front, sizes too small to draw (a throwaway generator: rng is untouched).
        extent_a = np.array(sc.box) * sc.h
        _draw_surface(r.shape, low, Rotation.identity(), extent_a, np.random.default_rng(0), t)
    slab_area = sc.box[1] * sc.box[2] * sc.h**2
    bodies: list[Body] = []
    for r in sorted(requests, key=lambda r: r.shape in _CLOSED):
        sizes = r.size_a or _SHAPES[r.shape][1]
        goal = None if r.area_fraction is None else r.area_fraction * slab_area
        done, area = 0, 0.0
        while done < r.count if r.count is not None else area < (goal or 0.0):
            found = _place_one(r.shape, sizes, rng, sc, taken)
            if found is None:
                got = f"only {done} of {r.count}"
                if r.count is None:
                    got = f"only {area / slab_area:.2f} of an area fraction {r.area_fraction}:"
                raise FaketInputError(
                    f"{got} {r.shape} membranes fit without overlaps ({len(bodies)} membranes "
                    "placed in all); lower the count or the sizes, or enlarge the box or slab"
                )
            body = _finish(*found, sc)
            mark(taken, body)
            bodies.append(body)
            done += 1
            area += float(body.extra["area_a2"])  # type: ignore[arg-type]
    return bodies


def _place_one(
    shape: str,
    sizes: tuple[float, float],
    rng: np.random.Generator,
    sc: _Scene,
    taken: np.ndarray,
) -> tuple[Body, _Shell, np.ndarray] | None:
    """Try up to 300 placements; return the free body, its shell and shift, or None.

    An open shape spans the box, so before drawing it its distance is evaluated at the
    taken voxels of the slab (when there are under 4 M): its label is ``|d| <`` the half
    width there, so one within it is an overlap, found without drawing.
    """
    lo, hi = sc.lo - 0.5, sc.hi - 0.5
    extent_a = np.array(sc.box) * sc.h
    hits = np.zeros((0, 3))
    if shape not in _CLOSED:
        z0, z1 = sc.z_range
        hits = (np.argwhere(taken[z0:z1]) + np.array([z0, 0, 0])).astype(np.float64)
        hits = hits if len(hits) < 4_000_000 else np.zeros((0, 3))
    t, sigma = sc.leaflets
    width = bilayer_half_width_a(sc.h, leaflet_distance_a=t, leaflet_sigma_a=sigma)
    attempts = 0
    while attempts < _MAX_ATTEMPTS:
        size = float(rng.uniform(*sizes))
        rotation = Rotation.random(random_state=rng)
        surface = _draw_surface(shape, size, rotation, extent_a, rng, t)
        closed = surface.bound_a is not None
        centre = lo + rng.random(3) * (hi - lo)
        shift = np.floor(centre).astype(np.int64) if closed else np.zeros(3, np.int64)
        if len(hits) and np.any(np.abs(surface.distance(hits, centre, sc.h)) < width):
            attempts += 1
            continue
        shell = _render(surface, centre - shift, sc)  # a closed one, moved by whole voxels
        for _ in range(_MOVES_PER_DRAW if closed else 1):
            attempts += 1
            body = None if shell is None else _place_shell(shell, shift, sc)
            if shell is not None and body is not None and not overlaps(taken, body):
                return body, shell, shift
            shift = np.floor(lo + rng.random(3) * (hi - lo)).astype(np.int64)
    return None
