"""``faket microscope``: the reference microscope's electron-counting tilt-series."""

from __future__ import annotations

import time
from pathlib import Path

import click

from faket.cli._common import DEVICE_OPTION, check_outputs, progress_bar, resolve_device

_FILE = click.Path(dir_okay=False, path_type=Path)


def noiseless_path(output: Path, tag: str = "noiseless") -> Path:
    """Return a counterpart of ``output`` (``ts.mrc`` -> ``ts_noiseless.mrc``, ``ts_even.mrc``)."""
    name = output.name
    for suffix in (".mrc.gz", ".mrc.bz2", ".mrc", ".st", ".ali"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return output.with_name(f"{name[: -len(suffix)]}_{tag}{suffix}")
    return output.with_name(f"{name}_{tag}.mrc")


@click.command()
@click.argument("grandmodel", type=_FILE)
@click.option(
    "--angles",
    "angles_path",
    type=_FILE,
    default=None,
    help="Tilt angles in degrees (IMOD .tlt/.rawtlt or SHREC alignment file), in image order.",
)
@click.option(
    "--tilt-range",
    nargs=3,
    type=float,
    default=(-60.0, 60.0, 2.0),
    show_default=True,
    help="START STOP STEP in degrees, used without --angles.",
)
@click.option(
    "--scheme",
    type=click.Choice(["dose-symmetric", "sequential"]),
    default="dose-symmetric",
    show_default=True,
    help="Exposure order: dose-symmetric (Hagen 2017, groups of 2) or sequential (- to +).",
)
@click.option("--voltage-kv", type=float, default=300.0, show_default=True, help="kV.")
@click.option(
    "--dose-total",
    type=float,
    default=120.0,
    show_default=True,
    help="Total exposure of the tilt-series in e-/A^2, shared equally by the tilts.",
)
@click.option(
    "--defocus-um",
    type=float,
    default=3.0,
    show_default=True,
    help="Mean defocus in µm, UNDERFOCUS POSITIVE.",
)
@click.option(
    "--defocus-spread-um",
    type=float,
    default=0.1,
    show_default=True,
    help="Std of the random per-tilt defocus, µm.",
)
@click.option(
    "--defocus-gradient/--no-defocus-gradient",
    default=True,
    show_default=True,
    help="Defocus changes across X as the tilted specimen does (+x tan(tilt)).",
)
@click.option(
    "--astigmatism-um",
    type=float,
    default=0.02,
    show_default=True,
    help="(defocus_u - defocus_v) / 2 in µm.",
)
@click.option(
    "--astigmatism-angle-deg",
    type=float,
    default=0.0,
    show_default=True,
    help="Angle of defocus_u from Y, degrees.",
)
@click.option("--cs-mm", type=float, default=2.7, show_default=True, help="Cs in mm.")
@click.option(
    "--amplitude-contrast", type=float, default=0.07, show_default=True, help="Fraction Q."
)
@click.option(
    "--pixel-size-a",
    type=float,
    default=None,
    help="Pixel size in A [default: the grandmodel's voxel size].",
)
@click.option(
    "--slab-nm", type=float, default=150.0, show_default=True, help="Ice slab thickness, nm."
)
@click.option(
    "--mfp-nm",
    type=float,
    default=None,
    help="Inelastic mean free path in ice, nm [default: 395 nm at 300 kV, scaled by beta^2].",
)
@click.option(
    "--shift-std-a",
    type=float,
    default=10.0,
    show_default=True,
    help="Std of the random per-tilt misalignment along Y and X, A.",
)
@click.option(
    "--detector",
    type=click.Choice(["counting", "ideal"]),
    default="counting",
    show_default=True,
    help="counting: sinc pixel aperture and 0.3 px Gaussian MTF; ideal: no blur.",
)
@click.option(
    "--dose-weighting/--no-dose-weighting",
    default=True,
    show_default=True,
    help="Radiation damage by the cumulative exposure (Grant & Grigorieff 2015).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every draw.")
@click.option(
    "--half-sets",
    is_flag=True,
    help="Also write even/odd half-sets (OUTPUT_even.mrc, OUTPUT_odd.mrc): each detected "
    "electron in one half at random, even + odd = the counts, as even and odd frames give.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=_FILE,
    help="Tilt-series MRC of counts (tilt, y, x); next to it: OUTPUT_noiseless.mrc, "
    "OUTPUT.tilts.json, OUTPUT.provenance.json, the angles OUTPUT.tlt and what the "
    "microscope applied as IMOD transforms OUTPUT.xf, AreTomo OUTPUT.aln and an IMOD "
    "defocus file OUTPUT.defocus.",
)
@DEVICE_OPTION
def microscope(
    grandmodel: Path,
    angles_path: Path | None,
    tilt_range: tuple[float, float, float],
    scheme: str,
    voltage_kv: float,
    dose_total: float,
    defocus_um: float,
    defocus_spread_um: float,
    defocus_gradient: bool,
    astigmatism_um: float,
    astigmatism_angle_deg: float,
    cs_mm: float,
    amplitude_contrast: float,
    pixel_size_a: float | None,
    slab_nm: float,
    mfp_nm: float | None,
    shift_std_a: float,
    detector: str,
    dose_weighting: bool,
    seed: int,
    half_sets: bool,
    output: Path,
    device: str,
) -> None:
    """Simulate the tilt-series a microscope records of GRANDMODEL (potential in V).

    The reference microscope: the grandmodel in a slab of amorphous ice, phase-object
    exit waves, the lens' CTF with envelopes, zero-loss filtering, radiation damage,
    Poisson electron counting and a detector MTF. Writes counts (float32 electrons per
    pixel), their noiseless mean, per-tilt metadata (defocus, exposure, shifts), the
    alignment that undoes the applied shifts (IMOD .xf, AreTomo .aln), an IMOD defocus
    file and provenance.

    \b
    Example:
      faket microscope grandmodel.mrc --angles tilts.tlt --voltage-kv 300 \\
            --dose-total 120 --defocus-um 3 --pixel-size-a 10 --slab-nm 160 \\
            --seed 1 -o projections.mrc
    """
    import warnings

    from faket.io.alignments import alignment_paths, write_microscope_alignment
    from faket.io.provenance import provenance_path, write_provenance

    noiseless = noiseless_path(output)
    side = alignment_paths(output)
    sidecar, angles_out = side[".tilts.json"], side[".tlt"]
    halves = {tag: noiseless_path(output, tag) for tag in ("even", "odd")} if half_sets else {}
    check_outputs(
        {
            "-o/--output": output,
            **{f"the {tag} half-set of -o/--output": path for tag, path in halves.items()},
            "the noiseless tilt-series of -o/--output": noiseless,
            "the tilt metadata of -o/--output": sidecar,
            "the tilt angles of -o/--output": angles_out,
            "the IMOD transforms of -o/--output": side[".xf"],
            "the AreTomo alignment of -o/--output": side[".aln"],
            "the IMOD defocus file of -o/--output": side[".defocus"],
            "the provenance JSON of -o/--output": provenance_path(output),
        },
        {"GRANDMODEL": grandmodel, "--angles": angles_path},
    )

    import torch

    from faket.errors import FaketInputError
    from faket.io import read_mrc, read_tilt_angles, write_mrc
    from faket.microscope import MicroscopeSettings, MicroscopeWarning, simulate_tilt_series
    from faket.microscope.schemes import tilt_range as make_tilt_range

    try:
        settings = MicroscopeSettings(
            voltage_kv=voltage_kv,
            spherical_aberration_mm=cs_mm,
            amplitude_contrast=amplitude_contrast,
            defocus_um=defocus_um,
            defocus_spread_um=defocus_spread_um,
            defocus_gradient=defocus_gradient,
            astigmatism_um=astigmatism_um,
            astigmatism_angle_deg=astigmatism_angle_deg,
            dose_total_e_per_a2=dose_total,
            slab_nm=slab_nm,
            inelastic_mfp_nm=mfp_nm,
            scheme=scheme,
            dose_weighting=dose_weighting,
            detector=detector,
            shift_std_a=shift_std_a,
        )
        angles = read_tilt_angles(angles_path) if angles_path else make_tilt_range(*tilt_range)
    except ValueError as err:
        if isinstance(err, FaketInputError):
            raise
        raise click.UsageError(str(err)) from err
    volume = read_mrc(grandmodel, volume=True)
    if pixel_size_a is None:
        if volume.voxel_size_a is None:
            raise FaketInputError(
                "the voxel size is not set in the header; give --pixel-size-a", grandmodel
            )
        pixel_size_a = volume.voxel_size_a
    elif volume.voxel_size_a is not None and abs(volume.voxel_size_a - pixel_size_a) > 1e-3:
        click.echo(
            f"faket: warning: {grandmodel}: voxel size {volume.voxel_size_a:g} A in the "
            f"header, using --pixel-size-a {pixel_size_a:g} A",
            err=True,
        )
    if not pixel_size_a > 0:
        raise click.UsageError(f"--pixel-size-a must be positive, got {pixel_size_a}")
    target = resolve_device(device)
    tensor = torch.from_numpy(volume.data).to(target)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MicroscopeWarning)
        try:
            with progress_bar(len(angles), "microscope", "tilt") as bar:
                result = simulate_tilt_series(
                    tensor,
                    angles,
                    pixel_size_a,
                    settings,
                    seed=seed,
                    progress=bar.update,  # type: ignore[attr-defined]
                    half_sets=half_sets,
                )
        except FaketInputError:
            raise
        except ValueError as err:
            raise click.UsageError(f"{grandmodel}: {err}") from err
    for warning in caught:
        if issubclass(warning.category, MicroscopeWarning):
            click.echo(f"faket: warning: {warning.message}", err=True)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    seconds = time.perf_counter() - start

    write_mrc(result.counts, output, voxel_size_a=pixel_size_a)
    write_mrc(result.noiseless, noiseless, voxel_size_a=pixel_size_a)
    for tag, path in halves.items():
        write_mrc(getattr(result, tag), path, voxel_size_a=pixel_size_a)
    write_microscope_alignment(
        result.records(),
        output,
        image_shape=(int(result.counts.shape[1]), int(result.counts.shape[2])),
        pixel_size_a=pixel_size_a,
        settings=settings.as_dict(),
    )
    write_provenance(
        provenance_path(output),
        {
            "stage": "microscope",
            "inputs": {
                "grandmodel": str(grandmodel),
                "angles": None if angles_path is None else str(angles_path),
                "tilt_range": None if angles_path is not None else list(tilt_range),
            },
            "outputs": {
                "counts": str(output),
                "noiseless": str(noiseless),
                "tilt_metadata": str(sidecar),
                "angles": str(angles_out),
                "imod_xf": str(side[".xf"]),
                "aretomo_aln": str(side[".aln"]),
                "imod_defocus": str(side[".defocus"]),
                **{tag: str(path) for tag, path in halves.items()},
            },
            "pixel_size_a": pixel_size_a,
            "seed": seed,
            "device": str(target),
            "settings": settings.as_dict(),
            "seconds": seconds,
            "seconds_per_tilt": seconds / len(angles),
        },
    )
    click.echo(
        f"wrote {output} and {noiseless}: {tuple(result.counts.shape)} (tilt, y, x) "
        f"in {seconds:.1f} s"
    )
