"""faket: simulate realistic, fully labelled cryo-ET tilt-series and tomograms (FakET).

The main entry points are importable from ``faket`` itself; each is loaded on first use,
so ``import faket`` (and ``faket --help``) stays fast::

    import faket

    result = faket.simulate("run.yaml")            # a whole dataset, as `faket simulate`
    specimen = faket.build_specimen(...)           # or stage by stage, in memory
    noiseless = faket.project_tilt_series(volume, angles)
    stats = faket.estimate_tilt_stats(reference, noiseless_of_reference)
    noisy = faket.make_modality(noiseless, [stats], "noisy", seed=0)
    faket_series = faket.stylize_tilt_series(backbone, noisy, content, reference)
    tomogram = faket.reconstruct_tomogram(faket_series, angles)
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("faket")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

_ENTRY_POINTS = {
    # a whole run
    "FaketConfig": "faket.config",
    "simulate": "faket._api",
    "simulate_dataset": "faket.pipeline",
    "plan_run": "faket.pipeline",
    # specimens
    "ParticleClass": "faket.phantom",
    "build_specimen": "faket.phantom",
    "builtin_particle": "faket.phantom",
    "load_structure": "faket.phantom",
    # projection and the built-in microscope
    "project_tilt_series": "faket.projection",
    "MicroscopeSettings": "faket.microscope",
    "simulate_tilt_series": "faket.microscope",
    # noise
    "TiltStats": "faket.noise",
    "estimate_tilt_stats": "faket.noise",
    "estimate_reference_stats": "faket.noise",
    "aggregate_tilt_stats": "faket.noise",
    "make_modality": "faket.noise",
    # style transfer
    "StyleSettings": "faket.style",
    "load_backbone": "faket.style",
    "stylize_tilt_series": "faket.style.series",
    # reconstruction
    "reconstruct_tomogram": "faket.reconstruction",
    # likeness and picking evaluation
    "compare_tilt_series": "faket.evaluation",
    "dataset_likeness": "faket.evaluation",
    # files
    "read_mrc": "faket.io",
    "write_mrc": "faket.io",
    "read_tilt_angles": "faket.io",
    "write_tilt_angles": "faket.io",
    "read_particle_locations": "faket.io",
    "read_particles_star": "faket.io",
    "read_tilt_series_info": "faket.io",
}
"""Public name -> the module that defines it (imported on first access)."""

__all__ = [
    "__version__",
    "FaketConfig",
    "simulate",
    "simulate_dataset",
    "plan_run",
    "ParticleClass",
    "build_specimen",
    "builtin_particle",
    "load_structure",
    "project_tilt_series",
    "MicroscopeSettings",
    "simulate_tilt_series",
    "TiltStats",
    "estimate_tilt_stats",
    "estimate_reference_stats",
    "aggregate_tilt_stats",
    "make_modality",
    "StyleSettings",
    "load_backbone",
    "stylize_tilt_series",
    "reconstruct_tomogram",
    "compare_tilt_series",
    "dataset_likeness",
    "read_mrc",
    "write_mrc",
    "read_tilt_angles",
    "write_tilt_angles",
    "read_particle_locations",
    "read_particles_star",
    "read_tilt_series_info",
]
"""The entry points (each in ``_ENTRY_POINTS``) and the version."""


def __getattr__(name: str) -> Any:
    """Import an entry point's module on first access (PEP 562)."""
    module = _ENTRY_POINTS.get(name)
    if module is None:
        raise AttributeError(f"module 'faket' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # what type checkers and IDEs see
    from faket._api import simulate
    from faket.config import FaketConfig
    from faket.evaluation import compare_tilt_series, dataset_likeness
    from faket.io import (
        read_mrc,
        read_particle_locations,
        read_particles_star,
        read_tilt_angles,
        read_tilt_series_info,
        write_mrc,
        write_tilt_angles,
    )
    from faket.microscope import MicroscopeSettings, simulate_tilt_series
    from faket.noise import (
        TiltStats,
        aggregate_tilt_stats,
        estimate_reference_stats,
        estimate_tilt_stats,
        make_modality,
    )
    from faket.phantom import ParticleClass, build_specimen, builtin_particle, load_structure
    from faket.pipeline import plan_run, simulate_dataset
    from faket.projection import project_tilt_series
    from faket.reconstruction import reconstruct_tomogram
    from faket.style import StyleSettings, load_backbone
    from faket.style.series import stylize_tilt_series
