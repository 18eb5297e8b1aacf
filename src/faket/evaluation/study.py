"""The picking study (FakET Table 1): one picker per modality and seed, all tested alike.

For each modality and seed a DeepFinder-style picker is trained on the training
tomograms of that modality, the epoch with the lowest validation loss (on a tomogram
not trained on) is kept, the cluster-size rule is chosen on that validation tomogram
(`faket.evaluation.study_rule`), and the picker segments the held-out test tomogram's
REFERENCE reconstruction (the NOISELESS picker segments the noiseless one, as
published). Particles are extracted per class and scored with the SHREC 2021 metrics;
the runs are compared at the end. Nothing is chosen by looking at the test tomogram.
Everything reads a ``faket simulate`` dataset (``model_<i>/`` folders). Runs can go
in parallel processes (``jobs``), each with its own CPU threads.

Study folder::

    study.json                        settings, runs, wall time of every step
    <modality>_seed<k>/
        training_log.json             one record per epoch, the best epoch
        checkpoints/epoch_<e>.pt      weights after each epoch
        checkpoints/last.pt           weights and optimiser state (resume)
        validation.json               the cluster rule chosen on the validation tomogram
        segmentation.mrc              test tomogram's labels (best epoch)
        picks.txt                     extracted particles (SHREC text)
        score.json, score_*.csv/png   SHREC scores
    compare/                          compare.md/.csv, compare_*.png, training_curves.png
    report.html                       the figures and tables on one page

A run whose ``score.json`` holds the same study key (settings, data, seed) is skipped,
and a training resumes from ``last.pt``, so an interrupted study resumes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faket.evaluation.files import read_truth
from faket.evaluation.segment import segment_tomogram
from faket.evaluation.study_files import (
    check_inputs,
    from_binned,
    load_volume,
    read_training_labels,
    save_checkpoint,
    tomogram_dir,
)
from faket.evaluation.study_plan import (
    PRESET_SEEDS,
    PRESETS,
    StudyPlan,
    available_modalities,
    parse_indices,
    target_modality,
    with_overrides,
)
from faket.evaluation.study_report import write_comparison, write_score_files
from faket.evaluation.study_rule import (
    choose_min_fraction,
    cluster_candidates,
    keep_large,
    score_against,
)
from faket.evaluation.training import (
    LabelledVolume,
    make_picker,
    steps_per_epoch,
    train_picker,
)
from faket.io import (
    Particle,
    read_classes_json,
    read_json_object,
    write_json,
    write_mrc,
    write_particle_locations,
)

__all__ = [
    "PRESETS",
    "PRESET_SEEDS",
    "StudyPlan",
    "available_modalities",
    "check_inputs",
    "parse_indices",
    "particle_volumes",
    "picks_from_labels",
    "run_study",
    "target_modality",
    "with_overrides",
]


def picks_from_labels(
    labels: np.ndarray,
    classes: Sequence[dict[str, Any]],
    voxel_size_a: float,
    *,
    exclude: Sequence[str] = (),
    min_fraction: float = 0.1,
    method: str = "meanshift",
    particle_voxels: Mapping[str, float] | None = None,
    snap: bool = True,
) -> list[Particle]:
    """Extract particles class by class: mean-shift with the class's radius as bandwidth.

    `faket.evaluation.study_rule.cluster_candidates` then
    `faket.evaluation.study_rule.keep_large` with ``min_fraction``: clusters smaller than
    that fraction of a particle's volume (``particle_voxels``, else the sphere of the
    class's diameter, far too large for thin particles) are dropped. ``method``:
    ``meanshift`` (DeepFinder's clustering) or ``components`` (26-connected
    components); ``snap`` puts each pick on the nearest voxel labelled with its class.
    """
    picks, sizes = cluster_candidates(
        labels, classes, voxel_size_a, exclude=exclude, method=method, snap=snap
    )
    return keep_large(picks, sizes, classes, voxel_size_a, min_fraction, particle_voxels)


def particle_volumes(
    labels: Sequence[np.ndarray],
    names: Sequence[Sequence[str]],
    classes: Sequence[dict[str, Any]],
) -> dict[str, float]:
    """Return the mean number of labelled voxels per particle of each class.

    Parameters
    ----------
    labels : sequence of numpy.ndarray
        Class masks ``(nz, ny, nx)`` of the tomograms.
    names : sequence of sequence of str
        The class of each particle of each volume.
    classes : sequence of dict
        ``classes.json`` rows (``id``, ``name``).

    Returns
    -------
    dict
        Class name -> voxels of the class / particles of the class, for classes with
        particles.
    """
    out = {}
    for row in classes:
        count = sum(list(n).count(row["name"]) for n in names)
        if count:
            voxels = sum(int(np.count_nonzero(np.rint(m) == row["id"])) for m in labels)
            out[row["name"]] = voxels / count
    return out


Progress = Callable[[str, int, int], None]
"""``progress(what, done, total)``: called as a step advances (for progress bars)."""


@dataclass(frozen=True)
class _Shared:
    """What every run of a study reads: classes, particle volumes, the device."""

    classes: list[dict[str, Any]]
    n_classes: int
    sizes: dict[str, float]
    device: str


def _load_best(plan: StudyPlan, folder: Path, log: Mapping[str, Any], device: torch.device) -> Any:
    """Return the picker of the run's best epoch, ready for inference."""
    net = make_picker(int(log["n_classes"]), plan.settings.width, 0).to(device)
    best = folder / "checkpoints" / f"epoch_{int(log['best_epoch']):03d}.pt"
    net.load_state_dict(torch.load(best, map_location=device, weights_only=True)["model"])
    return net.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]


