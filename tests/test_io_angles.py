"""Tests for faket.io.angles: IMOD .tlt, SHREC alignment files, the angle-count check."""

from __future__ import annotations

import os

import numpy as np
import pytest

from faket.errors import FaketInputError
from faket.io import check_angle_count, read_tilt_angles, write_tilt_angles

# The layout PyTom's savestar writes (numpy savetxt, '#' comments, '%15.10f' columns),
# as in SHREC 2021's alignment_simulated.txt. The tilt angle is the third column.
PYTOM_HEADER = (
    "#AlignmentTransX (px)\n#AlignmentTransY (px)\n#TiltAngle (degrees)\n"
    "#InPlaneRotation (degrees)\n#Magnification \n#FileName \n#\n"
)


def _pytom_row(angle: float, index: int) -> str:
    return (
        f"{0.5:15.10f} {-1.25:15.10f} {angle:15.10f} {0.0:15.10f} {1.0:15.10f} "
        f"projections/synthetic_{index}.mrc\n"
    )


def _check_error(error: pytest.ExceptionInfo[FaketInputError], path, *fragments: str):
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


# --- IMOD ----------------------------------------------------------------------------


def test_tlt_round_trip_is_exact(tmp_path):
    angles = np.array([-60.0, -57.5, -0.1234, 0.0, 3.0, 59.9999, 89.0])
    path = tmp_path / "ts.tlt"
    write_tilt_angles(angles, path)
    assert path.read_text() == "-60\n-57.5\n-0.1234\n0\n3\n59.9999\n89\n"
    result = read_tilt_angles(path)
    assert result.dtype == np.float64 and result.shape == (7,)
    np.testing.assert_array_equal(result, angles)
    assert os.listdir(tmp_path) == ["ts.tlt"]


def test_write_rounds_to_four_decimals(tmp_path):
    path = tmp_path / "ts.tlt"
    write_tilt_angles([1.23456789, -0.00001], path)
    assert path.read_text() == "1.2346\n0\n"


def test_imod_file_with_blank_lines_whitespace_and_crlf(tmp_path):
    path = tmp_path / "ts.rawtlt"
    path.write_bytes(b"  -60.00\r\n\r\n\t-58.00  \r\n   \r\n 1e1\r\n")
    np.testing.assert_array_equal(read_tilt_angles(path), [-60.0, -58.0, 10.0])


def test_unknown_name_with_one_number_per_line_is_read(tmp_path):
    path = tmp_path / "angles.txt"
    path.write_text("-3\n0\n3\n")
    np.testing.assert_array_equal(read_tilt_angles(path), [-3.0, 0.0, 3.0])


def test_file_order_is_kept(tmp_path):
    path = tmp_path / "dose_symmetric.tlt"
    path.write_text("0\n3\n-3\n-6\n6\n")
    np.testing.assert_array_equal(read_tilt_angles(path), [0.0, 3.0, -3.0, -6.0, 6.0])


# --- SHREC / PyTom alignment tables ---------------------------------------------------


def test_shrec_alignment_file_gives_the_tilt_angle_column(tmp_path):
    angles = np.linspace(-60.0, 60.0, 61)
    path = tmp_path / "alignment_simulated.txt"
    path.write_text(PYTOM_HEADER + "".join(_pytom_row(a, i + 1) for i, a in enumerate(angles)))
    result = read_tilt_angles(path)
    assert result.shape == (61,)
    np.testing.assert_allclose(result, angles, rtol=0, atol=1e-10)


def test_alignment_name_without_header_uses_the_third_column(tmp_path):
    path = tmp_path / "my_alignment.txt"
    path.write_text("1 2 -30 0 1\n1 2 30 0 1\n")
    np.testing.assert_array_equal(read_tilt_angles(path), [-30.0, 30.0])


def test_alignment_table_is_recognised_by_its_header(tmp_path):
    path = tmp_path / "renamed.txt"
    path.write_text(PYTOM_HEADER + _pytom_row(-45.0, 1) + _pytom_row(45.0, 2))
    np.testing.assert_array_equal(read_tilt_angles(path), [-45.0, 45.0])


def test_alignment_header_gives_the_column(tmp_path):
    path = tmp_path / "alignment.txt"
    path.write_text(
        "# written by a test\n#TiltAngle (degrees)\n#AlignmentTransX (px)\n-20 5\n20 5\n"
    )
    np.testing.assert_array_equal(read_tilt_angles(path), [-20.0, 20.0])


