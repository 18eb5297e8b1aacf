"""Built-in particles (no files needed), vesicles and gold fiducials.

Built-in particles
------------------
Each type is a layout of Gaussian blobs in units of its diameter (drawn at its default
diameter or scaled to another). The layout only gives the shape: the particle is the
solid region where the layout's blob sum exceeds 0.2 of its peak (its largest value at
a blob centre), filled with protein as an atomic model is, and drawn like one:

* pseudo-atoms at the number density of protein's heavy atoms (0.0581 per A^3: a mean
  residue of 110 Da, C5 N1.35 O1.5 S0.04, at 0.81 Da/A^3), one per cell of a cubic
  lattice (2.58 A) at a seeded uniform position inside the cell, kept inside the solid;
* each carries the integrated potential of a mean heavy atom with its hydrogens
  (`protein_potential_density` / 0.0581 = 138.6 V x A^3), as a Gaussian of carbon's
  width at B = 20 A^2, integrated over the voxels (as `splat_gaussians` does).

So a built-in has the integrated potential of protein filling its molecular volume
(``protein_potential_density() x volume``, the same at every voxel size), its mass is
``0.81 Da/A^3 x volume``, and its voxels scatter like an atomic model's at any voxel
size: atomic graininess included (5 A voxels hold about 7 atoms).

Correction (v2): built-ins were the blob sum itself, scaled so that the *mean inside the
label* was `protein_potential_density` (8.05 V). The label (voxels above 0.2 of the
maximum) of a smooth map at 10 A is mostly partial-volume edge and the blob sums peak
at their blob centres, so that scaling gave each particle 1.4 to 2.8 times the integrated
potential of protein filling its solid at 10 A (1.2 to 2.3 times at 5 A) and voxels of
twice protein's potential: in-label 95th percentiles of 13-16 V at 10 A and 5 A, where
an atomic model of the same solid (with its hydrogens, through `atoms_potential`) gives
8.1-8.5 V at 10 A and 9.7-9.9 V at 5 A (medians 6.0-7.5 V); now within 3 % of it
(``tests/test_phantom_contrast.py``). Hydrogens are counted because the microscope's
ice (`faket.microscope`, 4.575 V) and its fully dense matter (8.05 V, the ice a voxel
displaces) count theirs; deposited models without hydrogens (most PDB files) give 0.82
times these values.

Vesicles are two Gaussian leaflets whose integrated potential per area is that of a
DOPC bilayer (see `vesicle_map`).
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable

import numpy as np
from scipy.special import erf

from faket.phantom.analytic import ball
from faket.phantom.potential import (
    gold_potential_density,
    integrated_potential,
    protein_potential_density,
    scattering_coefficients,
)

HEAVY_ATOMS_PER_A3 = 7.89 * 0.81 / 110.0
"""Number density of protein's heavy atoms, 1/A^3 (C5 N1.35 O1.5 S0.04 per 110 Da)."""

SHAPE_LEVEL = 0.2
"""A built-in's solid: where its blob sum exceeds this fraction of its peak."""

PSEUDO_ATOM_B_A2 = 20.0
"""B-factor of the pseudo-atoms, A^2."""

DOPC_AREA_A2 = 67.4
"""Area per lipid of a DOPC bilayer, A^2 (Kucerka et al. 2008, 30 C)."""

_DOPC_ATOMS = {"C": 44, "H": 84, "N": 1, "O": 8, "P": 1}
_CHUNK = 1 << 22  # values per matrix product

Blobs = tuple[np.ndarray, np.ndarray, np.ndarray]  # centres (n, 3) zyx, sigmas (n,), weights


def _circle(n: int, radius: float, z: float = 0.0, phase: float = 0.0) -> np.ndarray:
    t = 2 * math.pi * (np.arange(n) / n) + phase
    return np.stack([np.full(n, z), radius * np.sin(t), radius * np.cos(t)], axis=1)


def _line(n: int, length: float) -> np.ndarray:
    z = np.linspace(-length / 2, length / 2, n)
    return np.stack([z, np.zeros(n), np.zeros(n)], axis=1)


