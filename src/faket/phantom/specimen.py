"""Specimen assembly: particles at random positions and orientations, without overlaps.

Orientation convention
----------------------
A particle's ``(phi, theta, psi)`` are intrinsic ZXZ Euler angles in degrees:
``R = Rotation.from_euler("ZXZ", (phi, theta, psi), degrees=True)`` (scipy; rotate
``phi`` about Z, then ``theta`` about the new X, then ``psi`` about the new Z). ``R``
acts on ``(x, y, z)`` vectors and maps the reference map onto the placed particle:
``placed(centre + R r) = reference(r)`` for an offset ``r`` from the reference's centre.

Labels
------
A voxel belongs to a particle when the particle's rotated map exceeds
``label_fraction`` (default 0.2) of its reference map's maximum (gold beads: 0.5 of
their density, i.e. the partial-volume half). Particles never share a labelled voxel:
bounding spheres are tested first against all placed particles, and where they meet,
the rotated label itself is tested against the occupancy mask. On top of existing
matter (``base``) or when crowding to a volume fraction, every trial's label is tested
against the occupancy mask (see `faket.phantom._placement`).

Crowding
--------
``volume_fraction`` F fills the cytosol: the slab's voxels that no matter occupies when
the soluble particles start (not the base's membranes, filaments and proteins, nor this
call's vesicles and gold beads). Soluble particles are added until their labelled voxels
reach F of it. Random sequential addition of the built-in mix reaches 0.3 in a 40-voxel
slab; far above, the last particles find no free place (an error says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.io import Particle
from faket.phantom._placement import (
    Canvas,
    Kind,
    fill_order,
    place_one_checked,
    place_sparse,
    zxz_degrees,
)
from faket.phantom._placement import label_radius as _label_radius
from faket.phantom._placement import rotate_map as _rotate_map
from faket.phantom.builtin import gold_bead_map, vesicle_map

_zxz_degrees = zxz_degrees  # imported by faket.phantom.membrane_proteins


@dataclass(frozen=True)
class ParticleClass:
    """One class of particles to place.

    Attributes
    ----------
    name : str
        Class name, one word (e.g. a PDB ID, ``"ring"``).
    density : np.ndarray
        ``(n, n, n)`` float32 reference map in V, ``n`` odd, centred at ``(n // 2,) * 3``.
    count : int
        How many to place.
    source : str
        Where the map came from (a file name or ``"builtin:<type>"``).
    """

    name: str
    density: np.ndarray
    count: int
    source: str = ""


@dataclass
class Specimen:
    """A labelled specimen ("grandmodel").

    Attributes
    ----------
    grandmodel : np.ndarray
        ``(nz, ny, nx)`` float32 potential in V.
    class_mask : np.ndarray
        ``(nz, ny, nx)`` int32: 0 background, else the class id (1-based, `classes` order).
    occupancy_mask : np.ndarray
        ``(nz, ny, nx)`` int32: 0 background, else the particle's 1-based index in
        `particles`.
    particles : list of Particle
        Centres in voxels, angles ZXZ in degrees (see the module docstring).
    classes : list of dict
        Per class: ``id``, ``name``, ``source``, ``diameter_a`` (in A: twice the largest
        distance of a labelled voxel corner from the centre; vesicles and fiducials:
        the largest that can be drawn).
    voxel_size_a : float
        Voxel size in A.
    layers : dict
        Geometry of the matter drawn before the particles (membranes, filaments; see
        `faket.phantom.scene.layer_records`); empty without it.
    """

    grandmodel: np.ndarray
    class_mask: np.ndarray
    occupancy_mask: np.ndarray
    particles: list[Particle] = field(default_factory=list)
    classes: list[dict[str, object]] = field(default_factory=list)
    voxel_size_a: float = 1.0
    layers: dict[str, list[dict[str, object]]] = field(default_factory=dict)


def random_rotations(n: int, rng: np.random.Generator) -> Rotation:
    """Return ``n`` rotations uniform on SO(3) (Haar measure), drawn from ``rng``."""
    return Rotation.random(n, random_state=rng)


def rotate_map(
    density: np.ndarray,
    rotation: Rotation,
    shift_zyx: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """Rotate a centred cubic map about its centre voxel, by trilinear interpolation.

    Parameters
    ----------
    density : np.ndarray
        ``(n, n, n)`` map, centre at ``(n // 2,) * 3``.
    rotation : Rotation
        One rotation acting on ``(x, y, z)``; the output is ``out(c + R r) = in(c + r)``.
    shift_zyx : sequence of float
        Sub-voxel shift of the output's centre, ``(z, y, x)`` in voxels.

    Returns
    -------
    np.ndarray
        ``(n, n, n)`` float32, zero where the source falls outside the input.
    """
    return _rotate_map(density, rotation, shift_zyx)


def check_particles_fit(
    classes: Sequence[ParticleClass],
    shape: tuple[int, int, int],
    voxel_size_a: float,
    *,
    slab_voxels: int | None = None,
    n_vesicles: int = 0,
    vesicle_radius_a: tuple[float, float] = (200.0, 400.0),
    label_fraction: float = 0.2,
) -> None:
    """Refuse, before any placement, a class or vesicles too large for the box and slab.

    The same limits as `build_specimen` applies to each instance, taken on the unrotated
    maps (a rotation moves the labelled extent by interpolation only). Whether ``count``
    instances fit *together* is only known by placing them; `build_specimen` says so.

    Raises
    ------
    FaketInputError
        Naming the class and its size.
    """
    nz, ny, nx = shape
    slab = nz if slab_voxels is None else int(slab_voxels)
    for c in classes:
        reference = np.asarray(c.density)
        if c.count == 0 or reference.size == 0 or not reference.max() > 0:
            continue
        radius = _label_radius(reference > label_fraction * float(reference.max()))
        if 2 * radius > min(slab, ny, nx):
            raise FaketInputError(
                f"a {c.name!r} particle ({2 * radius * voxel_size_a / 10:.0f} nm) does not fit "
                f"in the box {tuple(shape)} with a slab of {slab} voxels; enlarge --box or --slab"
            )
    if n_vesicles:
        cap = 0.5 * min(slab, ny, nx) * voxel_size_a - 40.0
        if min(vesicle_radius_a[0], cap) <= 45.0:
            raise FaketInputError(
                f"vesicles do not fit in a slab of {slab} voxels; make --slab thicker"
            )


def build_specimen(
    classes: Sequence[ParticleClass],
    shape: tuple[int, int, int],
    voxel_size_a: float,
    *,
    slab_voxels: int | None = None,
    n_vesicles: int = 0,
    vesicle_radius_a: tuple[float, float] = (200.0, 400.0),
    n_fiducials: int = 0,
    fiducial_diameter_a: tuple[float, float] = (50.0, 100.0),
    seed: int = 0,
    label_fraction: float = 0.2,
    progress: Callable[[int], object] | None = None,
    base: Specimen | None = None,
    volume_fraction: float | None = None,
) -> Specimen:
    """Place particles, vesicles and gold beads in a box, without overlaps.

    Placement order: vesicles, then the classes from the largest to the smallest, then
    the fiducials; the particle list keeps that order. Each instance draws one rotation
    (uniform on SO(3)) and then up to 400 uniform positions whose labelled extent lies
    inside the box in X and Y and inside the slab (centred in Z) until one does not
    touch an earlier instance. Vesicles are not rotated (angles 0).

    With ``base`` or ``volume_fraction``, each instance draws a rotation and a sub-voxel
    shift, renders its label once, and tries up to 1000 integer voxel positions (its
    labelled voxels inside the box and the slab), and so on for up to 4 rotations;
    every trial is tested against the occupancy mask, so nothing overlaps matter
    already there.

    Parameters
    ----------
    classes : sequence of ParticleClass
        The particle classes; class ids follow this order (1-based, after ``base``'s
        classes), then ``vesicle`` and ``fiducial`` when present.
    shape : tuple of int
        ``(nz, ny, nx)`` of the box in voxels.
    voxel_size_a : float
        Voxel size in A (every map must be at this voxel size).
    slab_voxels : int, optional
        Thickness of the sample slab in voxels; default the whole box.
    n_vesicles : int
        Number of vesicles (radius uniform in ``vesicle_radius_a``, capped so they fit).
    vesicle_radius_a : tuple of float
        Range of vesicle radii in A.
    n_fiducials : int
        Number of gold beads (diameter uniform in ``fiducial_diameter_a``).
    fiducial_diameter_a : tuple of float
        Range of bead diameters in A.
    seed : int
        Seed of every random draw: the same arguments give bit-identical arrays.
    label_fraction : float
        Label threshold as a fraction of each reference map's maximum.
    progress : callable, optional
        Called with 1 after each instance is placed.
    base : Specimen, optional
        A specimen already holding matter (membranes, filaments, membrane proteins) of
        this ``shape`` and voxel size, its masks int32 and potential float32. The new
        instances are drawn on top, into ``base``'s own arrays (updated in place and
        returned in the new Specimen: pass a copy to keep it); their class ids follow
        ``base``'s largest, their indices ``len(base.particles)``.
    volume_fraction : float, optional
        Crowd the cytosol (see the module docstring) to this fraction, ``0 < F < 1``:
        the ``count`` of each class becomes its weight. The classes are drawn in rounds
        in proportion to their counts, the larger maps first in a round, until the new
        soluble particles' labelled voxels reach ``F`` of the cytosol (the last one
        overshoots it by its own volume). Vesicles and fiducials are placed first, as
        asked, and are not cytosol; the particle list keeps that order.

    Returns
    -------
    Specimen

    Raises
    ------
    FaketInputError
        If a particle does not fit in the slab, a class cannot be placed as often as
        asked, or the volume fraction cannot be reached (the message says how many fit,
        or the fraction reached, and what to change).
    ValueError
        For a bad shape, voxel size, slab, count, base or volume fraction.
    """
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"the box must be three positive sizes (nz, ny, nx), got {shape}")
    if not voxel_size_a > 0:
        raise ValueError(f"the voxel size must be positive, got {voxel_size_a} A")
    nz, ny, nx = shape
    slab = nz if slab_voxels is None else int(slab_voxels)
    if not 0 < slab <= nz:
        raise ValueError(f"the slab must be 1 to {nz} voxels thick (the box), got {slab}")
    if any(c.count < 0 for c in classes) or n_vesicles < 0 or n_fiducials < 0:
        raise ValueError("counts must not be negative")
    if volume_fraction is not None:
        if not 0 < volume_fraction < 1:
            raise ValueError(
                f"the volume fraction must lie between 0 and 1 (exclusive), got {volume_fraction}"
            )
        if not any(c.count > 0 and np.asarray(c.density).max() > 0 for c in classes):
            raise ValueError(
                "crowding to a volume fraction needs a class with a positive count and map "
                "(the counts weigh the classes)"
            )
    if base is not None:
        _check_base(base, tuple(shape), voxel_size_a)
    check_particles_fit(
        classes,
        shape,
        voxel_size_a,
        slab_voxels=slab,
        n_vesicles=n_vesicles,
        vesicle_radius_a=vesicle_radius_a,
        label_fraction=label_fraction,
    )
    rng = np.random.default_rng(seed)
    z_lo = (nz - slab) / 2.0
    z_hi = z_lo + slab
    first_id = 0 if base is None else max((int(str(c["id"])) for c in base.classes), default=0)

    head: list[Kind] = []  # vesicles
    tail: list[Kind] = []  # fiducials
    infos: list[dict[str, object]] = []
    order = sorted(range(len(classes)), key=lambda i: -classes[i].density.shape[0])
    for i, c in enumerate(classes):
        reference = np.asarray(c.density)
        if reference.ndim != 3 or len(set(reference.shape)) != 1 or reference.shape[0] % 2 == 0:
            raise ValueError(f"the map of {c.name!r} must be an odd cube, got {reference.shape}")
        diameter = 2 * voxel_size_a * _label_radius(reference > label_fraction * reference.max())
        infos.append(
            {"id": first_id + i + 1, "name": c.name, "source": c.source, "diameter_a": diameter}
        )
    next_id = first_id + len(classes) + 1
    if n_vesicles:
        cap = 0.5 * min(slab, ny, nx) * voxel_size_a - 40.0
        r_lo, r_hi = (min(r, cap) for r in vesicle_radius_a)  # r_lo > 45: checked above
        radii = rng.uniform(r_lo, r_hi, n_vesicles)
        maps = [vesicle_map(float(r), voxel_size_a) for r in radii]
        head.append(Kind("vesicle", next_id, maps, n_vesicles, label_fraction, False))
        infos.append(
            {
                "id": next_id,
                "name": "vesicle",
                "source": "builtin:vesicle",
                "diameter_a": float(2 * r_hi + 40.0),
            }
        )
        next_id += 1
    soluble = [
        Kind(
            classes[i].name,
            first_id + i + 1,
            [np.asarray(classes[i].density, np.float32)],
            classes[i].count,
            label_fraction,
            True,
        )
        for i in order
    ]
    if n_fiducials:
        diameters = rng.uniform(*fiducial_diameter_a, n_fiducials)
        maps = [gold_bead_map(float(d), voxel_size_a) for d in diameters]
        tail.append(Kind("fiducial", next_id, maps, n_fiducials, 0.5, False))
        infos.append(
            {
                "id": next_id,
                "name": "fiducial",
                "source": "builtin:gold",
                "diameter_a": float(fiducial_diameter_a[1]),
            }
        )

    if base is None:
        arrays = (
            np.zeros(shape, dtype=np.float32),
            np.zeros(shape, dtype=np.int32),
            np.zeros(shape, dtype=np.int32),
        )
    else:
        arrays = (base.grandmodel, base.class_mask, base.occupancy_mask)
    canvas = Canvas(*arrays, [], z_lo, z_hi, voxel_size_a, slab)
    offset = 0 if base is None else len(base.particles)
    if base is None and volume_fraction is None:
        place_sparse(canvas, [*head, *soluble, *tail], rng, progress)
    else:
        if volume_fraction is None:
            for kind in [*head, *soluble, *tail]:
                _place_counts(canvas, kind, rng, offset, progress)
        else:  # the beads first too: a crowded box has no room left for them
            for kind in [*head, *tail]:
                _place_counts(canvas, kind, rng, offset, progress)
            _crowd(canvas, soluble, float(volume_fraction), rng, offset, progress)
    particles = canvas.particles if base is None else [*base.particles, *canvas.particles]
    all_classes = infos if base is None else [*base.classes, *infos]
    layers = {} if base is None else base.layers
    return Specimen(*arrays, particles, all_classes, voxel_size_a, layers)


def _check_base(base: Specimen, shape: tuple[int, ...], voxel_size_a: float) -> None:
    """Refuse a base specimen that cannot take new instances in place."""
    if base.grandmodel.shape != shape or base.class_mask.shape != shape:
        raise ValueError(f"the base specimen is {base.grandmodel.shape}, not the box {shape}")
    if base.occupancy_mask.shape != shape:
        raise ValueError(f"the base's occupancy mask is {base.occupancy_mask.shape}, not {shape}")
    if not math.isclose(base.voxel_size_a, voxel_size_a, rel_tol=1e-6):
        raise ValueError(
            f"the base specimen has {base.voxel_size_a} A voxels, not {voxel_size_a} A"
        )
    if base.grandmodel.dtype != np.float32 or base.class_mask.dtype != np.int32:
        raise ValueError("the base specimen needs a float32 potential and int32 masks")
    if base.occupancy_mask.dtype != np.int32:
        raise ValueError("the base specimen needs a float32 potential and int32 masks")
    if int(base.occupancy_mask.max(initial=0)) > len(base.particles):
        raise ValueError(
            "the base's occupancy mask holds indices beyond its particle list "
            f"({int(base.occupancy_mask.max())} > {len(base.particles)})"
        )


def _place_counts(
    canvas: Canvas,
    kind: Kind,
    rng: np.random.Generator,
    offset: int,
    progress: Callable[[int], object] | None,
) -> None:
    """Place ``kind.count`` instances, each tested against the occupancy mask."""
    for k in range(kind.count):
        reference = kind.maps[k if len(kind.maps) > 1 else 0]
        if place_one_checked(canvas, kind, reference, rng, offset) is None:
            done = sum(1 for p in canvas.particles if p.class_name == kind.name)
            raise FaketInputError(
                f"only {done} of {kind.count} {kind.name!r} particles fit without "
                f"overlaps ({len(canvas.particles)} placed in all); lower the counts or "
                "enlarge --box or --slab"
            )
        if progress is not None:
            progress(1)


def _crowd(
    canvas: Canvas,
    soluble: Sequence[Kind],
    volume_fraction: float,
    rng: np.random.Generator,
    offset: int,
    progress: Callable[[int], object] | None,
) -> None:
    """Add soluble instances until they label ``volume_fraction`` of the cytosol.

    First a plan for 95 % of the target, in proportion to the counts, the larger maps
    first (they need the free space); then rounds (`fill_order`) until it is reached.
    """
    z_first, z_last = math.ceil(canvas.z_lo), math.floor(canvas.z_hi) - 1
    cytosol = int(np.count_nonzero(canvas.occupancy[z_first : z_last + 1] == 0))
    if cytosol == 0:
        raise FaketInputError("the slab has no free voxels left to crowd with particles")
    target = volume_fraction * cytosol
    usable = [k for k in soluble if k.count > 0 and k.maps[0].max() > 0]
    reached, empty = 0, 0

    def place(kind: Kind) -> None:
        nonlocal reached, empty
        voxels = place_one_checked(canvas, kind, kind.maps[0], rng, offset)
        if voxels is None:
            raise FaketInputError(
                f"reached a volume fraction of {reached / cytosol:.3f} of the cytosol, not "
                f"{volume_fraction:g}: a {kind.name!r} particle found no free place; lower "
                "the volume fraction, use smaller particles or enlarge --box or --slab"
            )
        empty = empty + 1 if voxels == 0 else 0
        if empty > 100:
            raise FaketInputError(
                "the particles are too small to label at this voxel size; crowding stopped"
            )
        reached += voxels
        if progress is not None:
            progress(1)

    for kind, n in zip(usable, _plan(usable, 0.95 * target), strict=True):
        for _ in range(n):
            place(kind)
    for kind in fill_order(usable):
        if reached >= target:
            return
        place(kind)


def _plan(kinds: Sequence[Kind], voxels: float) -> list[int]:
    """Return instances per kind whose unrotated labels hold about ``voxels`` in all.

    The numbers follow the kinds' counts (largest remainder).
    """
    weights = np.array([k.count for k in kinds], dtype=np.float64)
    weights /= weights.sum()
    sizes = np.array(
        [np.count_nonzero(k.maps[0] > k.threshold_fraction * k.maps[0].max()) for k in kinds]
    )
    total = int(voxels // max(float(weights @ sizes), 1.0))
    exact = total * weights
    numbers = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - numbers), kind="stable")[: total - int(numbers.sum())]:
        numbers[i] += 1
    return [int(n) for n in numbers]
