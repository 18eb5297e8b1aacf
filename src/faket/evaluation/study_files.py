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
    "bin_labels",
    "bin_volume",
    "check_inputs",
    "from_binned",
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
    _refuse_unlabelled_references(plan)
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


def _refuse_unlabelled_references(plan: StudyPlan) -> None:
    """Refuse REFERENCE-tested rows on a dataset of a user's (unlabelled) references."""
    import json

    index = plan.dataset / "dataset.json"
    try:
        source = json.loads(index.read_text(encoding="utf-8")).get("reference_source")
    except (OSError, ValueError, AttributeError):
        return  # not a faket dataset.json: the file checks below name what is missing
    tested_on_reference = [m for m in plan.modalities if target_modality(m) == "reference"]
    if source == "files" and tested_on_reference:
        raise FaketInputError(
            f"made with reference.source files, this dataset can run only NOISELESS (--modalities"
            f" noiseless): {', '.join(tested_on_reference)} are tested on labelled REFERENCE "
            "tomograms, and your references show other specimens, unlabelled; make the study's "
            "dataset with the built-in microscope (faket demo --crowded)",
            index,
        )


def bin_volume(volume: np.ndarray, factor: int) -> np.ndarray:
    """Return ``volume`` binned by ``factor``: the mean of each ``factor**3`` block.

    Trailing voxels that do not fill a block are dropped.
    """
    if factor == 1:
        return volume
    n = [s // factor for s in volume.shape]
    cut = volume[: n[0] * factor, : n[1] * factor, : n[2] * factor]
    blocks = cut.reshape(n[0], factor, n[1], factor, n[2], factor)
    return blocks.mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)


def bin_labels(labels: np.ndarray, factor: int) -> np.ndarray:
    """Return a label map binned by ``factor``: each block's label is its central voxel's."""
    if factor == 1:
        return labels
    n = [s // factor for s in labels.shape]
    c = factor // 2
    return labels[
        c : n[0] * factor : factor, c : n[1] * factor : factor, c : n[2] * factor : factor
    ]


def to_binned(xyz: np.ndarray, factor: int) -> np.ndarray:
    """Return voxel coordinates in a volume binned by ``factor`` (block centres)."""
    return (np.asarray(xyz, dtype=np.float64) - (factor - 1) / 2) / factor


def from_binned(xyz: np.ndarray, factor: int) -> np.ndarray:
    """Return binned voxel coordinates in the unbinned volume (inverse of `to_binned`)."""
    return np.asarray(xyz, dtype=np.float64) * factor + (factor - 1) / 2


def load_volume(
    dataset: Path, index: int, modality: str, device: torch.device, factor: int = 1
) -> tuple[LabelledVolume, float]:
    """Read ``tomogram_<modality>.mrc``, ``class_mask.mrc`` and the particle list of a tomogram.

    With ``factor`` > 1 the tomogram is binned (`bin_volume`), the mask too
    (`bin_labels`) and the particle centres moved to binned voxels (`to_binned`).

    Returns
    -------
    volume : LabelledVolume
        On ``device``.
    voxel_size_a : float
        The (binned) tomogram's voxel size in Angstrom.
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
    data = bin_volume(np.asarray(image.data, dtype=np.float32), factor)
    labels = bin_labels(np.rint(mask).astype(np.int64), factor)
    volume = LabelledVolume(
        torch.from_numpy(np.ascontiguousarray(data)).to(device),
        torch.from_numpy(np.ascontiguousarray(labels)).to(device),
        to_binned(xyz, factor),
        name=str(path),
    )
    return volume, float(image.voxel_size_a or 1.0) * factor


def read_training_labels(plan: StudyPlan) -> tuple[list[np.ndarray], list[list[str]]]:
    """Return the (binned) class masks and the particles' class names of the training tomograms."""
    from faket.io import read_particle_locations

    masks, names = [], []
    for index in plan.train:
        folder = tomogram_dir(plan.dataset, index)
        mask = read_mrc(folder / "class_mask.mrc", ndim=3).data
        masks.append(bin_labels(np.rint(mask).astype(np.int64), plan.bin))
        particles = read_particle_locations(folder / "particle_locations.txt")
        names.append([p.class_name for p in particles])
    return masks, names


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a torch checkpoint atomically, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)
