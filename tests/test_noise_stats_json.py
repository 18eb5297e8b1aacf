"""Noise-statistics JSON files (faket.io.noise_stats)."""

from __future__ import annotations

import json

import pytest
import torch

from faket.errors import FaketInputError
from faket.io.noise_stats import read_noise_stats, write_noise_stats
from faket.noise import TiltStats

FIELDS = ("r", "sigma", "mean", "std")


def example_stats() -> list[TiltStats]:
    g = torch.Generator().manual_seed(0)

    def curve(n: int, field: str) -> torch.Tensor:
        # Random float64 values with all their bits set, and some extreme magnitudes
        # (small ones for r, a correlation in [-1, 1]).
        powers = torch.arange(n, dtype=torch.float64) * (-1 if field == "r" else 1)
        return torch.rand(n, generator=g, dtype=torch.float64) * 10**powers / 3

    return [
        TiltStats(
            *(curve(7, f) for f in FIELDS),
            tilt_angles_deg=torch.linspace(-60, 60, 7, dtype=torch.float64) + 1e-9,
            method="paired",
            source="tomo_01.mrc",
        ),
        TiltStats(*(curve(7, f) for f in FIELDS), method="unlabelled", source='odd "name" é'),
    ]


def test_round_trip_is_exact(tmp_path):
    stats = example_stats()
    path = tmp_path / "noise.json"
    write_noise_stats(stats, path)
    back = read_noise_stats(path)
    assert len(back) == len(stats)
    for a, b in zip(stats, back, strict=True):
        for f in FIELDS:
            assert torch.equal(getattr(a, f), getattr(b, f)), f
        assert a.method == b.method and a.source == b.source
    assert torch.equal(back[0].tilt_angles_deg, stats[0].tilt_angles_deg)
    assert back[1].tilt_angles_deg is None


def test_file_is_readable_json_and_written_atomically(tmp_path):
    path = tmp_path / "noise.json"
    path.write_text("old content")
    write_noise_stats(example_stats(), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "faket-noise-stats" and data["version"] == 1
    assert data["tomograms"][1]["tilt_angles_deg"] is None
    assert [p.name for p in tmp_path.iterdir()] == ["noise.json"]  # no temporary left
    with pytest.raises(FaketInputError, match="does not exist"):
        write_noise_stats(example_stats(), tmp_path / "missing" / "noise.json")
    with pytest.raises(ValueError, match="no noise statistics"):
        write_noise_stats([], tmp_path / "empty.json")


def valid_document() -> dict:
    return {
        "format": "faket-noise-stats",
        "version": 1,
        "tomograms": [
            {
                "source": "a.mrc",
                "method": "paired",
                "tilt_angles_deg": [-1.0, 0.0, 1.0],
                "r": [0.1, 0.2, 0.3],
                "sigma": [0.9, 0.8, 0.7],
                "mean": [1.0, 2.0, 3.0],
                "std": [1.0, 1.0, 1.0],
            }
        ],
    }


def test_valid_document_reads(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(valid_document()))
    (stats,) = read_noise_stats(path)
    assert stats.n_tilts == 3 and stats.source == "a.mrc"


def mutate(change):
    doc = valid_document()
    change(doc)
    return json.dumps(doc)


MALFORMED = {
    "not json": ("{format: faket", "not a JSON file"),
    "empty file": ("", "not a JSON file"),
    "top-level list": ("[1, 2]", "not a noise-statistics file"),
    "wrong format": (mutate(lambda d: d.update(format="other")), "not a noise-statistics file"),
    "missing format": (mutate(lambda d: d.pop("format")), "not a noise-statistics file"),
    "wrong version": (mutate(lambda d: d.update(version=2)), "unsupported noise-statistics"),
    "no tomograms": (mutate(lambda d: d.update(tomograms=[])), "non-empty list"),
    "tomogram not an object": (mutate(lambda d: d.update(tomograms=[3])), "JSON object"),
    "missing key": (mutate(lambda d: d["tomograms"][0].pop("sigma")), "lacks the key"),
    "different lengths": (
        mutate(lambda d: d["tomograms"][0].update(r=[0.1, 0.2])),
        "lists of different lengths",
    ),
    "angles length": (
        mutate(lambda d: d["tomograms"][0].update(tilt_angles_deg=[0.0])),
        "lists of different lengths",
    ),
    "string in list": (
        mutate(lambda d: d["tomograms"][0].update(mean=[1.0, "2", 3.0])),
        "list of numbers",
    ),
    "not a list": (mutate(lambda d: d["tomograms"][0].update(std=1.0)), "list of numbers"),
    "bad method": (mutate(lambda d: d["tomograms"][0].update(method="x")), '"method" must'),
    "NaN": (mutate(lambda d: d["tomograms"][0].update(r=[0.1, float("nan"), 0.3])), "finite"),
    "Infinity": (mutate(lambda d: d["tomograms"][0].update(std=[1.0, 1.0, 1e999])), "finite"),
    "no tilts": (
        mutate(
            lambda d: d["tomograms"][0].update(
                r=[], sigma=[], mean=[], std=[], tilt_angles_deg=None
            )
        ),
        "no tilts",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_files_give_one_line_errors_naming_the_path(tmp_path, name):
    text, match = MALFORMED[name]
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FaketInputError, match=match) as info:
        read_noise_stats(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert info.value.path == str(path)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(FaketInputError, match="file not found"):
        read_noise_stats(tmp_path / "nope.json")
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(FaketInputError, match="not UTF-8"):
        read_noise_stats(path)
