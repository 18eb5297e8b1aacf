"""Specimens ("grandmodels"): analytic phantoms, particle maps and labelled assemblies.

Maps are potentials in V on cubic grids with the particle's centre at ``(n // 2,) * 3``;
see `faket.phantom.potential` (units, scattering factors), `faket.phantom.structures`
(files and cache), `faket.phantom.specimen` (placement, Euler convention, labels) and
`faket.phantom.scene` (cellular scenes: `faket.phantom.membranes`,
`faket.phantom.membrane_proteins`, `faket.phantom.filaments`, crowding).
"""

from faket.phantom.analytic import Sphere, ball, demo_specimen, spheres_volume
from faket.phantom.builtin import (
    BUILTIN_PARTICLES,
    builtin_molecular_volume_a3,
    builtin_particle,
    gold_bead_map,
    vesicle_map,
)
from faket.phantom.filaments import FilamentRequest, HelixLattice, place_filaments
from faket.phantom.membrane_proteins import MembraneProteinRequest, place_membrane_proteins
from faket.phantom.membranes import MEMBRANE_SHAPES, MembraneRequest, place_membranes
from faket.phantom.potential import (
    H2_OVER_2PI_M0_E,
    atoms_potential,
    blobs_potential,
    gold_potential_density,
    integrated_potential,
    protein_potential_density,
    scattering_coefficients,
    splat_gaussians,
)
from faket.phantom.scene import Scene, build_scene
from faket.phantom.specimen import (
    ParticleClass,
    Specimen,
    build_specimen,
    check_particles_fit,
    random_rotations,
    rotate_map,
)
from faket.phantom.structures import cache_dir, load_structure, read_atoms, resample_map

__all__ = [
    "BUILTIN_PARTICLES",
    "H2_OVER_2PI_M0_E",
    "MEMBRANE_SHAPES",
    "FilamentRequest",
    "HelixLattice",
    "MembraneProteinRequest",
    "MembraneRequest",
    "ParticleClass",
    "Scene",
    "Specimen",
    "Sphere",
    "atoms_potential",
    "ball",
    "blobs_potential",
    "build_scene",
    "build_specimen",
    "builtin_molecular_volume_a3",
    "check_particles_fit",
    "builtin_particle",
    "cache_dir",
    "demo_specimen",
    "gold_bead_map",
    "gold_potential_density",
    "integrated_potential",
    "load_structure",
    "place_filaments",
    "place_membrane_proteins",
    "place_membranes",
    "protein_potential_density",
    "random_rotations",
    "read_atoms",
    "resample_map",
    "rotate_map",
    "scattering_coefficients",
    "spheres_volume",
    "splat_gaussians",
    "vesicle_map",
]
