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

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faket.errors import FaketInputError
from faket.evaluation.extract import extract_particles, min_cluster_voxels
from faket.evaluation.files import read_truth, write_json
from faket.evaluation.segment import segment_tomogram
from faket.evaluation.shrec import score_picks
from faket.evaluation.training import (
    LabelledVolume,
    TrainingSettings,
    make_picker,
    train_picker,
)
from faket.io import Particle, atomic_write, read_classes_json, read_mrc, write_mrc

__all__ = [
    "PRESETS",
    "StudyPlan",
    "check_inputs",
    "parse_indices",
    "picks_from_labels",
    "run_study",
    "target_modality",
]

PRESETS: dict[str, TrainingSettings] = {
    "paper": TrainingSettings(),
    "laptop": TrainingSettings(
        width=0.5, patch=32, batch_size=4, epochs=30, learning_rate=1e-3, precision="bf16"
    ),
}
"""Training presets. ``paper``: DeepFinder as in FakET (GPU). ``laptop``: a 2-core CPU."""

PRESET_SEEDS = {"paper": 6, "laptop": 2}
"""Seeds per modality of each preset."""


def parse_indices(text: str) -> list[int]:
    """Parse tomogram indices: ``"0-5"``, ``"6"``, ``"0,2,4-5"`` -> sorted unique ints."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if high < low:
                    raise ValueError
                out.update(range(low, high + 1))
            else:
                out.add(int(part))
    except ValueError as err:
        raise ValueError(f"cannot read tomogram indices {text!r}; write e.g. 0-5 or 0,2,4") from err
    if not out or min(out) < 0:
        raise ValueError(f"tomogram indices must be >= 0, got {text!r}")
    return sorted(out)


def target_modality(modality: str) -> str:
    """Return the modality a picker trained on ``modality`` is tested on."""
    return "noiseless" if modality == "noiseless" else "reference"


@dataclass(frozen=True)
class StudyPlan:
    """What a study trains and tests.

    Attributes
    ----------
    dataset : Path
        A ``faket simulate`` dataset folder.
    output : Path
        The study folder.
    modalities : tuple of str
        Training modalities (``tomogram_<modality>.mrc`` in each tomogram folder).
    train, val : tuple of int
        Training tomograms and the validation tomogram(s).
    test : int
        The held-out test tomogram.
    seeds : tuple of int
        Training seeds.
    settings : TrainingSettings
        Network and training settings.
    exclude : tuple of str
        Classes neither extracted nor scored (SHREC 2021 left out vesicles).
    segment_step : int or None
        Step between inference patches (default half a patch).
    cluster : str
        ``meanshift`` or ``components``; see `picks_from_labels`.
    min_fraction : float
        Clusters under this fraction of the class's mean particle volume (voxels per
        particle in the training labels) are dropped.
    """

    dataset: Path
    output: Path
    modalities: tuple[str, ...]
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: int
    seeds: tuple[int, ...]
    settings: TrainingSettings
    exclude: tuple[str, ...] = ("vesicle",)
    segment_step: int | None = None
    cluster: str = "meanshift"
    min_fraction: float = 0.25

    def __post_init__(self) -> None:
        overlap = (set(self.train) & set(self.val)) | ({self.test} & set(self.train + self.val))
        if overlap:
            raise ValueError(
                f"tomograms {sorted(overlap)} are in more than one of train, val and test"
            )
        if not self.train or not self.val or not self.modalities or not self.seeds:
            raise ValueError("a study needs training and validation tomograms, modalities, seeds")
        if len(self.val) != 1:
            raise ValueError(f"give one validation tomogram, got {list(self.val)}")

    def run_key(self, modality: str, seed: int) -> str:
        """Return the key that identifies one run's inputs and settings."""
        record = {
            "dataset": str(self.dataset.resolve()),
            "modality": modality,
            "seed": seed,
            "train": self.train,
            "val": self.val,
            "test": self.test,
            "settings": self.settings.as_dict(),
            "exclude": self.exclude,
            "segment_step": self.segment_step,
            "cluster": self.cluster,
            "min_fraction": self.min_fraction,
        }
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _tomogram_dir(dataset: Path, index: int) -> Path:
    folder = dataset / f"model_{index}"
    if not folder.is_dir():
        raise FaketInputError(f"no tomogram folder model_{index} in the dataset", folder)
    return folder


