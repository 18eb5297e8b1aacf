"""The pre-flight of faket simulate: every bad input is one line before the first byte.

Each case builds a configuration with one defect, runs `simulate_dataset` and checks
the error names the field or file and the problem, and that the dataset folder was not
created (nothing written). Plus resume keys over file contents, stale temporaries,
``--force`` and the resource estimates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from faket.config import FaketConfig
from faket.errors import FaketInputError
from faket.io import read_mrc, write_mrc, write_noise_stats, write_tilt_angles
from faket.pipeline import inputs as inputs_module
from faket.pipeline import plan_run, simulate_dataset
from faket.pipeline import resources as resources_module
from faket.pipeline.layout import remove_stale_temporaries, remove_written_files
from pipeline_data import N_TILTS, SHAPE, VOXEL_A, files_config, tiny_config, user_reference_files


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _with(config: FaketConfig, **sections: dict) -> FaketConfig:
    data = config.model_dump(mode="json")
    for name, values in sections.items():
        data[name] = {**data[name], **values}
    return FaketConfig.from_dict(data)


def _bad_structure(tmp: Path, out: Path) -> FaketConfig:
    return _with(
        tiny_config(out), phantom={"structures": [{"path": str(tmp / "x.pdb"), "count": 1}]}
    )


def _angles_beyond_89(tmp: Path, out: Path) -> FaketConfig:
    (tmp / "a.tlt").write_text("-90\n0\n90\n")
    return _with(tiny_config(out), projection={"angles_file": str(tmp / "a.tlt")})


def _two_d_reference(tmp: Path, out: Path) -> FaketConfig:
    files = user_reference_files(tmp)
    image = np.random.default_rng(0).random((SHAPE[1], SHAPE[2]), dtype=np.float32)
    write_mrc(image, files["reference"], voxel_size_a=VOXEL_A)
    return files_config(out, files)


def _shifted_angles(tmp: Path, out: Path) -> FaketConfig:
    files = user_reference_files(tmp)
    write_tilt_angles(np.linspace(-29, 31, N_TILTS), files["angles"])
    return files_config(out, files)


def _no_pixel_size(tmp: Path, out: Path) -> FaketConfig:
    files = user_reference_files(tmp)
    write_mrc(read_mrc(files["reference"], ndim=3).data, files["reference"])
    return files_config(out, files)


def _absurd_pixel_size(tmp: Path, out: Path) -> FaketConfig:
    files = user_reference_files(tmp)
    return files_config(out, files, reference={"pixel_size_a": [500.0]})


def _half_set_shape(tmp: Path, out: Path) -> FaketConfig:
    files = user_reference_files(tmp)
    write_mrc(read_mrc(files["reference"], ndim=3).data, tmp / "even.mrc")
    write_mrc(np.ones((N_TILTS, 8, 8), np.float32), tmp / "odd.mrc")
    halves = {"even": [str(tmp / "even.mrc")], "odd": [str(tmp / "odd.mrc")]}
    return files_config(out, files, reference=halves, noise={"noiseless": []})


def _constant_tilt(tmp: Path, out: Path) -> FaketConfig:
    files = user_reference_files(tmp)
    data = read_mrc(files["reference"], ndim=3).data
    data[3] = 7.0
    write_mrc(data, files["reference"], voxel_size_a=VOXEL_A)
    return files_config(out, files)


def _stats_tilt_count(tmp: Path, out: Path) -> FaketConfig:
    from faket.noise import TiltStats

    files = user_reference_files(tmp)
    stats = TiltStats(*(torch.full((5,), v, dtype=torch.float64) for v in (0.5, 0.8, 0.0, 1.0)))
    write_noise_stats([stats], tmp / "stats.json")
    return files_config(out, files, noise={"noiseless": [], "stats_file": str(tmp / "stats.json")})


def _noiseless_shape(tmp: Path, out: Path) -> FaketConfig:
    files = user_reference_files(tmp)
    write_mrc(np.ones((N_TILTS, 8, 8), np.float32), files["noiseless"])
    return files_config(out, files)


def _too_large_particle(tmp: Path, out: Path) -> FaketConfig:
    return _with(tiny_config(out), phantom={"voxel_size_a": 5.0, "vesicles": 0})


def _style_memory_below_any_tiles(tmp: Path, out: Path) -> FaketConfig:
    return _with(tiny_config(out), style={"working_size": 1024, "memory_gib": 0.1})


def _output_is_a_file(tmp: Path, out: Path) -> FaketConfig:
    out.write_text("not a folder")
    return tiny_config(out)


CASES: dict[str, tuple[Callable[[Path, Path], FaketConfig], str]] = {
    "missing structure": (_bad_structure, "x.pdb: phantom.structures[0].path: no such file"),
    "angles beyond 89": (_angles_beyond_89, "a.tlt: line 1: tilt angle -90 is outside [-89, 89]"),
    "2-D reference": (
        _two_d_reference,
        "ref.tlt: describes 11 tilt images but the tilt-series has 1",
    ),
    "reference angles off the run's": (
        _shifted_angles,
        "ref.mrc: no tilt within 0.5 deg of the run's -60 deg (from projection -60..60 step 12;"
        " nearest here -29 deg)",
    ),
    "no pixel size": (_no_pixel_size, "ref.mrc: no pixel size in the MRC header"),
    "absurd pixel size": (_absurd_pixel_size, "pixel size 500 A from reference.pixel_size_a"),
    "half-set shape": (_half_set_shape, "reference.odd: shape (11, 8, 8) differs"),
    "constant reference tilt": (_constant_tilt, "ref.mrc: tilt 3 is constant"),
    "stats tilt count": (_stats_tilt_count, "noise.stats_file: statistics for 5 tilts"),
    "noiseless shape": (_noiseless_shape, "noise.noiseless: shape (11, 8, 8) differs"),
    "particle too large": (_too_large_particle, "in the box (32, 64, 64) with a slab of 32 voxels"),
    "output is a file": (_output_is_a_file, "run.output: a file of that name exists"),
    "style memory below any tiles": (
        _style_memory_below_any_tiles,
        "style.memory_gib: one 1024 x 1024 tilt needs about",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_input_is_one_line_and_nothing_is_written(tmp_path, case):
    make, expected = CASES[case]
    out = tmp_path / "ds"
    config = make(tmp_path, out)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(FaketInputError) as err:
        simulate_dataset(config)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert sorted(tmp_path.rglob("*")) == before  # not one file or folder more


def test_an_input_inside_the_dataset_folder_is_refused(tmp_path):
    out = tmp_path / "ds"
    files = user_reference_files(out / "model_0")  # where faket writes reference.mrc & co
    files["reference"] = files["reference"].rename(out / "model_0" / "reference.mrc")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(FaketInputError, match="lies where faket writes its dataset"):
        simulate_dataset(files_config(out, files))
    assert sorted(tmp_path.rglob("*")) == before
    # the same file elsewhere in the dataset folder is not faket's and is fine to read
    assert plan_run(files_config(out, user_reference_files(out / "mine"))).references


def test_disk_and_memory_that_cannot_fit_are_refused_with_the_numbers(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    with pytest.raises(FaketInputError, match=r"run.output: the dataset needs about .* GB more"):
        simulate_dataset(tiny_config(out, n_tomograms=10**9))
    monkeypatch.setattr(resources_module, "physical_memory_bytes", lambda: 2**30)
    with pytest.raises(FaketInputError, match=r"run.workers: 2 task\(s\) at once need about"):
        simulate_dataset(tiny_config(out, workers=2))
    assert not out.exists()


def test_the_style_runs_within_style_memory_gib_tiled_where_a_tilt_needs_more(
    tmp_path, monkeypatch
):
    """The run's budget reaches the transfer (tiling tested in test_style_tiling_auto.py)."""
    import faket.style.series as series
    from faket.style.series import style_bytes_per_tilt

    config = _with(tiny_config(tmp_path / "ds"), style={"working_size": 1024, "memory_gib": 1.0})
    plan = plan_run(config)
    assert plan.resources.memory_bytes >= 2**30  # the style's budget is in the estimate
    whole = style_bytes_per_tilt(1024, 1024, plan.precision)
    assert whole > 2**30  # one whole tilt would not fit, so the run tiles it

    class Stop(Exception):
        pass

    seen = {}

    def record(*args, **options):
        seen.update(options)
        raise Stop

    monkeypatch.setattr(series, "stylized_batches", record)
    with pytest.raises(Stop):
        simulate_dataset(config)
    assert seen["memory_budget_bytes"] == 2**30 and seen["working_size"] == 1024


