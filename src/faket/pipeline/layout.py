"""Where a dataset's files go, and the seeds and pairing every task derives from the config.

Dataset layout (``run.output``)::

    dataset.json                 index: tomograms, modalities, files, config hash
    config.yaml                  the configuration of the run
    noise_stats.json             per-reference noise statistics (phase 2)
    report.html, report/*.png    the human report
    model_<i>/                   one per tomogram, i = 0 .. n_tomograms - 1
        grandmodel.mrc, class_mask.mrc, occupancy_mask.mrc      labels (phantom)
        particle_locations.txt, particles.star, classes.json   particle lists
        tilt_angles.tlt, noiseless.mrc                          noiseless projections
        reference.mrc            the microscope's image of this content (source: microscope)
        baseline.mrc, noisy.mrc, content.mrc, faket.mrc         the modalities
        tomogram_<modality>.mrc  reconstructions (noiseless, baseline, noisy, faket, reference)
        specimen.json            phase-1 completion marker
        provenance.json          config, versions, seed, device, timings; written LAST
    reference_<j>/               extra reference specimen when n_tomograms == 1 (j = 1)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faket.config import FaketConfig
from faket.io.specimen_files import SPECIMEN_FILES

MODALITY_FILES = ("baseline", "noisy", "content", "faket")
"""The modalities made from the noiseless projections, in the order they are made."""

RECONSTRUCTED = ("noiseless", "baseline", "noisy", "faket", "reference")
"""The tilt-series reconstructed into ``tomogram_<name>.mrc``."""

LABEL_FILES = SPECIMEN_FILES
"""The phantom stage's files in each tomogram folder."""


def n_specimens(config: FaketConfig) -> int:
    """Return how many specimens phase 1 builds: the tomograms, plus one reference if n == 1.

    With the microscope as reference, tomogram ``i`` is styled with the reference of
    specimen ``(i + 1) mod n``; with one tomogram that would be its own content, so a
    second specimen is made only to be imaged as the reference.
    """
    n = config.run.n_tomograms
    return 2 if n == 1 and config.reference.source == "microscope" else n


def style_source(config: FaketConfig, index: int) -> int:
    """Return which reference styles tomogram ``index`` (never the one of its own content)."""
    if config.reference.source == "files":
        return index % len(config.reference.tilt_series)
    return (index + 1) % n_specimens(config)


def specimen_dir(config: FaketConfig, index: int) -> Path:
    """Return the folder of specimen ``index``: ``model_<i>`` or ``reference_<i>``."""
    kind = "model" if index < config.run.n_tomograms else "reference"
    return config.run.output / f"{kind}_{index}"


def specimen_seed(config: FaketConfig, index: int) -> int:
    """Return the seed of specimen ``index``, derived from ``run.seed`` (independent streams)."""
    state = np.random.SeedSequence([config.run.seed, index]).generate_state(1)
    return int(state[0] & 0x7FFFFFFF)


def tilt_angles(config: FaketConfig) -> np.ndarray:
    """Return the tilt angles in degrees: the angles file, or min to max in steps."""
    p = config.projection
    if p.angles_file is not None:
        from faket.io import read_tilt_angles

        return read_tilt_angles(p.angles_file)
    n = int(np.floor((p.tilt_max_deg - p.tilt_min_deg) / p.tilt_step_deg + 1e-6)) + 1
    return p.tilt_min_deg + p.tilt_step_deg * np.arange(n, dtype=np.float64)


def resume_key(config: FaketConfig, index: int) -> str:
    """Return the key a finished tomogram's provenance must hold to be skipped."""
    return f"{config.content_hash()}:{specimen_seed(config, index)}"