def test_alignment_row_too_short_is_refused(tmp_path):
    path = tmp_path / "alignment_simulated.txt"
    path.write_text(PYTOM_HEADER + _pytom_row(0.0, 1) + "0.5 -1.25\n")
    with pytest.raises(FaketInputError) as error:
        read_tilt_angles(path)
    _check_error(error, path, "line 9:", "column 3", "got 2 columns", "'0.5 -1.25'")


def test_alignment_angle_not_a_number_is_refused(tmp_path):
    path = tmp_path / "alignment_simulated.txt"
    path.write_text(PYTOM_HEADER + "0.5 -1.25 abc 0 1 f.mrc\n")
    with pytest.raises(FaketInputError) as error:
        read_tilt_angles(path)
    _check_error(error, path, "line 8: tilt angle 'abc' (column 3) is not a number")


def test_alignment_angle_out_of_range_is_refused(tmp_path):
    path = tmp_path / "alignment_simulated.txt"
    path.write_text(PYTOM_HEADER + _pytom_row(0.0, 1) + _pytom_row(120.0, 2))
    with pytest.raises(FaketInputError) as error:
        read_tilt_angles(path)
    _check_error(error, path, "line 9: tilt angle 120 is outside [-89, 89] degrees")


# --- bad IMOD files ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("-60\n0\nsixty\n", "line 3: 'sixty' is not a number"),
        ("-60\n0 3\n", "line 2: expected one tilt angle per line, got '0 3'"),
        ("-60\nnan\n", "line 2: tilt angle is NaN"),
        ("-60\n\n95.5\n", "line 3: tilt angle 95.5 is outside [-89, 89] degrees"),
        ("-inf\n", "line 1: tilt angle -inf is outside [-89, 89] degrees"),
        ("", "no tilt angles found"),
        ("\n  \n\n", "no tilt angles found"),
    ],
)
def test_bad_tlt_is_refused_with_line_number(tmp_path, text, fragment):
    path = tmp_path / "ts.tlt"
    path.write_text(text)
    with pytest.raises(FaketInputError) as error:
        read_tilt_angles(path)
    _check_error(error, path, fragment)


def test_long_bad_line_is_shortened_in_the_message(tmp_path):
    path = tmp_path / "ts.tlt"
    path.write_text("x" * 500 + "\n")
    with pytest.raises(FaketInputError) as error:
        read_tilt_angles(path)
    assert len(str(error.value)) < len(str(path)) + 100
    _check_error(error, path, "line 1:", "...")


def test_missing_and_binary_files_are_refused(tmp_path):
    missing = tmp_path / "none.tlt"
    with pytest.raises(FaketInputError) as error:
        read_tilt_angles(missing)
    _check_error(error, missing, "file not found")
    binary = tmp_path / "binary.tlt"
    binary.write_bytes(b"\xff\xfe\x00\x81\x92" * 10)
    with pytest.raises(FaketInputError) as error:
        read_tilt_angles(binary)
    _check_error(error, binary, "not a text file")


# --- writing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("angles", "fragment"),
    [
        ([0.0, float("nan")], "angle 1: tilt angle is NaN"),
        ([0.0, 90.0], "angle 1: tilt angle 90 is outside [-89, 89] degrees"),
        ([[0.0, 1.0]], "got shape (1, 2)"),
        ([], "got shape (0,)"),
        (["a", "b"], "tilt angles must be numbers"),
    ],
)
def test_bad_angles_are_refused_and_nothing_written(tmp_path, angles, fragment):
    path = tmp_path / "out.tlt"
    with pytest.raises(FaketInputError) as error:
        write_tilt_angles(angles, path)
    _check_error(error, path, fragment)
    assert os.listdir(tmp_path) == []


def test_write_into_missing_folder_is_refused(tmp_path):
    path = tmp_path / "missing" / "out.tlt"
    with pytest.raises(FaketInputError) as error:
        write_tilt_angles([0.0], path)
    _check_error(error, path, "does not exist")


# --- angle count ---------------------------------------------------------------------


def test_angle_count_mismatch_names_both_files(tmp_path):
    stack, angles_file = tmp_path / "ts.mrc", tmp_path / "ts.tlt"
    with pytest.raises(FaketInputError) as error:
        check_angle_count(61, np.zeros(41), stack_path=stack, angles_path=angles_file)
    assert str(error.value) == f"{angles_file}: has 41 tilt angles but {stack} has 61 images"
    assert error.value.path == str(angles_file)


def test_matching_angle_count_passes():
    assert check_angle_count(3, [-3.0, 0.0, 3.0], stack_path="a.mrc", angles_path="a.tlt") is None