def _train_run(
    plan: StudyPlan,
    folder: Path,
    key: str,
    seed: int,
    train: Sequence[LabelledVolume],
    val: LabelledVolume,
    n_classes: int,
    progress: Progress | None,
) -> tuple[dict[str, Any], float]:
    """Train (or resume) one run; return its log and the seconds spent now."""
    settings = plan.settings
    device = val.image.device
    net = make_picker(n_classes, settings.width, seed).to(device)
    log_path, last_path = folder / "training_log.json", folder / "checkpoints" / "last.pt"
    log = read_json_object(log_path)
    epochs: list[dict[str, Any]] = []
    optimizer_state = None
    if log is not None and log.get("study_key") == key and last_path.exists():
        state = torch.load(last_path, map_location=device, weights_only=True)
        kept = [e for e in log["epochs"] if e["epoch"] <= state["epoch"]]
        if len(kept) == state["epoch"]:  # else the log is incomplete: train afresh
            net.load_state_dict(state["model"])
            optimizer_state = state["optimizer"]
            epochs = kept
    steps = steps_per_epoch(train, settings)
    total = steps * settings.epochs
    done = steps * len(epochs)

    def on_step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress("train", done, total)

    def on_epoch(
        record: dict[str, Any], model: torch.nn.Module, opt: torch.optim.Optimizer
    ) -> None:
        # Order matters for resuming: the epoch's weights, then the log, then last.pt. A
        # kill in between leaves last.pt at the previous epoch, and the log is cut to it.
        epochs.append(record)
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        tag = f"epoch_{record['epoch']:03d}.pt"
        save_checkpoint(folder / "checkpoints" / tag, {"epoch": record["epoch"], "model": weights})
        best = min(epochs, key=lambda e: e["val_loss"])
        write_json(
            {
                "study_key": key,
                "settings": settings.as_dict(),
                "n_classes": n_classes,
                "seed": seed,
                "best_epoch": best["epoch"],
                "epochs": epochs,
            },
            log_path,
        )
        save_checkpoint(
            last_path, {"epoch": record["epoch"], "model": weights, "optimizer": opt.state_dict()}
        )

    began = time.perf_counter()
    train_picker(
        net,
        train,
        val,
        settings,
        seed=seed,
        start_epoch=len(epochs),
        optimizer_state=optimizer_state,
        on_epoch=on_epoch,
        on_step=on_step,
    )
    log = read_json_object(log_path)
    assert log is not None
    return log, time.perf_counter() - began


