"""Placement loops of `faket.phantom.specimen.build_specimen` (private).

Two loops draw instances into a box's potential and masks (in place):

* `place_sparse`: the original loop (a box that starts empty, fixed counts). Each trial
  position is continuous; the rotated label is re-rendered at its sub-voxel shift only
  where bounding spheres meet, and tested against the occupancy mask there.
* `place_one_checked`: on top of existing matter, or to a volume fraction. Each instance
  draws its rotation and one sub-voxel shift, is rendered once, and then tries integer
  voxel positions: every trial's label is tested against the occupancy mask, so nothing
  overlaps the matter already there, whatever drew it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.io import Particle

MAX_ATTEMPTS = 400
"""Trial positions per instance of `place_sparse`."""

MAX_CHECKED_ATTEMPTS = 1000
"""Trial positions per rotation in `place_one_checked` (each costs a mask look-up)."""

MAX_ROTATIONS = 4
"""Rotations an instance of `place_one_checked` tries before it gives up."""


@dataclass
class Kind:
    """One kind of instance to place: a class, the vesicles or the fiducials."""

    name: str
    class_id: int
    maps: list[np.ndarray]  # one reference per instance, or one shared
    count: int
    threshold_fraction: float
    rotate: bool


@dataclass
class Canvas:
    """The box being drawn: potential, masks, particle list and the slab's Z range."""

    grandmodel: np.ndarray
    class_mask: np.ndarray
    occupancy: np.ndarray
    particles: list[Particle]
    z_lo: float
    z_hi: float
    voxel_size_a: float
    slab: int

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nz, ny, nx)`` of the box."""
        nz, ny, nx = self.grandmodel.shape
        return int(nz), int(ny), int(nx)


def label_radius(mask: np.ndarray) -> float:
    """Return the largest distance (voxels) of a labelled voxel's corner from the centre."""
    c = mask.shape[0] // 2
    idx = np.argwhere(mask) - c
    return float(np.sqrt((idx**2).sum(1)).max()) + math.sqrt(3) / 2 if len(idx) else 0.0


