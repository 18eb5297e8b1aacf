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
the rotated label itself is tested against the occupancy mask.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.io import Particle
from faket.phantom.builtin import gold_bead_map, vesicle_map

_MAX_ATTEMPTS = 400


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
    """

    grandmodel: np.ndarray
    class_mask: np.ndarray
    occupancy_mask: np.ndarray
    particles: list[Particle] = field(default_factory=list)
    classes: list[dict[str, object]] = field(default_factory=list)
    voxel_size_a: float = 1.0


def random_rotations(n: int, rng: np.random.Generator) -> Rotation:
    """Return ``n`` rotations uniform on SO(3) (Haar measure), drawn from ``rng``."""
    return Rotation.random(n, random_state=rng)


def rotate_map(
    density: np.ndarray, rotation: Rotation, shift_zyx: Sequence[float] = (0.0, 0.0, 0.0)
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
    r_xyz = rotation.as_matrix()
    r_zyx = r_xyz[::-1, ::-1]  # the same rotation acting on (z, y, x)
    inverse = r_zyx.T
    centre = np.full(3, density.shape[0] // 2, dtype=np.float64)
    offset = centre - inverse @ (centre + np.asarray(shift_zyx, dtype=np.float64))
    out = ndimage.affine_transform(
        density, inverse, offset=offset, order=1, mode="constant", cval=0.0
    )
    return out.astype(np.float32, copy=False)


def _label_radius(mask: np.ndarray) -> float:
    """Return the largest distance (voxels) of a labelled voxel's corner from the centre."""
    c = mask.shape[0] // 2
    idx = np.argwhere(mask) - c
    return float(np.sqrt((idx**2).sum(1)).max()) + math.sqrt(3) / 2 if len(idx) else 0.0


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


