"""Tilt schemes, tilt ranges and the tilt-metadata sidecar."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faket.errors import FaketInputError
from faket.io.tilt_metadata import read_tilt_metadata, tilt_metadata_path, write_tilt_metadata
from faket.microscope import acquisition_order, tilt_range


def exposure_sequence(angles, **kwargs):
    rank = acquisition_order(angles, **kwargs)
    return [angles[i] for i in np.argsort(rank)]


def test_dose_symmetric_follows_hagen():
    angles = list(range(-12, 13, 3))
    assert exposure_sequence(angles) == [0, 3, -3, -6, 6, 9, -9, -12, 12]
    assert exposure_sequence(angles, group_size=1) == [0, 3, -3, 6, -6, 9, -9, 12, -12]


def test_dose_symmetric_finishes_the_longer_side():
    assert exposure_sequence([-4, -2, 0, 2, 4, 6, 8]) == [0, 2, -2, -4, 4, 6, 8]


def test_sequential_goes_from_negative_to_positive_in_any_image_order():
    angles = [30.0, -30.0, 0.0]
    assert exposure_sequence(angles, scheme="sequential") == [-30.0, 0.0, 30.0]


def test_tilt_range_includes_the_stop():
    angles = tilt_range(-60, 60, 2)
    assert angles.size == 61 and angles[0] == -60 and angles[-1] == 60
    with pytest.raises(ValueError, match="positive"):
        tilt_range(-60, 60, 0)
    with pytest.raises(ValueError, match=r"\[-89, 89\]"):
        tilt_range(-100, 60, 2)


def test_sidecar_round_trip(tmp_path):
    path = tilt_metadata_path(tmp_path / "projections.mrc")
    assert path.name == "projections.tilts.json"
    rows = [{"index": 0, "angle_deg": -60.0, "defocus_um": 3.0123456789012345}]
    write_tilt_metadata(rows, path, pixel_size_a=10.0, settings={"voltage_kv": 300.0})
    record = read_tilt_metadata(path)
    assert record["tilts"] == rows and record["settings"]["voltage_kv"] == 300.0


def test_sidecar_refuses_other_json(tmp_path):
    path = tmp_path / "x.tilts.json"
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(FaketInputError, match="x.tilts.json: not a faket-tilt-metadata file"):
        read_tilt_metadata(path)
    with pytest.raises(FaketInputError, match="cannot write"):
        write_tilt_metadata([{"a": float("nan")}], tmp_path / "y.json", pixel_size_a=1.0)
    assert not (tmp_path / "y.json").exists()