def _globule() -> Blobs:  # a compact ellipsoidal globule, 1.0 x 0.8 x 0.7
    g = np.linspace(-1, 1, 5)
    pts = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    pts = pts[(pts**2).sum(1) <= 1.0] * np.array([0.35, 0.28, 0.25])
    return pts, np.full(len(pts), 0.1), np.ones(len(pts))


def _ring() -> Blobs:  # a flat ring (torus), like a GroEL/peroxiredoxin ring seen flat
    pts = _circle(24, 0.36)
    return pts, np.full(len(pts), 0.07), np.ones(len(pts))


def _rod() -> Blobs:  # a straight rod along Z, length 1, width 0.25
    pts = _line(16, 0.85)
    return pts, np.full(len(pts), 0.06), np.ones(len(pts))


def _barrel() -> Blobs:  # a hollow open cylinder (proteasome-like core), 4 stacked rings
    pts = np.concatenate(
        [_circle(14, 0.3, z, phase=0.22 * i) for i, z in enumerate(np.linspace(-0.33, 0.33, 4))]
    )
    return pts, np.full(len(pts), 0.075), np.ones(len(pts))


def _cage() -> Blobs:  # a hollow icosahedral shell of 12 vertices + 30 edge midpoints
    p = (1 + math.sqrt(5)) / 2
    v = np.array(
        [(0, s1, s2 * p) for s1 in (-1, 1) for s2 in (-1, 1)]
        + [(s1, s2 * p, 0) for s1 in (-1, 1) for s2 in (-1, 1)]
        + [(s2 * p, 0, s1) for s1 in (-1, 1) for s2 in (-1, 1)],
        dtype=np.float64,
    )
    d = np.linalg.norm(v[:, None] - v[None], axis=-1)
    i, j = np.nonzero(np.triu(np.isclose(d, 2.0)))
    pts = np.concatenate([v, 0.5 * (v[i] + v[j])])
    pts = 0.42 * pts / np.linalg.norm(pts, axis=1, keepdims=True)
    return pts, np.full(len(pts), 0.05), np.ones(len(pts))


def _cluster() -> Blobs:  # an asymmetric cluster of five blobs of different sizes
    pts = np.array(
        [[0, 0, 0], [0.05, 0.22, 0.1], [-0.2, -0.1, 0.18], [0.15, -0.2, -0.15], [-0.1, 0.12, -0.3]]
    )
    sig = np.array([0.12, 0.09, 0.08, 0.07, 0.06])
    return pts, sig, sig**3 / 0.12**3


def _dumbbell() -> Blobs:  # two unequal balls joined by a thin neck, along X
    big = np.array([[0.0, 0.0, -0.27]])
    small = np.array([[0.0, 0.0, 0.3]])
    neck = np.stack([np.zeros(5), np.zeros(5), np.linspace(-0.12, 0.18, 5)], axis=1)
    pts = np.concatenate([big, small, neck])
    sig = np.array([0.16, 0.12] + [0.04] * 5)
    return pts, sig, (sig / 0.16) ** 3


def _ribosome() -> Blobs:  # a large and a small subunit (about 2:1), like an 80S ribosome
    rng = np.random.default_rng(80)  # fixed seed: the shape is the same every time
    large = rng.normal(size=(40, 3)) * np.array([0.09, 0.11, 0.11]) + np.array([-0.08, 0, 0])
    small = rng.normal(size=(20, 3)) * np.array([0.05, 0.1, 0.07]) + np.array([0.2, 0.02, 0.05])
    pts = np.concatenate([large, small])
    return pts, np.full(len(pts), 0.085), np.ones(len(pts))


def _tripod() -> Blobs:  # three arms from a hub (Y shape, antibody-like)
    arms = [
        np.outer(np.linspace(0.08, 0.42, 5), (0.0, math.sin(a), math.cos(a)))
        for a in (0.0, 2.0, 4.2)
    ]
    pts = np.concatenate([np.zeros((1, 3)), *arms])
    return pts, np.full(len(pts), 0.07), np.ones(len(pts))


