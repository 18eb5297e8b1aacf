"""``faket reconstruct`` run in-process: outputs, provenance and one-line errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch

from faket.cli.reconstruct import _FILTERS
from faket.io import read_mrc, write_mrc, write_tilt_angles
from faket.io.provenance import provenance_path
from faket.reconstruction import FILTER_NAMES, bin_tilt_series, reconstruct_tomogram

ANGLES = np.arange(-60.0, 61.0, 20.0)  # 7 tilts


@pytest.fixture
def tilts_file(tmp_path: Path, rng: np.random.Generator) -> Path:
    path = tmp_path / "tilts.mrc"
    write_mrc(rng.standard_normal((7, 10, 32)).astype(np.float32), path, voxel_size_a=5.0)
    write_tilt_angles(ANGLES, tmp_path / "angles.tlt")
    return path


def test_help_shows_the_example(run_cli):
    code, out, _ = run_cli("reconstruct", "--help")
    assert code == 0 and "--filter approx-shrec" in out and "Angstrom" in out


def test_cli_filter_names_are_the_library_s():
    assert _FILTERS == FILTER_NAMES  # the CLI avoids importing torch for --help


def test_provenance_path():
    assert provenance_path(Path("a/TOMO.mrc")) == Path("a/TOMO.provenance.json")
    assert provenance_path(Path("t.mrc.gz")) == Path("t.provenance.json")
    assert provenance_path(Path("tomo")) == Path("tomo.provenance.json")


def test_writes_the_tomogram_with_the_binned_pixel_size_and_provenance(
    run_cli, tilts_file, tmp_path
):
    out = tmp_path / "tomo.mrc"
    code, stdout, err = run_cli(
        "reconstruct",
        tilts_file,
        "--angles",
        tmp_path / "angles.tlt",
        "--bin",
        2,
        "--filter",
        "approx-shrec",
        "--thickness",
        12,
        "-o",
        out,
        "--device",
        "cpu",
    )
    assert code == 0, err
    assert "wrote" in stdout
    tomo = read_mrc(out, ndim=3)
    assert tomo.data.shape == (12, 5, 16)
    assert tomo.voxel_size_a == pytest.approx(10.0)  # 5 A binned by 2
    binned, _ = bin_tilt_series(torch.from_numpy(read_mrc(tilts_file).data), 2)
    expected = reconstruct_tomogram(binned, ANGLES, filter_name="approx-shrec", thickness=12)
    np.testing.assert_array_equal(tomo.data, expected.numpy())

    record = json.loads((tmp_path / "tomo.provenance.json").read_text())
    assert record["input"] == str(tilts_file)
    assert record["angles_file"] == str(tmp_path / "angles.tlt")
    assert record["tilt_angles_deg"] == ANGLES.tolist()
    assert record["settings"]["filter"] == "approx-shrec" and record["settings"]["bin"] == 2
    assert record["settings"]["thickness"] == 12 and record["settings"]["z_flip"] is False
    assert record["pixel_size_a"] == {"input": 5.0, "output": 10.0}
    assert record["shape"]["output_z_y_x"] == [12, 5, 16]
    assert record["device"] == "cpu" and record["seconds"]["total"] > 0
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left


def test_z_range_spline_binning_and_flip(run_cli, tilts_file, tmp_path):
    out = tmp_path / "slab.mrc"
    code, _, err = run_cli(
        "reconstruct",
        tilts_file,
        "--angles",
        tmp_path / "angles.tlt",
        "--bin-method",
        "spline",
        "--bin",
        2,
        "--z-range",
        0.25,
        0.75,
        "--z-flip",
        "--weighting",
        "spacing",
        "-o",
        out,
    )
    assert code == 0, err
    tomo = read_mrc(out, ndim=3).data
    binned, _ = bin_tilt_series(torch.from_numpy(read_mrc(tilts_file).data), 2, method="spline")
    cube = reconstruct_tomogram(binned, ANGLES, weighting="spacing").numpy()
    np.testing.assert_allclose(tomo, cube[4:12][::-1], rtol=0, atol=1e-5)  # 0.25..0.75 of 16
    assert json.loads((tmp_path / "slab.provenance.json").read_text())["settings"]["z_range"] == [
        0.25,
        0.75,
    ]


def assert_one_line_and_nothing_written(code: int, err: str, tmp_path: Path, *names: str):
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    for name in names:
        assert name in err
    assert not (tmp_path / "tomo.mrc").exists()
    assert not (tmp_path / "tomo.provenance.json").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_angle_count_mismatch(run_cli, tilts_file, tmp_path):
    write_tilt_angles([-10.0, 0.0, 10.0], tmp_path / "three.tlt")
    code, _, err = run_cli(
        "reconstruct",
        tilts_file,
        "--angles",
        tmp_path / "three.tlt",
        "-o",
        tmp_path / "tomo.mrc",
    )
    assert_one_line_and_nothing_written(code, err, tmp_path, "three.tlt", "tilts.mrc", "7")


def test_thickness_larger_than_the_detector(run_cli, tilts_file, tmp_path):
    code, _, err = run_cli(
        "reconstruct",
        tilts_file,
        "--angles",
        tmp_path / "angles.tlt",
        "--bin",
        2,
        "--thickness",
        17,
        "-o",
        tmp_path / "tomo.mrc",
    )
    assert_one_line_and_nothing_written(
        code, err, tmp_path, "tilts.mrc", "--thickness 17", "detector width 16", "no sense"
    )


def test_non_square_pixels(run_cli, tmp_path):
    path = tmp_path / "stretched.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.ones((7, 8, 8), dtype=np.float32))
        mrc.voxel_size = (4.0, 5.0, 1.0)  # X 4 A, Y 5 A
    write_tilt_angles(ANGLES, tmp_path / "angles.tlt")
    code, _, err = run_cli(
        "reconstruct",
        path,
        "--angles",
        tmp_path / "angles.tlt",
        "-o",
        tmp_path / "tomo.mrc",
    )
    assert_one_line_and_nothing_written(code, err, tmp_path, "stretched.mrc", "not square")


def test_nan_values(run_cli, tmp_path):
    data = np.zeros((7, 8, 8), dtype=np.float32)
    data[3, 2, 1] = np.nan
    path = tmp_path / "holes.mrc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mrcfile warns about NaN in its header statistics
        with mrcfile.new(path) as mrc:
            mrc.set_data(data)
    write_tilt_angles(ANGLES, tmp_path / "angles.tlt")
    code, _, err = run_cli(
        "reconstruct",
        path,
        "--angles",
        tmp_path / "angles.tlt",
        "-o",
        tmp_path / "tomo.mrc",
    )
    assert_one_line_and_nothing_written(code, err, tmp_path, "holes.mrc", "NaN or Inf")


def test_imod_backend_without_imod_says_so(run_cli, tilts_file, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    code, _, err = run_cli(
        "reconstruct",
        tilts_file,
        "--angles",
        tmp_path / "angles.tlt",
        "--backend",
        "imod",
        "-o",
        tmp_path / "tomo.mrc",
    )
    assert code == 1 and "IMOD is not installed" in err and err.count("\n") == 1
    assert not (tmp_path / "tomo.mrc").exists()


def test_z_range_and_thickness_together_is_a_usage_error(run_cli, tilts_file, tmp_path):
    code, _, err = run_cli(
        "reconstruct",
        tilts_file,
        "--angles",
        tmp_path / "angles.tlt",
        "--z-range",
        0.3,
        0.6,
        "--thickness",
        5,
        "-o",
        tmp_path / "tomo.mrc",
    )
    assert code == 2 and "either --z-range or --thickness" in err
    assert not (tmp_path / "tomo.mrc").exists()
