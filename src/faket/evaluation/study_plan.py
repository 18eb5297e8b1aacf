"""What a picking study runs: presets, tomogram splits, seeds and settings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from faket.evaluation.training import TrainingSettings

__all__ = [
    "PRESETS",
    "PRESET_SEEDS",
    "StudyPlan",
    "parse_indices",
    "target_modality",
    "with_overrides",
]

PRESETS: dict[str, TrainingSettings] = {
    "paper": TrainingSettings(),
    "laptop": TrainingSettings(
        width=0.5, patch=32, batch_size=4, epochs=30, learning_rate=1e-3, precision="bf16"
    ),
}
"""Training presets. ``paper``: DeepFinder as in FakET (GPU). ``laptop``: a 2-core CPU."""


PRESET_SEEDS = {"paper": 6, "laptop": 2}
"""Seeds per modality of each preset."""


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
    cluster : str
        ``meanshift`` or ``components``; see `picks_from_labels`.
    min_fraction : float
        Clusters under this fraction of the class's mean particle volume (voxels per
        particle in the training labels) are dropped.
    """

    dataset: Path
    output: Path
    modalities: tuple[str, ...]
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: int
    seeds: tuple[int, ...]
    settings: TrainingSettings
    exclude: tuple[str, ...] = ("vesicle",)
    segment_step: int | None = None
    cluster: str = "meanshift"
    min_fraction: float = 0.25

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

    def run_key(self, modality: str, seed: int) -> str:
        """Return the key that identifies one run's inputs and settings."""
        record = {
            "dataset": str(self.dataset.resolve()),
            "modality": modality,
            "seed": seed,
            "train": self.train,
            "val": self.val,
            "test": self.test,
            "settings": self.settings.as_dict(),
            "exclude": self.exclude,
            "segment_step": self.segment_step,
            "cluster": self.cluster,
            "min_fraction": self.min_fraction,
        }
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def with_overrides(settings: TrainingSettings, **changes: Any) -> TrainingSettings:
    """Return ``settings`` with the given fields changed (``None`` values are ignored)."""
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})
