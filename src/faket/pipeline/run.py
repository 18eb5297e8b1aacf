"""Run a whole dataset: pre-flight, then the three phases in-process, in workers or on dask.

Each task is one specimen (phase 1) or one tomogram (phase 3), a top-level function
``fn(plan, index)`` that writes its own folder; so any executor can run it, and a
re-run skips what is finished (see `faket.pipeline.stages`). Nothing is written before
:func:`faket.pipeline.plan.plan_run` has checked every input and limit.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from faket._runtime import freed_memory_kept
from faket._workers import start_worker
from faket.config import FaketConfig
from faket.export import write_dataset_outputs
from faket.io import write_json
from faket.io.alignments import ALIGNMENT_SUFFIXES
from faket.pipeline.inputs import write_hash_cache
from faket.pipeline.layout import (
    LABEL_FILES,
    modality_names,
    reconstructed_names,
    remove_stale_temporaries,
    remove_written_files,
)
from faket.pipeline.plan import RunPlan, plan_run
from faket.pipeline.references import prepared_path
from faket.pipeline.stages import estimate_noise, is_done, prepare_specimen
from faket.pipeline.tomogram import make_tomogram

Task = Callable[[RunPlan, int], dict[str, float]]


@dataclass
class DatasetResult:
    """What a run did.

    Attributes
    ----------
    made : list of int
        Tomograms made by this run.
    skipped : list of int
        Tomograms already finished with the same config, inputs and seed.
    timings_s : dict
        Tomogram index -> stage -> seconds (this run's work only).
    report : str
        Path of report.html.
    plan : RunPlan or None
        The resolved run.
    """

    made: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    timings_s: dict[int, dict[str, float]] = field(default_factory=dict)
    report: str = ""
    plan: RunPlan | None = None


def _map(
    task: Task,
    plan: RunPlan,
    indices: Sequence[int],
    scheduler: str | Any | None,
    on_done: Callable[[int], None] | None,
) -> list[dict[str, float]]:
    """Run ``task(plan, i)`` for each index: dask, worker processes, or in-process."""
    results: list[dict[str, float]] = []
    if not indices:
        return results
    if scheduler is not None:
        from dask.distributed import Client

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            futures = client.map(task, [plan] * len(indices), list(indices), pure=False)
            results = client.gather(futures)
        finally:
            if client is not scheduler:
                client.close()
        for i in indices:
            if on_done is not None:
                on_done(i)
        return results
    workers = plan.config.run.workers
    if workers > 1 and len(indices) > 1:
        import os

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            min(workers, len(indices)),
            mp_context=context,
            initializer=start_worker,
            initargs=(os.getpid(), freed_memory_kept()),
        ) as pool:
            for i, result in zip(
                indices, pool.map(task, [plan] * len(indices), indices), strict=True
            ):
                results.append(result)
                if on_done is not None:
                    on_done(i)
        return results
    for i in indices:
        results.append(task(plan, i))
        if on_done is not None:
            on_done(i)
    return results


def _reference_record(ref: Any) -> dict[str, Any]:
    """Return what the run made of one user reference (files source), for dataset.json."""
    return {
        "tilt_series": str(ref.tilt_series),
        "metadata": str(ref.angles),
        "pixel_size_a": ref.pixel_size_a,
        "run_pixel_size_a": ref.run_pixel_size_a,
        "images_used": len(ref.used),
        "images_paired_with_run_tilts": list(ref.run_tilts),
        "acquisition_order": list(ref.acquisition_order),
        "acquisition_order_source": ref.acquisition,
    }


def dataset_index(plan: RunPlan) -> dict[str, Any]:
    """Return the content of ``dataset.json``: every tomogram with its files and seed."""
    config = plan.config
    microscope = config.reference.source == "microscope"
    tomograms = []
    models, ablation = config.noise.models, tuple(config.style.ablation_models)
    for spec in plan.specimens[: plan.n_tomograms]:
        files = [*LABEL_FILES, "tilt_angles.tlt", "tilt_angles.xf", "noiseless.mrc"]
        files += [f"{m}.mrc" for m in modality_names(models, ablation)]
        if microscope:
            files += ["reference.mrc", *(f"reference{s}" for s in ALIGNMENT_SUFFIXES)]
        recon = reconstructed_names(models, ablation)
        files += [f"tomogram_{n}.mrc" for n in recon if n != "reference" or microscope]
        files += ["provenance.json"]
        tomograms.append(
            {
                "index": spec.index,
                "folder": spec.folder.name,
                "seed": spec.seed,
                "style_reference": spec.style_source,
                "files": files,
            }
        )
    return {
        "faket_dataset": 1,
        "config_sha256": config.content_hash(),
        "inputs_sha256": plan.inputs_sha256,
        "n_tomograms": plan.n_tomograms,
        "shape_zyx": list(config.phantom.shape_zyx),
        "voxel_size_a": plan.voxel_size_a,
        "tomogram_voxel_size_a": plan.tomogram_voxel_size_a,
        "tilt_angles_deg": list(plan.tilt_angles_deg),
        "noise_models": list(models),
        "modalities": modality_names(models, ablation),
        "reference_source": config.reference.source,
        "reference_specimens": [s.folder.name for s in plan.specimens]
        if microscope
        else [str(prepared_path(plan.output, k)) for k in range(len(plan.references))],
        "noise_method": config.noise_method(),
        "user_references": [_reference_record(r) for r in plan.references],
        "tomograms": tomograms,
    }


def simulate_dataset(
    config: FaketConfig,
    *,
    force: bool = False,
    scheduler: str | Any | None = None,
    report: bool = True,
    on_plan: Callable[[RunPlan], None] | None = None,
    on_phase: Callable[[str, int], None] | None = None,
    on_done: Callable[[int], None] | None = None,
) -> DatasetResult:
    """Make the dataset of ``config`` in ``config.run.output``.

    Every input and limit is checked first (`plan_run`); a problem is one
    :class:`faket.errors.FaketInputError` and nothing is written.

    Parameters
    ----------
    config : FaketConfig
        The run.
    force : bool
        Redo every tomogram: remove the files faket wrote in the dataset first (files of
        yours in its folders stay) instead of resuming.
    scheduler : str or dask.distributed.Client, optional
        Address of a running dask scheduler (or a client) to run the tasks on; default:
        in-process, or ``run.workers`` spawned processes (they end with this process).
    report : bool
        Write report.html and its figures.
    on_plan : callable, optional
        Called with the checked plan before anything is written (e.g. to print its
        resource estimate).
    on_phase : callable, optional
        Called with a phase's name and its number of tasks when it starts.
    on_done : callable, optional
        Called with an index when one task finishes (for progress bars).

    Returns
    -------
    DatasetResult
    """
    plan = plan_run(config)
    if on_plan is not None:
        on_plan(plan)
    out = plan.output
    if force:
        remove_written_files(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    write_hash_cache(out, plan.file_hashes)
    config.to_yaml(out / "config.yaml")
    result = DatasetResult(plan=plan)
    tomograms = plan.specimens[: plan.n_tomograms]
    before = {s.index for s in tomograms if is_done(s.folder / "provenance.json", s.resume_key)}
    if on_phase is not None:
        on_phase("specimens", len(plan.specimens))
    _map(prepare_specimen, plan, range(len(plan.specimens)), scheduler, on_done)
    if on_phase is not None:
        on_phase("noise statistics", 1)
    estimate_noise(plan)
    todo = [s.index for s in tomograms if s.index not in before]
    if on_phase is not None:
        on_phase("tomograms", len(todo))
    for i, timings in zip(todo, _map(make_tomogram, plan, todo, scheduler, on_done), strict=True):
        result.timings_s[i] = timings
    result.made, result.skipped = todo, sorted(before)
    write_json(dataset_index(plan), out / "dataset.json")
    write_dataset_outputs(out, config.run.outputs)  # run.outputs: <output>/copick ...
    if report:
        if on_phase is not None:
            on_phase("report", 1)
        from faket.pipeline.report import write_dataset_report

        start = time.perf_counter()
        result.report = str(write_dataset_report(plan))
        result.timings_s.setdefault(-1, {})["report"] = time.perf_counter() - start
    return result
