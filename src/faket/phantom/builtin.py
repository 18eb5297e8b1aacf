"""Built-in particles (no files needed), vesicles and gold fiducials.

Built-in particles are deterministic sums of Gaussian blobs (see
`faket.phantom.potential.blobs_potential`), scaled so that their mean potential inside
the label is that of protein in vacuum (`protein_potential_density`, about 7 V). Each
type has a default diameter and can be drawn at any other: its blob layout is scaled.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from faket.phantom.analytic import ball
from faket.phantom.potential import (
    blobs_potential,
    gold_potential_density,
    protein_potential_density,
)

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
    """Return the potential map of a built-in particle type.

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
        voxel ``(n // 2,) * 3``; same arguments, same array.
    """
    if name not in _SHAPES:
        raise ValueError(f"unknown built-in particle {name!r}; choose one of {', '.join(_SHAPES)}")
    if voxel_size_a <= 0:
        raise ValueError(f"the voxel size must be positive, got {voxel_size_a} A")
    make, default_nm, _ = _SHAPES[name]
    size_a = 10.0 * (default_nm if diameter_nm is None else diameter_nm)
    if size_a <= 0:
        raise ValueError(f"the diameter must be positive, got {diameter_nm} nm")
    centres, sigmas, weights = make()
    # The layouts are in units of the diameter; blobs are never sharper than a voxel.
    sig = np.sqrt((sigmas * size_a) ** 2 + (0.5 * voxel_size_a) ** 2)
    return blobs_potential(centres * size_a, sig, weights, voxel_size_a)


def vesicle_map(
    radius_a: float,
    voxel_size_a: float,
    *,
    leaflet_distance_a: float = 40.0,
    leaflet_sigma_a: float = 8.0,
) -> np.ndarray:
    """Return a spherical lipid membrane: two Gaussian leaflets ``leaflet_distance_a`` apart.

    The radial profile is ``D [g(r - R - d/2) + g(r - R + d/2)]`` with ``g`` a Gaussian
    of unit peak and ``sigma^2 = leaflet_sigma_a^2 + voxel^2 / 12`` (the voxel's box
    average), ``D`` = `protein_potential_density` (head groups are about as dense as
    protein; the bilayer's middle is left near empty).

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
    return (protein_potential_density() * profile).astype(np.float32)


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
