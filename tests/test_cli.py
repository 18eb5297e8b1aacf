"""The command line, run in-process: outputs, exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faket.cli import main
from faket.io import read_mrc, read_noise_stats, write_mrc, write_tilt_angles
from faket.noise import make_modality
from faket.projection import project_tilt_series

ANGLES = np.arange(-60.0, 61.0, 20.0)  # 7 tilts


@pytest.fixture
def volume_file(tmp_path: Path, rng: np.random.Generator) -> Path:
    path = tmp_path / "volume.mrc"
    write_mrc(rng.random((12, 6, 16)).astype(np.float32), path, voxel_size_a=7.5)
    write_tilt_angles(ANGLES, tmp_path / "angles.tlt")
    return path


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ([], "tilt axis is Y"),
        (["project"], "Angstrom"),
        (["noise", "estimate"], "Pearson correlation"),
        (["noise", "apply"], "sigma x 0.25"),
        (["demo"], "report.html"),
        (["simulate"], "A re-run skips the tomograms finished"),
        (["config"], "commented example configuration"),
        (["style"], "style tilt-series"),
        (["reconstruct"], "Reconstruct a tomogram"),
        (["phantom"], "Voxel size in Angstrom"),
        (["microscope"], "GRANDMODEL"),
    ],
)
def test_help_says_what_each_command_does(run_cli, command, expected):
    code, out, _ = run_cli(*command, "--help")
    assert code == 0
    assert expected in " ".join(out.split())


def test_project_writes_the_tilt_series_with_the_pixel_size(run_cli, volume_file, tmp_path):
    out = tmp_path / "tilts.mrc"
    code, stdout, _ = run_cli(
        "project",
        volume_file,
        "--angles",
        tmp_path / "angles.tlt",
        "--width",
        14,
        "-o",
        out,
        "--device",
        "cpu",
    )
    assert code == 0, stdout
    tilts = read_mrc(out, ndim=3)
    assert tilts.voxel_size_a == pytest.approx(7.5)
    expected = project_tilt_series(torch.from_numpy(read_mrc(volume_file).data), ANGLES, width=14)
    np.testing.assert_array_equal(tilts.data, expected.numpy())


def test_noise_estimate_then_apply_round_trip(run_cli, tmp_path, rng):
    # Two reference tomograms with known r = 0.6 and sigma = 0.8 per tilt.
    references, cleans = [], []
    for i in range(2):
        clean = rng.standard_normal((5, 48, 48)).astype(np.float32)
        noise = rng.standard_normal(clean.shape).astype(np.float32)
        write_mrc(clean, tmp_path / f"clean{i}.mrc")
        write_mrc(3.0 * (0.6 * clean + 0.8 * noise) + 10.0, tmp_path / f"ref{i}.mrc")
        references.append(tmp_path / f"ref{i}.mrc")
        cleans.append(tmp_path / f"clean{i}.mrc")
    stats_path = tmp_path / "stats.json"
    code, out, err = run_cli(
        "noise",
        "estimate",
        "--reference",
        *references,
        "--noiseless",
        *cleans,
        "-o",
        stats_path,
    )
    assert code == 0, err
    measured = read_noise_stats(stats_path)
    assert [s.source for s in measured] == [str(p) for p in references]
    for stats in measured:
        # 48^2 pixels: the correlation's sampling error is about 1/48.
        np.testing.assert_allclose(stats.r.numpy(), 0.6, atol=0.05)
        np.testing.assert_allclose(stats.sigma.numpy(), 0.8, atol=0.05)

    noisy = tmp_path / "noisy.mrc"
    code, _, err = run_cli(
        "noise",
        "apply",
        cleans[0],
        "--stats",
        stats_path,
        "--modality",
        "content",
        "--seed",
        3,
        "-o",
        noisy,
        "--device",
        "cpu",
    )
    assert code == 0, err
    expected = make_modality(
        torch.from_numpy(read_mrc(cleans[0]).data), measured, "content", seed=3
    )
    np.testing.assert_array_equal(read_mrc(noisy).data, expected.numpy())


def test_noise_spectra_are_estimated_and_applied_with_the_spectral_model(run_cli, tmp_path, rng):
    from faket.noise import aggregate_tilt_stats, apply_spectral_noise

    clean = rng.standard_normal((5, 48, 48)).astype(np.float32)
    noise = rng.standard_normal(clean.shape).astype(np.float32)
    write_mrc(clean, tmp_path / "clean.mrc")
    write_mrc(0.6 * clean + 0.8 * noise, tmp_path / "ref.mrc")
    common = ("--reference", tmp_path / "ref.mrc", "--noiseless", tmp_path / "clean.mrc")
    code, _, err = run_cli("noise", "estimate", *common, "-o", tmp_path / "flat.json")
    assert code == 0, err
    code, _, err = run_cli("noise", "estimate", *common, "--spectra", "-o", tmp_path / "s.json")
    assert code == 0, err
    (measured,) = read_noise_stats(tmp_path / "s.json")
    # white noise and an identity transfer: T ~ r = 0.6, N ~ sigma^2 = 0.64 (ring
    # averages of ~48 samples at the lowest rings: a loose 0.2 tolerance)
    assert measured.spectra is not None
    np.testing.assert_allclose(measured.spectra.transfer[:, 2:].mean(1), 0.6, atol=0.1)
    np.testing.assert_allclose(measured.spectra.noise_power[:, 2:].mean(1), 0.64, atol=0.1)
    apply = ("noise", "apply", tmp_path / "clean.mrc", "--modality", "noisy", "--seed", 4)
    code, _, err = run_cli(
        *apply, "--stats", tmp_path / "flat.json", "--model", "spectral", "-o", tmp_path / "x.mrc"
    )
    assert code == 2 and "flat.json: has no spectra" in err and err.count("\n") == 1
    assert not (tmp_path / "x.mrc").exists()
    code, _, err = run_cli(
        *apply, "--stats", tmp_path / "s.json", "--model", "spectral", "-o", tmp_path / "noisy.mrc"
    )
    assert code == 0, err
    expected = apply_spectral_noise(
        torch.from_numpy(clean), aggregate_tilt_stats([measured], 2), seed=4
    )
    np.testing.assert_allclose(read_mrc(tmp_path / "noisy.mrc").data, expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("estimator", ["ctf", "band"])
def test_noise_estimate_without_noiseless_uses_the_unlabelled_estimator(
    run_cli, tmp_path, rng, estimator
):
    white = rng.standard_normal((3, 64, 64)).astype(np.float32)
    write_mrc(white, tmp_path / "ref.mrc", voxel_size_a=10.0)
    write_tilt_angles([-10.0, 0.0, 10.0], tmp_path / "ref.tlt")
    args = ["noise", "estimate", "--reference", tmp_path / "ref.mrc"]
    args += ["--angles", tmp_path / "ref.tlt", "--unlabelled", estimator, "-o", tmp_path / "s.json"]
    code, out, err = run_cli(*args)
    assert code == 0, err
    (stats,) = read_noise_stats(tmp_path / "s.json")
    assert stats.method == "unlabelled"
    assert stats.tilt_angles_deg.tolist() == [-10.0, 0.0, 10.0]
    # Pure white noise: everything is noise, so sigma is 1 to within the estimator's spread.
    np.testing.assert_allclose(stats.sigma.numpy(), 1.0, atol=0.1)
    if estimator == "ctf":  # the CTF fit needs the pixel size: one line naming the file
        write_mrc(white, tmp_path / "bare.mrc")
        args[3] = tmp_path / "bare.mrc"
        code, _, err = run_cli(*args[:-1], tmp_path / "t.json")
        assert code == 2 and "bare.mrc: without --noiseless the CTF fit needs the pixel" in err


def test_bad_input_gives_one_line_naming_the_file_and_writes_nothing(run_cli, tmp_path):
    bad = tmp_path / "not_a_volume.mrc"
    bad.write_text("hello, I am not an MRC file\n")
    write_tilt_angles(ANGLES, tmp_path / "angles.tlt")
    out = tmp_path / "tilts.mrc"
    code, _, err = run_cli("project", bad, "--angles", tmp_path / "angles.tlt", "-o", out)
    assert code == 2
    assert err.count("\n") == 1 and "not_a_volume.mrc" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["angles.tlt", "not_a_volume.mrc"]


def test_apply_refuses_stats_of_another_tilt_count(run_cli, capsys, tmp_path, rng):
    write_mrc(rng.standard_normal((4, 16, 16)).astype(np.float32), tmp_path / "c.mrc")
    write_mrc(rng.standard_normal((5, 16, 16)).astype(np.float32), tmp_path / "r5.mrc")
    write_mrc(rng.standard_normal((5, 16, 16)).astype(np.float32), tmp_path / "c5.mrc")
    assert (
        main(
            [
                "noise",
                "estimate",
                "--reference",
                str(tmp_path / "r5.mrc"),
                "--noiseless",
                str(tmp_path / "c5.mrc"),
                "-o",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    code, _, err = run_cli(
        "noise",
        "apply",
        tmp_path / "c.mrc",
        "--stats",
        tmp_path / "s.json",
        "--seed",
        1,
        "-o",
        tmp_path / "o.mrc",
    )
    assert code == 2 and "5 tilts" in err and "4 images" in err
    assert not (tmp_path / "o.mrc").exists()


def test_mismatched_reference_and_noiseless_counts_are_a_usage_error(run_cli, tmp_path):
    code, _, err = run_cli(
        "noise",
        "estimate",
        "--reference",
        "a.mrc",
        "b.mrc",
        "--noiseless",
        "c.mrc",
        "-o",
        tmp_path / "s.json",
    )
    assert code == 2 and "2 --reference files but 1 --noiseless" in err


def test_demo_writes_a_dataset_and_its_report(run_cli, tmp_path):
    code, out, err = run_cli(
        "demo",
        "-o",
        tmp_path / "demo",
        "--size",
        32,
        "--tomograms",
        2,
        "--seed",
        5,
        "--likeness-steps",
        20,
    )
    assert code == 0, err
    demo = tmp_path / "demo"
    assert f"open {demo / 'report.html'}" in out
    for model in ("model_0", "model_1"):
        for name in ("grandmodel", "noiseless", "noisy", "content", "baseline", "faket"):
            data = read_mrc(demo / model / f"{name}.mrc")
            assert data.voxel_size_a == pytest.approx(80.0)  # 256 nm field of view
        assert read_mrc(demo / model / "noisy.mrc", ndim=3).data.shape == (41, 32, 32)
        tomogram = read_mrc(demo / model / "tomogram_faket.mrc", ndim=3).data
        assert tomogram.shape == (12, 32, 32)  # the specimen's depth, the detector's size
        assert (demo / model / "tomogram_reference.mrc").is_file()
        provenance = json.loads((demo / model / "provenance.json").read_text())
        assert set(provenance["timings_s"]) >= {"project", "modalities", "style"}
        assert provenance["config"]["style"]["backbone"] == "vgg16-hed"
    report = (demo / "report.html").read_text()
    pngs = ("projections", "noise_stats", "power_spectra", "tomograms", "particle_library")
    pngs += ("likeness",)
    for png in (f"report/{name}.png" for name in pngs):
        assert (demo / png).stat().st_size > 1000 and png in report
    assert json.loads((demo / "dataset.json").read_text())["n_tomograms"] == 2
    assert not list(demo.rglob(".*tmp*"))  # no temporary files left behind


def test_demo_is_deterministic_for_a_seed(capsys, tmp_path):
    for name in ("a", "b"):
        args = ["demo", "-o", str(tmp_path / name), "--size", "24", "--tomograms", "1"]
        args += ["--likeness-steps", "0"]
        assert main([*args, "--seed", "2"]) == 0
    for mrc in ("model_0/noisy.mrc", "model_0/faket.mrc", "reference_1/reference.mrc"):
        assert (tmp_path / "a" / mrc).read_bytes() == (tmp_path / "b" / mrc).read_bytes()


def test_angle_count_mismatch_names_both_files(run_cli, tmp_path, rng):
    write_mrc(rng.standard_normal((3, 32, 32)).astype(np.float32), tmp_path / "ref.mrc")
    write_tilt_angles([-10.0, 0.0, 10.0, 20.0], tmp_path / "ref.tlt")
    code, _, err = run_cli(
        "noise",
        "estimate",
        "--reference",
        tmp_path / "ref.mrc",
        "--angles",
        tmp_path / "ref.tlt",
        "-o",
        tmp_path / "s.json",
    )
    assert code == 2 and "ref.tlt" in err and "ref.mrc" in err and "4" in err and "3" in err
    assert not (tmp_path / "s.json").exists()


def test_noise_spectra_of_an_unlabelled_reference_come_from_a_ctf_fit(run_cli, tmp_path, rng):
    """Wiring only: the CTF fit itself is tested in tests/test_noise_ctf_fit.py."""
    write_mrc(
        rng.standard_normal((3, 64, 64)).astype(np.float32), tmp_path / "r.mrc", voxel_size_a=4.0
    )
    write_mrc(rng.standard_normal((3, 64, 64)).astype(np.float32), tmp_path / "n.mrc")
    code, out, err = run_cli(
        "noise",
        "estimate",
        "--reference",
        tmp_path / "r.mrc",
        "--spectra",
        "-o",
        tmp_path / "s.json",
    )
    assert code == 0, err
    (stats,) = read_noise_stats(tmp_path / "s.json")
    assert "CTF fit" in out and stats.method == "unlabelled" and stats.spectra is not None
    # white noise: all noise, no signal (the fit's own white-noise case)
    assert float(stats.sigma.min()) > 0.9
    code, _, err = run_cli(
        "noise",
        "estimate",
        "--reference",
        tmp_path / "n.mrc",
        "--spectra",
        "-o",
        tmp_path / "t.json",
    )
    assert code == 2 and "needs the pixel size" in err and not (tmp_path / "t.json").exists()
