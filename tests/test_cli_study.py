"""``faket evaluate study`` on a tiny synthetic dataset: outputs, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import two_class_tomogram
from faket.evaluation.study import parse_indices, target_modality
from faket.io import Particle, write_classes_json, write_mrc, write_particle_locations

CLASSES = [
    {"id": 1, "name": "small", "diameter_a": 40.0},
    {"id": 2, "name": "large", "diameter_a": 80.0},
]


def _write_dataset(root: Path, n: int = 4) -> Path:
    """model_<i>/ folders as faket simulate writes them, with two modalities."""
    for i in range(n):
        folder = root / f"model_{i}"
        folder.mkdir(parents=True)
        clean, mask, occupancy, names, xyz = two_class_tomogram(seed=i, noise=0.0)
        noisy = clean + np.random.default_rng(i).normal(0, 0.3, clean.shape).astype(np.float32)
        write_mrc(clean, folder / "tomogram_noiseless.mrc", voxel_size_a=10.0)
        write_mrc(noisy, folder / "tomogram_reference.mrc", voxel_size_a=10.0)
        write_mrc(mask.astype(np.float32), folder / "class_mask.mrc", voxel_size_a=10.0)
        write_mrc(occupancy.astype(np.float32), folder / "occupancy_mask.mrc", voxel_size_a=10.0)
        particles = [Particle(c, *p) for c, p in zip(names, xyz.tolist(), strict=True)]
        write_particle_locations(particles, folder / "particle_locations.txt")
        write_classes_json(CLASSES, folder / "classes.json")
    return root


FAST = ["--epochs", "2", "--steps-per-epoch", "3", "--width", "0.25", "--patch", "16"]
FAST += ["--batch-size", "4"]
FAST += [
    "--cluster",
    "components",
    "--precision",
    "fp32",
    "--seeds",
    "2",
    "--train",
    "0-1",
    "--val",
    "2",
    "--test",
    "3",
]


def test_a_study_trains_tests_scores_and_compares_every_modality_and_seed(
    run_cli, tmp_path: Path
) -> None:
    data = _write_dataset(tmp_path / "ds")
    out = tmp_path / "study"
    code, stdout, stderr = run_cli(
        "evaluate", "study", data, "--modalities", "noiseless", "reference", *FAST, "-o", out
    )
    assert code == 0, stderr
    assert "| noiseless |" in stdout and "| reference |" in stdout
    study = json.loads((out / "study.json").read_text())
    assert [(r["modality"], r["seed"]) for r in study["runs"]] == [
        ("noiseless", 0),
        ("noiseless", 1),
        ("reference", 0),
        ("reference", 1),
    ]
    assert {r["tested_on"] for r in study["runs"]} == {
        "model_3/tomogram_noiseless.mrc",
        "model_3/tomogram_reference.mrc",
    }
    for run in study["runs"]:
        assert run["train_s"] > 0 and run["segment_s"] > 0
        folder = out / f"{run['modality']}_seed{run['seed']}"
        log = json.loads((folder / "training_log.json").read_text())
        assert [e["epoch"] for e in log["epochs"]] == [1, 2]
        best = min(log["epochs"], key=lambda e: e["val_loss"])["epoch"]
        assert log["best_epoch"] == run["best_epoch"] == best
        for name in ("epoch_001.pt", "epoch_002.pt", "last.pt"):
            assert (folder / "checkpoints" / name).is_file()
        for name in ("segmentation.mrc", "picks.txt", "score.json", "score_confusion.png"):
            assert (folder / name).is_file()
        score = json.loads((folder / "score.json").read_text())
        assert score["modality"] == run["modality"] and score["seed"] == run["seed"]
    for name in ("compare.md", "compare.csv", "compare_metrics.png", "training_curves.png"):
        assert (out / "compare" / name).is_file()
    assert "training_curves.png" in (out / "report.html").read_text()
    # Different seeds give different pickers.
    logs = [
        json.loads((out / f"noiseless_seed{s}" / "training_log.json").read_text()) for s in (0, 1)
    ]
    assert logs[0]["epochs"][0]["train_loss"] != logs[1]["epochs"][0]["train_loss"]

    # A re-run skips finished runs (nothing is retrained: files stay untouched).
    stamp = (out / "reference_seed1" / "checkpoints" / "last.pt").stat().st_mtime_ns
    code, stdout2, _ = run_cli(
        "evaluate", "study", data, "--modalities", "noiseless", "reference", *FAST, "-o", out
    )
    assert code == 0 and stdout2 == stdout
    assert (out / "reference_seed1" / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp


def test_an_interrupted_training_resumes_from_its_last_epoch(tmp_path: Path) -> None:
    import torch

    from faket.evaluation.study import StudyPlan, run_study
    from faket.evaluation.training import TrainingSettings

    data = _write_dataset(tmp_path / "ds")
    settings = TrainingSettings(width=0.25, patch=16, batch_size=4, epochs=3, learning_rate=1e-3)

    def plan(out: Path) -> StudyPlan:
        return StudyPlan(
            data, out, ("reference",), (0, 1), (2,), 3, (0,), settings, cluster="components"
        )

    run_study(plan(tmp_path / "straight"), torch.device("cpu"))
    steps_per_epoch = 6  # 2 tomograms x 12 particles / batch of 4

    def kill_in_epoch_2(step: str, done: int, total: int) -> None:
        if step == "train" and done == steps_per_epoch + 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(plan(tmp_path / "resumed"), torch.device("cpu"), progress=kill_in_epoch_2)
    folder = tmp_path / "resumed" / "reference_seed0"
    assert not (folder / "score.json").exists()
    assert torch.load(folder / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    seen: list[int] = []
    run_study(
        plan(tmp_path / "resumed"),
        torch.device("cpu"),
        progress=lambda step, done, total: seen.append(done) if step == "train" else None,
    )
    assert seen[0] == steps_per_epoch + 1  # resumed after epoch 1, not from scratch
    for epoch in (1, 2, 3):
        name = f"checkpoints/epoch_{epoch:03d}.pt"
        a = torch.load(tmp_path / "straight" / "reference_seed0" / name, weights_only=True)
        b = torch.load(folder / name, weights_only=True)
        for key, value in a["model"].items():
            assert torch.equal(value, b["model"][key]), (epoch, key)
    logs = [
        json.loads((tmp_path / d / "reference_seed0" / "training_log.json").read_text())
        for d in ("straight", "resumed")
    ]
    strip = [
        [{k: v for k, v in e.items() if k != "seconds"} for e in log["epochs"]] for log in logs
    ]
    assert strip[0] == strip[1]


def test_study_rejects_overlapping_splits_and_missing_files(run_cli, tmp_path: Path) -> None:
    data = _write_dataset(tmp_path / "ds", n=4)
    out = tmp_path / "study"
    code, _, err = run_cli("evaluate", "study", data, "--train", "0-1", "--val", "1", "-o", out)
    assert code == 2 and "more than one of train, val and test" in err
    code, _, err = run_cli("evaluate", "study", data, "--modalities", "faket", *FAST, "-o", out)
    assert code == 2
    assert err.strip() == f"faket: error: {data / 'model_0' / 'tomogram_faket.mrc'}: no such file"
    ref = ["--modalities", "reference", *FAST]
    code, _, err = run_cli("evaluate", "study", data, *ref, "--test", "5", "-o", out)
    assert code == 2 and "model_5" in err
    (data / "model_4").mkdir()
    code, _, err = run_cli("evaluate", "study", data, *ref, "--test", "4", "-o", out)
    assert code == 2 and "model_4" in err and "no such file" in err
    code, _, err = run_cli("evaluate", "study", data, "--train", "0-x", "-o", out)
    assert code == 2 and "tomogram indices" in err
    (data / "dataset.json").write_text('{"reference_source": "files"}')
    code, _, err = run_cli("evaluate", "study", data, *ref, "-o", out)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "can run only NOISELESS (--modalities noiseless): reference are tested on" in err
    assert not list(out.glob("*_seed*"))  # nothing was trained


def test_index_ranges_and_test_modalities() -> None:
    assert parse_indices("0-5") == [0, 1, 2, 3, 4, 5]
    assert parse_indices("6") == [6]
    assert parse_indices("0,2, 4-5") == [0, 2, 4, 5]
    for bad in ("5-2", "a", "", "-1"):
        with pytest.raises(ValueError):
            parse_indices(bad)
    assert target_modality("noiseless") == "noiseless"
    assert {target_modality(m) for m in ("baseline", "noisy", "faket", "reference")} == {
        "reference"
    }


ALL_ROWS = (
    "noiseless",
    "baseline",
    "noisy",
    "faket",
    "noisy_spectral",
    "faket_spectral",
    "faket_random_spectral",
    "reference",
)


def test_a_tiny_study_with_every_row_runs_in_two_jobs_with_the_rule_fixed_on_validation(
    run_cli, tmp_path: Path
) -> None:
    import shutil

    data = _write_dataset(tmp_path / "ds")
    for i in range(4):
        folder = data / f"model_{i}"
        for name in ALL_ROWS[1:-1]:  # stand-ins: the reference reconstruction, renamed
            shutil.copy(folder / "tomogram_reference.mrc", folder / f"tomogram_{name}.mrc")
    out = tmp_path / "study"
    fast = ["--epochs", "1", "--steps-per-epoch", "2", "--val-patches", "4"]
    fast += ["--width", "0.25", "--patch", "16", "--batch-size", "4"]
    fast += ["--cluster", "components", "--precision", "fp32", "--seeds", "1"]
    fast += ["--train", "0-1", "--val", "2", "--test", "3", "--background-fraction", "0.25"]
    code, stdout, stderr = run_cli(
        "evaluate", "study", data, *fast, "--jobs", "2", "--threads", "1", "-o", out
    )
    assert code == 0, stderr
    study = json.loads((out / "study.json").read_text())
    assert [r["modality"] for r in study["runs"]] == list(ALL_ROWS)  # dataset order
    for run in study["runs"]:
        folder = out / f"{run['modality']}_seed0"
        rule = json.loads((folder / "validation.json").read_text())
        assert rule["chosen_on"] == "model_2"  # the validation tomogram, never the test one
        assert run["min_fraction"] == rule["min_fraction"]
        best = max(rule["grid"], key=lambda r: (r["objective"], -r["fraction"]))
        assert rule["min_fraction"] == best["fraction"]
        assert f"| {run['modality']} |" in stdout
    assert study["settings"]["background_fraction"] == 0.25


def test_the_targets_are_the_issues_bars_on_the_means() -> None:
    from faket.evaluation.study_report import study_targets

    def row(loc: float, macro: float) -> dict[str, dict[str, float]]:
        return {"localisation_f1": {"mean": loc}, "macro_f1_published": {"mean": macro}}

    summary = {
        "reference": row(0.80, 0.60),
        "faket_spectral": row(0.78, 0.50),
        "baseline": row(0.70, 0.35),
        "faket_random_spectral": row(0.75, 0.52),
    }
    got = {t["target"].split(" >")[0].split(" -")[0]: t for t in study_targets(summary)}
    values = [t["value"] for t in study_targets(summary)]
    assert values == pytest.approx([0.50 / 0.60, 0.78 / 0.80, 0.15, -0.02])
    assert [t["met"] for t in study_targets(summary)] == [False, True, True, False]
    assert got  # every target has a name
    assert study_targets({"reference": row(0.8, 0.6)}) == []  # nothing to check
