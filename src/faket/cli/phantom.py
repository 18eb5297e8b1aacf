"""``faket phantom``: a labelled specimen (grandmodel) from structures and built-in particles."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from faket.cli._common import progress_bar

_VOXEL_SIZE_RANGE_A = (0.01, 1.0e4)  # finer than any atom; coarser than any tomogram


def _builtin(
    value: str, box: tuple[int, int, int], voxel_size_a: float
) -> tuple[str, int, float | None]:
    """Parse ``type:count`` or ``type:count:diameter_nm``; one-line errors name the value."""
    from faket.phantom import BUILTIN_PARTICLES

    def bad(problem: str) -> click.BadParameter:
        return click.BadParameter(f"{value!r}: {problem}", param_hint="--builtin")

    parts = value.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        count = int(parts[1])
        diameter = float(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise bad("not TYPE:COUNT or TYPE:COUNT:DIAMETER_NM") from None
    if parts[0] not in BUILTIN_PARTICLES:
        raise bad(f"unknown type {parts[0]!r}; choose one of {', '.join(BUILTIN_PARTICLES)}")
    if count < 0:
        raise bad(f"the count must be 0 or more, got {count}")
    if diameter is not None and not (math.isfinite(diameter) and diameter > 0):
        raise bad(f"the diameter must be a finite positive number of nm, got {diameter}")
    size_nm = BUILTIN_PARTICLES[parts[0]][0] if diameter is None else diameter
    width = 10.0 * size_nm / voxel_size_a
    if width > max(box):  # refused before its map is drawn
        raise bad(f"a {size_nm:g} nm particle is {width:.4g} voxels wide, more than the box {box}")
    return parts[0], count, diameter


def _range_nm(text: str, bad: Callable[[str], click.BadParameter]) -> tuple[float, float]:
    """Parse ``LO-HI`` (nm) or one number ``X`` (both ends)."""
    try:
        low, _, high = text.partition("-")
        pair = (float(low), float(high or low))
    except ValueError:
        raise bad(f"{text!r} is not a size range LO-HI in nm") from None
    if not all(math.isfinite(v) for v in pair):
        raise bad(f"{text!r} is not a finite size range")
    return pair


def _entry(model: type[Any], fields: dict[str, Any], bad: Callable[[str], click.BadParameter]):
    """Validate one scene entry; pydantic's first complaint as the option's error."""
    from pydantic import ValidationError

    try:
        return model(**fields)
    except ValidationError as err:
        raise bad(err.errors()[0]["msg"].removeprefix("Value error, ")) from None


def _membrane(value: str) -> Any:
    """Parse ``SHAPE:COUNT[:LO-HI]`` or ``SHAPE:area=F[:LO-HI]`` into a MembraneEntry."""
    from faket.config import MembraneEntry

    def bad(problem: str) -> click.BadParameter:
        return click.BadParameter(f"{value!r}: {problem}", param_hint="--membranes")

    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise bad("not SHAPE:COUNT[:LO-HI_NM] or SHAPE:area=F[:LO-HI_NM]")
    fields: dict[str, Any] = {"shape": parts[0]}
    try:
        if parts[1].startswith("area="):
            fields["area_fraction"] = float(parts[1].removeprefix("area="))
        else:
            fields["count"] = int(parts[1])
    except ValueError:
        raise bad(f"{parts[1]!r} is not a count or area=FRACTION") from None
    if len(parts) == 3:
        fields["size_nm"] = _range_nm(parts[2], bad)
    return _entry(MembraneEntry, fields, bad)


def _membrane_protein(value: str) -> Any:
    """Parse ``TYPE_OR_FILE:COUNT[:OFFSET_NM]`` into a MembraneProteinEntry."""
    from faket.config import MembraneProteinEntry
    from faket.phantom import BUILTIN_PARTICLES

    def bad(problem: str) -> click.BadParameter:
        return click.BadParameter(f"{value!r}: {problem}", param_hint="--membrane-proteins")

    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise bad("not TYPE_OR_FILE:COUNT[:OFFSET_NM]")
    try:
        count = int(parts[1])
        offset = float(parts[2]) if len(parts) == 3 else 0.0
    except ValueError:
        raise bad("the count must be an integer and the offset a number of nm") from None
    fields: dict[str, Any] = {"count": count, "offset_nm": offset}
    if parts[0] in BUILTIN_PARTICLES:
        fields["builtin"] = parts[0]
    elif Path(parts[0]).is_file():
        fields["path"] = Path(parts[0])
    else:
        raise bad(f"{parts[0]!r} is neither a built-in type nor a file")
    return _entry(MembraneProteinEntry, fields, bad)


def _filament(value: str) -> Any:
    """Parse ``TYPE:COUNT[:LO-HI_NM]`` into a FilamentEntry."""
    from faket.config import FilamentEntry

    def bad(problem: str) -> click.BadParameter:
        return click.BadParameter(f"{value!r}: {problem}", param_hint="--filaments")

    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise bad("not TYPE:COUNT[:LO-HI_NM] (TYPE actin or microtubule)")
    try:
        fields: dict[str, Any] = {"type": parts[0], "count": int(parts[1])}
    except ValueError:
        raise bad(f"{parts[1]!r} is not a count") from None
    if len(parts) == 3:
        fields["length_nm"] = _range_nm(parts[2], bad)
    return _entry(FilamentEntry, fields, bad)


def _check_voxel_size(voxel_size: float) -> None:
    """Refuse a ``--voxel-size`` that is not a finite positive number in a sane range."""
    low, high = _VOXEL_SIZE_RANGE_A
    if not (math.isfinite(voxel_size) and voxel_size > 0):
        raise click.BadParameter(
            f"must be a finite positive number of Angstrom, got {voxel_size}",
            param_hint="--voxel-size",
        )
    if not low <= voxel_size <= high:
        raise click.BadParameter(
            f"must be {low:g} to {high:g} Angstrom, got {voxel_size:g}", param_hint="--voxel-size"
        )


@click.command()
@click.option(
    "--structure",
    "structures",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Atomic model (PDB/mmCIF, optionally .gz/.bz2/.xz; water and free solvent ions "
    "are removed) or density map (MRC, with voxel size); repeatable.",
)
@click.option(
    "--count",
    "counts",
    multiple=True,
    type=click.IntRange(min=0),
    help="Number of particles of each --structure, in the same order; repeatable.",
)
@click.option(
    "--builtin",
    "builtins",
    multiple=True,
    help="Built-in particle TYPE:COUNT[:DIAMETER_NM] (globule, ring, rod, barrel, cage, "
    "cluster, dumbbell, ribosome, tripod); repeatable.",
)
@click.option(
    "--box",
    nargs=3,
    type=click.IntRange(min=1),
    required=True,
    help="Box size NZ NY NX in voxels.",
)
@click.option(
    "--voxel-size",
    type=float,
    required=True,
    help="Voxel size in Angstrom (0.01 to 10000).",
)
@click.option(
    "--slab",
    type=click.IntRange(min=1),
    default=None,
    help="Thickness of the sample slab in voxels, centred in Z [default: the box's NZ].",
)
@click.option(
    "--vesicles",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Number of vesicles (lipid bilayers, radius 20-40 nm).",
)
@click.option(
    "--fiducials",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Number of gold fiducials (5-10 nm).",
)
@click.option(
    "--membranes",
    "membranes",
    multiple=True,
    help="Membranes SHAPE:COUNT[:LO-HI_NM] or SHAPE:area=F[:LO-HI_NM] (sphere, ellipsoid, "
    "blob, torus, tube, sheet; size: radius, largest semi-axis or height); repeatable.",
)
@click.option(
    "--membrane-proteins",
    "membrane_proteins",
    multiple=True,
    help="Proteins on the membranes TYPE_OR_FILE:COUNT[:OFFSET_NM] (a built-in type or a "
    "structure file; its Z axis along the normal, OFFSET from the midplane); repeatable.",
)
@click.option(
    "--filaments",
    "filaments",
    multiple=True,
    help="Filaments TYPE:COUNT[:LO-HI_NM] (actin, microtubule; lengths in nm); repeatable.",
)
@click.option(
    "--volume-fraction",
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    default=None,
    help="Fill the cytosol with the particle classes to this labelled volume fraction "
    "(their counts become proportions).",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed."
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache of structure maps [default: $FAKET_CACHE_DIR or ~/.cache/faket].",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (created if needed).",
)
def phantom(
    structures: tuple[Path, ...],
    counts: tuple[int, ...],
    builtins: tuple[str, ...],
    box: tuple[int, int, int],
    voxel_size: float,
    slab: int | None,
    vesicles: int,
    fiducials: int,
    membranes: tuple[str, ...],
    membrane_proteins: tuple[str, ...],
    filaments: tuple[str, ...],
    volume_fraction: float | None,
    seed: int,
    cache_dir: Path | None,
    output: Path,
) -> None:
    """Build a labelled specimen: particles at random positions and orientations.

    Writes grandmodel.mrc (potential in V), class_mask.mrc, occupancy_mask.mrc,
    particle_locations.txt (SHREC: name x y z phi theta psi, voxels, ZXZ degrees),
    particles.star (RELION, ZYZ), classes.json and provenance.json to the output folder.

    \b
    Example:
      faket phantom --structure a.pdb --count 40 --builtin ring:25 \\
          --box 200 512 512 --voxel-size 10 --slab 160 --vesicles 3 \\
          --fiducials 10 --seed 1 -o model_0/

    \b
    A cellular scene (membranes, proteins on them, filaments, crowding):
      faket phantom --builtin ribosome:3 --builtin globule:6 --box 200 512 512 \\
          --voxel-size 10 --slab 160 --membranes blob:2 --membranes sheet:1 \\
          --membrane-proteins ring:30 --filaments actin:10 --filaments microtubule:2 \\
          --volume-fraction 0.15 -o cell/
    """
    from faket.errors import FaketInputError
    from faket.io.provenance import write_provenance
    from faket.io.specimen_files import write_specimen
    from faket.phantom import ParticleClass, builtin_particle, load_structure
    from faket.phantom.scene import build_scene
    from faket.pipeline.scene import scene_from_entries

    _check_voxel_size(voxel_size)
    if len(counts) != len(structures):
        raise FaketInputError(
            f"give one --count per --structure ({len(structures)} structures, {len(counts)} counts)"
        )
    if slab is not None and slab > box[0]:
        raise click.BadParameter(
            f"{slab} voxels is thicker than the box ({box[0]} voxels in Z)", param_hint="--slab"
        )
    parsed = [_builtin(value, box, voxel_size) for value in builtins]
    membrane_entries = [_membrane(value) for value in membranes]
    protein_entries = [_membrane_protein(value) for value in membrane_proteins]
    filament_entries = [_filament(value) for value in filaments]
    if protein_entries and not membrane_entries:
        raise click.BadParameter(
            "there are no --membranes to place them on", param_hint="--membrane-proteins"
        )
    start = time.perf_counter()
    classes: list[ParticleClass] = []
    names: set[str] = set()

    def unique(name: str) -> str:
        base, k = name, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.add(name)
        return name

    for path, count in zip(structures, counts, strict=True):
        density = load_structure(path, voxel_size, cache=cache_dir)
        name = unique(path.name.split(".")[0].replace(" ", "_") or "structure")
        classes.append(ParticleClass(name, density, count, str(path)))
    for kind, count, diameter in parsed:
        try:
            density = builtin_particle(kind, voxel_size, diameter_nm=diameter)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--builtin") from err
        classes.append(ParticleClass(unique(kind), density, count, f"builtin:{kind}"))
    if volume_fraction is not None and not sum(c.count for c in classes):
        raise click.BadParameter(
            "no particle classes to fill it with", param_hint="--volume-fraction"
        )
    scene = scene_from_entries(
        membrane_entries,
        protein_entries,
        filament_entries,
        volume_fraction,
        voxel_size,
        cache_dir=cache_dir,
    )
    total = sum(c.count for c in classes) + vesicles + fiducials
    total += sum(p.count for p in protein_entries) + sum(f.count for f in filament_entries)
    total += sum(m.count or 0 for m in membrane_entries)
    with progress_bar(total, "place", "particle") as bar:
        specimen = build_scene(
            classes,
            box,
            voxel_size,
            scene,
            slab_voxels=slab,
            n_vesicles=vesicles,
            n_fiducials=fiducials,
            seed=seed,
            progress=bar.update,  # type: ignore[attr-defined]
        )
    write_specimen(specimen, output)
    write_provenance(
        output / "provenance.json",
        {
            "command": "phantom",
            "structures": [str(p) for p in structures],
            "counts": list(counts),
            "builtins": list(builtins),
            "box": list(box),
            "voxel_size_a": voxel_size,
            "slab_voxels": slab,
            "vesicles": vesicles,
            "fiducials": fiducials,
            "membranes": list(membranes),
            "membrane_proteins": list(membrane_proteins),
            "filaments": list(filaments),
            "volume_fraction": volume_fraction,
            "seed": seed,
            "n_particles": len(specimen.particles),
            "seconds": round(time.perf_counter() - start, 3),
        },
    )
    click.echo(f"wrote {output}: {len(specimen.particles)} particles in {tuple(box)} (z, y, x)")
