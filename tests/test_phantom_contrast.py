"""Built-in particles and vesicles have the contrast of real matter (atomic-model oracle).

The oracle is an atomic model built here, independently of `faket.phantom.builtin`'s
pseudo-atoms: protein of the mean residue composition (C5 N1.35 O1.5 S0.04 H7.8 per
110 Da) at 0.81 Da/A^3, its heavy atoms at random (seeded) positions, one per cell of a
jittered lattice of another phase, each point tested exactly against the built-in's
solid (not on a lattice of cell centres), every hydrogen 1.0 A from a heavy atom, each
atom its element with its own five-Gaussian scattering factor, rendered by
`atoms_potential` (the path of every PDB or mmCIF file).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from faket.phantom import (
    atoms_potential,
    builtin_particle,
    integrated_potential,
    protein_potential_density,
    vesicle_map,
)
from faket.phantom.builtin import SHAPE_LEVEL, blob_layout, blob_sum, builtin_molecular_volume_a3

RESIDUE = {"C": 5.0, "N": 1.35, "O": 1.5, "S": 0.04}  # heavy atoms of a mean residue
HYDROGENS = 7.8
HEAVY_PER_A3 = sum(RESIDUE.values()) * 0.81 / 110.0


def atomic_oracle(name: str, seed: int) -> tuple[np.ndarray, list[str], float]:
    """Return atom positions, elements and the molecular volume (A^3) of the oracle."""
    rng = np.random.default_rng(seed)
    blobs = blob_layout(name, 10.0 * _default_nm(name))
    centres, sigmas, _ = blobs
    threshold = SHAPE_LEVEL * blob_sum(centres, blobs).max()
    reach = float((np.sqrt((centres**2).sum(1)) + 4 * sigmas).max())
    a = HEAVY_PER_A3 ** (-1 / 3)
    g = np.arange(-reach, reach + a, a) + 0.37 * a  # another lattice phase
    cells = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    heavy = cells + rng.uniform(-a / 2, a / 2, cells.shape)
    heavy = heavy[
        np.concatenate([blob_sum(c, blobs) for c in np.array_split(heavy, 64)]) > threshold
    ]
    p = np.array(list(RESIDUE.values()))
    elements = list(rng.choice(list(RESIDUE), len(heavy), p=p / p.sum()))
    n_h = rng.binomial(len(heavy), HYDROGENS / sum(RESIDUE.values()))
    bonds = rng.normal(size=(n_h, 3))
    bonds /= np.linalg.norm(bonds, axis=1, keepdims=True)
    hydrogens = heavy[rng.integers(0, len(heavy), n_h)] + 1.0 * bonds
    positions = np.concatenate([heavy, hydrogens])
    return positions, elements + ["H"] * n_h, len(heavy) / HEAVY_PER_A3


def _default_nm(name: str) -> float:
    from faket.phantom import BUILTIN_PARTICLES

    return BUILTIN_PARTICLES[name][0]


def in_label(volume: np.ndarray) -> tuple[float, float]:
    """Median and 95th percentile (V) of the voxels above 0.2 of the maximum."""
    values = volume[volume > 0.2 * volume.max()]
    return float(np.median(values)), float(np.percentile(values, 95))


NAMES = ["globule", "tripod", "ring"]


@functools.cache
def oracle_atoms(name: str) -> tuple[np.ndarray, list[str], float]:
    return atomic_oracle(name, seed=NAMES.index(name))


@pytest.mark.parametrize("name", NAMES)
def test_builtin_has_the_integrated_potential_of_protein_of_its_volume(name):
    positions, elements, volume = oracle_atoms(name)
    # Integrated potential of the oracle's atoms: sum of each atom's 47.878 f_e(0).
    atoms_ip = sum(integrated_potential(e) * elements.count(e) for e in set(elements))
    # Per molecular volume, the oracle gives protein's potential density (8.05 V) to its
    # composition's sampling noise (about 1 % for 900 to 10,000 heavy atoms): 3 %.
    assert atoms_ip / volume == pytest.approx(protein_potential_density(), rel=0.03)
    # The built-in's volume is the oracle's (exact point tests vs lattice cell centres:
    # a 2.6 A staircase on the surface, under 3 % of these volumes).
    assert builtin_molecular_volume_a3(name) == pytest.approx(volume, rel=0.03)
    for voxel_a in (10.0, 5.0):
        builtin = builtin_particle(name, voxel_a)
        # Its map keeps that integral at every voxel size (within float32 sums).
        assert builtin.sum() * voxel_a**3 == pytest.approx(atoms_ip, rel=0.04)


@pytest.mark.parametrize("voxel_a", [10.0, 5.0])
@pytest.mark.parametrize("name", NAMES)
def test_builtin_voxels_scatter_like_an_atomic_model(name, voxel_a):
    positions, elements, _ = oracle_atoms(name)
    oracle = atoms_potential(
        positions, elements, np.full(len(elements), 20.0), np.ones(len(elements)), voxel_a
    )
    median, p95 = in_label(builtin_particle(name, voxel_a))
    median_oracle, p95_oracle = in_label(oracle)
    # Two atom packings of one shape differ by their surfaces' voxels and atom counts per
    # voxel (7 to 60 atoms): up to 3 % seen, so medians and 95th percentiles within 6 %.
    assert median == pytest.approx(median_oracle, rel=0.06)
    assert p95 == pytest.approx(p95_oracle, rel=0.06)
    # The interior is protein, not more: an old built-in's 95th percentile was 13-16 V.
    assert p95 < 1.3 * protein_potential_density()


def test_vesicle_bilayer_has_a_dopc_bilayers_potential_per_area():
    # DOPC (C44 H84 N O8 P), 67.4 A^2 per lipid and leaflet (Kucerka et al. 2008).
    lipid = sum(
        n * integrated_potential(e) for e, n in {"C": 44, "H": 84, "N": 1, "O": 8, "P": 1}.items()
    )
    per_leaflet = lipid / 67.4
    radius, distance, sigma = 200.0, 40.0, 8.0
    for voxel_a in (10.0, 5.0):
        shell = vesicle_map(radius, voxel_a) * voxel_a**3
        # A Gaussian leaflet at radius R integrates to per_area x 4 pi (R^2 + sigma^2).
        s2 = sigma**2 + voxel_a**2 / 12
        expected = sum(
            per_leaflet * 4 * math.pi * ((radius + d) ** 2 + s2)
            for d in (-distance / 2, distance / 2)
        )
        # Point samples of a profile at least 0.85 voxel wide: the sum is its integral to 1 %.
        assert shell.sum() == pytest.approx(expected, rel=0.01)
