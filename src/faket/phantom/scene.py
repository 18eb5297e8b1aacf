"""Cellular scenes: membranes, membrane proteins, filaments, then crowded soluble particles.

`build_scene` assembles a specimen in layers, each avoiding the matter of the layers
before it: membranes (`faket.phantom.membranes`), proteins on those membranes
(`faket.phantom.membrane_proteins`, displacing the lipid inside their labels), filaments
(`faket.phantom.filaments`), then the soluble particles, vesicles and fiducials of
`faket.phantom.specimen.build_specimen` (by count or to a volume fraction of the
cytosol). Every instance is one line of the particle list and one id of the occupancy
mask; membranes and filaments, which have no orientation, are listed at their centre with
NaN angles, and their geometry (surfaces, polylines, monomers) is kept in
``Specimen.layers``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from faket.io import Particle
from faket.phantom._bodies import Body, mark, paste
from faket.phantom.filaments import FilamentRequest, filament_radius_a, place_filaments
from faket.phantom.membrane_proteins import MembraneProteinRequest, place_membrane_proteins
from faket.phantom.membranes import MembraneRequest, place_membranes
from faket.phantom.specimen import ParticleClass, Specimen, build_specimen

__all__ = ["Scene", "build_scene", "layer_records"]


@dataclass(frozen=True)
class Scene:
    """What a cellular scene holds besides soluble particles, vesicles and fiducials.

    Attributes
    ----------
    membranes : tuple of MembraneRequest
        Membrane shapes with counts or area fractions.
    membrane_proteins : tuple of MembraneProteinRequest
        Protein classes placed on the membranes (needs at least one membrane).
    filaments : tuple of FilamentRequest
        Filament types with counts and lengths.
    volume_fraction : float, optional
        Fill the cytosol with the soluble classes to this labelled volume fraction (their
        counts are proportions); None places the counts.
    """

    membranes: tuple[MembraneRequest, ...] = ()
    membrane_proteins: tuple[MembraneProteinRequest, ...] = ()
    filaments: tuple[FilamentRequest, ...] = ()
    volume_fraction: float | None = None

    @property
    def layered(self) -> bool:
        """Whether anything is drawn before the soluble particles."""
        return bool(self.membranes or self.membrane_proteins or self.filaments)


def build_scene(
    classes: Sequence[ParticleClass],
    shape: tuple[int, int, int],
    voxel_size_a: float,
    scene: Scene,
    *,
    slab_voxels: int | None = None,
    n_vesicles: int = 0,
    vesicle_radius_a: tuple[float, float] = (200.0, 400.0),
    n_fiducials: int = 0,
    seed: int = 0,
    progress: Callable[[int], object] | None = None,
) -> Specimen:
    """Build a cellular specimen: membranes, membrane proteins, filaments, then particles.

    Without membranes, membrane proteins or filaments this is exactly `build_specimen`
    (same arrays for the same seed). The layers draw from their own random stream
    (``seed``, then a layer tag), so adding a filament does not move the membranes.

    Parameters
    ----------
    classes : sequence of ParticleClass
        Soluble particle classes (counts, or proportions with ``scene.volume_fraction``).
    shape : tuple of int
        ``(nz, ny, nx)`` of the box in voxels.
    voxel_size_a : float
        Voxel size in A (every map at this voxel size).
    scene : Scene
        Membranes, membrane proteins, filaments and the volume fraction.
    slab_voxels, n_vesicles, vesicle_radius_a, n_fiducials, seed, progress
        As `build_specimen`.

    Returns
    -------
    Specimen
        Class ids: ``membrane`` (when there are membranes), the membrane protein classes,
        the filament types, then `build_specimen`'s classes; ``layers`` holds the
        membranes' and filaments' geometry (see `layer_records`).

    Raises
    ------
    FaketInputError
        When a layer cannot be placed (the message says how many fit).
    ValueError
        For membrane proteins without membranes, or a bad request.
    """
    if scene.membrane_proteins and not scene.membranes:
        raise ValueError("membrane proteins need membranes to sit on")
    common = {
        "slab_voxels": slab_voxels,
        "n_vesicles": n_vesicles,
        "vesicle_radius_a": vesicle_radius_a,
        "n_fiducials": n_fiducials,
        "seed": seed,
        "progress": progress,
        "volume_fraction": scene.volume_fraction,
    }
    if not scene.layered:
        return build_specimen(classes, shape, voxel_size_a, **common)  # type: ignore[arg-type]
    layers = _draw_layers(scene, shape, voxel_size_a, slab_voxels, seed)
    widths = {r.kind: 2.0 * filament_radius_a(r, voxel_size_a) for r in scene.filaments}
    taken = {c.name for c in classes} | {"vesicle", "fiducial"}
    base = _base_specimen(layers, shape, voxel_size_a, widths, taken)
    if progress is not None:
        progress(len(base.particles))
    specimen = build_specimen(classes, shape, voxel_size_a, base=base, **common)  # type: ignore[arg-type]
    specimen.layers = layer_records(layers, voxel_size_a)
    return specimen


def _draw_layers(
    scene: Scene,
    shape: tuple[int, int, int],
    voxel_size_a: float,
    slab_voxels: int | None,
    seed: int,
) -> list[tuple[str, list[Body]]]:
    """Place the membranes, their proteins and the filaments, each avoiding the last."""
    occupied = np.zeros(shape, dtype=bool)
    streams = np.random.SeedSequence([seed, 19]).spawn(3)
    membranes = place_membranes(
        scene.membranes,
        shape,
        voxel_size_a,
        rng=np.random.default_rng(streams[0]),
        slab_voxels=slab_voxels,
        occupied=occupied,
    )
    for body in membranes:
        mark(occupied, body)
    proteins = place_membrane_proteins(
        scene.membrane_proteins,
        membranes,
        shape,
        voxel_size_a,
        rng=np.random.default_rng(streams[1]),
        slab_voxels=slab_voxels,
        occupied=occupied,
    )
    for body in proteins:
        mark(occupied, body)
    filaments = place_filaments(
        scene.filaments,
        shape,
        voxel_size_a,
        rng=np.random.default_rng(streams[2]),
        slab_voxels=slab_voxels,
        occupied=occupied,
    )
    return [("membrane", membranes), ("membrane_protein", proteins), ("filament", filaments)]


def _base_specimen(
    layers: list[tuple[str, list[Body]]],
    shape: tuple[int, int, int],
    voxel_size_a: float,
    widths_a: dict[str, float],
    taken: set[str],
) -> Specimen:
    """Draw the layers' bodies into a specimen, one class per name, one id per body.

    A membrane protein class named like a soluble class (``taken``) is listed as
    ``<name>_membrane``: the two are different classes to a picker.
    """
    base = Specimen(
        np.zeros(shape, np.float32),
        np.zeros(shape, np.int32),
        np.zeros(shape, np.int32),
        voxel_size_a=voxel_size_a,
    )
    ids: dict[str, int] = {}
    for layer, bodies in layers:
        for body in bodies:
            if layer == "membrane_protein" and body.class_name in taken:
                body.class_name = f"{body.class_name}_membrane"
            if body.class_name not in ids:
                ids[body.class_name] = len(ids) + 1
                info = _class_info(ids[body.class_name], body, layer, voxel_size_a)
                if layer == "filament":  # its size is its width: a picker sees cross-sections
                    info["diameter_a"] = widths_a[body.class_name]
                base.classes.append(info)
            index = len(base.particles) + 1
            paste(
                base.grandmodel,
                base.class_mask,
                base.occupancy_mask,
                body,
                ids[body.class_name],
                index,
                replace=layer == "membrane_protein",
            )
            z, y, x = body.centre_zyx
            phi, theta, psi = body.angles_zxz_deg
            base.particles.append(Particle(body.class_name, x, y, z, phi, theta, psi))
    return base


def _class_info(class_id: int, body: Body, layer: str, voxel_size_a: float) -> dict[str, object]:
    """Return the ``classes`` entry of a layer's class: id, name, source, size in A."""
    builtin = body.class_name in ("actin", "microtubule")
    filament = f"{'builtin' if builtin else 'helical'}:{body.class_name}"
    source = {"membrane": "builtin:membrane", "filament": filament}
    return {
        "id": class_id,
        "name": body.class_name,
        "source": source.get(layer, f"membrane_protein:{body.class_name}"),
        "diameter_a": _label_diameter(body) * voxel_size_a,
        "layer": layer,
    }