_SHAPES: dict[str, tuple[Callable[[], Blobs], float, str]] = {
    "globule": (_globule, 6.0, "compact ellipsoidal globule"),
    "ring": (_ring, 15.0, "flat ring (torus)"),
    "rod": (_rod, 20.0, "straight rod"),
    "barrel": (_barrel, 12.0, "hollow open barrel (four stacked rings)"),
    "cage": (_cage, 24.0, "hollow icosahedral cage"),
    "cluster": (_cluster, 10.0, "asymmetric cluster of five blobs"),
    "dumbbell": (_dumbbell, 16.0, "two unequal lobes joined by a neck"),
    "ribosome": (_ribosome, 28.0, "large and small subunit"),
    "tripod": (_tripod, 12.0, "three arms from a hub (Y shape)"),
}

BUILTIN_PARTICLES: dict[str, tuple[float, str]] = {
    name: (diameter, text) for name, (_, diameter, text) in _SHAPES.items()
}
"""Built-in particle types: name -> (default diameter in nm, description)."""


def builtin_particle(
    name: str, voxel_size_a: float, *, diameter_nm: float | None = None
) -> np.ndarray:
    """Return the potential map of a built-in particle type (pseudo-atoms of protein).

    See the module docstring: the solid of the type's blob layout filled with protein's
    pseudo-atoms, so the map integrates to ``protein_potential_density()`` times
    `builtin_molecular_volume_a3` (V x A^3) at any voxel size.

    Parameters
    ----------
    name : str
        One of `BUILTIN_PARTICLES`.
    voxel_size_a : float
        Voxel size in A.
    diameter_nm : float, optional
        Overall size in nm; default the type's own (5 to 30 nm).

    Returns
    -------
    np.ndarray
        ``(n, n, n)`` float32 potential in V, ``n`` odd, the blobs' weighted centre at
        voxel ``(n // 2,) * 3``; same arguments, same array (the same atoms at every
        voxel size).
    """
    if name not in _SHAPES:
        raise ValueError(f"unknown built-in particle {name!r}; choose one of {', '.join(_SHAPES)}")
    if voxel_size_a <= 0:
        raise ValueError(f"the voxel size must be positive, got {voxel_size_a} A")
    size_a = 10.0 * (_SHAPES[name][1] if diameter_nm is None else diameter_nm)
    if not size_a > 0:
        raise ValueError(f"the diameter must be positive, got {diameter_nm} nm")
    atoms = _pseudo_atoms(name, float(size_a))
    a, b = scattering_coefficients("C")
    variance = float((a * (b + PSEUDO_ATOM_B_A2)).sum() / a.sum()) / (8 * math.pi**2)
    reach = float(np.sqrt((atoms**2).sum(1)).max()) + 4.0 * math.sqrt(variance)
    n = 2 * int(math.ceil(reach / voxel_size_a + 1.0)) + 1
    amplitude = protein_potential_density() / HEAVY_ATOMS_PER_A3
    return _deposit(atoms / voxel_size_a + n // 2, math.sqrt(variance) / voxel_size_a, n) * (
        np.float32(amplitude / voxel_size_a**3)
    )


def _deposit(centres: np.ndarray, sigma: float, n: int) -> np.ndarray:
    """Return unit Gaussians integrated over the voxels of an ``(n, n, n)`` grid.

    ``centres`` are ``(m, 3)`` in voxels (voxel ``k`` spans ``k -/+ 1/2``), ``sigma`` in
    voxels; each Gaussian is kept within 4 sigma (the window of `splat_gaussians`,
    which is at least five voxels wide; here three suffice for atoms in large voxels).
    """
    half = max(1, int(math.ceil(4.0 * sigma)))
    offsets = np.arange(-half, half + 1)
    out = np.zeros(n**3)
    for start in range(0, len(centres), 1 << 15):
        c = centres[start : start + (1 << 15)]
        base = np.rint(c).astype(np.int64)
        idx = base[:, :, None] + offsets  # (m, 3, w)
        lo = (idx - 0.5 - c[:, :, None]) / (sigma * math.sqrt(2.0))
        w = 0.5 * (erf(lo + 1.0 / (sigma * math.sqrt(2.0))) - erf(lo))  # (m, 3, w)
        values = w[:, 0, :, None, None] * w[:, 1, None, :, None] * w[:, 2, None, None, :]
        flat = (idx[:, 0, :, None, None] * n + idx[:, 1, None, :, None]) * n + idx[
            :, 2, None, None, :
        ]
        out += np.bincount(flat.ravel(), weights=values.ravel(), minlength=out.size)
    return out.reshape(n, n, n).astype(np.float32)


