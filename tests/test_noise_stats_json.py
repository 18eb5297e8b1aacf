"""Noise-statistics JSON files (faket.io.noise_stats)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from faket.errors import FaketInputError
from faket.io.noise_stats import read_noise_stats, write_noise_stats
from faket.noise import TiltSpectra, TiltStats

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
    "wrong version": (mutate(lambda d: d.update(version=3)), "unsupported noise-statistics"),
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


# --- version 2: spectra ---------------------------------------------------------------


def example_spectra(n_tilts: int = 7, n_bins: int = 5) -> TiltSpectra:
    g = torch.Generator().manual_seed(1)
    return TiltSpectra(
        frequency=torch.arange(n_bins, dtype=torch.float64) / 7,
        transfer=torch.randn(n_tilts, n_bins, generator=g, dtype=torch.float64) / 3,
        noise_power=torch.rand(n_tilts, n_bins, generator=g, dtype=torch.float64) * 1e-3,
    )


def test_version_1_written_by_hand_still_reads(tmp_path):
    doc = valid_document()  # the version-1 layout, as earlier releases wrote it
    doc["tomograms"][0]["spectra"] = "ignored in version 1"
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(doc))
    (stats,) = read_noise_stats(path)
    assert stats.spectra is None and stats.n_tilts == 3
    assert torch.equal(stats.r, torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))


def test_without_spectra_the_file_stays_version_1(tmp_path):
    path = tmp_path / "noise.json"
    write_noise_stats(example_stats(), path)
    text = path.read_text(encoding="utf-8")
    assert '"version": 1' in text and "spectra" not in text


def test_version_2_round_trips_exactly_with_and_without_spectra(tmp_path):
    plain = example_stats()
    with_spectra = dataclasses.replace(plain[0], spectra=example_spectra())
    path = tmp_path / "noise.json"
    write_noise_stats([with_spectra, plain[1]], path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == 2 and data["tomograms"][1]["spectra"] is None
    back = read_noise_stats(path)
    assert back[1].spectra is None
    got, want = back[0].spectra, with_spectra.spectra
    assert got is not None and want is not None
    for field in ("frequency", "transfer", "noise_power"):
        assert torch.equal(getattr(got, field), getattr(want, field)), field
    for f in FIELDS:
        assert torch.equal(getattr(back[0], f), getattr(with_spectra, f)), f
    # Compact: one line per curve (a row per tilt), not one per number.
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines < 60


def valid_v2() -> dict:
    doc = valid_document()
    doc["version"] = 2
    doc["tomograms"][0]["spectra"] = {
        "frequency": [0.0, 0.25, 0.5],
        "transfer": [[0.5, -0.2, 0.1]] * 3,
        "noise_power": [[0.1, 0.2, 0.3]] * 3,
    }
    return doc


def test_valid_version_2_reads(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(valid_v2()))
    (stats,) = read_noise_stats(path)
    assert stats.spectra is not None and stats.spectra.n_bins == 3
    doc = valid_v2()
    doc["tomograms"][0].pop("spectra")  # optional in version 2
    path.write_text(json.dumps(doc))
    assert read_noise_stats(path)[0].spectra is None


def bad_spectra(change):
    doc = valid_v2()
    change(doc["tomograms"][0]["spectra"])
    return json.dumps(doc)


def _set(key, value):
    return lambda s: s.__setitem__(key, value)


def _row(key, k, row):
    return lambda s: s.__setitem__(key, [row if i == k else r for i, r in enumerate(s[key])])


BAD_SPECTRA = {
    "not an object": (
        mutate(lambda d: (d.update(version=2), d["tomograms"][0].update(spectra=[1]))),
        r'tomogram 0: "spectra" must be a JSON object',
    ),
    "missing key": (bad_spectra(lambda s: s.pop("noise_power")), "lacks the key"),
    "frequency not from 0": (
        bad_spectra(_set("frequency", [0.1, 0.25, 0.5])),
        r'tomogram 0, bin 0: spectra "frequency" is 0.1',
    ),
    "frequency not increasing": (
        bad_spectra(_set("frequency", [0.0, 0.5, 0.25])),
        r'tomogram 0, bin 2: spectra "frequency" is 0.25; ring centres must increase',
    ),
    "one bin": (bad_spectra(_set("frequency", [0.0])), "at least 2 rings"),
    "rows per tilt": (
        bad_spectra(_set("transfer", [[0.5, -0.2, 0.1]] * 2)),
        r'tomogram 0: spectra "transfer" must be a list of one row per tilt \(3\), got 2 rows',
    ),
    "row length": (
        bad_spectra(_row("noise_power", 1, [0.1, 0.2])),
        r'tomogram 0, tilt 1: spectra "noise_power" has 2 values, expected one per ring',
    ),
    "NaN": (
        bad_spectra(_row("transfer", 2, [0.5, float("nan"), 0.1])),
        r'tomogram 0, tilt 2, bin 1: spectra "transfer" is nan; every value must be finite',
    ),
    "string": (bad_spectra(_row("transfer", 0, [0.5, "x", 0.1])), "list of numbers"),
    "negative noise power": (
        bad_spectra(_row("noise_power", 1, [0.1, 0.2, -0.3])),
        r'tomogram 0, tilt 1, bin 2: spectra "noise_power" is -0.3; a noise power must be >= 0',
    ),
}


@pytest.mark.parametrize("name", list(BAD_SPECTRA))
def test_bad_spectra_give_one_line_errors(tmp_path, name):
    text, match = BAD_SPECTRA[name]
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FaketInputError, match=match) as info:
        read_noise_stats(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