def _segment(
    plan: StudyPlan, net: Any, volume: torch.Tensor, progress: Progress | None, what: str
) -> np.ndarray:
    """Return the label map of ``volume`` segmented by ``net`` (numpy int64)."""
    settings = plan.settings
    done = 0

    def on_patches(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(what, done, 0)

    patch = min(plan.segment_patch or settings.patch, min(volume.shape) // 4 * 4)
    step = None if plan.segment_step is None else min(plan.segment_step, patch)
    labels = segment_tomogram(
        net,
        volume,
        patch=patch,
        step=step,
        batch_size=settings.batch_size,
        precision=settings.precision,
        on_patches=on_patches,
    )
    return labels.cpu().numpy()


def _choose_rule(
    plan: StudyPlan,
    net: Any,
    val: tuple[LabelledVolume, float],
    shared: _Shared,
    progress: Progress | None,
) -> dict[str, Any]:
    """Segment the validation tomogram and choose the cluster-size fraction on it."""
    began = time.perf_counter()
    labels = _segment(plan, net, val[0].image, progress, "segment val")
    voxel_size_a = val[1]
    picks, sizes = _clusters(plan, labels, voxel_size_a, shared)
    truth = read_truth(tomogram_dir(plan.dataset, plan.val[0]))
    grid = plan.min_fraction_grid if plan.min_fraction is None else (plan.min_fraction,)
    fraction, table = choose_min_fraction(
        picks,
        sizes,
        truth,
        shared.classes,
        voxel_size_a,
        particle_voxels=shared.sizes,
        exclude=plan.exclude,
        grid=grid,
    )
    chosen = next(row for row in table if row["fraction"] == fraction)
    return {
        "min_fraction": fraction,
        "chosen_on": f"model_{plan.val[0]}",
        "validation": chosen,
        "grid": table,
        "seconds": time.perf_counter() - began,
    }


def _test_run(
    plan: StudyPlan,
    folder: Path,
    net: Any,
    test: tuple[torch.Tensor, float],
    fraction: float,
    shared: _Shared,
    progress: Progress | None,
) -> tuple[list[Particle], dict[str, float]]:
    """Segment the test tomogram with the best epoch and extract its particles."""
    began = time.perf_counter()
    label_map = _segment(plan, net, test[0], progress, "segment")
    segment_s = time.perf_counter() - began
    write_mrc(label_map.astype(np.float32), folder / "segmentation.mrc", voxel_size_a=test[1])
    began = time.perf_counter()
    picks, sizes = _clusters(plan, label_map, test[1], shared)
    picks = keep_large(picks, sizes, shared.classes, test[1], fraction, shared.sizes)
    return picks, {"segment_s": segment_s, "extract_s": time.perf_counter() - began}


def _clusters(
    plan: StudyPlan, labels: np.ndarray, voxel_size_a: float, shared: _Shared
) -> tuple[list[Particle], list[int]]:
    """Return every cluster of a segmentation (in the unbinned tomogram's voxels), sizes."""
    picks, sizes = cluster_candidates(
        labels, shared.classes, voxel_size_a, exclude=plan.exclude, method=plan.cluster
    )
    return unbinned(picks, plan.bin), sizes


def unbinned(picks: Sequence[Particle], factor: int) -> list[Particle]:
    """Return picks made in a tomogram binned by ``factor`` in the unbinned one's voxels."""
    if factor == 1:
        return list(picks)
    xyz = from_binned(np.array([[p.x, p.y, p.z] for p in picks]).reshape(-1, 3), factor)
    return [
        Particle(p.class_name, float(x), float(y), float(z))
        for p, (x, y, z) in zip(picks, xyz, strict=True)
    ]


def _score_run(folder: Path, picks: Sequence[Particle], truth: Any, exclude: Sequence[str]) -> Any:
    """Write picks.txt, score the picks against the test tomogram, write the score figures."""
    write_particle_locations(picks, folder / "picks.txt")
    result = score_against(truth, picks, exclude)
    write_score_files(folder, result)
    return result


def run_one(
    plan: StudyPlan, modality: str, seed: int, shared: _Shared, progress: Progress | None = None
) -> dict[str, Any]:
    """Train, validate, test and score one (modality, seed); return its score.json record.

    Skipped (its record read back) when ``score.json`` holds the run's study key.
    """
    folder = plan.output / f"{modality}_seed{seed}"
    key = plan.run_key(modality, seed)
    previous = read_json_object(folder / "score.json")
    if previous is not None and previous.get("study_key") == key:
        return previous
    device = torch.device(shared.device)
    began = time.perf_counter()
    factor = plan.bin
    train = [load_volume(plan.dataset, i, modality, device, factor)[0] for i in plan.train]
    val = load_volume(plan.dataset, plan.val[0], modality, device, factor)
    target = target_modality(modality)
    volume, size = load_volume(plan.dataset, plan.test, target, device, factor)
    load_s = time.perf_counter() - began
    log, train_s = _train_run(plan, folder, key, seed, train, val[0], shared.n_classes, progress)
    net = _load_best(plan, folder, log, device)
    rule = _choose_rule(plan, net, val, shared, progress)
    write_json(rule, folder / "validation.json")
    picks, times = _test_run(
        plan, folder, net, (volume.image, size), rule["min_fraction"], shared, progress
    )
    began = time.perf_counter()
    truth = read_truth(tomogram_dir(plan.dataset, plan.test))
    result = _score_run(folder, picks, truth, plan.exclude)
    summary = {
        "modality": modality,
        "seed": seed,
        "tested_on": f"model_{plan.test}/tomogram_{target}.mrc",
        "best_epoch": log["best_epoch"],
        "epochs": len(log["epochs"]),
        "min_fraction": rule["min_fraction"],
        "validation": rule["validation"],
        "n_picks": len(picks),
        "load_s": load_s,
        "train_s": train_s,
        "validate_s": rule["seconds"],
        **times,
        "score_s": time.perf_counter() - began,
    }
    record = {"modality": modality, "seed": seed, "study_key": key, "run": summary}
    record.update(result.to_dict())
    write_json(record, folder / "score.json")
    return record


def _start_worker(parent: int, keep_freed_memory: bool, threads: int) -> None:
    """Initialise a study worker like this process (`start_worker`), ``threads`` threads."""
    from faket._workers import start_worker

    start_worker(parent, keep_freed_memory)
    torch.set_num_threads(threads)


def _in_parallel(
    plan: StudyPlan,
    tasks: Sequence[tuple[str, int]],
    shared: _Shared,
    on_record: Callable[[str, int, dict[str, Any]], None],
) -> dict[tuple[str, int], dict[str, Any]]:
    """Run the tasks in ``plan.jobs`` processes of ``plan.threads`` threads each."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from faket._runtime import freed_memory_kept

    threads = plan.threads or max(1, (os.cpu_count() or 1) // plan.jobs)
    records = {}
    with ProcessPoolExecutor(
        max_workers=plan.jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(), freed_memory_kept(), threads),
    ) as pool:
        futures = {pool.submit(run_one, plan, m, s, shared): (m, s) for m, s in tasks}
        try:
            for future in as_completed(futures):
                modality, seed = futures[future]
                records[(modality, seed)] = future.result()
                on_record(modality, seed, records[(modality, seed)])
        except BaseException:  # a failed run or Ctrl-C: start no other run
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return records


def run_study(
    plan: StudyPlan,
    device: torch.device,
    *,
    progress: Progress | None = None,
    on_run: Callable[[str, int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train, test and score every (modality, seed); write the study folder; return study.json.

    Parameters
    ----------
    plan : StudyPlan
        What to run (``jobs`` > 1: that many runs at once in processes).
    device : torch.device
        Where the pickers run.
    progress : callable, optional
        ``progress(step, done, total)`` while a run trains or segments (one job only).
    on_run : callable, optional
        Called with ``(modality, seed, score record)`` after each run, as runs finish.
    """
    from faket.evaluation.compare import RunScores

    check_inputs(plan)
    plan.output.mkdir(parents=True, exist_ok=True)
    test_dir = tomogram_dir(plan.dataset, plan.test)
    classes = read_classes_json(test_dir / "classes.json")
    shared = _Shared(
        classes=classes,
        n_classes=max(c["id"] for c in classes) + 1,
        sizes=particle_volumes(*read_training_labels(plan), classes),
        device=str(device),
    )
    tasks = [(m, s) for m in plan.modalities for s in plan.seeds]

    def on_record(modality: str, seed: int, record: dict[str, Any]) -> None:
        if on_run is not None:
            on_run(modality, seed, record)

    if plan.jobs > 1 and device.type == "cpu":
        records = _in_parallel(plan, tasks, shared, on_record)
    else:
        if plan.threads is not None:
            torch.set_num_threads(plan.threads)
        records = {}
        for modality, seed in tasks:
            records[(modality, seed)] = run_one(plan, modality, seed, shared, progress)
            on_record(modality, seed, records[(modality, seed)])
    runs = [records[t]["run"] for t in tasks]
    scores = [RunScores(m, s, records[(m, s)]) for m, s in tasks]
    return write_comparison(plan, runs, scores)
