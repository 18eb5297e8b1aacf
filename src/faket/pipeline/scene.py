"""The ``phantom:`` section's cellular layers as a `faket.phantom.scene.Scene`.

Shared by ``faket simulate`` (the config) and ``faket phantom`` (its options, parsed into
the same entries), so both read membranes, membrane proteins and filaments one way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from faket.config import FilamentEntry, MembraneEntry, MembraneProteinEntry
from faket.errors import FaketInputError
from faket.phantom.scene import Scene

__all__ = ["scene_from_entries"]


def scene_from_entries(
    membranes: Sequence[MembraneEntry],
    membrane_proteins: Sequence[MembraneProteinEntry],
    filaments: Sequence[FilamentEntry],
    volume_fraction: float | None,
    voxel_size_a: float,
    *,
    cache_dir: Path | None = None,
    field: str = "phantom",
) -> Scene:
    """Return the scene of the entries, with every map drawn at ``voxel_size_a``.

    Raises
    ------
    FaketInputError
        For a membrane protein's missing file (named by ``field``, e.g. ``phantom``).
    """
    from faket.phantom import builtin_particle, load_structure
    from faket.phantom.filaments import FilamentRequest
    from faket.phantom.membrane_proteins import MembraneProteinRequest
    from faket.phantom.membranes import MembraneRequest

    membrane_requests = tuple(
        MembraneRequest(
            m.shape,
            count=m.count if m.count is not None or m.area_fraction is not None else 1,
            area_fraction=m.area_fraction,
            size_a=None if m.size_nm is None else (10 * m.size_nm[0], 10 * m.size_nm[1]),
        )
        for m in membranes
    )
    proteins = []
    for k, entry in enumerate(membrane_proteins):
        if entry.path is not None:
            if not entry.path.is_file():
                raise FaketInputError(
                    f"{field}.membrane_proteins[{k}].path: no such file", entry.path
                )
            density = load_structure(entry.path, voxel_size_a, cache=cache_dir)
        else:
            assert entry.builtin is not None
            density = builtin_particle(entry.builtin, voxel_size_a)
        proteins.append(
            MembraneProteinRequest(
                entry.name,
                density,
                entry.count,
                axis_xyz=entry.axis,
                offset_a=10.0 * entry.offset_nm,
            )
        )
    filament_requests = tuple(
        FilamentRequest(
            f.type,
            f.count,
            (10 * f.length_nm[0], 10 * f.length_nm[1]),
            None if f.persistence_length_nm is None else 10 * f.persistence_length_nm,
        )
        for f in filaments
    )
    return Scene(membrane_requests, tuple(proteins), filament_requests, volume_fraction)