def rotate_map(
    density: np.ndarray,
    rotation: Rotation,
    shift_zyx: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """Rotate a centred cubic map about its centre voxel (see `specimen.rotate_map`)."""
    r_xyz = rotation.as_matrix()
    r_zyx = r_xyz[::-1, ::-1]  # the same rotation acting on (z, y, x)
    inverse = r_zyx.T
    centre = np.full(3, density.shape[0] // 2, dtype=np.float64)
    offset = centre - inverse @ (centre + np.asarray(shift_zyx, dtype=np.float64))
    out = ndimage.affine_transform(
        density, inverse, offset=offset, order=1, mode="constant", cval=0.0
    )
    return out.astype(np.float32, copy=False)


def zxz_degrees(rotation: Rotation) -> tuple[float, float, float]:
    """Return ZXZ Euler angles in degrees (a gimbal-locked rotation sets psi to 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        phi, theta, psi = rotation.as_euler("ZXZ", degrees=True)
    return float(phi), float(theta), float(psi)


def window(
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


def _does_not_fit(canvas: Canvas, name: str, radius: float) -> FaketInputError:
    return FaketInputError(
        f"a {name!r} particle ({2 * radius * canvas.voxel_size_a / 10:.0f} nm) "
        f"does not fit in the box {canvas.shape} with a slab of {canvas.slab} voxels; "
        "enlarge --box or --slab"
    )


def _bounds(canvas: Canvas, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the lowest and highest centre ``(z, y, x)`` keeping a label in the slab."""
    _, ny, nx = canvas.shape
    lo = np.array([canvas.z_lo + radius - 0.5, radius - 0.5, radius - 0.5])
    hi = np.array([canvas.z_hi - radius - 0.5, ny - radius - 0.5, nx - radius - 0.5])
    return lo, hi


def _draw(
    canvas: Canvas,
    kind: Kind,
    rotated: np.ndarray,
    label: np.ndarray,
    base: np.ndarray,
    centre: np.ndarray,
    rotation: Rotation,
    index_offset: int,
) -> int:
    """Add an instance to the canvas; return its labelled voxels in the box."""
    box, sub = window(base, rotated.shape[0], canvas.shape)
    inside = label[sub]
    canvas.grandmodel[box] += rotated[sub]
    index = index_offset + len(canvas.particles) + 1
    canvas.occupancy[box][inside] = index
    canvas.class_mask[box][inside] = kind.class_id
    phi, theta, psi = zxz_degrees(rotation) if kind.rotate else (0.0, 0.0, 0.0)
    canvas.particles.append(
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
    return int(inside.sum())


def place_sparse(
    canvas: Canvas,
    kinds: Sequence[Kind],
    rng: np.random.Generator,
    progress: Callable[[int], object] | None,
) -> None:
    """Place every instance of ``kinds`` in an empty canvas (the original loop)."""
    shape = canvas.shape
    centres = np.zeros((0, 3))
    radii_placed = np.zeros(0)
    for kind in kinds:
        for k in range(kind.count):
            reference = kind.maps[k if len(kind.maps) > 1 else 0]
            threshold = kind.threshold_fraction * float(reference.max())
            rotation = (
                Rotation.random(1, random_state=rng)[0] if kind.rotate else Rotation.identity()
            )
            rotated = rotate_map(reference, rotation) if kind.rotate else reference
            label = rotated > threshold
            radius = label_radius(label)
            lo, hi = _bounds(canvas, radius)
            if np.any(hi < lo):
                raise _does_not_fit(canvas, kind.name, radius)
            placed = False
            for _ in range(MAX_ATTEMPTS):
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
                    box, sub = window(base, reference.shape[0], shape)
                    if np.any(canvas.occupancy[box][trial[sub]] != 0):
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
                done = sum(1 for p in canvas.particles if p.class_name == kind.name)
                raise FaketInputError(
                    f"only {done} of {kind.count} {kind.name!r} particles fit without "
                    f"overlaps ({len(canvas.particles)} placed in all); lower the counts or "
                    "enlarge --box or --slab"
                )
            label = rotated > threshold
            _draw(canvas, kind, rotated, label, base, centre, rotation, 0)
            centres = np.vstack([centres, centre])
            radii_placed = np.append(radii_placed, radius)
            if progress is not None:
                progress(1)


def place_one_checked(
    canvas: Canvas, kind: Kind, reference: np.ndarray, rng: np.random.Generator, index_offset: int
) -> int | None:
    """Place one instance where its label meets no occupied voxel; return its voxels.

    Up to `MAX_ROTATIONS` rotations (each with a sub-voxel shift) are drawn, each tried
    at `MAX_CHECKED_ATTEMPTS` integer positions. Returns None when all met occupied
    voxels. An instance too small to label is drawn at the box's centre, unlabelled.
    """
    n_z, n_y, n_x = canvas.shape
    half = reference.shape[0] // 2
    threshold = kind.threshold_fraction * float(reference.max())
    # Voxel k spans k -/+ 1/2: the slab's voxels are ceil(z_lo) to floor(z_hi) - 1.
    z_first, z_last = math.ceil(canvas.z_lo), math.floor(canvas.z_hi) - 1
    occupied = canvas.occupancy
    for _ in range(MAX_ROTATIONS if kind.rotate else 1):
        rotation = Rotation.random(1, random_state=rng)[0] if kind.rotate else Rotation.identity()
        frac = rng.random(3) - 0.5
        if kind.rotate:
            rotated = rotate_map(reference, rotation, frac)
        else:
            rotated = ndimage.shift(reference, frac, order=1).astype(np.float32, copy=False)
        label = rotated > threshold
        if not label.any():
            base = np.array([n_z // 2, n_y // 2, n_x // 2])
            return _draw(canvas, kind, rotated, label, base, base + frac, rotation, index_offset)
        # Integer positions whose label voxels all lie in the slab (Z) and the box (Y, X).
        idx = np.argwhere(label) - half
        first, last = idx.min(0), idx.max(0)
        lo = np.array([z_first, 0, 0]) - first
        hi = np.array([z_last, n_y - 1, n_x - 1]) - last
        if np.any(hi < lo):
            raise _does_not_fit(canvas, kind.name, label_radius(label))
        trials = lo + rng.integers(0, hi - lo + 1, size=(MAX_CHECKED_ATTEMPTS, 3))
        found = _first_free(occupied, idx, trials)
        if found is not None:
            base = trials[found]
            return _draw(canvas, kind, rotated, label, base, base + frac, rotation, index_offset)
    return None


def _first_free(occupied: np.ndarray, offsets: np.ndarray, trials: np.ndarray) -> int | None:
    """Return the first trial whose voxels ``trial + offsets`` are all free, or None.

    ``offsets`` are ``(m, 3)`` label voxels, ``trials`` ``(k, 3)`` positions (all inside
    the box). Trials are tested in batches of growing size, each by one gather.
    """
    flat = occupied.reshape(-1) if occupied.flags.c_contiguous else None
    strides = np.array([occupied.shape[1] * occupied.shape[2], occupied.shape[2], 1])
    offsets_flat = offsets @ strides
    start, batch = 0, 1
    while start < len(trials):
        chunk = trials[start : start + batch]
        if flat is not None:
            hit = flat[(chunk @ strides)[:, None] + offsets_flat[None, :]].any(axis=1)
        else:
            hit = np.array([occupied[tuple((t + offsets).T)].any() for t in chunk])
        free = np.flatnonzero(~hit)
        if len(free):
            return start + int(free[0])
        start, batch = start + batch, min(4 * batch, 64)
    return None


def fill_order(kinds: Sequence[Kind]) -> Iterator[Kind]:
    """Yield kinds without end, in proportion to their counts, largest map first per round.

    Round ``r`` gives kind ``c`` ``floor((r + 1) q_c) - floor(r q_c)`` instances, with
    ``q_c = count_c / min(positive counts)``: every round holds at least one of the
    rarest kind, and after any whole round the numbers follow the counts to within one.
    """
    active = [k for k in kinds if k.count > 0]
    if not active:
        return
    smallest = min(k.count for k in active)
    by_size = sorted(active, key=lambda k: -k.maps[0].shape[0])
    r = 0
    while True:
        for kind in by_size:
            q = kind.count / smallest
            for _ in range(math.floor((r + 1) * q) - math.floor(r * q)):
                yield kind
        r += 1
