"""Benchmark: build a SHREC-scale specimen from built-in particles.

200 x 512 x 512 voxels at 10 A, a 160-voxel slab, 1,500 particles of 12 classes (the
built-in types, three of them again at another size), 4 vesicles and 20 gold beads.
Prints the median wall time over --repeats builds (maps made once, as a warm structure
cache gives them) and the volume fraction of particles. Torch/numpy threads: limit with
OMP_NUM_THREADS to match a 2-core laptop. With --volume-fraction F, the classes (equal
weights) crowd F of the cytosol instead of placing 1,500 particles. With --cellular, a
cellular scene is built first (`cellular_scene`: a sheet, a tube, two blobs, an
ellipsoid and a torus of membrane, 100 transmembrane barrels, 20 actin filaments and 4
microtubules of 300-500 nm), then the particles.

    python benchmarks/phantom.py --repeats 3
    python benchmarks/phantom.py --repeats 3 --cellular            # the issue's target < 60 s
    python benchmarks/phantom.py --repeats 1 --volume-fraction 0.15
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _timing import timed

from faket.phantom import (
    FilamentRequest,
    MembraneProteinRequest,
    MembraneRequest,
    ParticleClass,
    Scene,
    build_scene,
    builtin_particle,
)


def cellular_scene(cellular: bool, volume_fraction: float | None) -> Scene:
    """The issue's cellular scene: membranes, proteins on them, two filament types."""
    if not cellular:
        return Scene(volume_fraction=volume_fraction)
    membranes = (
        MembraneRequest("sheet", count=1, size_a=(50.0, 200.0)),
        MembraneRequest("tube", count=1, size_a=(150.0, 250.0)),
        MembraneRequest("blob", count=2),
        MembraneRequest("ellipsoid", count=1),
        MembraneRequest("torus", count=1),
    )
    proteins = (MembraneProteinRequest("barrel", builtin_particle("barrel", VOXEL_A), 100),)
    filaments = (
        FilamentRequest("actin", 20, (3000.0, 5000.0)),
        FilamentRequest("microtubule", 4, (3000.0, 5000.0)),
    )
    return Scene(membranes, proteins, filaments, volume_fraction)


VOXEL_A = 10.0
SHAPE = (200, 512, 512)
TYPES = [  # (type, diameter nm or None for the default)
    ("globule", None),
    ("ring", None),
    ("rod", None),
    ("barrel", None),
    ("cage", None),
    ("cluster", None),
    ("dumbbell", None),
    ("ribosome", None),
    ("tripod", None),
    ("globule", 9.0),
    ("ring", 10.0),
    ("barrel", 18.0),
]


def main() -> None:
    """Time `build_specimen` at SHREC scale and print the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--particles", type=int, default=1500)
    parser.add_argument("--volume-fraction", type=float, default=None)
    parser.add_argument("--cellular", action="store_true", help="membranes, filaments first")
    args = parser.parse_args()
    t0 = time.perf_counter()
    classes = []
    for i, (name, diameter) in enumerate(TYPES):
        density = builtin_particle(name, VOXEL_A, diameter_nm=diameter)
        count = args.particles // len(TYPES) + (i < args.particles % len(TYPES))
        classes.append(
            ParticleClass(f"{name}{'' if diameter is None else int(diameter)}", density, count)
        )
    maps_s = time.perf_counter() - t0

    scene = cellular_scene(args.cellular, args.volume_fraction)

    def build():
        return build_scene(
            classes,
            SHAPE,
            VOXEL_A,
            scene,
            slab_voxels=160,
            n_vesicles=4,
            n_fiducials=20,
            seed=1,
        )

    seconds, specimen = timed(build, args.repeats)
    fraction = float(np.mean(specimen.occupancy_mask > 0))
    names = {c.name for c in classes}
    soluble_ids = [int(c["id"]) for c in specimen.classes if c["name"] in names]
    soluble = np.isin(specimen.class_mask, soluble_ids)
    layers = {str(c["name"]) for c in specimen.classes} - names - {"vesicle", "fiducial"}
    z0 = (SHAPE[0] - 160) // 2
    others = (specimen.occupancy_mask[z0 : z0 + 160] > 0) & ~soluble[z0 : z0 + 160]
    cytosol = float(soluble[z0 : z0 + 160].sum() / (others.size - others.sum()))
    print(f"maps of {len(classes)} classes: {maps_s:.2f} s (once)")
    if layers:
        print(f"cellular layers: {', '.join(sorted(layers))}")
    print(
        f"build {SHAPE} at {VOXEL_A} A, {len(specimen.particles)} instances: "
        f"median {seconds:.2f} s over {args.repeats} runs (target < 60 s); "
        f"labelled volume fraction {fraction:.3f} (soluble: {cytosol:.3f} of the cytosol)"
    )


if __name__ == "__main__":
    main()
