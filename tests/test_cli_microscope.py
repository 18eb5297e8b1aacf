"""``faket microscope`` end to end, on a small grandmodel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faket.io import read_mrc, read_tilt_angles, write_mrc, write_tilt_angles
from faket.io.tilt_metadata import read_tilt_metadata
from faket.phantom import ball


@pytest.fixture
def grandmodel(tmp_path: Path) -> Path:
    path = tmp_path / "grandmodel.mrc"
    volume = ball((16, 32, 32), (8, 16, 16), 5).numpy() * 8.05
    write_mrc(volume, path, voxel_size_a=10.0)
    return path


def test_writes_counts_noiseless_sidecar_and_provenance(run_cli, grandmodel, tmp_path):
    out = tmp_path / "projections.mrc"
    code, stdout, stderr = run_cli(
        "microscope", grandmodel, "--tilt-range", -30, 30, 15, "--seed", 1, "-o", out
    )
    assert code == 0, stderr
    counts = read_mrc(out, ndim=3)
    noiseless = read_mrc(tmp_path / "projections_noiseless.mrc", ndim=3)
    assert counts.data.shape == noiseless.data.shape == (5, 32, 32)
    assert counts.voxel_size_a == pytest.approx(10.0)
    assert read_tilt_angles(tmp_path / "projections.tlt").tolist() == [-30, -15, 0, 15, 30]
    sidecar = read_tilt_metadata(tmp_path / "projections.tilts.json")
    assert [t["angle_deg"] for t in sidecar["tilts"]] == [-30, -15, 0, 15, 30]
    assert [t["acquisition_rank"] for t in sidecar["tilts"]] == [
        3,
        2,
        0,
        1,
        4,
    ]  # 0, +15, -15, -30, +30
    assert all(t["exposure_e_per_a2"] == pytest.approx(24.0) for t in sidecar["tilts"])
    provenance = json.loads((tmp_path / "projections.provenance.json").read_text())
    assert provenance["stage"] == "microscope" and provenance["seed"] == 1
    assert provenance["settings"]["defocus_um"] == 3.0
    # Counts scatter around the noiseless mean (24 e-/A^2 x 100 A^2 x zero-loss 0.68).
    assert abs(counts.data.mean() - noiseless.data.mean()) < 0.01 * noiseless.data.mean()


def test_angles_file_and_same_seed_same_bytes(run_cli, grandmodel, tmp_path):
    angles = tmp_path / "tilts.tlt"
    write_tilt_angles([-20, 0, 20], angles)
    outputs = []
    for name in ("a.mrc", "b.mrc"):
        out = tmp_path / name
        code, _, stderr = run_cli(
            "microscope", grandmodel, "--angles", angles, "--scheme", "sequential", "-o", out
        )
        assert code == 0, stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_half_sets_add_up_to_the_counts(run_cli, grandmodel, tmp_path):
    out = tmp_path / "ts.st"
    code, _, stderr = run_cli("microscope", grandmodel, "--half-sets", "--seed", 2, "-o", out)
    assert code == 0, stderr
    even, odd = (read_mrc(tmp_path / f"ts_{tag}.st", ndim=3).data for tag in ("even", "odd"))
    np.testing.assert_allclose(even + odd, read_mrc(out, ndim=3).data, rtol=0, atol=1e-3)
    provenance = json.loads((tmp_path / "ts.provenance.json").read_text())
    assert provenance["outputs"]["even"] == str(tmp_path / "ts_even.st")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--defocus-um", "-3"), "underfocus is positive"),
        (("--dose-total", "-5"), "positive exposure"),
        (("--tilt-range", "60", "-60", "2"), "must go up"),
    ],
)
def test_impossible_settings_are_one_line_errors_and_write_nothing(
    run_cli, grandmodel, tmp_path, args, message
):
    out = tmp_path / "projections.mrc"
    code, _, stderr = run_cli("microscope", grandmodel, *args, "-o", out)
    assert code == 2 and message in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grandmodel.mrc"]


def test_aliasing_is_a_one_line_warning(run_cli, tmp_path):
    path = tmp_path / "fine.mrc"
    write_mrc(np.zeros((4, 64, 64), np.float32), path, voxel_size_a=1.0)
    code, _, stderr = run_cli(
        "microscope", path, "--tilt-range", 0, 0, 1, "--defocus-um", 5, "-o", tmp_path / "o.mrc"
    )
    assert code == 0
    lines = [line for line in stderr.splitlines() if line.startswith("faket: warning:")]
    assert len(lines) == 1 and "the CTF aliases above" in lines[0] and "1/A" in lines[0]


def test_missing_voxel_size_names_the_file(run_cli, tmp_path):
    path = tmp_path / "nosize.mrc"
    write_mrc(np.zeros((4, 16, 16), np.float32), path)
    code, _, stderr = run_cli("microscope", path, "-o", tmp_path / "o.mrc")
    assert code == 2 and "nosize.mrc: the voxel size is not set" in stderr
    assert stderr.count("\n") == 1


def test_help_shows_an_example(run_cli):
    code, stdout, _ = run_cli("microscope", "--help")
    assert code == 0 and "faket microscope grandmodel.mrc" in stdout and "UNDERFOCUS" in stdout
