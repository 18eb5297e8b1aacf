"""The picking study (FakET Table 1): one picker per modality and seed, all tested alike.

For each modality and seed a DeepFinder-style picker is trained on the training
tomograms of that modality, the epoch with the lowest validation loss (on a tomogram
not trained on) is kept, and it segments the held-out test tomogram's REFERENCE
reconstruction (the NOISELESS picker segments the noiseless one, as published). Particles
are extracted per class and scored with the SHREC 2021 metrics; the runs are compared
at the end. Everything reads a ``faket simulate`` dataset (``model_<i>/`` folders).

Study folder::

    study.json                        settings, runs, wall time of every step
    <modality>_seed<k>/
        training_log.json             one record per epoch, the best epoch
        checkpoints/epoch_<e>.pt      weights after each epoch
        checkpoints/last.pt           weights and optimiser state (resume)
        segmentation.mrc              test tomogram's labels (best epoch)
        picks.txt                     extracted particles (SHREC text)
        score.json, score_*.csv/png   SHREC scores
    compare/                          compare.md/.csv, compare_*.png, training_curves.png
    report.html                       the figures and tables on one page

A run whose ``score.json`` holds the same study key (settings, data, seed) is skipped,
and a training resumes from ``last.pt``, so an interrupted study resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faket.evaluation.extract import extract_particles, min_cluster_voxels
from faket.evaluation.files import read_truth
from faket.evaluation.segment import segment_tomogram
from faket.evaluation.shrec import score_picks
from faket.evaluation.study_files import (
    check_inputs,
    load_volume,
    read_training_labels,
    save_checkpoint,
    tomogram_dir,
)
from faket.evaluation.study_plan import (
    PRESET_SEEDS,
    PRESETS,
    StudyPlan,
    parse_indices,
    target_modality,
    with_overrides,
)
from faket.evaluation.study_report import write_comparison, write_score_files
from faket.evaluation.training import LabelledVolume, make_picker, train_picker
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

    Parameters
    ----------
    labels : numpy.ndarray
        ``(nz, ny, nx)`` int labels.
    classes : sequence of dict
        ``classes.json`` rows (``id``, ``name``, ``diameter_a``).
    voxel_size_a : float
        Voxel size in Angstrom.
    exclude : sequence of str
        Classes not extracted.
    min_fraction : float
        Clusters smaller than this fraction of a particle's volume are dropped.
    particle_voxels : mapping of str to float, optional
        Class name -> mean voxels per particle (see `particle_volumes`). Classes not in
        it use the sphere of the class's diameter (`faket.evaluation.min_cluster_voxels`),
        which is far too large for thin particles (a rod fills a tenth of its sphere).
    method : str
        ``meanshift`` (DeepFinder's clustering) or ``components`` (26-connected
        components: much faster on poor segmentations, but touching particles merge).
    snap : bool
        Put each pick on the nearest voxel labelled with its class (see
        `faket.evaluation.extract_particles`): hollow particles are hit, not missed.
    """
    picks: list[Particle] = []
    for row in classes:
        if row["name"] in exclude:
            continue
        radius = max(1.0, row["diameter_a"] / 2 / voxel_size_a)
        if particle_voxels is not None and row["name"] in particle_voxels:
            minimum = max(1, int(min_fraction * particle_voxels[row["name"]]))
        else:
            minimum = min_cluster_voxels(row["diameter_a"], voxel_size_a, min_fraction)
        picks += extract_particles(
            labels,
            {row["id"]: row["name"]},
            method=method,
            bandwidth_vox=radius,
            min_voxels={row["id"]: minimum},
            snap=snap,
        )
    return picks


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
    steps = -(-sum(len(v.xyz) for v in train) // settings.batch_size)
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


def _test_run(
    plan: StudyPlan,
    folder: Path,
    log: dict[str, Any],
    test_volume: torch.Tensor,
    voxel_size_a: float,
    classes: list[dict[str, Any]],
    sizes: Mapping[str, float],
    progress: Progress | None,
) -> tuple[list[Particle], dict[str, float]]:
    """Segment the test tomogram with the best epoch and extract its particles."""
    settings = plan.settings
    device = test_volume.device
    net = make_picker(int(log["n_classes"]), settings.width, 0).to(device)
    best = folder / "checkpoints" / f"epoch_{int(log['best_epoch']):03d}.pt"
    net.load_state_dict(torch.load(best, map_location=device, weights_only=True)["model"])
    net.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    began = time.perf_counter()
    done = 0

    def on_patches(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress("segment", done, 0)

    labels = segment_tomogram(
        net,
        test_volume,
        patch=settings.patch,
        step=plan.segment_step,
        batch_size=settings.batch_size,
        precision=settings.precision,
        on_patches=on_patches,
    )
    label_map = labels.cpu().numpy()
    segment_s = time.perf_counter() - began
    write_mrc(label_map.astype(np.float32), folder / "segmentation.mrc", voxel_size_a=voxel_size_a)
    began = time.perf_counter()
    picks = picks_from_labels(
        label_map,
        classes,
        voxel_size_a,
        exclude=plan.exclude,
        method=plan.cluster,
        particle_voxels=sizes,
        min_fraction=plan.min_fraction,
    )
    return picks, {"segment_s": segment_s, "extract_s": time.perf_counter() - began}


def _score_run(folder: Path, picks: Sequence[Particle], truth: Any, exclude: Sequence[str]) -> Any:
    """Write picks.txt, score the picks against the test tomogram, write the score figures."""
    write_particle_locations(picks, folder / "picks.txt")
    xyz = np.array([[p.x, p.y, p.z] for p in picks], dtype=np.float64).reshape(-1, 3)
    result = score_picks(
        truth.names,
        truth.xyz,
        truth.occupancy,
        [p.class_name for p in picks],
        xyz,
        class_order=truth.class_order,
        exclude=exclude,
    )
    write_score_files(folder, result)
    return result


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
        What to run.
    device : torch.device
        Where the pickers run.
    progress : callable, optional
        ``progress(step, done, total)`` while a run trains or segments.
    on_run : callable, optional
        Called with ``(modality, seed, summary)`` after each run.
    """
    from faket.evaluation.compare import RunScores

    check_inputs(plan)
    output = plan.output
    output.mkdir(parents=True, exist_ok=True)
    test_dir = tomogram_dir(plan.dataset, plan.test)
    truth = read_truth(test_dir)
    classes = read_classes_json(test_dir / "classes.json")
    n_classes = max(c["id"] for c in classes) + 1
    sizes = particle_volumes(*read_training_labels(plan), classes)
    runs: list[dict[str, Any]] = []
    scores: list[RunScores] = []
    tests: dict[str, tuple[torch.Tensor, float]] = {}
    for modality in plan.modalities:
        loaded: tuple[list[LabelledVolume], LabelledVolume] | None = None
        for seed in plan.seeds:
            folder = output / f"{modality}_seed{seed}"
            key = plan.run_key(modality, seed)
            previous = read_json_object(folder / "score.json")
            if previous is not None and previous.get("study_key") == key:
                summary = previous["run"]
            else:
                began = time.perf_counter()
                if loaded is None:
                    train = [load_volume(plan.dataset, i, modality, device)[0] for i in plan.train]
                    val = load_volume(plan.dataset, plan.val[0], modality, device)[0]
                    loaded = (train, val)
                load_s = time.perf_counter() - began
                log, train_s = _train_run(
                    plan, folder, key, seed, loaded[0], loaded[1], n_classes, progress
                )
                target = target_modality(modality)
                if target not in tests:
                    volume, size = load_volume(plan.dataset, plan.test, target, device)
                    tests[target] = (volume.image, size)
                picks, times = _test_run(
                    plan, folder, log, tests[target][0], tests[target][1], classes, sizes, progress
                )
                began = time.perf_counter()
                result = _score_run(folder, picks, truth, plan.exclude)
                summary = {
                    "modality": modality,
                    "seed": seed,
                    "tested_on": f"model_{plan.test}/tomogram_{target}.mrc",
                    "best_epoch": log["best_epoch"],
                    "epochs": len(log["epochs"]),
                    "n_picks": len(picks),
                    "load_s": load_s,
                    "train_s": train_s,
                    **times,
                    "score_s": time.perf_counter() - began,
                }
                record = {"modality": modality, "seed": seed, "study_key": key, "run": summary}
                record.update(result.to_dict())
                write_json(record, folder / "score.json")
                previous = record
            runs.append(summary)
            scores.append(RunScores(modality, seed, previous))
            if on_run is not None:
                on_run(modality, seed, previous)
    study = write_comparison(plan, runs, scores)
    return study
