"""The end-to-end pipeline on a tiny dataset: layout, shapes, report, resume, dask."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from faket.config import FaketConfig
from faket.errors import FaketInputError
from faket.io import read_classes_json, read_mrc, read_noise_stats, read_particle_locations
from faket.pipeline import dataset_index, plan_run, simulate_dataset, style_source
from pipeline_data import N_TILTS, SHAPE, VOXEL_A, tiny_config


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """The runs set ``run.threads`` in this process; give the other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline") / "ds"
    result = simulate_dataset(tiny_config(out))
    assert result.made == [0, 1] and result.skipped == []
    return out


def _mrcs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.mrc"))}


def test_every_file_of_the_layout_with_consistent_shapes_and_pixel_sizes(dataset):
    index = json.loads((dataset / "dataset.json").read_text())
    assert index["n_tomograms"] == 2 and len(index["tomograms"]) == 2
    for entry in index["tomograms"]:
        folder = dataset / entry["folder"]
        for name in entry["files"]:
            assert (folder / name).is_file(), name
        for name in ("grandmodel", "class_mask", "occupancy_mask"):
            volume = read_mrc(folder / f"{name}.mrc", ndim=3)
            assert volume.data.shape == SHAPE and volume.voxel_size_a == pytest.approx(VOXEL_A)
        modalities = ("baseline", "noisy", "content", "faket")
        spectral = ("noisy_spectral", "content_spectral", "faket_spectral")
        for name in ("noiseless", "reference", *modalities, *spectral):
            series = read_mrc(folder / f"{name}.mrc", ndim=3)
            assert series.data.shape == (N_TILTS, SHAPE[1], SHAPE[2]), name
            assert series.voxel_size_a == pytest.approx(VOXEL_A)
        for name in ("noiseless", "baseline", "noisy", "faket", "reference", *spectral[::2]):
            tomogram = read_mrc(folder / f"tomogram_{name}.mrc", ndim=3)
            assert tomogram.data.shape == SHAPE and np.isfinite(tomogram.data).all()
            assert tomogram.voxel_size_a == pytest.approx(VOXEL_A)
        particles = read_particle_locations(folder / "particle_locations.txt")
        names = {c["name"] for c in read_classes_json(folder / "classes.json")}
        assert len(particles) == 2 + 3 + 4 + 1 + 2
        assert {p.class_name for p in particles} <= names
        provenance = json.loads((folder / "provenance.json").read_text())
        assert provenance["seed"] == entry["seed"] and provenance["device"] == "cpu"
        assert provenance["config"]["run"]["n_tomograms"] == 2
        assert {"phantom", "project", "microscope", "modalities", "style", "reconstruct"} <= set(
            provenance["timings_s"]
        )
        assert "torch_version" in provenance
    assert index["tomograms"][0]["seed"] != index["tomograms"][1]["seed"]
    stats = read_noise_stats(dataset / "noise_stats.json")
    assert [s.source for s in stats] == ["model_0", "model_1"]
    assert not list(dataset.rglob(".*tmp*"))


def test_no_tomogram_is_styled_with_its_own_content(tmp_path):
    for n in (1, 2, 5):
        config = FaketConfig.from_dict({"run": {"n_tomograms": n}})
        assert all(style_source(config, i) != i for i in range(n))
    one = tiny_config(tmp_path / "one", n_tomograms=1)
    assert style_source(one, 0) == 1
    assert dataset_index(plan_run(one))["reference_specimens"] == ["model_0", "reference_1"]


def test_report_references_only_files_that_exist(dataset):
    html = (dataset / "report.html").read_text()
    anchors = set(re.findall(r'href="#([^"]+)"', html))
    assert anchors and anchors <= set(re.findall(r'id="([^"]+)"', html))
    links = set(re.findall(r'(?:src|href)="([^"#][^"]*)"', html))
    assert {
        f"report/{n}.png"
        for n in ("projections", "noise_stats", "power_spectra", "tomograms", "particle_library")
    } <= links
    for link in links:
        assert not link.startswith("/") and (dataset / link).is_file(), link
        assert not link.endswith(".png") or (dataset / link).stat().st_size > 1000
    index = json.loads((dataset / "dataset.json").read_text())
    files = {f"{t['folder']}/{f}" for t in index["tomograms"] for f in t["files"]}
    assert {"dataset.json", "config.yaml", "noise_stats.json", *files} <= links
    rows = re.findall(r'<div class="row"><h3>(model_\d+):.*?<img src="([^"]+)"', html, re.S)
    assert rows == [(f"model_{i}", f"report/thumbnails_model_{i}.png") for i in range(2)]
    assert "model_1" in html and "style" in html  # the timings table
    assert "report/likeness.png" in links and "faket_spectral" in html  # the likeness table
    likeness = re.search(r"<th>modality</th>.*?</table>", html, re.S)
    assert likeness and "<td>faket_spectral</td>" in likeness.group(0)
    assert "<td>floor</td>" in likeness.group(0)
    record = json.loads((dataset / "report" / "likeness.json").read_text())
    assert {"noiseless", "noisy", "faket", "faket_spectral"} <= set(record["modalities"])


