"""What a picking study runs: presets, tomogram splits, seeds and settings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from faket.evaluation.study_rule import MIN_FRACTION_GRID
from faket.evaluation.training import TrainingSettings

__all__ = [
    "MODALITY_ORDER",
    "PRESETS",
    "PRESET_SEEDS",
    "PRESET_SEGMENT",
    "StudyPlan",
    "available_modalities",
    "parse_indices",
    "target_modality",
    "with_overrides",
]

PRESETS: dict[str, TrainingSettings] = {
    "paper": TrainingSettings(steps_per_epoch=100),
    "laptop": TrainingSettings(
        width=0.5,
        patch=24,
        batch_size=4,
        epochs=14,
        steps_per_epoch=40,
        learning_rate=1e-3,
        background_fraction=0.25,
        val_patches=48,
    ),
}
"""Training presets. ``paper``: DeepFinder as in FakET (GPU): 70 epochs of 100 batches of
25 patches, every patch on a particle. ``laptop``: a 2-core CPU (precision ``auto``)."""

PRESET_SEEDS = {"paper": 6, "laptop": 3}
"""Seeds per modality of each preset."""

PRESET_BIN = {"paper": 1, "laptop": 2}
"""Binning of the tomograms the picker works on, per preset."""

PRESET_SEGMENT: dict[str, tuple[int | None, int | None]] = {
    "paper": (None, None),
    "laptop": (48, 40),
}
"""Inference patch side and step of each preset (None: the training patch, half a patch).
A patch larger than a tomogram's smallest side is cut to it (a multiple of 4)."""

MODALITY_ORDER = (
    "noiseless",
    "baseline",
    "noisy",
    "faket",
    "noisy_published",
    "faket_published",
    "noisy_spectral",
    "faket_spectral",
    "faket_random",
    "faket_random_published",
    "faket_random_spectral",
    "reference",
)
"""The study's rows, in the order of the table (those a dataset has)."""


def available_modalities(dataset: Path, index: int) -> list[str]:
    """Return the modalities of `MODALITY_ORDER` that tomogram ``index`` of a dataset has."""
    folder = Path(dataset) / f"model_{index}"
    return [m for m in MODALITY_ORDER if (folder / f"tomogram_{m}.mrc").is_file()]


def parse_indices(text: str) -> list[int]:
    """Parse tomogram indices: ``"0-5"``, ``"6"``, ``"0,2,4-5"`` -> sorted unique ints."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if high < low:
                    raise ValueError
                out.update(range(low, high + 1))
            else:
                out.add(int(part))
    except ValueError as err:
        raise ValueError(f"cannot read tomogram indices {text!r}; write e.g. 0-5 or 0,2,4") from err
    if not out or min(out) < 0:
        raise ValueError(f"tomogram indices must be >= 0, got {text!r}")
    return sorted(out)


def target_modality(modality: str) -> str:
    """Return the modality a picker trained on ``modality`` is tested on."""
    return "noiseless" if modality == "noiseless" else "reference"


EXTENDED_CLASSES = ("vesicle", "membrane", "actin", "microtubule")
"""Classes a study neither extracts nor scores by default: membranes and filaments are
extended, not particles with a centre (`faket.phantom.scene` lists them at their middle)."""


@dataclass(frozen=True)
class StudyPlan:
    """What a study trains and tests.

    Attributes
    ----------
    dataset : Path
        A ``faket simulate`` dataset folder.
    output : Path
        The study folder.
    modalities : tuple of str
        Training modalities (``tomogram_<modality>.mrc`` in each tomogram folder).
    train, val : tuple of int
        Training tomograms and the validation tomogram(s).
    test : int
        The held-out test tomogram.
    seeds : tuple of int
        Training seeds.
    settings : TrainingSettings
        Network and training settings.
    exclude : tuple of str
        Classes neither extracted nor scored (SHREC 2021 left out vesicles).
    segment_step : int or None
        Step between inference patches (default half a patch).
    segment_patch : int or None
        Inference patch side (default the training patch); larger patches cost less
        per voxel (fewer overlaps).
    cluster : str
        ``meanshift`` or ``components``; see `faket.evaluation.study.picks_from_labels`.
    min_fraction : float or None
        Clusters under this fraction of the class's mean particle volume (voxels per
        particle in the training labels) are dropped; None (default): each run chooses
        it from ``min_fraction_grid`` on the validation tomogram
        (`faket.evaluation.study_rule`).
    min_fraction_grid : tuple of float
        The fractions a run chooses from.
    bin : int
        The picker works on tomograms binned by this factor (mean of blocks; labels
        and centres follow); its picks are scored in the unbinned tomogram's voxels.
    jobs : int
        Runs at once, in processes (CPU).
    threads : int or None
        CPU threads per run (None: cores / jobs with several jobs, else torch's default).
    """

    dataset: Path
    output: Path
    modalities: tuple[str, ...]
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: int
    seeds: tuple[int, ...]
    settings: TrainingSettings
    exclude: tuple[str, ...] = EXTENDED_CLASSES
    segment_step: int | None = None
    segment_patch: int | None = None
    cluster: str = "meanshift"
    min_fraction: float | None = None
    min_fraction_grid: tuple[float, ...] = MIN_FRACTION_GRID
    bin: int = 1
    jobs: int = 1
    threads: int | None = None

    def __post_init__(self) -> None:
        overlap = (set(self.train) & set(self.val)) | ({self.test} & set(self.train + self.val))
        if overlap:
            raise ValueError(
                f"tomograms {sorted(overlap)} are in more than one of train, val and test"
            )
        if not self.train or not self.val or not self.modalities or not self.seeds:
            raise ValueError("a study needs training and validation tomograms, modalities, seeds")
        if len(self.val) != 1:
            raise ValueError(f"give one validation tomogram, got {list(self.val)}")
        if self.jobs < 1 or self.bin < 1 or (self.threads is not None and self.threads < 1):
            raise ValueError("bin, jobs and threads must be at least 1")
        if self.segment_patch is not None and (self.segment_patch < 4 or self.segment_patch % 4):
            raise ValueError(
                f"the inference patch must be a multiple of 4, got {self.segment_patch}"
            )

    def results_record(self) -> dict[str, Any]:
        """Return every setting that changes a run's result, as JSON-ready values.

        Not ``jobs`` nor ``threads``, nor the dataset's path (`run_key` adds it).
        """
        return {
            "train": list(self.train),
            "val": list(self.val),
            "test": self.test,
            "settings": self.settings.as_dict(),
            "exclude": list(self.exclude),
            "segment_step": self.segment_step,
            "segment_patch": self.segment_patch,
            "cluster": self.cluster,
            "min_fraction": self.min_fraction,
            "min_fraction_grid": list(self.min_fraction_grid),
            "bin": self.bin,
        }

    def run_key(self, modality: str, seed: int) -> str:
        """Return the key that identifies one run's inputs and settings."""
        record = {
            "dataset": str(self.dataset.resolve()),
            "modality": modality,
            "seed": seed,
            **self.results_record(),
        }
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def with_overrides(settings: TrainingSettings, **changes: Any) -> TrainingSettings:
    """Return ``settings`` with the given fields changed (``None`` values are ignored)."""
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})
