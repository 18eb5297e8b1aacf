"""Tilt-series read and written a few tilts at a time, against mrcfile's whole-file path.

The oracle is :func:`faket.io.write_mrc` / :func:`faket.io.read_mrc`, which hand the
whole array to mrcfile (``set_data`` computes the header statistics from it). Data must
match bit for bit; the header's mean and rms are accumulated from parts in float64
here and computed by numpy over the whole there, so they agree to float32 rounding
(relative 1e-6).
"""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import torch

from faket.conventions import tilt_parts
from faket.errors import FaketInputError
from faket.io import read_mrc, write_mrc
from faket.io.tilt_stack import PART_ELEMENTS, MrcTilts, MrcTiltWriter, write_mrc_in_parts


def series(shape=(7, 33, 20), seed=0):
    return np.random.default_rng(seed).normal(3.0, 2.0, shape).astype(np.float32)


def test_written_in_parts_equals_the_whole_file_writer(tmp_path):
    data = series()
    write_mrc(data, tmp_path / "whole.mrc", voxel_size_a=4.0)
    with MrcTiltWriter(tmp_path / "parts.mrc", data.shape, voxel_size_a=4.0) as out:
        for start in (3, 0, 6):  # any order; the parts fill the series
            stop = {3: 6, 0: 3, 6: 7}[start]
            out.write(start, torch.from_numpy(data[start:stop]))
    whole = mrcfile.open(tmp_path / "whole.mrc", permissive=False)
    parts = mrcfile.open(tmp_path / "parts.mrc", permissive=False)
    with whole, parts:
        np.testing.assert_array_equal(parts.data, whole.data)
        for field in ("nx", "ny", "nz", "mode", "ispg", "cella", "nlabl", "label", "dmin", "dmax"):
            assert np.all(parts.header[field] == whole.header[field]), field
        for field in ("dmean", "rms"):
            assert float(parts.header[field]) == pytest.approx(float(whole.header[field]), 1e-6)
        assert float(parts.voxel_size.x) == 4.0


def test_the_reader_returns_the_tilts_asked_for(tmp_path):
    data = series()
    write_mrc(data, tmp_path / "s.mrc")
    stack = MrcTilts(tmp_path / "s.mrc")
    assert stack.shape == (7, 33, 20) and stack.ndim == 3 and len(stack) == 7
    assert torch.equal(stack[2:5], torch.from_numpy(data[2:5]))
    assert torch.equal(stack[6], torch.from_numpy(data[6]))
    assert stack[2:5].dtype == torch.float32
    with pytest.raises(ValueError, match="contiguous"):
        stack[0:6:2]


@pytest.mark.parametrize("name", ["s.mrc", "s.mrc.gz"])
def test_take_reads_each_run_of_tilts_once_and_no_other(tmp_path, monkeypatch, name):
    data = series()
    write_mrc(data, tmp_path / name)
    stack = MrcTilts(tmp_path / name)
    reads: list[object] = []
    read = MrcTilts.__getitem__
    monkeypatch.setattr(MrcTilts, "__getitem__", lambda self, i: reads.append(i) or read(self, i))
    for tilts in ([0, 1, 3, 5, 6], [2], list(range(7))):
        reads.clear()
        assert torch.equal(stack.take(tilts), torch.from_numpy(data[tilts]))  # numpy's take
        runs = {
            (0, 1, 3, 5, 6): [(0, 2), (3, 4), (5, 7)],
            (2,): [(2, 3)],
            (0, 1, 2, 3, 4, 5, 6): [(0, 7)],
        }
        assert [(r.start, r.stop) for r in reads] == runs[tuple(tilts)]


def test_a_compressed_file_is_read_whole_once(tmp_path):
    data = series()
    write_mrc(data, tmp_path / "s.mrc.gz")
    stack = MrcTilts(tmp_path / "s.mrc.gz")
    assert torch.equal(stack[1:4], torch.from_numpy(data[1:4]))


def test_the_reader_names_a_bad_file(tmp_path):
    (tmp_path / "bad.mrc").write_bytes(b"not an mrc file")
    with pytest.raises(FaketInputError, match="bad.mrc"):
        MrcTilts(tmp_path / "bad.mrc")
    write_mrc(np.ones((5, 6), np.float32), tmp_path / "image.mrc")
    with pytest.raises(FaketInputError, match="3-D"):
        MrcTilts(tmp_path / "image.mrc")


def test_an_unfinished_series_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="4 tilts .* never written"):
        with MrcTiltWriter(tmp_path / "s.mrc", (7, 33, 20)) as out:
            out.write(0, series()[:3])
    with pytest.raises(RuntimeError, match="interrupted"):
        with MrcTiltWriter(tmp_path / "s.mrc", (7, 33, 20)) as out:
            out.write(0, series()[:3])
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_bad_parts_are_refused_before_anything_is_written(tmp_path):
    data = series()
    with pytest.raises(FaketInputError, match="s.mrc.*NaN"):
        with MrcTiltWriter(tmp_path / "s.mrc", data.shape) as out:
            bad = data[:2].copy()
            bad[1, 3, 4] = np.nan
            out.write(0, bad)
    with MrcTiltWriter(tmp_path / "s.mrc", data.shape) as out:
        with pytest.raises(ValueError, match="do not fit"):
            out.write(0, data[:2, :, :19])
        out.write(0, data[:4])
        with pytest.raises(ValueError, match="written"):
            out.write(3, data[3:5])
        out.write(4, data[4:])
    np.testing.assert_array_equal(read_mrc(tmp_path / "s.mrc").data, data)
    with pytest.raises(ValueError, match="plain"):
        MrcTiltWriter(tmp_path / "s.mrc.gz", data.shape)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.float32, bool])
def test_volumes_of_any_real_dtype_are_written_as_the_whole_writer_does(tmp_path, dtype):
    data = (series((9, 12, 10)) * 10).astype(dtype)
    write_mrc(data, tmp_path / "whole.mrc", voxel_size_a=2.5)
    write_mrc_in_parts(torch.from_numpy(data), tmp_path / "parts.mrc", voxel_size_a=2.5)
    whole, parts = (read_mrc(tmp_path / name) for name in ("whole.mrc", "parts.mrc"))
    np.testing.assert_array_equal(parts.data, whole.data)
    assert parts.voxel_size_a == whole.voxel_size_a == 2.5


def tilts_per_part(shape: tuple[int, int, int]) -> int:
    first = next(tilt_parts(shape, PART_ELEMENTS))
    return first.stop - first.start


def test_parts_hold_a_bounded_number_of_values():
    assert tilts_per_part((61, 3500, 3500)) == 5  # 61 M values per part at most 2**26
    assert tilts_per_part((100, 1024, 1024)) == 64  # (a part never runs past the stack)
    assert tilts_per_part((3, 10**5, 10**5)) == 1  # never zero
    # Parts cover every tilt once, in order; the last one holds the rest.
    parts = list(tilt_parts((61, 3500, 3500), PART_ELEMENTS))
    assert [p.start for p in parts] == list(range(0, 61, 5)) and parts[-1] == slice(60, 61)
