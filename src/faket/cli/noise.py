"""``faket noise``: measure noise statistics and make the noisy modalities."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from faket.cli._common import DEVICE_OPTION, GreedyOptionsCommand, check_outputs, resolve_device

_MRC = click.Path(dir_okay=False, path_type=Path)


@contextmanager
def _named(reference: Path, noiseless: Path | None = None) -> Iterator[None]:
    """Name the file in a library error that names none (e.g. a constant tilt)."""
    from faket.errors import FaketInputError

    try:
        yield
    except FaketInputError as err:
        if err.path is not None:
            raise
        about_noiseless = noiseless is not None and err.problem.startswith("noiseless")
        raise FaketInputError(err.problem, noiseless if about_noiseless else reference) from None


class _EstimateCommand(GreedyOptionsCommand):
    greedy_options = ("--reference", "--noiseless", "--angles", "--even", "--odd")


@click.group()
def noise() -> None:
    """Noise statistics of reference data and the NOISY, CONTENT and BASELINE modalities."""


@noise.command(cls=_EstimateCommand)
@click.option(
    "--reference",
    "references",
    multiple=True,
    required=True,
    type=_MRC,
    help="Reference tilt-series MRC(s) of the microscope to mimic, (tilt, y, x).",
)
@click.option(
    "--noiseless",
    "noiseless_paths",
    multiple=True,
    type=_MRC,
    help="Noiseless counterpart of each reference, same order and shape. Without it the "
    "statistics come from the references alone (power-spectrum plateau).",
)
@click.option(
    "--even",
    "even_paths",
    multiple=True,
    type=_MRC,
    help="Even-frame half-set of each reference (Warp/RELION/AreTomo), same order and "
    "shape; with --odd, the noise is measured from the halves (needs the pixel size in "
    "the reference's header).",
)
@click.option(
    "--odd",
    "odd_paths",
    multiple=True,
    type=_MRC,
    help="Odd-frame half-set of each reference, same order and shape (with --even).",
)
@click.option(
    "--angles",
    "angle_paths",
    multiple=True,
    type=_MRC,
    help="Tilt angles in degrees (.tlt/.rawtlt/alignment_simulated.txt): one file for "
    "all references or one per reference. Optional; recorded in the JSON.",
)
@click.option(
    "--unlabelled",
    "unlabelled",
    type=click.Choice(["ctf", "band"]),
    default="ctf",
    show_default=True,
    help="Without --noiseless or --even/--odd: ctf fits the reference's own spectrum (CTF "
    "rings over a smooth noise background; pixel size from the header) and gives the r "
    "the paired estimator would; band reads the noise off a high-frequency band (the "
    "old estimator: it assumes white noise, and reads r 0.2-0.3 high on counting detectors).",
)
@click.option(
    "--high-freq-band",
    nargs=2,
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=(0.7, 0.95),
    show_default=True,
    help="With --unlabelled band: the band LOW HIGH of the power spectrum, in fractions of "
    "Nyquist (0 < LOW < HIGH <= 1), where the noise is assumed white and the signal decayed.",
)
@click.option(
    "--spectra",
    is_flag=True,
    help="Also measure the spectral noise model per tilt (signal transfer T(k) and noise "
    "power N(k)), for 'faket noise apply --model spectral'.",
)
@click.option("-o", "--output", required=True, type=_MRC, help="Statistics JSON to write.")
def estimate(
    references: tuple[Path, ...],
    noiseless_paths: tuple[Path, ...],
    even_paths: tuple[Path, ...],
    odd_paths: tuple[Path, ...],
    angle_paths: tuple[Path, ...],
    unlabelled: str,
    high_freq_band: tuple[float, float],
    spectra: bool,
    output: Path,
) -> None:
    """Measure per-tilt r, sigma, mean and std of reference tilt-series.

    With --noiseless (training pairs): r is the Pearson correlation of each standardised
    reference tilt with its noiseless tilt (the exact minimiser of std(P - r C)) and sigma
    the residual's std. Without (--unlabelled ctf, the default): a CTF fit to the
    reference's own power spectrum (voltage 300 kV, Cs 2.7 mm, amplitude contrast 0.07;
    pixel size from the header) over a smooth noise background; r is the correlation the
    paired estimator would measure against a 1/k^2 noiseless spectrum and sigma the
    noise's share of the std. --unlabelled band: sigma from the high-frequency plateau of
    the power spectrum, r = sqrt(1 - sigma^2). sigma and r are in units of the tilt's
    std; mean and std in the reference's units. With --spectra, per tilt also T(k) and
    N(k) per frequency ring: from the pairs (T = <R C*> / <|C|^2>) or from the CTF fit.
    With --even/--odd (half-sets of the frames): the noise is measured from their
    difference, r and T from the same CTF fit.

    \b
    Examples:
      faket noise estimate --reference R1.mrc R2.mrc --noiseless C1.mrc C2.mrc -o stats.json
      faket noise estimate --reference R1.mrc --noiseless C1.mrc --spectra -o stats.json
      faket noise estimate --reference mine.mrc --angles mine.tlt -o stats.json
      faket noise estimate --reference mine.mrc --even mine_EVN.mrc --odd mine_ODD.mrc \\
          --spectra -o stats.json
    """
    check_outputs(
        {"-o/--output": output},
        {
            "--reference": references,
            "--noiseless": noiseless_paths,
            "--even": even_paths,
            "--odd": odd_paths,
            "--angles": angle_paths,
        },
    )
    low, high = high_freq_band
    if not low < high:
        raise click.BadParameter(
            f"LOW must be below HIGH, got {low:g} {high:g}", param_hint="--high-freq-band"
        )
    if noiseless_paths and len(noiseless_paths) != len(references):
        raise click.UsageError(
            f"{len(references)} --reference files but {len(noiseless_paths)} --noiseless "
            "files; give one noiseless tilt-series per reference, in the same order"
        )
    if (even_paths or odd_paths) and not len(even_paths) == len(odd_paths) == len(references):
        raise click.UsageError(
            f"{len(references)} --reference, {len(even_paths)} --even and {len(odd_paths)} "
            "--odd files; give one even and one odd half-set per reference, in the same order"
        )
    if even_paths and noiseless_paths:
        raise click.UsageError("give --noiseless or --even/--odd, not both")
    if len(angle_paths) not in (0, 1, len(references)):
        raise click.UsageError("give one --angles file for all references, or one per reference")

    import dataclasses

    import torch

    from faket.errors import FaketInputError
    from faket.io import check_angle_count, read_mrc, read_tilt_angles, write_noise_stats
    from faket.noise import estimate_tilt_stats, estimate_tilt_stats_unlabelled

    measured = []
    for i, ref_path in enumerate(references):
        ref = read_mrc(ref_path, ndim=3).data
        angles = None
        if angle_paths:
            angles_path = angle_paths[i if len(angle_paths) > 1 else 0]
            angles = read_tilt_angles(angles_path)
            check_angle_count(ref.shape[0], angles, stack_path=ref_path, angles_path=angles_path)
        reference = torch.from_numpy(ref)
        if noiseless_paths:
            clean = read_mrc(noiseless_paths[i], ndim=3).data
            if clean.shape != ref.shape:
                raise FaketInputError(
                    f"shape {clean.shape} differs from the reference {ref_path} {ref.shape}",
                    noiseless_paths[i],
                )
            with _named(ref_path, noiseless_paths[i]):
                stats = estimate_tilt_stats(
                    reference, torch.from_numpy(clean), tilt_angles_deg=angles, spectra=spectra
                )
        elif even_paths:
            stats = _even_odd_stats(
                ref_path, even_paths[i], odd_paths[i], reference, angles, spectra
            )
        elif unlabelled == "ctf":
            stats = _ctf_fit_stats(ref_path, reference, angles, spectra)
        else:
            with _named(ref_path):
                try:
                    stats = estimate_tilt_stats_unlabelled(
                        reference, tilt_angles_deg=angles, high_freq_band=high_freq_band
                    )
                except FaketInputError:
                    raise
                except ValueError as err:  # no Fourier sample in the band of a tiny image
                    raise click.BadParameter(
                        f"{ref_path}: {err}", param_hint="--high-freq-band"
                    ) from err
        measured.append(dataclasses.replace(stats, source=str(ref_path)))
        click.echo(
            f"{ref_path}: {stats.n_tilts} tilts, {stats.method}, "
            f"r {stats.r.min():.3f}..{stats.r.max():.3f}, "
            f"sigma {stats.sigma.min():.3f}..{stats.sigma.max():.3f}"
        )
    write_noise_stats(measured, output)
    click.echo(f"wrote {output}")


def _ctf_fit_stats(path: Path, reference: Any, angles: Any, spectra: bool) -> Any:
    """Statistics of a reference without a noiseless pair: a CTF fit to its own spectrum."""
    import dataclasses

    from faket.errors import FaketInputError
    from faket.io import read_voxel_size
    from faket.noise import estimate_tilt_spectra_unlabelled

    pixel_size = read_voxel_size(path)
    if pixel_size is None:
        raise FaketInputError(
            "without --noiseless the CTF fit needs the pixel size in the header; set it "
            "(e.g. alterheader) or use --unlabelled band",
            path,
        )
    with _named(path):
        fit = estimate_tilt_spectra_unlabelled(
            reference,
            pixel_size_a=pixel_size,
            tilt_angles_deg=angles,  # type: ignore[arg-type]
        )
    click.echo(
        f"{path}: CTF fit, defocus {float(fit.defocus_um.min()):.2f}.."
        f"{float(fit.defocus_um.max()):.2f} um, fit score {float(fit.fit_score.median()):.2f}"
    )
    stats = fit.tilt_stats(str(path))
    return dataclasses.replace(stats, spectra=fit.tilt_spectra()) if spectra else stats


def _even_odd_stats(
    path: Path, even_path: Path, odd_path: Path, reference: Any, angles: Any, spectra: bool
) -> Any:
    """Statistics of a reference with the noise measured from its even/odd half-sets."""
    import torch

    from faket.errors import FaketInputError
    from faket.io import read_mrc, read_voxel_size
    from faket.noise import estimate_reference_stats

    pixel_size = read_voxel_size(path)
    if pixel_size is None:
        raise FaketInputError("--even/--odd need the pixel size in the header", path)
    halves = []
    for half in (even_path, odd_path):
        data = read_mrc(half, ndim=3).data
        if tuple(data.shape) != tuple(reference.shape):
            raise FaketInputError(
                f"shape {data.shape} differs from the reference {path} {tuple(reference.shape)}",
                half,
            )
        halves.append(torch.from_numpy(data))
    with _named(path):
        return estimate_reference_stats(
            reference,
            method="even-odd",
            pixel_size_a=pixel_size,
            tilt_angles_deg=angles,
            even=halves[0],
            odd=halves[1],
            spectra=spectra,
        )


@noise.command()
@click.argument("noiseless", type=_MRC)
@click.option("--stats", "stats_path", required=True, type=_MRC, help="Statistics JSON.")
@click.option(
    "--modality",
    type=click.Choice(["noisy", "content", "baseline"]),
    default="noisy",
    show_default=True,
    help="noisy: order-2 fits; content: noisy with sigma x 0.25; baseline: order-0 fits.",
)
@click.option(
    "--seed",
    type=int,
    required=True,
    help="Seed of the Gaussian noise field. Give noisy, content and baseline the SAME seed: "
    "CONTENT is then NOISY's noise field at a quarter of its amplitude, as published.",
)
@click.option(
    "--model",
    type=click.Choice(["published", "spectral"]),
    default="published",
    show_default=True,
    help="published: r and sigma per tilt (flat transfer, white noise); spectral: the "
    "signal filtered by T(k) plus noise coloured to N(k) (needs stats with --spectra). "
    "BASELINE is always the published model.",
)
@click.option("-o", "--output", required=True, type=_MRC, help="Output tilt-series MRC.")
@DEVICE_OPTION
def apply(
    noiseless: Path,
    stats_path: Path,
    modality: str,
    seed: int,
    model: str,
    output: Path,
    device: str,
) -> None:
    """Make the NOISY, CONTENT or BASELINE modality of a NOISELESS tilt-series.

    Per tilt: standardise, multiply by r, add Gaussian noise of std sigma (x 0.25 for
    content), then shift and scale to the reference's mean and std, all from the
    statistics' polynomial fits over the tilt index averaged over reference tomograms.
    With --model spectral the signal is filtered by T(k) and the noise coloured to N(k)
    (fits per frequency ring over the tilt angle).

    \b
    Example:
      faket noise apply noiseless.mrc --stats stats.json --modality noisy --seed 1 -o noisy.mrc
      faket noise apply noiseless.mrc --stats stats.json --modality content --seed 1 -o content.mrc
    """
    check_outputs({"-o/--output": output}, {"NOISELESS": noiseless, "--stats": stats_path})

    import torch

    from faket.errors import FaketInputError
    from faket.io import read_mrc, read_noise_stats, write_mrc
    from faket.noise import make_modality

    clean = read_mrc(noiseless, ndim=3)
    measured = read_noise_stats(stats_path)
    model = "published" if modality == "baseline" else model
    for stats in measured:
        if stats.n_tilts != clean.data.shape[0]:
            raise FaketInputError(
                f"has statistics for {stats.n_tilts} tilts but {noiseless} has "
                f"{clean.data.shape[0]} images",
                stats_path,
            )
        if model == "spectral" and stats.spectra is None:
            raise FaketInputError(
                "has no spectra for --model spectral; make it with "
                "'faket noise estimate ... --noiseless ... --spectra'",
                stats_path,
            )
    tensor = torch.from_numpy(clean.data).to(resolve_device(device))
    out = make_modality(tensor, measured, modality, seed=seed, name=str(noiseless), model=model)
    write_mrc(out, output, voxel_size_a=clean.voxel_size_a)
    click.echo(f"wrote {output}: {modality}, seed {seed}, {tuple(out.shape)} (tilt, y, x)")
