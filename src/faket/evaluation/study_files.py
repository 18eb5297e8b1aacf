"""Files of a picking study: the dataset's tomograms and labels, checkpoints, JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from faket.errors import FaketInputError
from faket.evaluation.study_plan import StudyPlan, target_modality
from faket.evaluation.training import LabelledVolume
from faket.io import atomic_write, read_mrc

__all__ = [
    "check_inputs",
    "load_volume",
    "save_checkpoint",
    "tomogram_dir",
    "read_training_labels",
]


def tomogram_dir(dataset: Path, index: int) -> Path:
    """Return the folder ``model_<index>`` of a dataset; a one-line error when absent."""
    folder = dataset / f"model_{index}"
    if not folder.is_dir():
        raise FaketInputError(f"no tomogram folder model_{index} in the dataset", folder)
    return folder


def check_inputs(plan: StudyPlan) -> None:
    """Check that every file the study reads exists, before hours of training start.

    Raises
    ------
    FaketInputError
        Naming the first missing folder or file.
    """
    labels = ("class_mask.mrc", "particle_locations.txt")
    needed: list[Path] = []
    for index in (*plan.train, *plan.val):
        folder = tomogram_dir(plan.dataset, index)
        needed += [folder / f"tomogram_{m}.mrc" for m in plan.modalities]
        needed += [folder / name for name in labels]
    folder = tomogram_dir(plan.dataset, plan.test)
    needed += [folder / f"tomogram_{target_modality(m)}.mrc" for m in plan.modalities]
    needed += [folder / n for n in ("occupancy_mask.mrc", "particle_locations.txt", "classes.json")]
    for path in needed:
        if not path.is_file():
            raise FaketInputError("no such file", path)


def load_volume(
    dataset: Path, index: int, modality: str, device: torch.device
) -> tuple[LabelledVolume, float]:
    """Read ``tomogram_<modality>.mrc``, ``class_mask.mrc`` and the particle list of a tomogram.

    Returns
    -------
    volume : LabelledVolume
        On ``device``.
    voxel_size_a : float
        The tomogram's voxel size in Angstrom.
    """
    from faket.io import read_particle_locations

    folder = tomogram_dir(dataset, index)
    path = folder / f"tomogram_{modality}.mrc"
    image = read_mrc(path, ndim=3)
    mask = read_mrc(folder / "class_mask.mrc", ndim=3).data
    if mask.shape != image.data.shape:
        raise FaketInputError(
            f"shape {image.data.shape} differs from class_mask.mrc's {mask.shape}", path
        )
    particles = read_particle_locations(folder / "particle_locations.txt")
    xyz = np.array([[p.x, p.y, p.z] for p in particles], dtype=np.float64).reshape(-1, 3)
    volume = LabelledVolume(
        torch.from_numpy(np.ascontiguousarray(image.data, dtype=np.float32)).to(device),
        torch.from_numpy(np.rint(mask).astype(np.int64)).to(device),
        xyz,
        name=str(path),
    )
    return volume, float(image.voxel_size_a or 1.0)


def read_training_labels(plan: StudyPlan) -> tuple[list[np.ndarray], list[list[str]]]:
    """Return the class masks and the particles' class names of the training tomograms."""
    from faket.io import read_particle_locations

    masks, names = [], []
    for index in plan.train:
        folder = tomogram_dir(plan.dataset, index)
        masks.append(read_mrc(folder / "class_mask.mrc", ndim=3).data)
        particles = read_particle_locations(folder / "particle_locations.txt")
        names.append([p.class_name for p in particles])
    return masks, names


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a torch checkpoint atomically, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)
