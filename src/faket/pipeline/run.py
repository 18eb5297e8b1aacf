"""Run a whole dataset: the three phases, in-process, in worker processes or on dask.

Each task is one specimen (phase 1) or one tomogram (phase 3), a top-level function
``fn(config, index)`` that writes its own folder; so any executor can run it, and a
re-run skips what is finished (see `faket.pipeline.stages`).
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from faket.config import FaketConfig
from faket.io import write_json
from faket.pipeline.layout import (
    LABEL_FILES,
    MODALITY_FILES,
    RECONSTRUCTED,
    n_specimens,
    specimen_dir,
    specimen_seed,
    style_source,
)
from faket.pipeline.stages import estimate_noise, make_tomogram, prepare_specimen, resolve_device

Task = Callable[[FaketConfig, int], dict[str, float]]


@dataclass
class DatasetResult:
    """What a run did.

    Attributes
    ----------
    made : list of int
        Tomograms made by this run.
    skipped : list of int
        Tomograms already finished with the same config and seed.
    timings_s : dict
        Tomogram index -> stage -> seconds (this run's work only).
    report : str
        Path of report.html.
    """

    made: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    timings_s: dict[int, dict[str, float]] = field(default_factory=dict)
    report: str = ""


def _map(
    task: Task,
    config: FaketConfig,
    indices: Sequence[int],
    scheduler: str | Any | None,
    on_done: Callable[[int], None] | None,
) -> list[dict[str, float]]:
    """Run ``task(config, i)`` for each index: dask, worker processes, or in-process."""
    results: list[dict[str, float]] = []
    if not indices:
        return results
    if scheduler is not None:
        from dask.distributed import Client

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            futures = client.map(task, [config] * len(indices), list(indices), pure=False)
            results = client.gather(futures)
        finally:
            if client is not scheduler:
                client.close()
        for i in indices:
            if on_done is not None:
                on_done(i)
        return results
    if config.run.workers > 1 and len(indices) > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(config.run.workers, len(indices)), mp_context=context) as pool:
            for i, result in zip(
                indices, pool.map(task, [config] * len(indices), indices), strict=True
            ):
                results.append(result)
                if on_done is not None:
                    on_done(i)
        return results
    for i in indices:
        results.append(task(config, i))
        if on_done is not None:
            on_done(i)
    return results


def dataset_index(config: FaketConfig) -> dict[str, Any]:
    """Return the content of ``dataset.json``: every tomogram with its files and seed."""
    v = config.phantom.voxel_size_a
    tomograms = []
    for i in range(config.run.n_tomograms):
        folder = specimen_dir(config, i)
        files = [*LABEL_FILES, "tilt_angles.tlt", "noiseless.mrc"]
        files += [f"{m}.mrc" for m in MODALITY_FILES]
        recon = [
            n for n in RECONSTRUCTED if n != "reference" or config.reference.source == "microscope"
        ]
        if config.reference.source == "microscope":
            files.append("reference.mrc")
        files += [f"tomogram_{n}.mrc" for n in recon]
        files += ["provenance.json"]
        tomograms.append(
            {
                "index": i,
                "folder": folder.name,
                "seed": specimen_seed(config, i),
                "style_reference": style_source(config, i),
                "files": files,
            }
        )
    return {
        "faket_dataset": 1,
        "config_sha256": config.content_hash(),
        "n_tomograms": config.run.n_tomograms,
        "shape_zyx": list(config.phantom.shape_zyx),
        "voxel_size_a": v,
        "tomogram_voxel_size_a": v * config.reconstruction.binning,
        "reference_source": config.reference.source,
        "reference_specimens": [specimen_dir(config, j).name for j in range(n_specimens(config))]
        if config.reference.source == "microscope"
        else [str(p) for p in config.reference.tilt_series],
        "tomograms": tomograms,
    }


def simulate_dataset(
    config: FaketConfig,
    *,
    force: bool = False,
    scheduler: str | Any | None = None,
    report: bool = True,
    on_phase: Callable[[str, int], None] | None = None,
    on_done: Callable[[int], None] | None = None,
) -> DatasetResult:
    """Make the dataset of ``config`` in ``config.run.output``.

    Parameters
    ----------
    config : FaketConfig
        The run.
    force : bool
        Redo every tomogram (delete the tomogram folders first) instead of resuming.
    scheduler : str or dask.distributed.Client, optional
        Address of a running dask scheduler (or a client) to run the tasks on; default:
        in-process, or ``run.workers`` spawned processes.
    report : bool
        Write report.html and its figures.
    on_phase : callable, optional
        Called with a phase's name and its number of tasks when it starts.
    on_done : callable, optional
        Called with an index when one task finishes (for progress bars).

    Returns
    -------
    DatasetResult
    """
    resolve_device(config.run.device)  # fail early, before any file is written
    out = config.run.output
    if force:
        for j in range(n_specimens(config)):
            shutil.rmtree(specimen_dir(config, j), ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    config.to_yaml(out / "config.yaml")
    result = DatasetResult()
    before = {i for i in range(config.run.n_tomograms) if _finished(config, i)}
    specimens = list(range(n_specimens(config)))
    if on_phase is not None:
        on_phase("specimens", len(specimens))
    _map(prepare_specimen, config, specimens, scheduler, on_done)
    if on_phase is not None:
        on_phase("noise statistics", 1)
    estimate_noise(config)
    todo = [i for i in range(config.run.n_tomograms) if i not in before]
    if on_phase is not None:
        on_phase("tomograms", len(todo))
    for i, timings in zip(todo, _map(make_tomogram, config, todo, scheduler, on_done), strict=True):
        result.timings_s[i] = timings
    result.made, result.skipped = todo, sorted(before)
    write_json(dataset_index(config), out / "dataset.json")
    if report:
        if on_phase is not None:
            on_phase("report", 1)
        from faket.pipeline.report import write_dataset_report

        start = time.perf_counter()
        result.report = str(write_dataset_report(config))
        result.timings_s.setdefault(-1, {})["report"] = time.perf_counter() - start
    return result


def _finished(config: FaketConfig, index: int) -> bool:
    from faket.pipeline.layout import resume_key
    from faket.pipeline.stages import is_done

    return is_done(specimen_dir(config, index) / "provenance.json", resume_key(config, index))
