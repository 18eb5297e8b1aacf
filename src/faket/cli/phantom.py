"""``faket phantom``: a labelled specimen (grandmodel) from structures and built-in particles."""

from __future__ import annotations

import time
from pathlib import Path

import click

from faket.cli._common import progress_bar


def _builtin(value: str) -> tuple[str, int, float | None]:
    """Parse ``type:count`` or ``type:count:diameter_nm``."""
    parts = value.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        count = int(parts[1])
        diameter = float(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not TYPE:COUNT or TYPE:COUNT:DIAMETER_NM", param_hint="--builtin"
        ) from None
    return parts[0], count, diameter


@click.command()
@click.option(
    "--structure",
    "structures",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Atomic model (PDB/mmCIF) or density map (MRC, with voxel size); repeatable.",
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
    help="Voxel size in Angstrom.",
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
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
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
    """
    from faket.errors import FaketInputError
    from faket.io.provenance import write_provenance
    from faket.io.specimen_files import write_specimen
    from faket.phantom import ParticleClass, build_specimen, builtin_particle, load_structure

    if not voxel_size > 0:
        raise FaketInputError(f"--voxel-size must be positive, got {voxel_size} Angstrom")
    if len(counts) != len(structures):
        raise FaketInputError(
            f"give one --count per --structure ({len(structures)} structures, {len(counts)} counts)"
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
    for value in builtins:
        kind, count, diameter = _builtin(value)
        try:
            density = builtin_particle(kind, voxel_size, diameter_nm=diameter)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--builtin") from err
        classes.append(ParticleClass(unique(kind), density, count, f"builtin:{kind}"))
    nz = box[0]
    if slab is not None and slab > nz:
        raise FaketInputError(f"--slab {slab} is thicker than the box ({nz} voxels)")
    total = sum(c.count for c in classes) + vesicles + fiducials
    with progress_bar(total, "place", "particle") as bar:
        specimen = build_specimen(
            classes,
            box,
            voxel_size,
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
            "seed": seed,
            "n_particles": len(specimen.particles),
            "seconds": round(time.perf_counter() - start, 3),
        },
    )
    click.echo(f"wrote {output}: {len(specimen.particles)} particles in {tuple(box)} (z, y, x)")
