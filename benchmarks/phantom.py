"""Benchmark: build a SHREC-scale specimen from built-in particles.

200 x 512 x 512 voxels at 10 A, a 160-voxel slab, 1,500 particles of 12 classes (the
built-in types, three of them again at another size), 4 vesicles and 20 gold beads.
Prints the median wall time over --repeats builds (maps made once, as a warm structure
cache gives them) and the volume fraction of particles. Torch/numpy threads: limit with
OMP_NUM_THREADS to match a 2-core laptop.

    python benchmarks/phantom.py --repeats 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _timing import timed

from faket.phantom import ParticleClass, build_specimen, builtin_particle

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

    def build():
        return build_specimen(
            classes, SHAPE, VOXEL_A, slab_voxels=160, n_vesicles=4, n_fiducials=20, seed=1
        )

    seconds, specimen = timed(build, args.repeats)
    fraction = float(np.mean(specimen.occupancy_mask > 0))
    print(f"maps of {len(classes)} classes: {maps_s:.2f} s (once)")
    print(
        f"build {SHAPE} at {VOXEL_A} A, {len(specimen.particles)} instances: "
        f"median {seconds:.2f} s over {args.repeats} runs (target < 60 s); "
        f"labelled volume fraction {fraction:.3f}"
    )


if __name__ == "__main__":
    main()
