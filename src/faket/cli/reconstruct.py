"""``faket reconstruct``: a tomogram from a tilt-series by filtered back-projection."""

from __future__ import annotations

import time
from pathlib import Path

import click

from faket.cli._common import (
    CHUNK_OPTION,
    DEVICE_OPTION,
    check_outputs,
    progress_bar,
    resolve_device,
)

_FILE = click.Path(dir_okay=False, path_type=Path)
_FILTERS = ("ramp", "approx-shrec", "shepp-logan", "cosine", "hamming", "hann", "none")


@click.command()
@click.argument("tilts", type=_FILE)
@click.option(
    "--angles",
    "angles_path",
    required=True,
    type=_FILE,
    help="Tilt angles in degrees: IMOD .tlt/.rawtlt or SHREC alignment_simulated.txt.",
)
@click.option(
    "--bin",
    "bin_factor",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Bin the projections by this factor first (pixel size x factor).",
)
@click.option(
    "--bin-method",
    type=click.Choice(["fourier", "spline"]),
    default="fourier",
    show_default=True,
    help="fourier: Fourier cropping (no aliasing, mean kept); spline: scipy zoom with cubic "
    "splines, the FakET reference setting.",
)
@click.option(
    "--filter",
    "filter_name",
    type=click.Choice(_FILTERS),
    default="ramp",
    show_default=True,
    help="Filter on each projection's spectrum; approx-shrec is the reference setting.",
)
@click.option(
    "--crowther",
    "crowther_frequency",
    type=click.FloatRange(0.0, 0.5, min_open=True),
    default=None,
    help="Ramp filter only: flat above this frequency, in cycles per pixel (Nyquist 0.5).",
)
@click.option(
    "--pad/--no-pad",
    default=True,
    show_default=True,
    help="Zero-pad the projections before the FFT (--no-pad: circular filtering).",
)
@click.option(
    "--thickness",
    type=click.IntRange(min=1),
    default=None,
    help="Tomogram depth in voxels (after --bin), at most the detector width "
    "[default: the detector width, a cube].",
)
@click.option(
    "--z-offset",
    type=int,
    default=0,
    show_default=True,
    help="Shift of the slab's centre from the tilt axis along Z, in voxels (after --bin).",
)
@click.option(
    "--z-range",
    nargs=2,
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Keep only this relative Z range of the cube, e.g. 0.32226 0.67382 (SHREC); "
    "instead of --thickness and --z-offset.",
)
@click.option(
    "--z-flip/--no-z-flip",
    default=False,
    show_default=True,
    help="Reverse the Z order of the output (default: the orientation of the projected volume).",
)
@click.option(
    "--weighting",
    type=click.Choice(["none", "spacing"]),
    default="none",
    show_default=True,
    help="none: pi / (2 n_tilts) per tilt (the reference); spacing: by each tilt's angular "
    "interval.",
)
@click.option(
    "--backend",
    type=click.Choice(["torch", "imod"]),
    default="torch",
    show_default=True,
    help="torch: this package; imod: IMOD's tilt program (must be on PATH).",
)
@click.option(
    "--imod-radial",
    nargs=2,
    type=click.FloatRange(min=0.0),
    default=(0.35, 0.035),
    show_default=True,
    help="IMOD back-end only: RADIAL cutoff and fall-off sigma in cycles per pixel.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=_FILE,
    help="Output tomogram MRC (z, y, x), float32, voxel size in Angstrom; a provenance "
    "JSON is written next to it.",
)
@CHUNK_OPTION
@DEVICE_OPTION
def reconstruct(
    tilts: Path,
    angles_path: Path,
    bin_factor: int,
    bin_method: str,
    filter_name: str,
    crowther_frequency: float | None,
    pad: bool,
    thickness: int | None,
    z_offset: int,
    z_range: tuple[float, float] | None,
    z_flip: bool,
    weighting: str,
    backend: str,
    imod_radial: tuple[float, float],
    output: Path,
    chunk_mib: int,
    device: str,
) -> None:
    """Reconstruct a tomogram (z, y, x) from TILTS (tilt, y, x) by filtered back-projection.

    The projections are binned (--bin), filtered (--filter) and back-projected about the
    Y axis over the tilt angles, in the geometry of `faket project`, so a projected
    volume comes back in place. Dense matter stays dark, as in the tilt-series.

    \b
    Examples:
      faket reconstruct tilts.mrc --angles tilts.tlt -o tomo.mrc
      faket reconstruct TILTS.mrc --angles ANGLES.tlt --bin 2 --filter approx-shrec \\
          --thickness 180 -o TOMO.mrc
      # the FakET reference setting for SHREC 2021:
      faket reconstruct projections.mrc --angles alignment_simulated.txt --bin 2 \\
          --bin-method spline --filter approx-shrec --no-pad \\
          --z-range 0.32226 0.67382 -o rec.mrc
    """
    from faket.io.provenance import provenance_path, write_provenance

    check_outputs(
        {"-o/--output": output, "the provenance JSON of -o/--output": provenance_path(output)},
        {"TILTS": tilts, "--angles": angles_path},
    )

    import torch

    from faket.errors import FaketInputError
    from faket.io import check_angle_count, read_mrc, read_tilt_angles, write_mrc

    if z_range is not None and (thickness is not None or z_offset != 0):
        raise click.UsageError("give either --z-range or --thickness/--z-offset, not both")
    if backend == "imod" and filter_name != "ramp":
        raise click.UsageError(
            "the IMOD back-end applies its own radial (ramp) filter; --filter is for the "
            "torch back-end (set the IMOD filter with --imod-radial)"
        )
    if backend == "imod":
        from faket.reconstruction import imod_available

        if not imod_available():
            raise click.ClickException(
                "IMOD is not installed: its 'tilt' program is not on PATH; install IMOD "
                "(https://bio3d.colorado.edu/imod/) or use --backend torch"
            )
    from faket.reconstruction import (
        bin_tilt_series,
        reconstruct_tomogram,
        reconstruct_with_imod,
        z_range_to_slab,
    )

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    angles = read_tilt_angles(angles_path)
    stack = read_mrc(tilts, ndim=3)  # refuses NaN/Inf and non-square pixels
    check_angle_count(stack.data.shape[0], angles, stack_path=tilts, angles_path=angles_path)
    seconds["read"] = time.perf_counter() - start
    n_tilts, ny, nx = stack.data.shape
    if nx // bin_factor < 1 or ny // bin_factor < 1:
        raise FaketInputError(
            f"images of {ny} x {nx} pixels cannot be binned by {bin_factor}", tilts
        )
    width = nx // bin_factor
    if z_range is not None:
        try:
            thickness, z_offset = z_range_to_slab(width, z_range)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--z-range") from err
    if thickness is not None and thickness > width:
        raise FaketInputError(
            f"--thickness {thickness} is larger than the detector width {width} px"
            + (f" (after --bin {bin_factor})" if bin_factor > 1 else "")
            + f", which makes no sense for a tilt-series: use at most {width} (a cube)",
            tilts,
        )
    target = resolve_device(device)
    tensor = torch.from_numpy(stack.data).to(target)

    t0 = time.perf_counter()
    binned, pixel_size_a = bin_tilt_series(
        tensor, bin_factor, method=bin_method, pixel_size_a=stack.voxel_size_a
    )
    seconds["bin"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    try:
        if backend == "imod":
            volume = reconstruct_with_imod(
                binned,
                angles,
                thickness=thickness,
                z_offset=z_offset,
                z_flip=z_flip,
                radial=imod_radial,
            )
        else:
            with progress_bar(binned.shape[1], "reconstruct", "slice") as bar:
                volume = reconstruct_tomogram(
                    binned,
                    angles,
                    filter_name=filter_name,
                    crowther_frequency=crowther_frequency,
                    pad=pad,
                    thickness=thickness,
                    z_offset=z_offset,
                    z_flip=z_flip,
                    weighting=weighting,
                    max_chunk_bytes=chunk_mib * 2**20,
                    progress=bar.update,  # type: ignore[attr-defined]
                )
    except FaketInputError:
        raise
    except ValueError as err:
        raise FaketInputError(str(err), tilts) from err
    except RuntimeError as err:
        if backend != "imod":
            raise
        raise click.ClickException(str(err)) from err
    seconds["reconstruct"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    write_mrc(volume, output, voxel_size_a=pixel_size_a)
    seconds["write"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - start
    settings = {
        "bin": bin_factor,
        "bin_method": bin_method,
        "filter": filter_name if backend == "torch" else "imod-radial",
        "crowther_frequency": crowther_frequency,
        "pad": pad,
        "thickness": int(volume.shape[0]),
        "z_offset": z_offset,
        "z_range": None if z_range is None else list(z_range),
        "z_flip": z_flip,
        "weighting": weighting if backend == "torch" else "imod",
        "backend": backend,
        "imod_radial": list(imod_radial) if backend == "imod" else None,
        "chunk_mib": chunk_mib,
    }
    write_provenance(
        provenance_path(output),
        {
            "command": "faket reconstruct",
            "input": str(tilts),
            "angles_file": str(angles_path),
            "tilt_angles_deg": angles.tolist(),
            "output": str(output),
            "settings": settings,
            "pixel_size_a": {"input": stack.voxel_size_a, "output": pixel_size_a},
            "shape": {
                "input_tilt_y_x": [n_tilts, ny, nx],
                "output_z_y_x": list(volume.shape),
            },
            "device": str(target),
            "seconds": seconds,
        },
    )
    click.echo(
        f"wrote {output}: {tuple(volume.shape)} (z, y, x), "
        f"voxel {pixel_size_a if pixel_size_a is not None else 'unset'} A, "
        f"{seconds['total']:.1f} s"
    )
