"""Export a faket dataset as a copick project (https://github.com/copick/copick).

Project layout (``PROJECT``)::

    copick_config.json       the copick configuration: ``copick.from_file(...)`` opens it
    faket_export.json        what was exported, from which dataset (the re-run key)
    overlay/                 copick's local file-system root (``overlay_root``)
        ExperimentRuns/model_<i>/
            VoxelSpacing<v>/<tomo_type>.zarr      the reconstructions, multiscale OME-Zarr
            VoxelSpacing<v>/<tomo_type>.zarr ...  (tomogram voxel size)
            Picks/faket_0_<object>.json           the particles, Angstrom + 4x4 transforms
            Segmentations/<v>_faket_0_classes-multilabel.zarr   class_mask.mrc

Conventions
-----------
- One copick *run* per tomogram, named after its folder (``model_0`` ...).
- Pickable objects: the classes of ``classes.json`` (copick name = faket name with
  ``_`` and spaces made ``-``; ``label`` = class id = the value in ``class_mask.mrc``;
  ``radius`` in Angstrom, see `class_radius_a`; ``is_particle`` True; colours from a
  fixed palette by class id).
- Tomograms: every ``tomogram_<modality>.mrc`` at ``tomogram_voxel_size_a`` with
  ``tomo_type`` = the modality with ``_`` made ``-`` (see `tomo_type`): ``noiseless``,
  ``baseline``, ``noisy``, ``faket``, ``reference``, ``faket-random``,
  ``noisy-spectral``, ``faket-spectral``, ...
- Picks: user ``faket``, session ``0`` (copick's mark of a tool), one file per class;
  location = faket's voxel position times the specimen voxel size (voxel index ``i`` at
  ``i * voxel size``, copick's and OME-NGFF's convention); transform = the rotation that
  places the reference (`particle_transforms`), zero translation; a class whose
  particles have no angles (NaN) gets identities and ``trust_orientation`` False.
- Segmentation: ``class_mask.mrc`` as one multilabel segmentation ``classes`` (user
  ``faket``, session ``0``) at the specimen voxel size (a voxel spacing of its own when
  the tomograms are binned).
- Frames: with ``reconstruction.binning`` 1 and the default thickness the tomograms'
  voxels are the specimen's, so picks, segmentation and tomograms coincide exactly.
  Binned by ``b`` (Fourier), tomogram voxel ``j`` is specimen voxel ``b * j`` when the
  box is a multiple of ``2 b``; a ``reconstruction.thickness`` other than ``nz / b``
  shifts the tomogram in Z by ``b * (thickness // 2) - nz // 2`` specimen voxels, which
  the picks do not follow.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faket.errors import FaketInputError
from faket.export._dataset import (
    DatasetFiles,
    class_radius_a,
    export_key,
    has_orientations,
    particle_positions_a,
    particle_transforms,
    read_dataset,
    read_particles,
)
from faket.io import read_json_object, read_mrc, write_json

CONFIG_FILE = "copick_config.json"
"""The copick configuration in the project folder."""

MARKER_FILE = "faket_export.json"
"""What was exported, with the key a re-run compares."""

OVERLAY = "overlay"
"""copick's file-system root inside the project folder."""

USER_ID = "faket"
SESSION_ID = "0"
SEGMENTATION_NAME = "classes"
EXPORT_VERSION = 1

