"""Read what an export needs from a faket dataset folder, checked before anything is written."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.io import Particle, read_classes_json, read_json_object, read_particle_locations

INDEX = "dataset.json"
"""The index file that makes a folder a faket dataset."""


@dataclass(frozen=True)
class TomogramFiles:
    """One tomogram of a dataset: its folder and reconstructions.

    Attributes
    ----------
    name : str
        The folder name (``model_<i>``), also the copick run's name.
    folder : Path
        The folder.
    tomograms : dict of str to Path
        Modality (``faket``, ``noisy_spectral`` ...) -> ``tomogram_<modality>.mrc``, in
        the order of ``dataset.json``.
    """

    name: str
    folder: Path
    tomograms: dict[str, Path]


@dataclass(frozen=True)
class DatasetFiles:
    """A checked faket dataset.

    Attributes
    ----------
    root : Path
        The dataset folder (absolute).
    voxel_size_a, tomogram_voxel_size_a : float
        The specimens' voxel size (masks, particle lists) and the tomograms', Angstrom.
    tomograms : tuple of TomogramFiles
        In index order.
    classes : list of dict
        ``classes.json`` of the first tomogram (``id``, ``name``, ``source``, ``diameter_a``).
    """

    root: Path
    voxel_size_a: float
    tomogram_voxel_size_a: float
    tomograms: tuple[TomogramFiles, ...]
    classes: list[dict[str, Any]]


def read_dataset(path: str | os.PathLike[str], modalities: tuple[str, ...] = ()) -> DatasetFiles:
    """Check a faket dataset folder and list the files an export reads.

    Parameters
    ----------
    path : str or Path
        The dataset folder (``run.output`` of ``faket simulate``).
    modalities : tuple of str
        The reconstructions to export (``faket``, ``noisy`` ...); empty: every one.

    Raises
    ------
    FaketInputError
        Naming the folder or file: not a faket dataset, a listed file missing, tomograms
        with different class tables, or a modality the dataset does not have.
    """
    root = Path(path).absolute()
    if not root.is_dir():
        raise FaketInputError("no such dataset folder", root)
    index = read_json_object(root / INDEX)
    if index is None or "faket_dataset" not in index or not index.get("tomograms"):
        raise FaketInputError(f"not a faket dataset (no readable {INDEX} with tomograms)", root)
    try:
        voxel = float(index["voxel_size_a"])
        tomo_voxel = float(index.get("tomogram_voxel_size_a", voxel))
        tomograms = tuple(_tomogram(root, entry) for entry in index["tomograms"])
    except (KeyError, TypeError, ValueError) as err:
        raise FaketInputError(f"not a faket dataset index ({err})", root / INDEX) from err
    _check_modalities(tomograms, modalities, root)
    if modalities:
        tomograms = tuple(
            TomogramFiles(t.name, t.folder, {m: t.tomograms[m] for m in modalities})
            for t in tomograms
        )
    classes = read_classes_json(tomograms[0].folder / "classes.json")
    for t in tomograms[1:]:
        if read_classes_json(t.folder / "classes.json") != classes:
            raise FaketInputError(
                f"its classes differ from those of {tomograms[0].name}", t.folder / "classes.json"
            )
    return DatasetFiles(root, voxel, tomo_voxel, tomograms, classes)


def _tomogram(root: Path, entry: dict[str, Any]) -> TomogramFiles:
    """Return one tomogram of ``dataset.json``; every file it needs must exist."""
    name = str(entry["folder"])
    folder = root / name
    files = [str(f) for f in entry["files"]]
    for needed in ("class_mask.mrc", "particle_locations.txt", "classes.json"):
        if not (folder / needed).is_file():
            raise FaketInputError("missing (the dataset is not finished?)", folder / needed)
    tomograms = {}
    for file in files:
        if file.startswith("tomogram_") and file.endswith(".mrc"):
            if not (folder / file).is_file():
                raise FaketInputError("missing (the dataset is not finished?)", folder / file)
            tomograms[file[len("tomogram_") : -len(".mrc")]] = folder / file
    return TomogramFiles(name, folder, tomograms)


def _check_modalities(tomograms: tuple[TomogramFiles, ...], wanted: tuple[str, ...], root: Path):
    """Refuse a requested modality that some tomogram lacks."""
    for modality in wanted:
        for t in tomograms:
            if modality not in t.tomograms:
                have = ", ".join(t.tomograms) or "none"
                raise FaketInputError(
                    f"no modality {modality}: {t.name} has no tomogram_{modality}.mrc "
                    f"(its modalities: {have})",
                    root,
                )


def particle_positions_a(particles: list[Particle], voxel_size_a: float) -> np.ndarray:
    """Return particle centres in Angstrom, ``(n, 3)`` columns x, y, z.

    A faket position ``x`` (voxels) is the centre of voxel index ``x`` along that axis;
    copick (OME-NGFF ``scale`` transform, no translation) puts voxel index ``i`` at
    ``i * voxel_size_a``: so the position in Angstrom is ``x * voxel_size_a``.
    """
    xyz = np.array([(p.x, p.y, p.z) for p in particles], dtype=np.float64).reshape(-1, 3)
    return xyz * voxel_size_a


def particle_transforms(particles: list[Particle]) -> np.ndarray:
    """Return copick's 4x4 object-to-tomogram transforms, ``(n, 4, 4)``, zero translation.

    faket's ZXZ angles give ``R = Rotation.from_euler("ZXZ", (phi, theta, psi),
    degrees=True)``, the rotation acting on ``(x, y, z)`` that places the reference in
    the tomogram (``faket.phantom.specimen.rotate_map``): a point ``r`` of the reference
    lands at ``centre + R r``. copick's transform maps object to tomogram coordinates, so
    its rotation block is ``R`` itself; the particle centre is the pick's location. A
    particle without angles (NaN: no orientation) gets the identity.
    """
    transforms = np.tile(np.eye(4), (len(particles), 1, 1))
    angles = np.array([(p.phi, p.theta, p.psi) for p in particles], dtype=np.float64)
    known = np.isfinite(angles).all(axis=1) if particles else np.zeros(0, bool)
    if known.any():
        rotations = Rotation.from_euler("ZXZ", angles[known], degrees=True).as_matrix()
        transforms[known, :3, :3] = rotations
    return transforms


def has_orientations(particles: list[Particle]) -> bool:
    """Return whether any particle has angles (not NaN, faket's mark of no orientation)."""
    return any(np.isfinite([p.phi, p.theta, p.psi]).all() for p in particles)


def class_radius_a(
    cls: dict[str, Any], class_mask: np.ndarray, n_particles: int, voxel_size_a: float
) -> float | None:
    """Return a class's radius in Angstrom for copick's ``radius``.

    Half the ``diameter_a`` of ``classes.json`` (the bounding diameter of the class's
    labelled voxels; vesicles and fiducials: the largest drawn). When that is missing
    (0), the radius of the sphere with the mean volume of one particle's labelled voxels
    in ``class_mask``; None when the class has no particle or no labelled voxel.
    """
    diameter = float(cls.get("diameter_a", 0.0))
    if diameter > 0:
        return diameter / 2
    voxels = int(np.count_nonzero(class_mask == int(cls["id"])))
    if not n_particles or not voxels:
        return None
    return voxel_size_a * (3 * voxels / (4 * math.pi * n_particles)) ** (1 / 3)


def read_particles(tomogram: TomogramFiles) -> list[Particle]:
    """Return the particles of one tomogram (``particle_locations.txt``)."""
    return read_particle_locations(tomogram.folder / "particle_locations.txt")


def export_key(dataset: DatasetFiles, settings: dict[str, Any]) -> str:
    """Return a digest of what an export depends on: the index, provenance, settings.

    ``provenance.json`` is written last and holds each tomogram's resume key (config,
    inputs, seed), so a changed tomogram changes the key.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update((dataset.root / INDEX).read_bytes())
    for t in dataset.tomograms:
        provenance = t.folder / "provenance.json"
        digest.update(provenance.read_bytes() if provenance.is_file() else b"-")
    return digest.hexdigest()