def blob_layout(name: str, diameter_a: float) -> Blobs:
    """Return a built-in type's blobs at a diameter, their weighted centre at the origin.

    Returns
    -------
    centres : np.ndarray
        ``(n, 3)`` blob centres ``(z, y, x)`` in A.
    sigmas : np.ndarray
        ``(n,)`` standard deviations in A.
    weights : np.ndarray
        ``(n,)`` relative integrals.
    """
    centres, sigmas, weights = _SHAPES[name][0]()
    centres = centres - (weights[:, None] * centres).sum(0) / weights.sum()
    return centres * diameter_a, sigmas * diameter_a, np.asarray(weights, dtype=np.float64)


def blob_sum(points_zyx_a: np.ndarray, blobs: Blobs) -> np.ndarray:
    """Return the sum of blobs ``w / sigma^3 exp(-d^2 / 2 sigma^2)`` at ``(m, 3)`` points."""
    centres, sigmas, weights = blobs
    points = np.asarray(points_zyx_a, dtype=np.float64).reshape(-1, 3)
    d2 = ((points[:, None, :] - centres[None]) ** 2).sum(-1)  # (m, blobs)
    return (np.exp(-d2 / (2 * sigmas**2)) * (weights / sigmas**3)).sum(1)


def _cells_inside(axis_a: np.ndarray, blobs: Blobs, threshold: float) -> np.ndarray:
    """Return the indices ``(k, 3)`` on the grid ``axis_a^3`` (A) of blob sums > threshold.

    The blobs are separable along the axes, so each Z-slab is one matrix product; slabs
    are thresholded one by one (no grid of the whole sum is held).
    """
    centres, sigmas, weights = blobs
    g = [
        np.exp(-((axis_a[None, :] - centres[:, k, None]) ** 2) / (2 * sigmas[:, None] ** 2))
        for k in range(3)
    ]  # (blobs, m) per axis
    m = len(axis_a)
    step = max(1, _CHUNK // (m * m))
    amp = weights / sigmas**3
    found = []
    for z0 in range(0, m, step):
        zy = amp[:, None, None] * g[0][:, z0 : z0 + step, None] * g[1][:, None, :]
        block = (zy.reshape(len(amp), -1).T @ g[2]).reshape(-1, m, m)
        found.append(np.argwhere(block > threshold) + np.array([z0, 0, 0]))
    return np.concatenate(found)


@functools.lru_cache(maxsize=32)
def _pseudo_atoms(name: str, diameter_a: float) -> np.ndarray:
    """Return a built-in's pseudo-atoms ``(n, 3)`` zyx in A (read-only; seeded by name).

    One atom per cell of a cubic lattice (spacing ``HEAVY_ATOMS_PER_A3 ** -1/3``, a
    cell centred on the origin) whose centre lies in the solid, uniform in its cell.
    """
    blobs = blob_layout(name, diameter_a)
    centres, sigmas, _ = blobs
    threshold = SHAPE_LEVEL * float(blob_sum(centres, blobs).max())
    reach = float((np.sqrt((centres**2).sum(1)) + 4.0 * sigmas).max())
    spacing = HEAVY_ATOMS_PER_A3 ** (-1.0 / 3.0)
    half = int(math.ceil(reach / spacing))
    axis = np.arange(-half, half + 1) * spacing
    cells = _cells_inside(axis, blobs, threshold)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    atoms = axis[cells] + rng.uniform(-0.5 * spacing, 0.5 * spacing, cells.shape)
    atoms.setflags(write=False)
    return atoms


def builtin_molecular_volume_a3(name: str, *, diameter_nm: float | None = None) -> float:
    """Return a built-in's molecular volume in A^3 (its pseudo-atoms / their density).

    Its mass is ``0.81 Da/A^3`` times this; its integrated potential
    ``protein_potential_density()`` times this, in V x A^3.
    """
    if name not in _SHAPES:
        raise ValueError(f"unknown built-in particle {name!r}; choose one of {', '.join(_SHAPES)}")
    size_a = 10.0 * (_SHAPES[name][1] if diameter_nm is None else diameter_nm)
    return len(_pseudo_atoms(name, float(size_a))) / HEAVY_ATOMS_PER_A3


def vesicle_map(
    radius_a: float,
    voxel_size_a: float,
    *,
    leaflet_distance_a: float = 40.0,
    leaflet_sigma_a: float = 8.0,
) -> np.ndarray:
    """Return a spherical lipid membrane: two Gaussian leaflets ``leaflet_distance_a`` apart.

    The radial profile is ``A [g(r - R - d/2) + g(r - R + d/2)]`` with ``g`` a Gaussian
    of unit peak and ``sigma^2 = leaflet_sigma_a^2 + voxel^2 / 12`` (the voxel's box
    average). ``A`` makes the bilayer's integrated potential per area,
    ``2 A sigma sqrt(2 pi)``, that of a DOPC bilayer with its hydrogens (two lipids
    C44H84NO8P per `DOPC_AREA_A2`: 253 V x A) at every voxel size; the image contrast of
    a bilayer in ice lies in its head groups, so the hydrocarbon middle is left empty.
    (Before v2 the peak was `protein_potential_density`: 1.3 to 1.4 times a DOPC
    bilayer's potential per area, growing with the voxel size.)

    Parameters
    ----------
    radius_a : float
        Radius of the bilayer's midplane in A.
    voxel_size_a : float
        Voxel size in A.
    leaflet_distance_a : float
        Distance between the two leaflets' centres in A (about 40 A).
    leaflet_sigma_a : float
        Standard deviation of each leaflet in A.

    Returns
    -------
    np.ndarray
        ``(n, n, n)`` float32 potential in V, ``n`` odd, centred at ``(n // 2,) * 3``.
    """
    if radius_a <= leaflet_distance_a or voxel_size_a <= 0:
        raise ValueError("the vesicle radius must exceed the leaflet distance")
    sigma2 = leaflet_sigma_a**2 + voxel_size_a**2 / 12
    reach = radius_a + leaflet_distance_a / 2 + 4 * math.sqrt(sigma2)
    n = 2 * int(math.ceil(reach / voxel_size_a)) + 1
    g = (np.arange(n) - n // 2) * voxel_size_a
    r = np.sqrt(g[:, None, None] ** 2 + g[None, :, None] ** 2 + g[None, None, :] ** 2)
    profile = sum(
        np.exp(-((r - radius_a + s * leaflet_distance_a / 2) ** 2) / (2 * sigma2)) for s in (-1, 1)
    )
    return (leaflet_peak_v(sigma2) * profile).astype(np.float32)


def leaflet_peak_v(sigma2_a2: float) -> float:
    """Return the peak (V) of a Gaussian leaflet of variance ``sigma2_a2`` (A^2).

    Two such leaflets integrate, per area, to a DOPC bilayer's potential (V x A).
    """
    per_lipid = sum(n * integrated_potential(e) for e, n in _DOPC_ATOMS.items())
    per_leaflet = per_lipid / DOPC_AREA_A2
    return per_leaflet / math.sqrt(2 * math.pi * sigma2_a2)


def gold_bead_map(diameter_a: float, voxel_size_a: float) -> np.ndarray:
    """Return a gold fiducial: a ball of gold's potential with partial-volume edges.

    Parameters
    ----------
    diameter_a : float
        Bead diameter in A (typically 50 to 100).
    voxel_size_a : float
        Voxel size in A.

    Returns
    -------
    np.ndarray
        ``(n, n, n)`` float32 potential in V (`gold_potential_density` inside),
        ``n`` odd, centred at ``(n // 2,) * 3``.
    """
    if diameter_a <= 0 or voxel_size_a <= 0:
        raise ValueError("the bead diameter and voxel size must be positive")
    radius = 0.5 * diameter_a / voxel_size_a
    n = 2 * int(math.ceil(radius + 1)) + 1
    filled = ball((n, n, n), (n // 2,) * 3, radius).numpy()
    return (gold_potential_density() * filled).astype(np.float32)