def test_the_disk_estimate_is_within_15_percent_of_a_real_dataset(tmp_path):
    """Oracle: the bytes the pipeline really wrote (report excluded: PNG sizes vary)."""
    config = tiny_config(tmp_path / "ds")
    result = simulate_dataset(config, report=False)
    written = sum(f.stat().st_size for f in (tmp_path / "ds").rglob("*") if f.is_file())
    estimate = result.plan.resources.disk_bytes - resources_module._REPORT_BYTES
    assert estimate == pytest.approx(written, rel=0.15)


def _rewrite(path: Path, change: bool) -> None:
    """Write the file again: the same bytes (new mtime) or with its first number changed."""
    text = path.read_bytes()
    if change:
        if path.suffix == ".mrc":
            data = read_mrc(path, ndim=3).data
            data.flat[0] += 1.0
            write_mrc(data, path, voxel_size_a=read_mrc(path).voxel_size_a)
            return
        text = text.replace(b"-60", b"-59", 1)
    path.write_bytes(text)


@pytest.mark.parametrize(
    "role", ["projection angles", "reference", "reference angles", "noiseless"]
)
def test_the_resume_key_follows_the_contents_of_every_input_file(tmp_path, role):
    files = user_reference_files(tmp_path / "in")
    write_tilt_angles(np.linspace(-60, 60, N_TILTS), tmp_path / "in" / "run.tlt")
    files["projection angles"] = tmp_path / "in" / "run.tlt"
    files["reference angles"] = files["angles"]
    config = files_config(
        tmp_path / "ds",
        files,
        projection={"angles_file": str(files["projection angles"])},
        reference={"angle_tolerance_deg": 2.0},  # the edit below moves one angle by 1 degree
    )
    key = plan_run(config).specimens[0].resume_key
    _rewrite(files[role], change=False)
    assert plan_run(config).specimens[0].resume_key == key  # touched, same bytes
    _rewrite(files[role], change=True)
    assert plan_run(config).specimens[0].resume_key != key