def check_inputs(plan: StudyPlan) -> None:
    """Check that every file the study reads exists, before hours of training start.

    Raises
    ------
    FaketInputError
        Naming the first missing folder or file.
    """
    labels = ("class_mask.mrc", "particle_locations.txt")
    needed: list[Path] = []
    for index in (*plan.train, *plan.val):
        folder = _tomogram_dir(plan.dataset, index)
        needed += [folder / f"tomogram_{m}.mrc" for m in plan.modalities]
        needed += [folder / name for name in labels]
    folder = _tomogram_dir(plan.dataset, plan.test)
    needed += [folder / f"tomogram_{target_modality(m)}.mrc" for m in plan.modalities]
    needed += [folder / n for n in ("occupancy_mask.mrc", "particle_locations.txt", "classes.json")]
    for path in needed:
        if not path.is_file():
            raise FaketInputError("no such file", path)


def load_volume(
    dataset: Path, index: int, modality: str, device: torch.device
) -> tuple[LabelledVolume, float]:
    """Read ``tomogram_<modality>.mrc``, ``class_mask.mrc`` and the particle list of a tomogram.

    Returns
    -------
    volume : LabelledVolume
        On ``device``.
    voxel_size_a : float
        The tomogram's voxel size in Angstrom.
    """
    from faket.io import read_particle_locations

    folder = _tomogram_dir(dataset, index)
    path = folder / f"tomogram_{modality}.mrc"
    image = read_mrc(path, ndim=3)
    mask = read_mrc(folder / "class_mask.mrc", ndim=3).data
    if mask.shape != image.data.shape:
        raise FaketInputError(
            f"shape {image.data.shape} differs from class_mask.mrc's {mask.shape}", path
        )
    particles = read_particle_locations(folder / "particle_locations.txt")
    xyz = np.array([[p.x, p.y, p.z] for p in particles], dtype=np.float64).reshape(-1, 3)
    volume = LabelledVolume(
        torch.from_numpy(np.ascontiguousarray(image.data, dtype=np.float32)).to(device),
        torch.from_numpy(np.rint(mask).astype(np.int64)).to(device),
        xyz,
        name=str(path),
    )
    return volume, float(image.voxel_size_a or 1.0)


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