@dataclass
class _Kind:
    name: str
    class_id: int
    maps: list[np.ndarray]  # one reference per instance, or one shared
    count: int
    threshold_fraction: float
    rotate: bool


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
) -> Specimen:
    """Place particles, vesicles and gold beads in a box, without overlaps.

    Placement order: vesicles, then the classes from the largest to the smallest, then
    the fiducials; the particle list keeps that order. Each instance draws one rotation
    (uniform on SO(3)) and then up to 400 uniform positions whose labelled extent lies
    inside the box in X and Y and inside the slab (centred in Z) until one does not
    touch an earlier instance. Vesicles are not rotated (angles 0).

    Parameters
    ----------
    classes : sequence of ParticleClass
        The particle classes; class ids follow this order (1-based), then ``vesicle``
        and ``fiducial`` when present.
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

    Returns
    -------
    Specimen

    Raises
    ------
    FaketInputError
        If a particle does not fit in the slab, or a class cannot be placed as often as
        asked (the message says how many fit and what to change).
    ValueError
        For a bad shape, voxel size, slab or count.
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

    kinds: list[_Kind] = []
    infos: list[dict[str, object]] = []
    order = sorted(range(len(classes)), key=lambda i: -classes[i].density.shape[0])
    for i, c in enumerate(classes):
        reference = np.asarray(c.density)
        if reference.ndim != 3 or len(set(reference.shape)) != 1 or reference.shape[0] % 2 == 0:
            raise ValueError(f"the map of {c.name!r} must be an odd cube, got {reference.shape}")
        diameter = 2 * voxel_size_a * _label_radius(reference > label_fraction * reference.max())
        infos.append({"id": i + 1, "name": c.name, "source": c.source, "diameter_a": diameter})
    next_id = len(classes) + 1
    if n_vesicles:
        cap = 0.5 * min(slab, ny, nx) * voxel_size_a - 40.0
        r_lo, r_hi = (min(r, cap) for r in vesicle_radius_a)  # r_lo > 45: checked above
        radii = rng.uniform(r_lo, r_hi, n_vesicles)
        maps = [vesicle_map(float(r), voxel_size_a) for r in radii]
        kinds.append(_Kind("vesicle", next_id, maps, n_vesicles, label_fraction, False))
        infos.append(
            {
                "id": next_id,
                "name": "vesicle",
                "source": "builtin:vesicle",
                "diameter_a": float(2 * r_hi + 40.0),
            }
        )
        next_id += 1
    for i in order:
        c = classes[i]
        kinds.append(
            _Kind(c.name, i + 1, [np.asarray(c.density, np.float32)], c.count, label_fraction, True)
        )
    if n_fiducials:
        diameters = rng.uniform(*fiducial_diameter_a, n_fiducials)
        maps = [gold_bead_map(float(d), voxel_size_a) for d in diameters]
        kinds.append(_Kind("fiducial", next_id, maps, n_fiducials, 0.5, False))
        infos.append(
            {
                "id": next_id,
                "name": "fiducial",
                "source": "builtin:gold",
                "diameter_a": float(fiducial_diameter_a[1]),
            }
        )

    grandmodel = np.zeros(shape, dtype=np.float32)
    class_mask = np.zeros(shape, dtype=np.int32)
    occupancy = np.zeros(shape, dtype=np.int32)
    particles: list[Particle] = []
    centres = np.zeros((0, 3))
    radii_placed = np.zeros(0)
    for kind in kinds:
        for k in range(kind.count):
            reference = kind.maps[k if len(kind.maps) > 1 else 0]
            threshold = kind.threshold_fraction * float(reference.max())
            rotation = random_rotations(1, rng)[0] if kind.rotate else Rotation.identity()
            rotated = rotate_map(reference, rotation) if kind.rotate else reference
            label = rotated > threshold
            radius = _label_radius(label)
            lo = np.array([z_lo + radius - 0.5, radius - 0.5, radius - 0.5])
            hi = np.array([z_hi - radius - 0.5, ny - radius - 0.5, nx - radius - 0.5])
            if np.any(hi < lo):
                raise FaketInputError(
                    f"a {kind.name!r} particle ({2 * radius * voxel_size_a / 10:.0f} nm) "
                    f"does not fit in the box {shape} with a slab of {slab} voxels; "
                    "enlarge --box or --slab"
                )
            placed = False
            for _ in range(_MAX_ATTEMPTS):
                centre = lo + rng.random(3) * (hi - lo)
                d2 = ((centres - centre) ** 2).sum(1)
                near = d2 < (radii_placed + radius) ** 2
                base = np.rint(centre).astype(int)
                if near.any():
                    frac = centre - base
                    moved = (
                        rotate_map(reference, rotation, frac)
                        if kind.rotate
                        else (ndimage.shift(reference, frac, order=1))
                    )
                    trial = moved > threshold
                    window, sub = _window(base, reference.shape[0], shape)
                    if np.any(occupancy[window][trial[sub]] != 0):
                        continue
                    rotated = moved
                else:
                    frac = centre - base
                    if np.any(frac != 0):
                        rotated = (
                            rotate_map(reference, rotation, frac)
                            if kind.rotate
                            else (ndimage.shift(reference, frac, order=1))
                        )
                placed = True
                break
            if not placed:
                done = sum(1 for p in particles if p.class_name == kind.name)
                raise FaketInputError(
                    f"only {done} of {kind.count} {kind.name!r} particles fit without "
                    f"overlaps ({len(particles)} placed in all); lower the counts or "
                    "enlarge --box or --slab"
                )
            label = rotated > threshold
            window, sub = _window(base, reference.shape[0], shape)
            grandmodel[window] += rotated[sub]
            index = len(particles) + 1
            occupancy[window][label[sub]] = index
            class_mask[window][label[sub]] = kind.class_id
            phi, theta, psi = _zxz_degrees(rotation) if kind.rotate else (0.0, 0.0, 0.0)
            particles.append(
                Particle(
                    kind.name,
                    float(centre[2]),
                    float(centre[1]),
                    float(centre[0]),
                    float(phi),
                    float(theta),
                    float(psi),
                )
            )
            centres = np.vstack([centres, centre])
            radii_placed = np.append(radii_placed, radius)
            if progress is not None:
                progress(1)
    return Specimen(grandmodel, class_mask, occupancy, particles, infos, voxel_size_a)


def _zxz_degrees(rotation: Rotation) -> tuple[float, float, float]:
    """Return ZXZ Euler angles in degrees (a gimbal-locked rotation sets psi to 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        phi, theta, psi = rotation.as_euler("ZXZ", degrees=True)
    return float(phi), float(theta), float(psi)


def _window(
    base: np.ndarray, n: int, shape: tuple[int, int, int]
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Return the box slices of a cube of size ``n`` centred at ``base``, and the cube's."""
    half = n // 2
    box, cube = [], []
    for b, size in zip(base, shape, strict=True):
        start, stop = int(b) - half, int(b) - half + n
        box.append(slice(max(start, 0), min(stop, size)))
        cube.append(slice(max(start, 0) - start, n - (stop - min(stop, size))))
    return tuple(box), tuple(cube)
