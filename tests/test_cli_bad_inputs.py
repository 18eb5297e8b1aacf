"""Bad input to the single-stage commands: one line on stderr, exit 2, nothing written.

Each case is a defect that was measured: an output that overwrote its input, work done
before a check, a traceback, an input accepted that should be refused, a wrong word.
Every case checks the whole of stderr (one line ``faket: error: ...`` naming the file or
option and the problem), that the folder holds exactly the files it held before (no
output, no hidden ``.*.tmp-*`` file) and that no input changed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch

from faket.io import write_classes_json, write_mrc, write_noise_stats, write_tilt_angles
from faket.noise import TiltStats

N_TILTS, NY, NX = 3, 32, 32


@pytest.fixture
def data(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A folder of small inputs: a volume, tilt-series, angles and noise statistics."""
    write_mrc(
        rng.standard_normal((8, NY, NX)).astype(np.float32), tmp_path / "vol.mrc", voxel_size_a=10.0
    )
    write_mrc(
        rng.standard_normal((NY, NX)).astype(np.float32), tmp_path / "img.mrc", voxel_size_a=10.0
    )
    for name in ("ts.mrc", "ts2.mrc"):
        stack = rng.standard_normal((N_TILTS, NY, NX)).astype(np.float32)
        write_mrc(stack, tmp_path / name, voxel_size_a=10.0)
    write_tilt_angles(np.array([-30.0, 0.0, 30.0]), tmp_path / "a.tlt")
    stats = TiltStats(
        r=[0.5, 0.6, 0.5], sigma=[0.8, 0.7, 0.8], mean=[1.0, 2.0, 1.0], std=[3.0, 3.0, 3.0]
    )
    write_noise_stats([stats], tmp_path / "stats.json")
    return tmp_path