def _training_particle_volumes(
    plan: StudyPlan, classes: Sequence[dict[str, Any]]
) -> dict[str, float]:
    from faket.io import read_particle_locations

    masks, names = [], []
    for index in plan.train:
        folder = _tomogram_dir(plan.dataset, index)
        masks.append(read_mrc(folder / "class_mask.mrc", ndim=3).data)
        names.append(
            [p.class_name for p in read_particle_locations(folder / "particle_locations.txt")]
        )
    return particle_volumes(masks, names, classes)


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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
    log = _read_json(log_path)
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
        _save_checkpoint(folder / "checkpoints" / tag, {"epoch": record["epoch"], "model": weights})
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
        _save_checkpoint(
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
    log = _read_json(log_path)
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
    test_dir = _tomogram_dir(plan.dataset, plan.test)
    truth = read_truth(test_dir)
    classes = read_classes_json(test_dir / "classes.json")
    n_classes = max(c["id"] for c in classes) + 1
    sizes = _training_particle_volumes(plan, classes)
    runs: list[dict[str, Any]] = []
    scores: list[RunScores] = []
    tests: dict[str, tuple[torch.Tensor, float]] = {}
    for modality in plan.modalities:
        loaded: tuple[list[LabelledVolume], LabelledVolume] | None = None
        for seed in plan.seeds:
            folder = output / f"{modality}_seed{seed}"
            key = plan.run_key(modality, seed)
            previous = _read_json(folder / "score.json")
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
                from faket.io import write_particle_locations

                write_particle_locations(picks, folder / "picks.txt")
                began = time.perf_counter()
                names = [p.class_name for p in picks]
                xyz = np.array([[p.x, p.y, p.z] for p in picks], dtype=np.float64).reshape(-1, 3)
                result = score_picks(
                    truth.names,
                    truth.xyz,
                    truth.occupancy,
                    names,
                    xyz,
                    class_order=truth.class_order,
                    exclude=plan.exclude,
                )
                _write_score_files(folder, result)
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
    study = _write_comparison(plan, runs, scores)
    return study


def _write_score_files(folder: Path, result: Any) -> None:
    from faket.evaluation.files import write_confusion_csv
    from faket.evaluation.plots import plot_class_f1, plot_confusion

    write_confusion_csv(result.labels, result.confusion, folder / "score_confusion.csv")
    plot_confusion(result.labels, result.confusion, folder / "score_confusion.png")
    real = {n: s["f1"] for n, s in result.per_class.items() if s["support"] > 0}
    plot_class_f1(real, folder / "score_f1.png")


def _write_comparison(
    plan: StudyPlan, runs: list[dict[str, Any]], scores: Sequence[Any]
) -> dict[str, Any]:
    """Write compare/, the training curves, report.html and study.json; return study.json."""
    from faket.evaluation.compare import summarise_runs
    from faket.evaluation.plots import plot_compare_metrics, plot_training_curves
    from faket.evaluation.report import write_compare_tables
    from faket.report.html import Section, write_report

    folder = plan.output / "compare"
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarise_runs(list(scores))
    write_compare_tables(summary, list(scores), folder)
    headline = ["localisation_f1", "macro_f1_published", "macro_f1_real"]
    plot_compare_metrics(summary, headline, folder / "compare_metrics.png")
    class_metrics = list(
        dict.fromkeys(m for s in summary.values() for m in s if m.startswith("f1_"))
    )
    if class_metrics:
        plot_compare_metrics(summary, class_metrics, folder / "compare_classes.png")
    curves = {}
    for run in runs:
        log = _read_json(plan.output / f"{run['modality']}_seed{run['seed']}" / "training_log.json")
        if log is not None:
            curves[f"{run['modality']} seed {run['seed']}"] = log["epochs"]
    plot_training_curves(curves, folder / "training_curves.png")
    study = {
        "dataset": str(plan.dataset),
        "modalities": list(plan.modalities),
        "train": list(plan.train),
        "val": list(plan.val),
        "test": plan.test,
        "seeds": list(plan.seeds),
        "exclude": list(plan.exclude),
        "segment_step": plan.segment_step,
        "cluster": plan.cluster,
        "min_fraction": plan.min_fraction,
        "settings": plan.settings.as_dict(),
        "runs": runs,
        "summary": summary,
    }
    write_json(study, plan.output / "study.json")
    rows = [["modality", "seed", "best epoch", "train s", "segment s", "loc. F1", "macro-F1"]]
    for run, score in zip(runs, scores, strict=True):
        rows.append(
            [
                run["modality"],
                str(run["seed"]),
                str(run["best_epoch"]),
                f"{run['train_s']:.0f}",
                f"{run['segment_s']:.0f}",
                f"{score.scores['localisation']['f1']:.3f}",
                f"{score.scores['classification']['macro_f1_published']:.3f}",
            ]
        )
    table = [["modality", "runs", *headline]]
    for modality, stats in summary.items():
        cells = [
            f"{stats[m]['mean']:.3f} [{stats[m]['low_95']:.3f}, {stats[m]['high_95']:.3f}]"
            for m in headline
        ]
        table.append([modality, str(int(stats[headline[0]]["n"])), *cells])
    sections = [
        Section(
            "Scores by modality",
            text="Mean over seeds [bootstrap 95 % interval]; also in compare/compare.md.",
            table=table,
        ),
        Section("Headline metrics", image="compare/compare_metrics.png"),
        Section("Per-class F1", image="compare/compare_classes.png") if class_metrics else None,
        Section("Training curves", image="compare/training_curves.png"),
        Section("Runs", table=rows),
    ]
    write_report(
        plan.output / "report.html", "faket picking study", [s for s in sections if s is not None]
    )
    return study


def with_overrides(settings: TrainingSettings, **changes: Any) -> TrainingSettings:
    """Return ``settings`` with the given fields changed (``None`` values are ignored)."""
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})


def dataset_tomograms(dataset: str | os.PathLike[str]) -> int:
    """Return how many ``model_<i>`` folders a dataset has (consecutive from 0)."""
    root = Path(dataset)
    if not root.is_dir():
        raise FaketInputError("not a folder", root)
    n = 0
    while (root / f"model_{n}").is_dir():
        n += 1
    return n
