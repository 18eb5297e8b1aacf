"""``faket demo``: a small labelled dataset from built-in specimens, no files needed."""

from __future__ import annotations

import time
from pathlib import Path

import click

from faket.cli._common import DEVICE_OPTION


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo_output"),
    show_default=True,
    help="Dataset folder (created; a re-run resumes, --force redoes it).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of everything random.")
@click.option(
    "--size",
    type=click.IntRange(min=16),
    default=256,
    show_default=True,
    help="Specimen width and height in voxels (depth 3/8 of it; 256 nm field of view).",
)
@click.option(
    "--tomograms",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Number of tomograms.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="Precision of the style transfer's convolutions; auto: bf16 where the hardware "
    "has it (GPU, CPU with AMX/AVX-512 BF16), else fp32 (emulated bf16 is 5-10x slower).",
)
@click.option(
    "--likeness-steps",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="Training steps of each likeness classifier in the report (0: no likeness section).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Tomograms in parallel processes.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads per tomogram task (run.threads; with --workers N on busy cores use "
    "cores / N: torch's default oversubscribes) [default: torch's].",
)
@click.option(
    "--crowded",
    is_flag=True,
    help="The picking study's crowded specimens: ~250 particles of 12 classes (the 9 "
    "built-ins and 3 atomic models written to OUTPUT/structures/) and FAKET_RANDOM "
    "(random-backbone ablation) of the spectral noise model.",
)
@click.option("--force", is_flag=True, help="Redo every tomogram instead of resuming.")
@DEVICE_OPTION
def demo(
    output: Path,
    seed: int,
    size: int,
    tomograms: int,
    precision: str,
    workers: int,
    threads: int | None,
    likeness_steps: int,
    crowded: bool,
    force: bool,
    device: str,
) -> None:
    """Simulate a small labelled dataset from built-in specimens, no files needed.

    Runs the faket simulate pipeline on the built-in configuration (see faket config
    --example): 3 tomograms of 96 x 256 x 256 voxels at 10 Angstrom with the built-in
    particle library, vesicles and fiducials, 41 tilts, the built-in reference
    microscope as the style source, both noise models (published and spectral).
    Writes model_<i>/ folders, dataset.json and report.html (with the likeness of
    each modality to the microscope) into OUTPUT. --crowded makes the picking study's
    dataset, crowded like SHREC 2021.

    \b
    Example:
      faket demo -o demo_output && xdg-open demo_output/report.html
      faket demo -o study_data --tomograms 5 --crowded --workers 2 --threads 1
    """
    from contextlib import ExitStack

    from faket.cli._common import progress_bar, resolve_device
    from faket.demo import run_demo

    resolve_device(device)
    start = time.perf_counter()
    with ExitStack() as stack:
        bar: list[object] = []

        def on_phase(name: str, total: int) -> None:
            stack.close()
            bar[:] = [stack.enter_context(progress_bar(total, name, "task"))]

        def on_done(_: int) -> None:
            bar[0].update(1)  # type: ignore[attr-defined]

        result = run_demo(
            output,
            force=force,
            on_phase=on_phase,
            on_done=on_done,
            size=size,
            n_tomograms=tomograms,
            seed=seed,
            device=device,
            precision=precision,
            workers=workers,
            threads=threads,
            likeness_steps=likeness_steps,
            crowded=crowded,
        )
    seconds = time.perf_counter() - start
    click.echo(f"wrote {output}/ in {seconds:.1f} s; open {result.report}")
