"""``faket project``: noiseless tilt-series of a volume."""

from __future__ import annotations

from pathlib import Path

import click

from faket.cli._common import (
    CHUNK_OPTION,
    DEVICE_OPTION,
    check_outputs,
    progress_bar,
    resolve_device,
)


@click.command()
@click.argument("volume", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--angles",
    "angles_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Tilt angles in degrees: IMOD .tlt/.rawtlt or SHREC alignment_simulated.txt.",
)
@click.option(
    "--width",
    type=click.IntRange(min=1),
    default=None,
    help="Detector width in pixels after the centred crop [default: the volume's nx].",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output tilt-series MRC (tilt, y, x), float32, the volume's pixel size in Angstrom.",
)
@CHUNK_OPTION
@DEVICE_OPTION
def project(
    volume: Path, angles_path: Path, width: int | None, output: Path, chunk_mib: int, device: str
) -> None:
    """Project VOLUME (z, y, x) to a noiseless tilt-series, tilting about Y.

    Each Y-slice is Radon-transformed as scikit-image's radon(circle=False) does,
    cropped centred to --width and negated, so dense matter is dark.

    \b
    Example:
      faket project grandmodel.mrc --angles tilts.tlt --width 512 -o noiseless.mrc
    """
    check_outputs({"-o/--output": output}, {"VOLUME": volume, "--angles": angles_path})

    import torch

    from faket.io import read_mrc, read_tilt_angles, write_mrc
    from faket.projection import project_tilt_series

    angles = read_tilt_angles(angles_path)
    vol = read_mrc(volume, volume=True)
    target = resolve_device(device)
    tensor = torch.from_numpy(vol.data).to(target)
    try:
        with progress_bar(tensor.shape[1], "project", "slice") as bar:
            tilts = project_tilt_series(
                tensor,
                angles,
                width=width,
                max_chunk_bytes=chunk_mib * 2**20,
                progress=bar.update,  # type: ignore[attr-defined]
            )
    except ValueError as err:
        raise click.UsageError(f"{volume}: {err}") from err
    write_mrc(tilts, output, voxel_size_a=vol.voxel_size_a)
    click.echo(f"wrote {output}: {tuple(tilts.shape)} (tilt, y, x)")
