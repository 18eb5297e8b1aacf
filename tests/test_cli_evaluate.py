"""``faket evaluate score | extract | compare`` and the prediction-file checks."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from faket.errors import FaketInputError
from faket.evaluation.files import read_predictions
from faket.io import (
    Particle,
    read_particle_locations,
    write_classes_json,
    write_mrc,
    write_particle_locations,
)

# x y z centres of 3x3x3 cubes in a (z, y, x) = (8, 16, 24) volume
TRUTH = [("A", 3, 3, 3), ("B", 11, 3, 3), ("A", 19, 11, 3), ("C", 11, 11, 5)]
CLASSES = [
    {"id": 1, "name": "A", "source": "", "diameter_a": 30.0},
    {"id": 2, "name": "B", "source": "", "diameter_a": 10.0},
    {"id": 3, "name": "C", "source": "", "diameter_a": 50.0},
]


@pytest.fixture
def model(tmp_path):
    folder = tmp_path / "model_9"
    folder.mkdir()
    occupancy = np.zeros((8, 16, 24), dtype=np.float32)
    classes = np.zeros_like(occupancy)
    ids = {c["name"]: c["id"] for c in CLASSES}
    for i, (name, x, y, z) in enumerate(TRUTH, start=1):
        occupancy[z - 1 : z + 2, y - 1 : y + 2, x - 1 : x + 2] = i
        classes[z - 1 : z + 2, y - 1 : y + 2, x - 1 : x + 2] = ids[name]
    write_mrc(occupancy, folder / "occupancy_mask.mrc", voxel_size_a=10.0)
    write_mrc(classes, folder / "class_mask.mrc", voxel_size_a=10.0)
    write_particle_locations([Particle(*t) for t in TRUTH], folder / "particle_locations.txt")
    write_classes_json(CLASSES, folder / "classes.json")
    return folder


def write_picks(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_score_writes_json_csv_and_figures(run_cli, model, tmp_path):
    picks = write_picks(
        tmp_path / "picks.txt", ["a 3 3 3 0 0 0", "B 11 3 3", "A 11 11 5", "A 0 15 7"]
    )
    out = tmp_path / "run" / "score.json"
    code, stdout, err = run_cli(
        "evaluate", "score", "--truth", model, "--predicted", picks, "-o", out, "--seed", 4
    )
    assert code == 0, err
    data = json.loads(out.read_text())
    loc = data["localisation"]
    assert (loc["tp"], loc["fp"], loc["fn"]) == (3, 1, 1)
    assert loc["precision"] == pytest.approx(3 / 4, abs=1e-12)
    assert data["seed"] == 4 and data["modality"] is None
    cls = data["classification"]
    assert cls["labels"] == ["background", "B", "A", "C"]  # by diameter
    # A: 1 of 2 found, column A also holds C -> F1 2 * 1 / (2 + 2); C predicted A -> 0
    assert cls["per_class"]["A"]["f1"] == pytest.approx(0.5, abs=1e-12)
    assert cls["per_class"]["C"]["f1"] == 0.0
    assert "macro-F1 (published" in stdout and "real classes only" in stdout
    with open(tmp_path / "run" / "score_confusion.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["true/predicted", "background", "B", "A", "C"]
    assert [int(v) for v in rows[3][1:]] == [1, 0, 1, 0]  # true A: one missed, one found
    assert (tmp_path / "run" / "score_confusion.png").stat().st_size > 0
    assert (tmp_path / "run" / "score_f1.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["A 3 3 3", "A 3 3"], "line 2: expected 'class x y z"),
        (["A 3 3 3", "", "Z 3 3 3"], "line 3: unknown class 'Z'"),
        (["A 3 3 3", "A 3 3 8"], "line 2: x y z .* outside the volume"),
        (["A 3 x 3"], "line 1: x y z must be finite"),
    ],
)
def test_malformed_predictions_name_the_line(tmp_path, lines, expected):
    path = write_picks(tmp_path / "bad.txt", lines)
    with pytest.raises(FaketInputError, match=expected) as info:
        read_predictions(path, ["A", "B"], (8, 16, 24))
    assert str(info.value).startswith(str(path))


def test_score_bad_predictions_one_line_error(run_cli, model, tmp_path):
    picks = write_picks(tmp_path / "picks.txt", ["A 3 3 3", "A 30 3 3"])
    code, _, err = run_cli(
        "evaluate", "score", "--truth", model, "--predicted", picks, "-o", tmp_path / "s.json"
    )
    assert code == 2
    assert "line 2" in err and "outside the volume" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.json").exists()


def test_extract_then_score_is_perfect(run_cli, model, tmp_path):
    picks = tmp_path / "picks.txt"
    code, stdout, err = run_cli(
        "evaluate",
        "extract",
        model / "class_mask.mrc",
        "--classes",
        model / "classes.json",
        "--method",
        "components",
        "-o",
        picks,
    )
    assert code == 0, err
    found = read_particle_locations(picks)
    assert sorted((p.class_name, p.x, p.y, p.z) for p in found) == sorted(TRUTH)
    code, _, err = run_cli(
        "evaluate",
        "score",
        "--truth",
        model,
        "--predicted",
        picks,
        "-o",
        tmp_path / "s.json",
        "--no-plots",
    )
    assert code == 0, err
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["localisation"]["f1"] == 1.0
    assert data["classification"]["macro_f1_real"] == 1.0
    # --min-fraction 1 keeps clusters of at least the whole sphere: C (50 A = 5 voxels,
    # 65 voxels) drops its 27-voxel cube; A (3 voxels, 14) and B (1 voxel, 1) keep theirs
    code, _, err = run_cli(
        "evaluate",
        "extract",
        model / "class_mask.mrc",
        "--classes",
        model / "classes.json",
        "--method",
        "meanshift",
        "--bandwidth",
        3,
        "--min-fraction",
        1,
        "-o",
        picks,
    )
    assert code == 0, err
    assert sorted(p.class_name for p in read_particle_locations(picks)) == ["A", "A", "B"]


def test_compare_groups_runs_by_folder_name(run_cli, model, tmp_path):
    picks_good = write_picks(tmp_path / "good.txt", [f"{n} {x} {y} {z}" for n, x, y, z in TRUTH])
    picks_half = write_picks(tmp_path / "half.txt", ["A 3 3 3", "B 11 3 3"])
    outputs = []
    for modality, picks in (("faket", picks_good), ("baseline", picks_half)):
        for seed in (1, 2):
            out = tmp_path / "runs" / f"{modality}_seed{seed}" / "score.json"
            code, _, err = run_cli(
                "evaluate",
                "score",
                "--truth",
                model,
                "--predicted",
                picks,
                "-o",
                out,
                "--no-plots",
            )
            assert code == 0, err
            outputs.append(out)
    code, stdout, err = run_cli("evaluate", "compare", *outputs, "-o", tmp_path / "cmp")
    assert code == 0, err
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| faket | 1,2 | 1.000 [1.000, 1.000]" in table
    assert "| baseline | 1,2 | 0.667 [0.667, 0.667]" in table  # loc F1 = 2 * 1 * 0.5 / 1.5
    with open(tmp_path / "cmp" / "compare.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["modality"] for r in rows} == {"faket", "baseline"}
    assert all(r["n"] == "2" for r in rows)
    assert (tmp_path / "cmp" / "compare_metrics.png").stat().st_size > 0
    assert (tmp_path / "cmp" / "compare_classes.png").stat().st_size > 0


def test_star_predictions_are_read_and_checked(tmp_path):
    from faket.io import write_particles_star

    good = [Particle("A", 3, 3, 3), Particle("b", 11, 3, 3)]
    write_particles_star(good, {"A": 1, "b": 2}, tmp_path / "p.star", pixel_size_a=10.0)
    names, xyz = read_predictions(tmp_path / "p.star", ["A", "B"], (8, 16, 24))
    assert names == ["A", "B"]  # matched ignoring case, as the published script upper-cases
    np.testing.assert_array_equal(xyz, [[3, 3, 3], [11, 3, 3]])
    bad = [*good, Particle("A", 3, 3, 9)]
    write_particles_star(bad, {"A": 1, "b": 2}, tmp_path / "q.star", pixel_size_a=10.0)
    with pytest.raises(FaketInputError, match="row 3: .*outside the volume"):
        read_predictions(tmp_path / "q.star", ["A", "B"], (8, 16, 24))


def test_likeness_writes_json_csv_and_figure(run_cli, tmp_path):
    from test_evaluation_likeness import write_tiny_dataset

    root = write_tiny_dataset(tmp_path / "data")
    out = tmp_path / "likeness"
    code, stdout, err = run_cli(
        "evaluate", "likeness", root, "-o", out, "--modalities", "noiseless", "faket",
        "--steps", 3, "--tilts", "0-3", "--seed", 2, "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    record = json.loads((out / "likeness.json").read_text())
    assert list(record["modalities"]) == ["noiseless", "faket"]
    assert record["tilts"] == [0, 1, 2, 3] and record["settings"]["seed"] == 2
    with open(out / "likeness.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["modality"] for r in rows] == ["noiseless", "faket", "floor"]
    assert float(rows[1]["spectrum_log_distance"]) == 0.0  # faket_i copies reference i+1
    assert float(rows[2]["domain_auc_ratio"]) == 1.0
    assert (out / "likeness.png").stat().st_size > 0
    assert "floor" in stdout and "AUC/floor" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tilts", "5-2"], "cannot read tilt indices"),
        ([], "no dataset.json"),
    ],
)
def test_likeness_bad_input_is_one_line(run_cli, tmp_path, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, stdout, err = run_cli("evaluate", "likeness", empty, "-o", tmp_path / "out", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