def snapshot(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` and below (hidden ones too) -> the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


_PROGRESS = re.compile(r"^\w+:\s+\d+%\|")


def run_in(run_cli, folder: Path, *args: object) -> tuple[int, str, str]:
    """Run ``faket *args`` in ``folder``, so messages name files as the user typed them."""
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        return run_cli(*args)
    finally:
        os.chdir(cwd)


def error_lines(err: str, *, progress: bool = False) -> list[str]:
    """Return the lines of stderr; ``progress``: without a progress bar's (work was done)."""
    lines = err.splitlines()  # also splits at "\r", so a progress bar shows up as lines
    if progress:
        lines = [line for line in lines if line.strip() and not _PROGRESS.match(line)]
    return lines


def refused(
    run_cli, folder: Path, *args: object, words: tuple[str, ...], progress: bool = False
) -> str:
    """Run ``faket *args`` in ``folder``; assert one error line with ``words``, no change.

    Without ``progress`` the error must come before any work, so before any progress bar.
    """
    before = snapshot(folder)
    code, _, err = run_in(run_cli, folder, *args)
    lines = error_lines(err, progress=progress)
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("faket: error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert snapshot(folder) == before  # nothing written, nothing changed, no temp file
    return lines[0]


STYLE = ("style", "--init", "ts.mrc", "--content", "ts.mrc", "--style", "ts2.mrc")
RANDOM = ("--backbone", "random", "--device", "cpu")


# 1. An output never overwrites an input (the same path, a link, or a side output).
OVERWRITES = {
    "project VOLUME": (("project", "vol.mrc", "--angles", "a.tlt", "-o", "vol.mrc"), "VOLUME"),
    "project --angles": (("project", "vol.mrc", "--angles", "a.tlt", "-o", "a.tlt"), "--angles"),
    "noise apply NOISELESS": (
        ("noise", "apply", "ts.mrc", "--stats", "stats.json", "--seed", 1, "-o", "ts.mrc"),
        "NOISELESS",
    ),
    "noise apply --stats": (
        ("noise", "apply", "ts.mrc", "--stats", "stats.json", "--seed", 1, "-o", "stats.json"),
        "--stats",
    ),
    "noise estimate": (
        ("noise", "estimate", "--reference", "ts.mrc", "-o", "ts.mrc"),
        "--reference",
    ),
    "style --style": ((*STYLE, *RANDOM, "-o", "ts2.mrc"), "--style"),
    "style --init": ((*STYLE, *RANDOM, "-o", "ts.mrc"), "--init"),
    "microscope GRANDMODEL": (
        ("microscope", "vol.mrc", "--angles", "a.tlt", "-o", "vol.mrc"),
        "GRANDMODEL",
    ),
    # OUTPUT.tlt is a side output: -o a.mrc would replace the --angles file a.tlt
    "microscope side output": (
        ("microscope", "vol.mrc", "--angles", "a.tlt", "-o", "a.mrc"),
        "the tilt angles of -o/--output",
    ),
    "reconstruct TILTS": (("reconstruct", "ts.mrc", "--angles", "a.tlt", "-o", "ts.mrc"), "TILTS"),
    "evaluate extract": (
        ("evaluate", "extract", "vol.mrc", "--classes", "c.json", "-o", "vol.mrc"),
        "SEGMENTATION",
    ),
    "evaluate score": (
        ("evaluate", "score", "--truth", ".", "--predicted", "stats.json", "-o", "stats.json"),
        "--predicted",
    ),
    "evaluate compare": (("evaluate", "compare", "compare.md", "-o", "."), "SCORES"),
}


@pytest.mark.parametrize("case", list(OVERWRITES))
def test_output_equal_to_an_input_is_refused_and_the_input_kept(run_cli, data, case):
    args, name = OVERWRITES[case]
    if case == "evaluate compare":
        (data / "compare.md").write_text("a score.json of an earlier run\n")
    refused(run_cli, data, *args, words=("would overwrite the input", name))


def test_the_provenance_side_output_is_checked_too(run_cli, data):
    # style writes faket.provenance.json next to faket.mrc: here that is the --init file
    (data / "ts.mrc").rename(data / "faket.provenance.json")
    args = ("style", "--init", "faket.provenance.json", "--content", "ts2.mrc", "--style")
    line = refused(run_cli, data, *args, "ts2.mrc", *RANDOM, "-o", "faket.mrc", words=("--init",))
    assert line.startswith("faket: error: faket.provenance.json: the provenance JSON of -o")


def test_links_to_an_input_are_the_same_file(run_cli, data):
    os.link(data / "ts.mrc", data / "hard.mrc")
    os.symlink(data / "vol.mrc", data / "soft.mrc")
    refused(
        run_cli,
        data,
        *("reconstruct", "ts.mrc", "--angles", "a.tlt", "-o", "hard.mrc"),
        words=("hard.mrc", "would overwrite the input TILTS (ts.mrc, the same file)"),
    )
    refused(
        run_cli,
        data,
        *("project", "vol.mrc", "--angles", "a.tlt", "-o", "soft.mrc"),
        words=("soft.mrc", "VOLUME"),
    )


# 2. The output's folder is checked before any work.
NO_FOLDER = {
    "project": ("project", "vol.mrc", "--angles", "a.tlt"),
    "reconstruct": ("reconstruct", "ts.mrc", "--angles", "a.tlt"),
    "noise apply": ("noise", "apply", "ts.mrc", "--stats", "stats.json", "--seed", 1),
    "noise estimate": ("noise", "estimate", "--reference", "ts.mrc"),
    "style": (*STYLE, *RANDOM),
    "microscope": ("microscope", "vol.mrc", "--angles", "a.tlt"),
}


@pytest.mark.parametrize("command", list(NO_FOLDER))
def test_missing_output_folder_is_refused_before_work(run_cli, data, command):
    refused(
        run_cli,
        data,
        *NO_FOLDER[command],
        "-o",
        "no_such_dir/out.mrc",
        words=("no_such_dir/out.mrc", "folder no_such_dir does not exist"),
    )


def test_output_that_is_a_folder_is_refused(run_cli, data):
    (data / "out.mrc").mkdir()
    refused(
        run_cli,
        data,
        *("project", "vol.mrc", "--angles", "a.tlt", "-o", "out.mrc"),
        words=("-o/--output", "is a directory"),
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
def test_unwritable_output_folder_is_refused(run_cli, data):
    (data / "locked").mkdir(mode=0o500)
    try:
        refused(
            run_cli,
            data,
            *("project", "vol.mrc", "--angles", "a.tlt", "-o", "locked/out.mrc"),
            words=("locked/out.mrc", "not writable"),
        )
    finally:
        (data / "locked").chmod(0o700)


# 3. Tracebacks that are one line now.
def test_full_disk_is_one_line_and_leaves_no_temp_file(run_cli, data, monkeypatch):
    import faket.io.mrc

    def full_disk(array, voxel_size_a, file, compression=None):
        Path(file).write_bytes(b"MAP half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(faket.io.mrc, "_write_plain", full_disk)
    line = refused(
        run_cli,
        data,
        *("project", "vol.mrc", "--angles", "a.tlt", "-o", "tilts.mrc", "--device", "cpu"),
        words=("tilts.mrc", "no space left on device"),
        progress=True,  # the disk fills up after the work
    )
    assert (
        line
        == "faket: error: tilts.mrc: cannot write: no space left on device; nothing was written"
    )


def test_reversed_high_freq_band_is_one_line(run_cli, data):
    refused(
        run_cli,
        data,
        *("noise", "estimate", "--reference", "ts.mrc", "--high-freq-band", 0.9, 0.7),
        *("-o", "stats2.json"),
        words=("--high-freq-band", "LOW must be below HIGH, got 0.9 0.7"),
    )


BAD_STATS = {
    "std 0": ("std", 1, 0.0, '"std" is 0'),
    "r 2": ("r", 2, 2.0, '"r" is 2; outside [-1, 1]'),
    "sigma < 0": ("sigma", 0, -0.1, '"sigma" is -0.1'),
    "NaN": ("mean", 1, float("nan"), '"mean" is nan; every value must be finite'),
}


@pytest.mark.parametrize("case", list(BAD_STATS))
def test_stats_value_out_of_range_names_file_field_tilt_and_value(run_cli, data, case):
    field, tilt, value, expected = BAD_STATS[case]
    record = json.loads((data / "stats.json").read_text())
    record["tomograms"][0][field][tilt] = value
    (data / "bad.json").write_text(json.dumps(record))  # NaN is written as the token NaN
    refused(
        run_cli,
        data,
        *("noise", "apply", "ts.mrc", "--stats", "bad.json", "--seed", 1, "-o", "noisy.mrc"),
        words=("bad.json", f"tomogram 0, tilt {tilt}", expected),
    )


def test_stats_lists_of_different_lengths_are_one_line(run_cli, data):
    record = json.loads((data / "stats.json").read_text())
    record["tomograms"][0]["std"] = [3.0, 3.0]
    (data / "bad.json").write_text(json.dumps(record))
    refused(
        run_cli,
        data,
        *("noise", "apply", "ts.mrc", "--stats", "bad.json", "--seed", 1, "-o", "noisy.mrc"),
        words=("bad.json", "lists of different lengths", "std 2"),
    )


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _weights_files(folder: Path, marker: Path) -> dict[str, Path]:
    files = {"random bytes": folder / "random.pth", "pickle": folder / "plain.pkl"}
    files["random bytes"].write_bytes(np.random.default_rng(1).bytes(4096))
    files["pickle"].write_bytes(pickle.dumps({"features.0.weight": [1.0, 2.0]}, protocol=2))
    files["tensors, not a state dict"] = folder / "list.pth"
    torch.save([torch.zeros(2)], files["tensors, not a state dict"])
    files["malicious pickle"] = folder / "evil.pkl"
    files["malicious pickle"].write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    files["malicious torch.save"] = folder / "evil.pth"
    torch.save({"features.0.weight": _Payload(marker)}, files["malicious torch.save"])
    return files


@pytest.mark.parametrize(
    "case",
    [
        "random bytes",
        "pickle",
        "malicious pickle",
        "malicious torch.save",
        "tensors, not a state dict",
    ],
)
def test_weights_file_that_is_not_tensors_is_refused_and_runs_nothing(
    run_cli, data, tmp_path_factory, case
):
    weights = tmp_path_factory.mktemp("weights")
    marker = weights / "marker"
    file = _weights_files(weights, marker)[case]
    # The payload is live: a plain unpickling runs it.
    live = weights / "live"
    pickle.loads(pickle.dumps(_Payload(live))).close()
    assert live.exists()
    args = (*STYLE, "--backbone", "vgg19-imagenet", "--weights", file, "-o", "faket.mrc")
    expected = "not a PyTorch weights file ("
    if case == "tensors, not a state dict":
        expected = "not a torchvision VGG-19 state dict (it holds a list"
    refused(run_cli, data, *args, words=(file.name, expected))
    assert not marker.exists()


def test_every_weights_load_in_the_package_is_weights_only():
    root = Path(__file__).parents[1] / "src" / "faket"
    for path in root.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}:{number}: {line.strip()}"


# 4. Inputs that were accepted and should be refused.
@pytest.mark.parametrize("command", ["project", "microscope"])
def test_a_2d_image_is_not_a_volume(run_cli, data, command):
    refused(
        run_cli,
        data,
        *(command, "img.mrc", "--angles", "a.tlt", "-o", "out.mrc"),
        words=("img.mrc", "is a 2-D image (ny, nx)", "expected a volume (nz, ny, nx)"),
    )


def test_a_zero_size_axis_is_refused_on_read(run_cli, data):
    with mrcfile.new(data / "empty.mrc") as mrc:  # mrcfile writes it without complaint
        mrc.set_data(np.zeros((0, NY, NX), np.float32))
    refused(
        run_cli,
        data,
        *("project", "empty.mrc", "--angles", "a.tlt", "-o", "out.mrc"),
        words=("empty.mrc", "has an axis of size 0"),
    )


def test_a_constant_noiseless_tilt_is_refused_by_noise_apply(run_cli, data, rng):
    stack = rng.standard_normal((N_TILTS, NY, NX)).astype(np.float32)
    stack[1] = 5.0
    write_mrc(stack, data / "flat.mrc", voxel_size_a=10.0)
    refused(
        run_cli,
        data,
        *("noise", "apply", "flat.mrc", "--stats", "stats.json", "--seed", 1, "-o", "n.mrc"),
        words=("flat.mrc", "tilt 1 is a constant image (5)"),
    )


# 5. A memory budget below one tilt's need is refused, with a tile that fits.
def test_a_tile_over_the_memory_budget_is_refused_with_a_tile_that_fits(run_cli, data, rng):
    from faket.style.series import check_memory_budget

    for name in ("big.mrc", "big2.mrc"):
        write_mrc(rng.standard_normal((N_TILTS, 256, 256)).astype(np.float32), data / name)
    args = ("style", "--init", "big.mrc", "--content", "big.mrc", "--style", "big2.mrc")
    settings = ("--memory-gib", 0.1, "--precision", "fp32", "--halo", 16, "--tile", 240)
    line = refused(
        run_cli,
        data,
        *args,
        *RANDOM,
        *settings,
        "-o",
        "faket.mrc",
        words=("--memory-gib", "one --tile 240 tile (--halo 16) needs about", "use --tile 64"),
    )
    assert re.search(r"or --memory-gib 0\.[1-9]\b", line), line
    check_memory_budget(256, 256, "fp32", int(0.1 * 2**30), 64, 16)  # it does fit


def test_a_budget_below_the_smallest_tiles_is_refused_with_what_fits(run_cli, data, rng):
    """Without --tile the tilt is tiled to fit; only below the smallest tiles is it refused."""
    for name in ("big.mrc", "big2.mrc"):
        write_mrc(rng.standard_normal((N_TILTS, 256, 256)).astype(np.float32), data / name)
    args = ("style", "--init", "big.mrc", "--content", "big.mrc", "--style", "big2.mrc")
    settings = ("--memory-gib", 0.1, "--precision", "fp32", "--halo", 16)
    line = refused(
        run_cli,
        data,
        *args,
        *RANDOM,
        *settings,
        "--working-size",
        1024,
        "-o",
        "faket.mrc",
        words=("one 1024 x 1024 tilt", "at --working-size 1024", "even the smallest tiles"),
    )
    assert re.search(r"use --memory-gib 0\.[2-9] \(no --tile fits", line), line


# 6. Wrong words.
CPU_ALLOCATOR = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB"


@pytest.mark.parametrize(
    ("command", "target", "error", "hint"),
    [
        ("project", "faket.projection.project_tilt_series", MemoryError(), "--chunk-mib"),
        (
            "reconstruct",
            "faket.reconstruction.reconstruct_tomogram",
            RuntimeError(CPU_ALLOCATOR),  # what torch raises
            "--chunk-mib",
        ),
        ("style", "faket.style.series.stylize_tilt_series", MemoryError(), "--tile"),
        ("noise apply", "faket.noise.make_modality", MemoryError(), "smaller inputs"),
    ],
)
def test_out_of_memory_hint_fits_the_command(
    run_cli, data, monkeypatch, command, target, error, hint
):
    def no_memory(*args, **kwargs):
        raise error

    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(__import__(module, fromlist=[name]), name, no_memory)
    args = {
        "project": ("project", "vol.mrc", "--angles", "a.tlt"),
        "reconstruct": ("reconstruct", "ts.mrc", "--angles", "a.tlt"),
        "style": (*STYLE, *RANDOM),
        "noise apply": ("noise", "apply", "ts.mrc", "--stats", "stats.json", "--seed", 1),
    }[command]
    code, _, err = run_in(run_cli, data, *args, "-o", "out.mrc")
    lines = error_lines(err, progress=True)  # the memory runs out during the work
    assert code == 3 and len(lines) == 1, err
    assert lines[0].startswith(f"faket: error: out of memory in faket {command};")
    assert hint in lines[0]
    assert ("--chunk-mib" in err) == (command in ("project", "reconstruct"))
    assert not (data / "out.mrc").exists()


def test_extract_help_is_true_and_a_4d_map_is_one_line(run_cli, data):
    code, out, _ = run_cli("evaluate", "extract", "--help")
    text = " ".join(out.split())
    assert code == 0 and "4-D" not in text and "3-D MRC" in text
    assert "[default: each class's radius" in text
    with mrcfile.new(data / "scores.mrc") as mrc:
        mrc.set_data(np.zeros((2, 3, 4, 4), np.float32))
    write_classes_json([{"id": 1, "name": "A", "diameter_a": 40.0}], data / "c.json")
    refused(
        run_cli,
        data,
        *("evaluate", "extract", "scores.mrc", "--classes", "c.json", "-o", "picks.txt"),
        words=("scores.mrc", "4-D"),
    )


def test_meanshift_bandwidth_defaults_to_the_class_radius(run_cli, data):
    labels = np.zeros((12, 12, 12), np.float32)
    labels[2:5, 2:5, 2:5] = 1
    labels[7:10, 7:10, 7:10] = 1
    write_mrc(labels, data / "seg.mrc", voxel_size_a=10.0)
    write_classes_json([{"id": 1, "name": "A", "diameter_a": 60.0}], data / "c.json")
    code, _, err = run_cli(
        "evaluate", "extract", data / "seg.mrc", "--classes", data / "c.json", "-o", data / "p.txt"
    )
    assert code == 0, err
    rows = (data / "p.txt").read_text().split("\n")
    assert sorted(r.split()[1:4] for r in rows if r.strip()) == [
        ["3", "3", "3"],
        ["8", "8", "8"],
    ]
    # Without a diameter there is no radius: the error names --bandwidth.
    (data / "p.txt").unlink()
    write_classes_json([{"id": 1, "name": "A", "diameter_a": 0.0}], data / "c.json")
    refused(
        run_cli,
        data,
        *("evaluate", "extract", "seg.mrc", "--classes", "c.json", "-o", "p.txt"),
        words=("--bandwidth", "class 'A' has no diameter in c.json"),
    )


def test_constant_style_reference_names_the_file(run_cli, data):
    write_mrc(np.full((N_TILTS, NY, NX), 2.0, np.float32), data / "flat.mrc")
    refused(
        run_cli,
        data,
        *("style", "--init", "ts.mrc", "--content", "ts.mrc", "--style", "flat.mrc"),
        *RANDOM,
        *("-o", "faket.mrc"),
        words=("flat.mrc: the tilt-series is constant (2.0)",),
    )


def test_style_precision_default_is_the_config_default(run_cli):
    from faket.cli.style import style
    from faket.config import RunSettings

    (precision,) = [p for p in style.params if p.name == "precision"]
    default = RunSettings.model_fields["precision"].default
    assert precision.default == default
    code, out, _ = run_cli("style", "--help")
    assert code == 0 and f"[default: {default}]" in " ".join(out.split())


# 7. click's own usage errors are one line too.
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ("project", "vol.mrc", "--angles", "a.tlt", "--width", -3, "-o", "o.mrc"),
            ("--width:", "-3"),
        ),
        ((*STYLE, "--precision", "fp8", "-o", "o.mrc"), ("--precision:", "'fp8'")),
        (("project", "vol.mrc", "-o", "o.mrc"), ("--angles:", "required")),
        (("project", "vol.mrc", "--angle", "a.tlt", "-o", "o.mrc"), ("--angle:", "no such option")),
    ],
)
def test_click_usage_errors_are_one_line(run_cli, data, args, words):
    line = refused(run_cli, data, *args, words=words)
    assert "--help" in line
