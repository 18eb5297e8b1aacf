"""``faket simulate``: a labelled dataset from a YAML configuration."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("config_file", metavar="CONFIG.yaml", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dataset folder; overrides run.output of the config.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Tomograms in parallel processes; overrides run.workers.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads per tomogram task; overrides run.threads (on busy cores torch's "
    "default oversubscribes: use cores / workers).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Run the tomograms on a running dask.distributed scheduler (e.g. tcp://host:8786).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Redo every tomogram instead of resuming (removes only the files faket wrote).",
)
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Only check every input file and limit and print the plan; write nothing.",
)
@click.option("--device", default=None, help="Compute device; overrides run.device.")
def simulate(
    config_file: Path,
    output: Path | None,
    workers: int | None,
    threads: int | None,
    scheduler: str | None,
    force: bool,
    check_only: bool,
    device: str | None,
) -> None:
    """Simulate a labelled dataset (phantoms, modalities, FAKET, tomograms, report).

    For each tomogram: phantom -> noiseless projections -> reference (the built-in
    microscope, or your tilt-series) -> noise statistics -> BASELINE, NOISY, CONTENT ->
    FAKET -> reconstructions and labels, into model_<i>/ folders with provenance.json,
    plus dataset.json and report.html at the root. Every input file and limit is
    checked before the first byte is written. A re-run skips the tomograms finished
    with the same configuration and the same contents of every input file.

    \b
    Example:
      faket config --example > run.yaml   # edit it, then
      faket simulate run.yaml --check     # inputs, disk and memory; writes nothing
      faket simulate run.yaml --workers 2
    """
    from contextlib import ExitStack

    from faket.cli._common import progress_bar
    from faket.config import FaketConfig
    from faket.pipeline import RunPlan, plan_run, simulate_dataset

    config = FaketConfig.from_yaml(config_file)
    overrides: dict[str, object] = {}
    if output is not None:
        overrides["output"] = str(output)
    if workers is not None:
        overrides["workers"] = workers
    if threads is not None:
        overrides["threads"] = threads
    if device is not None:
        overrides["device"] = device
    if overrides:
        data = config.model_dump(mode="json")
        data["run"].update(overrides)
        config = FaketConfig.from_dict(data, source=str(config_file))

    def on_plan(plan: RunPlan) -> None:
        click.echo(
            f"{plan.n_tomograms} tomogram(s), {len(plan.tilt_angles_deg)} tilts, "
            f"{plan.device}, {config.run.threads or 'default'} CPU thread(s) per task: "
            f"{plan.resources.describe()}",
            err=True,
        )

    if check_only:
        on_plan(plan_run(config))
        click.echo(f"{config_file}: every input and limit checked; nothing written")
        return
    with ExitStack() as stack:
        bar: list[object] = []

        def on_phase(name: str, total: int) -> None:
            stack.close()
            bar[:] = [stack.enter_context(progress_bar(total, name, "task"))]

        def on_done(_: int) -> None:
            bar[0].update(1)  # type: ignore[attr-defined]

        result = simulate_dataset(
            config,
            force=force,
            scheduler=scheduler,
            on_plan=on_plan,
            on_phase=on_phase,
            on_done=on_done,
        )
    skipped = f", skipped {len(result.skipped)} finished" if result.skipped else ""
    click.echo(
        f"made {len(result.made)} tomogram(s){skipped} in {config.run.output}/; "
        f"open {result.report}"
    )