def test_a_structure_file_is_part_of_the_key_and_unchanged_files_are_not_read_again(
    tmp_path, monkeypatch
):
    density = np.zeros((9, 9, 9), np.float32)
    density[3:6, 3:6, 3:6] = 1.0
    write_mrc(density, tmp_path / "blob.mrc", voxel_size_a=VOXEL_A)
    config = _with(
        tiny_config(tmp_path / "ds"),
        phantom={
            "structures": [{"path": str(tmp_path / "blob.mrc"), "count": 1}],
            "cache_dir": str(tmp_path / "cache"),
        },
    )
    first = plan_run(config)
    inputs_module.write_hash_cache(first.output, first.file_hashes)
    reads: list[Path] = []
    real = inputs_module.file_sha256
    monkeypatch.setattr(inputs_module, "file_sha256", lambda p: reads.append(p) or real(p))
    assert plan_run(config).specimens[0].resume_key == first.specimens[0].resume_key
    assert reads == []  # size and mtime unchanged: the cached hash is used
    density[4, 4, 4] = 2.0
    write_mrc(density, tmp_path / "blob.mrc", voxel_size_a=VOXEL_A)
    assert plan_run(config).specimens[0].resume_key != first.specimens[0].resume_key
    assert reads == [(tmp_path / "blob.mrc").resolve()]


def test_an_edited_stats_file_redoes_the_finished_tomogram(tmp_path):
    files = user_reference_files(tmp_path / "in")
    paired = files_config(tmp_path / "ds", files)
    simulate_dataset(paired, report=False)
    stats = tmp_path / "in" / "stats.json"
    stats.write_bytes((tmp_path / "ds" / "noise_stats.json").read_bytes())
    config = files_config(tmp_path / "ds", files, noise={"noiseless": [], "stats_file": str(stats)})
    assert simulate_dataset(config, report=False).made == [0]
    assert simulate_dataset(config, report=False).skipped == [0]
    record = json.loads(stats.read_text())
    record["tomograms"][0]["mean"][0] += 1.0
    stats.write_text(json.dumps(record))
    assert simulate_dataset(config, report=False).made == [0]


def test_stale_temporaries_go_and_force_keeps_the_users_files(tmp_path):
    out = tmp_path / "ds"
    config = tiny_config(out, n_tomograms=1)
    simulate_dataset(config, report=False)
    stale = [
        out / "model_0" / ".particles.star.tmp-0123abcd.star",
        out / ".dataset.json.tmp-deadbeef.json",
    ]
    for file in stale:
        file.write_text("left by a killed run")
    mine = [out / "model_0" / "my_notes.txt", out / "mine" / "picks.star"]
    mine[1].parent.mkdir()
    for file in mine:
        file.write_text("the user's")
    assert sorted(remove_stale_temporaries(out)) == sorted(stale)
    removed = remove_written_files(out)
    assert all(f.exists() for f in mine) and not (out / "model_0" / "faket.mrc").exists()
    assert (out / "model_0" / "grandmodel.mrc") in removed and not (out / "reference_1").exists()
    result = simulate_dataset(config, report=False, force=True)
    assert result.made == [0] and all(f.exists() for f in mine)
