"""Tests for faket.io.mrc: MRC round trips, conversions and refusals of bad input."""

from __future__ import annotations

import ast
import gzip
import os
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest

import faket.io.mrc
from faket.errors import FaketInputError
from faket.io import MrcData, read_mrc, read_voxel_size, write_mrc


def _raw_mrc(path: Path, data: np.ndarray, *, voxel_size=None, stack: bool = False) -> Path:
    """Write ``data`` with mrcfile directly, in its own dtype (no faket checks)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mrcfile warns about NaN/Inf in header stats
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(data)
            if stack:
                mrc.set_image_stack()
            if voxel_size is not None:
                mrc.voxel_size = voxel_size
    return path


def _check_error(error: pytest.ExceptionInfo[FaketInputError], path: Path, *fragments: str):
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    assert error.value.path == str(path)
    for fragment in fragments:
        assert fragment in message, message


@pytest.fixture
def volume(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(4, 5, 6)).astype(np.float32)


# --- round trips ---------------------------------------------------------------------


def test_volume_round_trip_keeps_data_and_voxel_size(tmp_path, volume):
    path = tmp_path / "vol.mrc"
    write_mrc(volume, path, voxel_size_a=1.35)
    result = read_mrc(path, ndim=3)
    assert isinstance(result, MrcData)
    assert result.data.dtype == np.float32
    assert result.data.flags.c_contiguous and result.data.flags.writeable
    np.testing.assert_array_equal(result.data, volume)
    assert result.voxel_size_a == 1.35
    assert sorted(os.listdir(tmp_path)) == ["vol.mrc"]


def test_written_header_has_stats_and_all_voxel_sizes(tmp_path, volume):
    path = tmp_path / "vol.mrc"
    write_mrc(volume, path, voxel_size_a=2.5)
    with mrcfile.open(path) as mrc:
        assert int(mrc.header.mode) == 2
        assert tuple(mrc.voxel_size.item()) == (2.5, 2.5, 2.5)
        assert mrc.header.dmin == pytest.approx(volume.min())
        assert mrc.header.dmax == pytest.approx(volume.max())
        assert mrc.header.dmean == pytest.approx(volume.mean(), abs=1e-6)
        assert mrc.header.rms == pytest.approx(volume.std(), rel=1e-5)


def test_image_round_trip_without_voxel_size_gives_none(tmp_path, rng):
    image = rng.normal(size=(7, 9)).astype(np.float32)
    path = tmp_path / "image.mrc"
    write_mrc(image, path)
    result = read_mrc(path)
    assert result.data.shape == (7, 9)
    np.testing.assert_array_equal(result.data, image)
    assert result.voxel_size_a is None
    assert read_voxel_size(path) is None


@pytest.mark.parametrize(
    ("dtype", "mode"),
    [(np.int8, 0), (np.int16, 1), (np.uint8, 6), (np.uint16, 6), (np.float16, 12)],
)
def test_every_real_mode_is_read_as_float32(tmp_path, dtype, mode):
    values = np.arange(60).reshape(3, 4, 5).astype(dtype)
    path = _raw_mrc(tmp_path / "modes.mrc", values)
    with mrcfile.open(path) as mrc:
        assert int(mrc.header.mode) == mode  # the file really is in that mode
    data = read_mrc(path).data
    assert data.dtype == np.float32
    assert data.flags.writeable
    np.testing.assert_array_equal(data, values.astype(np.float32))


def test_big_endian_file_is_read_as_native_float32(tmp_path, volume):
    path = _raw_mrc(tmp_path / "big.mrc", volume.astype(">f4"))
    with mrcfile.open(path) as mrc:
        assert mrc.data.dtype.byteorder == ">"
    data = read_mrc(path).data
    assert data.dtype == np.dtype("float32") and data.dtype.isnative
    np.testing.assert_array_equal(data, volume)


@pytest.mark.parametrize("stack", [False, True])
def test_image_stack_and_volume_are_both_3d(tmp_path, volume, stack):
    path = _raw_mrc(tmp_path / "s.mrc", volume, stack=stack)
    with mrcfile.open(path) as mrc:
        assert int(mrc.header.ispg) == (0 if stack else 1)
    assert read_mrc(path, ndim=3).data.shape == (4, 5, 6)


def test_single_section_file_takes_the_requested_ndim(tmp_path, rng):
    image = rng.normal(size=(5, 6)).astype(np.float32)
    image_path = _raw_mrc(tmp_path / "image.mrc", image)
    assert read_mrc(image_path, ndim=3).data.shape == (1, 5, 6)
    section_path = _raw_mrc(tmp_path / "section.mrc", image[np.newaxis])
    assert read_mrc(section_path).data.shape == (1, 5, 6)
    np.testing.assert_array_equal(read_mrc(section_path, ndim=2).data, image)


def test_gzip_round_trip(tmp_path, volume):
    path = tmp_path / "vol.mrc.gz"
    write_mrc(volume, path, voxel_size_a=4.0)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    result = read_mrc(path)
    np.testing.assert_array_equal(result.data, volume)
    assert result.data.flags.writeable
    assert result.voxel_size_a == 4.0


def test_torch_tensor_is_detached_and_written_as_float32(tmp_path):
    torch = pytest.importorskip("torch")
    tensor = torch.linspace(-1, 1, 24, dtype=torch.float64).reshape(2, 3, 4)
    tensor.requires_grad_(True)
    path = tmp_path / "t.mrc"
    write_mrc(tensor * 2, path, voxel_size_a=3.0)
    expected = (tensor * 2).detach().numpy().astype(np.float32)
    np.testing.assert_array_equal(read_mrc(path).data, expected)


def test_bool_mask_is_written_as_zeros_and_ones(tmp_path):
    mask = np.zeros((3, 4, 5), dtype=bool)
    mask[1, 2, 3] = True
    path = tmp_path / "mask.mrc"
    write_mrc(mask, path)
    data = read_mrc(path).data
    assert data.sum() == 1.0 and data[1, 2, 3] == 1.0


def test_overwrite_default_replaces_existing_file(tmp_path, volume):
    path = tmp_path / "vol.mrc"
    write_mrc(np.zeros((2, 2, 2), np.float32), path)
    write_mrc(volume, path)
    np.testing.assert_array_equal(read_mrc(path).data, volume)


def test_mrc_module_does_not_import_torch():
    source = Path(faket.io.mrc.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "mrcfile" in imported  # the scan sees the module's imports
    assert "torch" not in imported


# --- voxel sizes ---------------------------------------------------------------------


def test_read_voxel_size_reads_the_header_only(tmp_path, volume):
    path = tmp_path / "vol.mrc"
    write_mrc(volume, path, voxel_size_a=1.35)
    assert read_voxel_size(path) == 1.35
    truncated = tmp_path / "cut.mrc"
    truncated.write_bytes(path.read_bytes()[:1100])  # header intact, data block cut
    assert read_voxel_size(truncated) == 1.35
    with pytest.raises(FaketInputError) as error:
        read_mrc(truncated)
    _check_error(error, truncated, "truncated or corrupt MRC file")


def test_anisotropic_pixels_are_refused(tmp_path, volume):
    path = _raw_mrc(tmp_path / "aniso.mrc", volume, voxel_size=(2.0, 3.0, 2.0))
    for reader in (read_mrc, read_voxel_size):
        with pytest.raises(FaketInputError) as error:
            reader(path)
        _check_error(error, path, "pixels are not square", "x 2 A", "y 3 A")


def test_different_z_voxel_size_is_accepted(tmp_path, volume):
    path = _raw_mrc(tmp_path / "stack.mrc", volume, voxel_size=(2.0, 2.0, 1.0))
    assert read_mrc(path).voxel_size_a == 2.0


# --- bad files -----------------------------------------------------------------------


def test_missing_file_and_folder_are_refused(tmp_path):
    missing = tmp_path / "nope.mrc"
    for reader in (read_mrc, read_voxel_size):
        with pytest.raises(FaketInputError) as error:
            reader(missing)
        _check_error(error, missing, "file not found")
    with pytest.raises(FaketInputError) as error:
        read_mrc(tmp_path)
    _check_error(error, tmp_path, "is a folder")


def test_random_bytes_are_not_an_mrc_file(tmp_path, rng):
    path = tmp_path / "noise.mrc"
    path.write_bytes(b"XY" + rng.integers(0, 256, size=3000, dtype=np.uint8).tobytes())
    for reader in (read_mrc, read_voxel_size):
        with pytest.raises(FaketInputError) as error:
            reader(path)
        _check_error(error, path, "not an MRC file")


@pytest.mark.parametrize("size", [20, 3000])
def test_text_file_is_not_an_mrc_file(tmp_path, size):
    path = tmp_path / "notes.mrc"
    path.write_text(("this is not an MRC file\n" * 200)[:size])
    with pytest.raises(FaketInputError) as error:
        read_mrc(path)
    _check_error(error, path, "not an MRC file")


def test_empty_file_is_not_an_mrc_file(tmp_path):
    path = tmp_path / "empty.mrc"
    path.write_bytes(b"")
    with pytest.raises(FaketInputError) as error:
        read_mrc(path)
    _check_error(error, path, "not an MRC file (shorter than the 1024-byte MRC header)")


def test_truncated_mrc_is_refused(tmp_path, volume):
    path = tmp_path / "vol.mrc"
    write_mrc(volume, path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(FaketInputError) as error:
        read_mrc(path)
    _check_error(error, path, "truncated or corrupt MRC file", "data block")


def test_mrc_with_trailing_bytes_is_refused(tmp_path, volume):
    path = tmp_path / "vol.mrc"
    write_mrc(volume, path)
    path.write_bytes(path.read_bytes() + bytes(16))
    with pytest.raises(FaketInputError) as error:
        read_mrc(path)
    _check_error(error, path, "corrupt MRC file", "16 bytes larger")


def test_corrupt_gzip_file_is_refused(tmp_path, volume):
    path = tmp_path / "vol.mrc.gz"
    write_mrc(volume, path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(FaketInputError) as error:
        read_mrc(path)
    _check_error(error, path, "not a readable MRC file")


def test_nan_and_inf_values_are_refused_on_read(tmp_path, volume):
    volume[0, 0, 0] = np.nan
    volume[1, 2, 3] = np.inf
    path = _raw_mrc(tmp_path / "nan.mrc", volume)
    with pytest.raises(FaketInputError) as error:
        read_mrc(path)
    _check_error(error, path, "2 of 120 values are NaN or Inf")
    data = read_mrc(path, allow_nonfinite=True).data
    assert np.isnan(data[0, 0, 0]) and np.isinf(data[1, 2, 3])


def test_ndim_mismatch_is_refused(tmp_path, volume):
    path = tmp_path / "vol.mrc"
    write_mrc(volume, path)
    with pytest.raises(FaketInputError) as error:
        read_mrc(path, ndim=2)
    _check_error(error, path, "expected 2-D data, got 3-D data of shape (4, 5, 6)")


def test_complex_and_volume_stack_files_are_refused(tmp_path):
    complex_path = _raw_mrc(tmp_path / "c.mrc", np.ones((2, 3, 4), np.complex64))
    with pytest.raises(FaketInputError) as error:
        read_mrc(complex_path)
    _check_error(error, complex_path, "complex data (MRC mode 4)")
    stack_path = _raw_mrc(tmp_path / "vs.mrc", np.ones((2, 3, 4, 5), np.float32))
    with pytest.raises(FaketInputError) as error:
        read_mrc(stack_path)
    _check_error(error, stack_path, "4-D volume stacks", "(2, 3, 4, 5)")


# --- refused writes leave nothing behind ----------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (np.full((2, 3, 4), np.nan, np.float32), "refusing to write 24 NaN/Inf values"),
        (np.array([[1.0, np.inf]]), "refusing to write 1 NaN/Inf values"),
        (np.array([[1.0, 1e300]]), "refusing to write 1 NaN/Inf values"),  # float32 overflow
        (np.ones(5, np.float32), "got shape (5,)"),
        (np.ones((1, 2, 3, 4), np.float32), "got shape (1, 2, 3, 4)"),
        (np.ones((0, 3), np.float32), "empty array"),
        (np.ones((2, 2), np.complex64), "dtype complex64"),
        (np.array([["a", "b"]]), "real numbers needed"),
    ],
)
def test_bad_data_is_refused_and_nothing_written(tmp_path, data, fragment):
    path = tmp_path / "out.mrc"
    with pytest.raises(FaketInputError) as error:
        write_mrc(data, path)
    _check_error(error, path, fragment)
    assert os.listdir(tmp_path) == []


def test_nan_tensor_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "out.mrc"
    with pytest.raises(FaketInputError) as error:
        write_mrc(torch.tensor([[0.0, float("nan")]]), path)
    _check_error(error, path, "refusing to write 1 NaN/Inf values")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("size", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_voxel_size_is_refused(tmp_path, volume, size):
    path = tmp_path / "out.mrc"
    with pytest.raises(FaketInputError) as error:
        write_mrc(volume, path, voxel_size_a=size)
    _check_error(error, path, "voxel size must be a positive number")
    assert os.listdir(tmp_path) == []


def test_overwrite_false_keeps_existing_file(tmp_path, volume):
    path = tmp_path / "vol.mrc"
    write_mrc(volume, path)
    before = path.read_bytes()
    with pytest.raises(FaketInputError) as error:
        write_mrc(np.zeros((2, 2), np.float32), path, overwrite=False)
    _check_error(error, path, "file exists")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["vol.mrc"]


def test_missing_output_folder_is_refused(tmp_path, volume):
    path = tmp_path / "no" / "vol.mrc"
    with pytest.raises(FaketInputError) as error:
        write_mrc(volume, path)
    _check_error(error, path, "does not exist")
    assert os.listdir(tmp_path) == []


def test_failed_nan_write_keeps_previous_file(tmp_path, volume):
    path = tmp_path / "vol.mrc"
    write_mrc(volume, path)
    before = path.read_bytes()
    with pytest.raises(FaketInputError):
        write_mrc(np.full((2, 2), np.nan, np.float32), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["vol.mrc"]


def test_gzip_output_is_gzip_and_reproducible(tmp_path, volume):
    path = tmp_path / "vol.mrc.gz"
    write_mrc(volume, path)
    packed = path.read_bytes()
    assert packed[4:8] == bytes(4)  # gzip time stamp 0, not the time of writing
    assert packed[10:18] == b"vol.mrc\x00"  # the final name, not the temporary one
    with gzip.open(path) as handle:
        assert handle.read(1024)[208:212] == b"MAP "
    assert os.listdir(tmp_path) == ["vol.mrc.gz"]


def test_bzip2_round_trip(tmp_path, volume):
    path = tmp_path / "vol.mrc.bz2"
    write_mrc(volume, path, voxel_size_a=2.0)
    assert path.read_bytes()[:3] == b"BZh"
    np.testing.assert_array_equal(read_mrc(path).data, volume)


def test_header_label_has_no_time_so_equal_data_give_equal_files(tmp_path, volume):
    first, second = tmp_path / "a.mrc", tmp_path / "b.mrc"
    write_mrc(volume, first, voxel_size_a=1.0)
    write_mrc(volume, second, voxel_size_a=1.0)
    with mrcfile.open(first) as mrc:
        assert int(mrc.header.nlabl) == 1
        assert mrc.header.label[0].strip() == b"Created by faket (mrcfile)"
    assert first.read_bytes() == second.read_bytes()


# --- memory-mapped reads (map_mrc) ---------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.float16, np.float32])
def test_map_mrc_gives_mrcfiles_data_in_its_own_dtype(tmp_path, rng, dtype):
    data = (rng.normal(size=(3, 4, 5)) * 20).astype(dtype)
    path = _raw_mrc(tmp_path / "v.mrc", data)
    mapped = faket.io.map_mrc(path)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    assert mapped.dtype == dtype
    with mrcfile.open(path) as mrc:  # oracle: mrcfile's own reader
        np.testing.assert_array_equal(mapped, mrc.data)


def test_map_mrc_skips_an_extended_header(tmp_path, volume):
    path = tmp_path / "ext.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(volume)
        mrc.set_extended_header(np.arange(37, dtype=np.uint8).view("V1"))
    mapped = faket.io.map_mrc(path)
    np.testing.assert_array_equal(mapped, volume)


def test_map_mrc_gives_an_image_one_section(tmp_path, volume):
    path = _raw_mrc(tmp_path / "image.mrc", volume[0])
    assert faket.io.map_mrc(path).shape == (1, 5, 6)


@pytest.mark.parametrize("suffix", [".mrc.gz", ".mrc.bz2"])
def test_map_mrc_reads_a_compressed_file_whole(tmp_path, volume, suffix):
    path = tmp_path / f"v{suffix}"
    write_mrc(volume, path)
    np.testing.assert_array_equal(faket.io.map_mrc(path), volume)


def test_map_mrc_refuses_a_truncated_file(tmp_path, volume):
    path = _raw_mrc(tmp_path / "cut.mrc", volume)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(FaketInputError) as error:
        faket.io.map_mrc(path)
    _check_error(error, path, "fewer bytes", "(4, 5, 6)")


def test_map_mrc_refuses_a_file_that_is_not_mrc(tmp_path):
    path = tmp_path / "text.mrc"
    path.write_text("not an MRC file\n" * 100)
    with pytest.raises(FaketInputError) as error:
        faket.io.map_mrc(path)
    _check_error(error, path)
