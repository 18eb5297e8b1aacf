"""``faket style`` end to end, on small MRCs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faket.cli import main
from faket.io import read_mrc, write_mrc


@pytest.fixture
def stacks(tmp_path: Path, rng: np.random.Generator) -> dict[str, Path]:
    paths = {}
    for name, n_tilts in (("noisy", 3), ("content", 3), ("reference", 3), ("short", 2)):
        paths[name] = tmp_path / f"{name}.mrc"
        data = rng.standard_normal((n_tilts, 48, 48)).astype(np.float32) * 5 + 20
        write_mrc(data, paths[name], voxel_size_a=8.0)
    return paths


def test_style_writes_the_faket_series_and_its_provenance(capsys, stacks, tmp_path):
    out = tmp_path / "faket.mrc"
    code = main(
        [
            "style",
            "--init",
            str(stacks["noisy"]),
            "--content",
            str(stacks["content"]),
            "--style",
            str(stacks["reference"]),
            "-o",
            str(out),
            "--backbone",
            "random",
            "--precision",
            "bf16",
            "--device",
            "cpu",
        ]
    )
    assert code == 0, capsys.readouterr().err
    result = read_mrc(out, ndim=3)
    reference = read_mrc(stacks["reference"]).data
    assert result.data.shape == (3, 48, 48) and result.voxel_size_a == pytest.approx(8.0)
    # Each tilt carries the style tilt's mean and std (float32 file, so to 1e-5).
    np.testing.assert_allclose(result.data.mean((1, 2)), reference.mean((1, 2)), rtol=1e-5)
    np.testing.assert_allclose(result.data.std((1, 2)), reference.std((1, 2)), rtol=1e-4)
    provenance = json.loads((tmp_path / "faket.provenance.json").read_text())
    assert provenance["backbone"] == "random" and provenance["precision"] == "bf16"
    assert provenance["settings"]["step_size"] == 0.15 and provenance["seconds_per_tilt"] > 0


def test_tilt_count_mismatch_names_the_file_and_writes_nothing(capsys, stacks, tmp_path):
    out = tmp_path / "faket.mrc"
    code = main(
        [
            "style",
            "--init",
            str(stacks["noisy"]),
            "--content",
            str(stacks["content"]),
            "--style",
            str(stacks["short"]),
            "-o",
            str(out),
            "--backbone",
            "random",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "short.mrc: has 2 tilts but" in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "faket.provenance.json").exists()


def test_missing_vgg19_weights_is_a_one_line_error(capsys, stacks, tmp_path):
    code = main(
        [
            "style",
            "--init",
            str(stacks["noisy"]),
            "--content",
            str(stacks["content"]),
            "--style",
            str(stacks["reference"]),
            "-o",
            str(tmp_path / "o.mrc"),
            "--backbone",
            "vgg19-imagenet",
            "--weights",
            str(tmp_path / "nowhere.pth"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "nowhere.pth" in err and "vgg19-dcbb9e9d.pth" in err


def test_bad_tile_is_a_usage_error(capsys, stacks, tmp_path):
    code = main(
        [
            "style",
            "--init",
            str(stacks["noisy"]),
            "--content",
            str(stacks["content"]),
            "--style",
            str(stacks["reference"]),
            "-o",
            str(tmp_path / "o.mrc"),
            "--backbone",
            "random",
            "--tile",
            "24",
        ]
    )
    assert code == 2 and "multiple of 16" in capsys.readouterr().err


def style_args(stacks: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "style",
        "--init",
        str(stacks["noisy"]),
        "--content",
        str(stacks["content"]),
        "--style",
        str(stacks["reference"]),
        "-o",
        str(out),
        "--backbone",
        "random",
        "--precision",
        "fp32",
        "--device",
        "cpu",
        *extra,
    ]


def test_working_size_runs_the_transfer_resized_and_writes_the_native_shape(
    capsys, monkeypatch, stacks, tmp_path
):
    import faket.style.series as series

    seen = []

    def record(model, initial, content, style, settings, **options):
        # Stands in for the transfer (tested in test_style_working_size.py): returns the
        # initial image, so the output is the resized-and-back noisy series.
        seen.append((tuple(initial.shape), tuple(content.shape), tuple(style.shape)))
        return initial

    monkeypatch.setattr(series, "stylize_batch", record)
    out = tmp_path / "faket.mrc"
    code = main(style_args(stacks, out, "--working-size", "32"))
    assert code == 0, capsys.readouterr().err
    assert seen == [((3, 32, 32), (3, 32, 32), (3, 32, 32))]  # 48 px resized to 32 px
    result = read_mrc(out, ndim=3).data
    assert result.shape == (3, 48, 48)  # and back to the native size
    provenance = json.loads((tmp_path / "faket.provenance.json").read_text())
    assert provenance["working_size"] == 32 and provenance["working_shape"] == [32, 32]


def test_memory_budget_is_checked_at_the_working_size(capsys, stacks, tmp_path):
    # A 48 x 48 tilt fits 0.1 GiB; at --working-size 1024 it needs about 2.9 GiB.
    code = main(
        style_args(stacks, tmp_path / "o.mrc", "--working-size", "1024", "--memory-gib", "0.1")
    )
    err = capsys.readouterr().err
    assert code == 2 and "one 1024 x 1024 tilt at --working-size 1024" in err and "--tile" in err
    assert not (tmp_path / "o.mrc").exists()
    code = main(style_args(stacks, tmp_path / "o.mrc", "--working-size", "8"))
    assert code == 2 and "--working-size" in capsys.readouterr().err
