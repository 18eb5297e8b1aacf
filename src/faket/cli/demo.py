"""``faket demo``: run every existing stage on a built-in specimen."""

from __future__ import annotations

from pathlib import Path

import click

from faket.cli._common import DEVICE_OPTION, progress_bar, resolve_device


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo_output"),
    show_default=True,
    help="Folder to write (created; its demo files are replaced).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of everything random.")
@click.option(
    "--size",
    type=click.IntRange(min=16),
    default=256,
    show_default=True,
    help="Specimen width and height in voxels (depth is half of it); 61 tilts.",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    default="bf16",
    show_default=True,
    help="Precision of the style transfer's convolutions (bf16: fast on CPUs with AMX).",
)
@DEVICE_OPTION
def demo(output: Path, seed: int, size: int, precision: str, device: str) -> None:
    """Simulate a small labelled dataset from a built-in specimen, no files needed.

    Writes the specimen and its particle list, noiseless, NOISY / CONTENT / BASELINE and
    FAKET tilt-series, a toy reference microscope's tilt-series of a second specimen,
    noise statistics JSON, PNG figures and report.html into OUTPUT.

    \b
    Example:
      faket demo -o demo_output && xdg-open demo_output/report.html
    """
    from faket.demo import STAGES, run_demo

    target = resolve_device(device)
    with progress_bar(len(STAGES), "demo", "stage") as bar:

        def on_stage(name: str) -> None:
            if bar.n or name != STAGES[0]:  # type: ignore[attr-defined]
                bar.update(1)  # type: ignore[attr-defined]
            bar.set_postfix_str(name)  # type: ignore[attr-defined]

        timings = run_demo(
            output,
            shape=(size // 2, size, size),
            seed=seed,
            device=target,
            precision=precision,
            on_stage=on_stage,
        )
        bar.update(1)  # type: ignore[attr-defined]
    total = sum(timings.values())
    click.echo(f"wrote {output}/ in {total:.1f} s; open {output / 'report.html'}")
