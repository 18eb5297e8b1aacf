"""The files of a specimen: its volumes, masks, particle lists and class table."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from faket.io.deepfinder import write_label_mrc, write_objects_xml
from faket.io.json_files import write_json
from faket.io.particles import write_particle_locations
from faket.io.particles_star import write_classes_json, write_particles_star
from faket.io.tilt_stack import write_mrc_in_parts

if TYPE_CHECKING:
    from faket.phantom.specimen import Specimen

__all__ = ["SPECIMEN_FILES", "write_specimen"]

SPECIMEN_FILES = (
    "grandmodel.mrc",
    "class_mask.mrc",
    "occupancy_mask.mrc",
    "particle_locations.txt",
    "particles.star",
    "objects.xml",
    "classes.json",
)
"""The files `write_specimen` writes, in that order."""

_TRAILING_NUMBER = re.compile(r"(\d+)$")


def _label_sizes(mask: np.ndarray, n_labels: int) -> np.ndarray:
    """Return the voxel count of every label ``0 .. n_labels - 1`` (and beyond) of a mask.

    Counted a Z-slice at a time: ``np.bincount`` of the whole would hold an int64 copy
    of the volume (twice the int32 mask).
    """
    sizes = np.zeros(n_labels, dtype=np.int64)
    for plane in np.asarray(mask):
        counts = np.bincount(plane.ravel(), minlength=n_labels)
        if counts.size > sizes.size:
            sizes = np.pad(sizes, (0, counts.size - sizes.size))
        sizes[: counts.size] += counts
    return sizes


def write_specimen(
    specimen: Specimen,
    folder: str | os.PathLike[str],
    *,
    tomo_name: str = "tomogram",
    tomo_idx: int | None = None,
) -> None:
    """Write a specimen's `SPECIMEN_FILES` into ``folder`` (created), each atomically.

    Volumes carry the specimen's voxel size; ``class_mask.mrc`` holds integer class ids
    (int8, or uint16 beyond 127 classes). ``particles.star`` (RELION 5) gives the voxel
    size as the pixel size, the class ids of ``classes.json`` and coordinates centred
    on the specimen box; ``objects.xml`` is DeepFinder's object list, with each
    particle's labelled voxels as ``cluster_size``.

    Parameters
    ----------
    specimen : Specimen
        The specimen.
    folder : str or PathLike
        The tomogram's folder.
    tomo_name : str, optional
        The tomogram's name (one word), ``rlnTomoName`` in ``particles.star``: a dataset
        passes its folder's name (``model_0``). The default keeps the files independent
        of the folder, so equal specimens give equal bytes wherever they are written.
    tomo_idx : int, optional
        ``tomo_idx`` in ``objects.xml``; default the number that ends ``tomo_name``, else 0.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    if tomo_idx is None:
        match = _TRAILING_NUMBER.search(tomo_name)
        tomo_idx = int(match.group(1)) if match else 0
    v = specimen.voxel_size_a
    write_mrc_in_parts(specimen.grandmodel, root / "grandmodel.mrc", voxel_size_a=v)
    write_label_mrc(specimen.class_mask, root / "class_mask.mrc", voxel_size_a=v)
    write_mrc_in_parts(specimen.occupancy_mask, root / "occupancy_mask.mrc", voxel_size_a=v)
    # Membranes and filaments have no orientation: NaN angles, as the SHREC simulator writes.
    write_particle_locations(
        specimen.particles, root / "particle_locations.txt", missing_angles=True
    )
    ids = {str(c["name"]): int(c["id"]) for c in specimen.classes}  # type: ignore[call-overload]
    write_particles_star(
        specimen.particles,
        ids,
        root / "particles.star",
        pixel_size_a=v,
        tomo_name=tomo_name,
        tomo_shape_zyx=specimen.grandmodel.shape,
    )
    sizes = _label_sizes(specimen.occupancy_mask, len(specimen.particles) + 1)
    write_objects_xml(
        specimen.particles,
        ids,
        root / "objects.xml",
        tomo_idx=tomo_idx,
        cluster_sizes=[int(s) for s in sizes[1 : len(specimen.particles) + 1]],
    )
    write_classes_json(specimen.classes, root / "classes.json")
    if any(specimen.layers.values()):
        # Membranes' and filaments' geometry (surfaces, axis polylines, monomers), in A.
        write_json(specimen.layers, root / "layers.json")