def test_rerun_skips_finished_tomograms_and_redoes_a_deleted_one(dataset, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    config = tiny_config(copy)
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("model_*/*")}
    result = simulate_dataset(config, report=False)
    assert result.made == [] and result.skipped == [0, 1]
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("model_*/*")} == before
    shutil.rmtree(copy / "model_1")
    result = simulate_dataset(config, report=False)
    assert result.made == [1] and result.skipped == [0]
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if "model_0" in str(p))
    assert _mrcs(copy / "model_1") == _mrcs(dataset / "model_1")  # same seed, same bytes


def test_an_unfinished_tomogram_is_redone(dataset, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    (copy / "model_0" / "provenance.json").unlink()  # as if interrupted before the end
    (copy / "model_0" / "faket.mrc").write_bytes(b"half written")
    result = simulate_dataset(tiny_config(copy), report=False)
    assert result.made == [0] and result.skipped == [1]
    assert _mrcs(copy / "model_0") == _mrcs(dataset / "model_0")


def test_force_redoes_everything_and_a_changed_config_is_not_finished(dataset, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    result = simulate_dataset(tiny_config(copy), report=False, force=True)
    assert result.made == [0, 1]
    assert _mrcs(copy) == _mrcs(dataset)
    key = plan_run(tiny_config(copy)).specimens[0].resume_key
    assert plan_run(tiny_config(copy, seed=4)).specimens[0].resume_key != key
    assert plan_run(tiny_config(copy, workers=2)).specimens[0].resume_key == key


def test_a_dask_cluster_gives_the_same_files(dataset, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = simulate_dataset(tiny_config(tmp_path / "ds"), scheduler=client, report=False)
    assert result.made == [0, 1]
    assert _mrcs(tmp_path / "ds") == _mrcs(dataset)


def test_device_that_is_not_there_is_a_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(FaketInputError, match="CUDA is not available"):
        simulate_dataset(tiny_config(tmp_path / "ds", device="cuda"))
    assert not (tmp_path / "ds").exists()


def test_missing_reference_files_are_named(tmp_path):
    config = FaketConfig.from_dict(
        {
            "run": {"output": str(tmp_path / "ds"), "n_tomograms": 1, "device": "cpu"},
            "phantom": tiny_config(tmp_path).phantom.model_dump(mode="json"),
            "projection": {"tilt_step_deg": 12},
            "reference": {
                "source": "files",
                "tilt_series": [str(tmp_path / "ref.mrc")],
                "angles": [str(tmp_path / "ref.tlt")],
            },
            "noise": {"stats_file": str(tmp_path / "stats.json")},
        }
    )
    with pytest.raises(FaketInputError, match="ref.mrc: reference.tilt_series.0.: no such file"):
        simulate_dataset(config)
    assert not (tmp_path / "ds").exists()


def test_simulate_command_runs_and_resumes(run_cli, dataset, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    config = tmp_path / "c.yaml"
    tiny_config(copy).to_yaml(config)
    code, out, err = run_cli("simulate", config)
    assert code == 0, err
    assert "made 0 tomogram(s), skipped 2 finished" in out and "report.html" in out
    code, _, err = run_cli("simulate", config, "--device", "cuda:7")
    assert code == 2 and "run.device" in err and err.count("\n") == 1
    code, out, err = run_cli("simulate", config, "--check", "--threads", "1")
    assert code == 0 and "1 CPU thread(s) per task" in err and "nothing written" in out


@pytest.mark.parametrize("stats_from", ["pairs", "json"])
def test_user_reference_files_style_the_tomograms(dataset, tmp_path, stats_from):
    model = dataset / "model_1"
    noise = (
        {"noiseless": [str(model / "noiseless.mrc")]}
        if stats_from == "pairs"
        else {"stats_file": str(dataset / "noise_stats.json")}
    )
    data = tiny_config(tmp_path / "ds", n_tomograms=1).model_dump(mode="json")
    data["reference"] = {
        "source": "files",
        "tilt_series": [str(model / "reference.mrc")],
        "angles": [str(model / "tilt_angles.tlt")],
    }
    data["noise"] = noise
    result = simulate_dataset(FaketConfig.from_dict(data))
    assert result.made == [0]
    out = tmp_path / "ds"
    faket = read_mrc(out / "model_0" / "faket.mrc", ndim=3).data
    assert faket.shape == (N_TILTS, SHAPE[1], SHAPE[2]) and np.isfinite(faket).all()
    assert not (out / "model_0" / "reference.mrc").exists()
    assert (out / "references" / "tomogram_reference_0.mrc").is_file()
    stats = read_noise_stats(out / "noise_stats.json")
    assert len(stats) == (1 if stats_from == "pairs" else 2)
    html = (out / "report.html").read_text()
    assert "reference.mrc" in html


def test_worker_processes_give_the_same_files(dataset, tmp_path):
    result = simulate_dataset(tiny_config(tmp_path / "ds", workers=2), report=False)
    assert result.made == [0, 1]
    assert _mrcs(tmp_path / "ds") == _mrcs(dataset)


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_killed_run_takes_its_workers_along_and_resumes_to_the_same_files(dataset, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "ds"
    config_file = tmp_path / "c.yaml"
    tiny_config(out, workers=2).to_yaml(config_file)
    code = "import sys; from faket.cli import main; sys.exit(main(sys.argv[1:]))"
    parent = subprocess.Popen(
        [sys.executable, "-c", code, "simulate", str(config_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and parent.poll() is None:
        workers = [p for p in _children(parent.pid) if "spawn" in _cmdline(p)]
        if workers and list(out.glob("model_*/noiseless.mrc")):
            break
        time.sleep(0.05)
    assert parent.poll() is None and workers, "the run ended before it could be killed"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    assert not any(_alive(p) for p in workers)
    result = simulate_dataset(tiny_config(out), report=False)
    assert result.made  # the killed run had not finished everything
    assert _mrcs(out) == _mrcs(dataset)
    assert not list(out.rglob(".*.tmp-*"))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_content_is_noisys_noise_field_at_a_quarter(dataset):
    """The published pairing: one seed for NOISY and CONTENT (REFERENCE.md section 2).

    Oracle: per tilt, each modality minus its projection on the standardised noiseless
    tilt leaves the noise field (up to scale); the two residuals must be the same field.
    Independent draws would correlate at ~0 (+- 1/sqrt(64^2)).
    """
    folder = dataset / "model_0"
    clean, noisy, content = (
        torch.from_numpy(read_mrc(folder / f"{n}.mrc", ndim=3).data).double()
        for n in ("noiseless", "noisy", "content")
    )

    def residual(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x, s = x - x.mean(), s - s.mean()
        return x - (x * s).sum() / (s * s).sum() * s

    for t in range(clean.shape[0]):
        a, b = residual(noisy[t], clean[t]), residual(content[t], clean[t])
        corr = float((a * b).sum() / (a.norm() * b.norm()))
        assert corr > 0.99, (t, corr)


class _Recorded:
    """A volume that records each index a caller reads (an array-like without __array__:
    a caller that converts it whole fails)."""

    def __init__(self, array, keys):
        self.array, self.keys = array, keys
        self.shape, self.ndim, self.dtype = array.shape, array.ndim, array.dtype

    def __getitem__(self, key):
        self.keys.append((self.shape, key))
        return self.array[key]


def _selected(shape, key) -> int:
    """Number of elements ``key`` selects from an array of ``shape`` (a zero-stride view)."""
    return np.lib.stride_tricks.as_strided(np.zeros(1), shape, (0,) * len(shape))[key].size


def test_the_report_reads_only_the_tilts_and_slices_it_draws(dataset, tmp_path, monkeypatch):
    """A detector-sized series or tomogram is never read whole for the figures."""
    import faket.pipeline.report as report
    from faket.io.tilt_stack import MrcTilts

    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    plan = plan_run(tiny_config(copy))
    keys: list[tuple[tuple[int, ...], object]] = []
    mapped = report.map_mrc
    monkeypatch.setattr(
        report,
        "map_mrc",
        lambda path: _Recorded(mapped(path), keys) if "tomogram_" in str(path) else mapped(path),
    )
    monkeypatch.setattr(report, "read_mrc", None, raising=False)  # nothing reads a file whole
    tilts: set[tuple[str, object]] = set()
    read_tilt = MrcTilts.__getitem__
    monkeypatch.setattr(
        MrcTilts,
        "__getitem__",
        lambda self, i: (
            tilts.update((self.path.name, int(t)) for t in np.arange(len(self))[i].reshape(-1))
            or read_tilt(self, i)
        ),
    )
    figures = copy / "report"
    stats = read_noise_stats(copy / "noise_stats.json")
    labels = report.read_labels(plan.specimens[0].folder, plan.voxel_size_a)
    assert isinstance(labels.class_mask, np.memmap)
    report._draw_model_figures(plan, figures, "reference", stats, labels)
    report._draw_thumbnails(plan, figures)
    # every tomogram's central XY and XZ slices and its thumbnail slab, nothing larger
    assert len(keys) >= 3 * len(report._tomogram_files(plan, plan.specimens[0].folder))
    shape = keys[0][0]
    slab = report._slab_voxels(plan.tomogram_voxel_size_a) * shape[1] * shape[2]
    largest = max(_selected(s, k) for s, k in keys)
    assert largest <= max(slab, shape[0] * shape[2]) < math.prod(shape)
    # 11 tilts of -60..60: -36, 0 and +36 are the nearest to the drawn -40, 0, +40 (0 also
    # gives the spectra)
    assert {i for _, i in tilts} == {2, 5, 8}
    names = {n for n, _ in tilts}
    assert {"reference.mrc", "noiseless.mrc", "noisy.mrc", "faket_spectral.mrc"} <= names
    assert (figures / "projections.png").stat().st_size > 1000