_PALETTE = (  # matplotlib's tab10, RGBA
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


def tomo_type(modality: str) -> str:
    """Return the copick ``tomo_type`` of a faket modality: ``_`` made ``-`` (copick's rule).

    ``faket`` -> ``faket``, ``noisy_spectral`` -> ``noisy-spectral``,
    ``faket_random`` -> ``faket-random``.
    """
    return copick_name(modality)


def copick_name(name: str) -> str:
    """Return ``name`` as copick stores it: underscores, spaces, slashes ... made ``-``."""
    from copick.util.escape import sanitize_name

    return str(sanitize_name(name, suppress_warnings=True))


def import_copick() -> Any:
    """Import copick, or raise a one-line `FaketInputError` saying how to install it."""
    try:
        import copick
    except ImportError as err:
        raise FaketInputError(
            "the copick export needs the copick package: pip install 'faket[copick]'"
        ) from err
    return copick


def export_copick(
    dataset: str | os.PathLike[str],
    project: str | os.PathLike[str],
    *,
    modalities: Sequence[str] = (),
    levels: int = 3,
    replace: bool = False,
) -> Path:
    """Write a faket dataset as a copick project; return the copick config file.

    Everything is checked first; the project is built under a hidden temporary name next
    to ``project`` and renamed at the end, so ``project`` is either complete or absent.

    Parameters
    ----------
    dataset : str or PathLike
        A faket dataset folder (with ``dataset.json``).
    project : str or PathLike
        The project folder to write; it must not exist or be empty (unless ``replace``),
        and must not be the dataset or lie in one of its tomogram folders.
    modalities : sequence of str
        The reconstructions to export (``faket``, ``noisy`` ...); empty: every one.
    levels : int
        Levels of each tomogram's multiscale pyramid (fewer for a small tomogram).
    replace : bool
        Replace an existing ``project`` (faket's own ``<dataset>/copick``).

    Returns
    -------
    Path
        ``<project>/copick_config.json``.

    Raises
    ------
    FaketInputError
        One line naming the folder or file, before anything is written.
    """
    copick = import_copick()
    if int(levels) < 1:
        raise FaketInputError(f"levels must be at least 1, got {levels}")
    data = read_dataset(dataset, tuple(modalities))
    target = Path(project).absolute()
    check_project_folder(target, data, replace=replace)
    settings = _settings(data, levels)
    inputs = _read_inputs(data)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(4)}")
    try:
        temp.mkdir()
        _write_project(copick, data, inputs, temp, target, int(levels))
        write_json({**settings, "key": export_key(data, settings)}, temp / MARKER_FILE)
        if target.is_dir() and replace:
            shutil.rmtree(target)
        elif target.is_dir():
            target.rmdir()  # checked empty
        os.replace(temp, target)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return target / CONFIG_FILE


def update_dataset_copick(dataset: str | os.PathLike[str]) -> bool:
    """Write ``<dataset>/copick`` unless it is up to date; return whether it was written.

    The project is rewritten only when the dataset's index or a tomogram's provenance
    changed since the last export (the key in ``faket_export.json``).
    """
    import_copick()
    root = Path(dataset).absolute()
    target = root / "copick"
    data = read_dataset(root)
    marker = read_json_object(target / MARKER_FILE)
    if marker is not None and marker.get("key") == export_key(data, _settings(data, 3)):
        return False
    export_copick(root, target, replace=True)
    return True


def check_project_folder(project: Path, data: DatasetFiles, *, replace: bool = False) -> None:
    """Refuse a project folder that would overwrite or mix with the dataset's files."""
    if project == data.root or data.root.is_relative_to(project):
        raise FaketInputError("the copick project must not be (or hold) the dataset", project)
    from faket.pipeline.layout import EXPORT_FOLDERS, written_by_faket

    if project.is_relative_to(data.root):
        first = data.root / project.relative_to(data.root).parts[0]
        if first.name not in EXPORT_FOLDERS and (
            written_by_faket(first, data.root)
            or written_by_faket(first / "provenance.json", data.root)
        ):
            raise FaketInputError(f"the copick project must not lie in {first.name}/", project)
    if project.exists() and not project.is_dir():
        raise FaketInputError("exists and is not a folder", project)
    if project.is_dir() and any(project.iterdir()) and not replace:
        raise FaketInputError("exists and is not empty; choose a new folder", project)


def _settings(data: DatasetFiles, levels: int) -> dict[str, Any]:
    """Return what an export records in ``faket_export.json`` (besides its key)."""
    from importlib.metadata import version

    from faket import __version__

    return {
        "faket_export": EXPORT_VERSION,
        "dataset": str(data.root),
        "faket_version": __version__,
        "copick_version": version("copick"),
        "levels": levels,
        "runs": [t.name for t in data.tomograms],
        "tomo_types": {m: tomo_type(m) for m in data.tomograms[0].tomograms},
    }


def _read_inputs(data: DatasetFiles) -> tuple[list[dict[str, Any]], dict[str, str], list[Any]]:
    """Return the pickable objects, faket -> copick class names and each run's particles.

    Reads the particle lists and the first class mask; refuses a particle whose class is
    not in ``classes.json``.
    """
    particles = [read_particles(t) for t in data.tomograms]
    first_mask = _class_mask(data.tomograms[0].folder / "class_mask.mrc")
    objects = _pickable_objects(data, first_mask, particles[0])
    names = {c["name"]: o["name"] for c, o in zip(data.classes, objects, strict=True)}
    for t, found in zip(data.tomograms, particles, strict=True):
        unknown = sorted({p.class_name for p in found} - set(names))
        if unknown:
            raise FaketInputError(
                f"class {unknown[0]} is not in classes.json", t.folder / "particle_locations.txt"
            )
    return objects, names, particles


