"""The end-to-end pipeline: a config file in, a labelled dataset with a report out.

Three phases (see `faket.pipeline.stages`): specimens, noiseless projections and
references in parallel; noise statistics aggregated across references, serially; then
modalities, FAKET and reconstructions in parallel. Tasks are top-level picklable
functions ``fn(config, index)``, so they run in-process, in spawned worker processes or
on a dask.distributed cluster; finished tomograms are skipped on a re-run.
"""

from faket.pipeline.layout import (
    MODALITY_FILES,
    RECONSTRUCTED,
    n_specimens,
    resume_key,
    specimen_dir,
    specimen_seed,
    style_source,
    tilt_angles,
)
from faket.pipeline.run import DatasetResult, dataset_index, simulate_dataset
from faket.pipeline.stages import estimate_noise, make_tomogram, prepare_specimen

__all__ = [
    "MODALITY_FILES",
    "RECONSTRUCTED",
    "DatasetResult",
    "dataset_index",
    "estimate_noise",
    "make_tomogram",
    "n_specimens",
    "prepare_specimen",
    "resume_key",
    "simulate_dataset",
    "specimen_dir",
    "specimen_seed",
    "style_source",
    "tilt_angles",
]