def _label_diameter(body: Body) -> float:
    """Return the diagonal of a body's labelled bounding box, in voxels."""
    idx = np.argwhere(body.label)
    if not len(idx):
        return 0.0
    return float(math.dist(idx.min(0), idx.max(0)) + 1.0)


def layer_records(
    layers: list[tuple[str, list[Body]]], voxel_size_a: float
) -> dict[str, list[dict[str, object]]]:
    """Return the geometry of the membranes and filaments, in A, for ``layers.json``.

    Positions are ``(x, y, z)`` in A from the centre of voxel ``(0, 0, 0)`` (the particle
    list's voxel coordinates times the voxel size). Membranes: shape, area and centre;
    filaments: the polyline of the axis, the helical parameters and every monomer's
    position and ZXZ angles (degrees, the particle list's convention).
    """
    records: dict[str, list[dict[str, object]]] = {"membranes": [], "filaments": []}
    index = 0
    for layer, bodies in layers:
        for body in bodies:
            index += 1
            centre = [c * voxel_size_a for c in body.centre_zyx[::-1]]
            if layer == "membrane":
                records["membranes"].append(
                    {
                        "index": index,
                        "shape": body.extra.get("shape"),
                        "area_a2": float(body.extra.get("area_a2", 0.0)),  # type: ignore[arg-type]
                        "centre_xyz_a": centre,
                    }
                )
            elif layer == "filament":
                records["filaments"].append(_filament_record(index, body, centre))
    return records


def _filament_record(index: int, body: Body, centre: list[float]) -> dict[str, object]:
    """Return one filament's record: class, axis polyline, helix, monomers; xyz in A."""
    polyline = np.asarray(body.extra["polyline_zyx_a"])[:, ::-1]
    monomers = body.extra["monomers"]
    assert isinstance(monomers, dict)
    positions = np.asarray(monomers["positions_zyx_a"])[:, ::-1]
    record: dict[str, object] = {
        "index": index,
        "class": body.class_name,
        "centre_xyz_a": centre,
        "length_a": float(body.extra.get("length_a", 0.0)),  # type: ignore[arg-type]
        "helix": body.extra.get("helix"),
        "polyline_xyz_a": np.round(polyline, 3).tolist(),
        "monomers": {
            "xyz_a": np.round(positions, 3).tolist(),
            "zxz_deg": np.round(np.asarray(monomers["angles_zxz_deg"]), 4).tolist(),
        },
    }
    for key in ("protofilament", "is_beta"):
        if key in monomers:
            record["monomers"][key] = np.asarray(monomers[key]).tolist()  # type: ignore[index]
    return record