def _write_project(
    copick: Any, data: DatasetFiles, inputs: tuple, temp: Path, final: Path, levels: int
) -> None:
    """Write the copick config (pointing at ``final``) and every run into ``temp``."""
    objects, names, particles = inputs
    _write_config(temp / CONFIG_FILE, temp / OVERLAY, objects)
    root = copick.from_file(str(temp / CONFIG_FILE))
    for t, found in zip(data.tomograms, particles, strict=True):
        run = root.new_run(t.name)
        _write_tomograms(run, t.tomograms, data.tomogram_voxel_size_a, levels)
        _write_picks(run, found, names, data.voxel_size_a)
        if data.voxel_size_a != data.tomogram_voxel_size_a:
            run.new_voxel_spacing(data.voxel_size_a)
        segmentation = run.new_segmentation(
            data.voxel_size_a, SEGMENTATION_NAME, SESSION_ID, is_multilabel=True, user_id=USER_ID
        )
        segmentation.from_numpy(_class_mask(t.folder / "class_mask.mrc"), levels=1)
    _write_config(temp / CONFIG_FILE, final / OVERLAY, objects)


def _write_config(path: Path, overlay: Path, objects: list[dict[str, Any]]) -> None:
    """Write a copick file-system config whose overlay root is ``overlay``."""
    from importlib.metadata import version

    config = {
        "config_type": "filesystem",
        "name": "faket",
        "description": "faket simulated, fully labelled tomograms",
        "version": version("copick"),
        "user_id": USER_ID,
        "session_id": SESSION_ID,
        "pickable_objects": objects,
        "overlay_root": "local://" + str(overlay),
        "overlay_fs_args": {"auto_mkdir": True},
    }
    write_json(config, path)


def _class_mask(path: Path) -> np.ndarray:
    """Return ``class_mask.mrc`` as uint16 labels, whatever the MRC mode."""
    data = read_mrc(path, volume=True).data
    labels = np.rint(data)
    if labels.min() < 0 or labels.max() > np.iinfo(np.uint16).max:
        raise FaketInputError("class ids must be 0 .. 65535", path)
    return labels.astype(np.uint16)


def _pickable_objects(
    data: DatasetFiles, mask: np.ndarray, particles: list[Any]
) -> list[dict[str, Any]]:
    """Return copick's ``pickable_objects`` entries for the dataset's classes."""
    objects = []
    seen: dict[str, str] = {}
    for cls in data.classes:
        name = copick_name(cls["name"])
        if name in seen:
            raise FaketInputError(
                f"classes {seen[name]} and {cls['name']} are both {name} in copick",
                data.tomograms[0].folder / "classes.json",
            )
        seen[name] = cls["name"]
        count = sum(p.class_name == cls["name"] for p in particles)
        label = int(cls["id"])
        objects.append(
            {
                "name": name,
                "is_particle": True,
                "label": label,
                "color": [*_PALETTE[(label - 1) % len(_PALETTE)], 255],
                "radius": class_radius_a(cls, mask, count, data.voxel_size_a),
                "metadata": {"faket": {"name": cls["name"], "source": cls["source"]}},
            }
        )
    return objects


def _write_tomograms(run: Any, tomograms: dict[str, Path], voxel_size_a: float, levels: int):
    """Write each reconstruction as a multiscale OME-Zarr tomogram of ``run``."""
    spacing = run.new_voxel_spacing(voxel_size_a)
    for modality, path in tomograms.items():
        volume = read_mrc(path, volume=True).data
        fit = max(1, min(levels, int(np.log2(max(1, min(volume.shape)))) + 1))
        spacing.new_tomogram(tomo_type(modality)).from_numpy(volume, levels=fit)


def _write_picks(run: Any, particles: list[Any], names: dict[str, str], voxel_size_a: float):
    """Write one copick picks file per class (empty when the tomogram has none)."""
    for faket_name, name in names.items():
        chosen = [p for p in particles if p.class_name == faket_name]
        picks = run.new_picks(name, SESSION_ID, user_id=USER_ID)
        picks.meta.trust_orientation = not chosen or has_orientations(chosen)
        picks.from_numpy(particle_positions_a(chosen, voxel_size_a), particle_transforms(chosen))
