"""The end-to-end pipeline: a config file in, a labelled dataset with a report out.

A pre-flight (`plan_run`) checks every input and limit and resolves the run's derived
values once into a `RunPlan`; nothing is written before it passes. Then three phases
(see `faket.pipeline.stages`): specimens, noiseless projections and references in
parallel; noise statistics aggregated across references, serially; then modalities,
FAKET and reconstructions in parallel. Tasks are top-level picklable functions
``fn(plan, index)``, so they run in-process, in spawned worker processes or on a
dask.distributed cluster; finished tomograms are skipped on a re-run when the config and
the contents of every input file are unchanged.
"""

from faket.pipeline.layout import (
    MODALITY_FILES,
    RECONSTRUCTED,
    n_specimens,
    specimen_dir,
    specimen_seed,
    style_source,
)
from faket.pipeline.plan import ReferenceFile, RunPlan, SpecimenPlan, plan_run, resolve_tilt_angles
from faket.pipeline.resources import ResourceEstimate, estimate_resources
from faket.pipeline.run import DatasetResult, dataset_index, simulate_dataset
from faket.pipeline.stages import estimate_noise, prepare_specimen
from faket.pipeline.tomogram import make_tomogram

__all__ = [
    "MODALITY_FILES",
    "RECONSTRUCTED",
    "DatasetResult",
    "ReferenceFile",
    "ResourceEstimate",
    "RunPlan",
    "SpecimenPlan",
    "dataset_index",
    "estimate_noise",
    "estimate_resources",
    "make_tomogram",
    "n_specimens",
    "plan_run",
    "prepare_specimen",
    "resolve_tilt_angles",
    "simulate_dataset",
    "specimen_dir",
    "specimen_seed",
    "style_source",
]
