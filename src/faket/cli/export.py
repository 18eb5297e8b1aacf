"""``faket export``: a finished dataset in another tool's format (copick)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def export() -> None:
    """Export a faket dataset for other tools: copick projects."""


@export.command("copick")
@click.argument("dataset", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Project folder to write (new or empty); copick_config.json goes in it.",
)
@click.option(
    "--modality",
    "modalities",
    multiple=True,
    help="Reconstruction to export (faket, noisy, baseline, noiseless, reference, "
    "noisy_spectral ...); repeatable. Default: every tomogram_<modality>.mrc.",
)
@click.option(
    "--levels",
    type=click.IntRange(min=1, max=8),
    default=3,
    show_default=True,
    help="Levels of each tomogram's multiscale OME-Zarr pyramid.",
)
def copick_command(dataset: Path, output: Path, modalities: tuple[str, ...], levels: int) -> None:
    """Write DATASET (made by faket simulate or faket demo) as a copick project.

    One copick run per tomogram (model_0, model_1 ...); each reconstruction as a
    tomogram whose tomo_type is the modality with "_" as "-" (faket, noisy, baseline,
    noiseless, reference, noisy-spectral ...); the particles as picks per class
    (Angstrom, 4x4 transforms); class_mask.mrc as the multilabel segmentation
    "classes". Open it with copick.from_file("PROJECT/copick_config.json").

    \b
    Examples:
      faket export copick my_dataset/ -o my_project/
      faket export copick my_dataset/ -o my_project/ --modality faket --modality noisy
    """
    from faket.export import export_copick

    config = export_copick(dataset, output, modalities=modalities, levels=levels)
    click.echo(f"copick project: {config}")
