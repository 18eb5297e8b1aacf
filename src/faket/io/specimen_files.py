"""The files of a specimen: its volumes, masks, particle lists and class table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from faket.io.mrc import write_mrc
from faket.io.particles import write_particle_locations
from faket.io.particles_star import write_classes_json, write_particles_star

if TYPE_CHECKING:
    from faket.phantom.specimen import Specimen

__all__ = ["SPECIMEN_FILES", "write_specimen"]

SPECIMEN_FILES = (
    "grandmodel.mrc",
    "class_mask.mrc",
    "occupancy_mask.mrc",
    "particle_locations.txt",
    "particles.star",
    "classes.json",
)
"""The files `write_specimen` writes, in that order."""


def write_specimen(specimen: Specimen, folder: str | os.PathLike[str]) -> None:
    """Write a specimen's `SPECIMEN_FILES` into ``folder`` (created), each atomically.

    Volumes carry the specimen's voxel size; ``particles.star`` gives it as the pixel
    size and the class ids of ``classes.json``.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    v = specimen.voxel_size_a
    write_mrc(specimen.grandmodel, root / "grandmodel.mrc", voxel_size_a=v)
    write_mrc(specimen.class_mask, root / "class_mask.mrc", voxel_size_a=v)
    write_mrc(specimen.occupancy_mask, root / "occupancy_mask.mrc", voxel_size_a=v)
    write_particle_locations(specimen.particles, root / "particle_locations.txt")
    ids = {str(c["name"]): int(c["id"]) for c in specimen.classes}  # type: ignore[call-overload]
    write_particles_star(specimen.particles, ids, root / "particles.star", pixel_size_a=v)
    write_classes_json(specimen.classes, root / "classes.json")
