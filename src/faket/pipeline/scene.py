"""The ``phantom:`` section's cellular layers as a `faket.phantom.scene.Scene`.

Shared by ``faket simulate`` (the config) and ``faket phantom`` (its options, parsed into
the same entries), so both read membranes, membrane proteins and filaments one way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
        _filament_request(f, k, voxel_size_a, cache_dir, field) for k, f in enumerate(filaments)
    )
    return Scene(membrane_requests, tuple(proteins), filament_requests, volume_fraction)


def _filament_request(
    entry: FilamentEntry, k: int, voxel_size_a: float, cache_dir: Path | None, field: str
) -> Any:
    """Return one entry's `FilamentRequest`, a helical one with its monomer drawn."""
    from faket.phantom import builtin_particle, load_structure
    from faket.phantom.filaments import FilamentRequest, HelixLattice

    length_a = (10 * entry.length_nm[0], 10 * entry.length_nm[1])
    lp = None if entry.persistence_length_nm is None else 10 * entry.persistence_length_nm
    if entry.type != "helical":
        return FilamentRequest(entry.type, entry.count, length_a, lp)
    if entry.path is not None:
        if not entry.path.is_file():
            raise FaketInputError(f"{field}.filaments[{k}].path: no such file", entry.path)
        monomer = load_structure(entry.path, voxel_size_a, cache=cache_dir)
    else:
        assert entry.builtin is not None
        monomer = builtin_particle(entry.builtin, voxel_size_a)
    assert entry.rise_nm is not None and entry.twist_deg is not None
    assert entry.radius_nm is not None
    lattice = HelixLattice(10 * entry.rise_nm, entry.twist_deg, 10 * entry.radius_nm, entry.starts)
    return FilamentRequest(entry.name, entry.count, length_a, lp, monomer, lattice)
