"""Tilt-angle files: IMOD ``.tlt`` / ``.rawtlt`` and SHREC 2021 ``alignment_simulated.txt``.

Angles are in degrees, in the order of the tilt-series' images (file order), within
[-89, 89].

IMOD ``.tlt`` / ``.rawtlt``
    One angle per line; blank lines and surrounding whitespace are ignored.

SHREC 2021 ``alignment_simulated.txt``
    A PyTom "alignment results" table, written by PyTom's ``savestar`` (numpy
    ``savetxt`` with ``#`` comments): a header of ``#`` lines naming one column each
    (``AlignmentTransX (px)``, ``AlignmentTransY (px)``, ``TiltAngle (degrees)``,
    ``InPlaneRotation (degrees)``, ``Magnification``, ``FileName``), then one
    whitespace-separated row per tilt image. The tilt angle is the column the header
    names ``TiltAngle``, the third column when the header does not say. Sources: PyTom's
    ``DATATYPE_ALIGNMENT_RESULTS`` / ``savestar`` and the readers of this file in the
    FakET paper's code (``get_theta_from_alignment``, third column after the header) and
    in teamtomo's torch-tomogram SHREC example (third column of the non-``#`` lines).
    The angles are returned as written: PyTom's simulator stores the negated
    acquisition angle, and no sign is changed here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faket.conventions import MAX_TILT_DEG
from faket.errors import FaketInputError
from faket.io._atomic import atomic_write
from faket.io._text import format_decimal, read_text_lines, snippet, to_float

_DECIMALS = 4
_DEFAULT_ALIGNMENT_COLUMN = 2  # TiltAngle is the third column of PyTom's table
_COLUMN_NAME = re.compile(r"^#\s*([A-Za-z_]\w*)\s*(\([^()]*\))?\s*$")


def read_tilt_angles(path: str | os.PathLike[str]) -> np.ndarray:
    """Read tilt angles from an IMOD ``.tlt``/``.rawtlt`` file or a SHREC alignment file.

    The format is chosen from the name and the content: a file whose name contains
    ``alignment`` (e.g. SHREC's ``alignment_simulated.txt``), or whose ``#`` header
    names a ``TiltAngle`` column, is read as a PyTom alignment table (see the module
    docstring); any other file must hold one angle per line.

    Parameters
    ----------
    path : str or PathLike
        The tilt-angle file.

    Returns
    -------
    np.ndarray
        float64 ``(n_tilts,)``, degrees, in file order.

    Raises
    ------
    FaketInputError
        If the file is missing, empty or not text, if a line is not a number (the message
        gives the line number and text), or if an angle is NaN or outside [-89, 89].
    """
    file = Path(path)
    lines = read_text_lines(file)
    if _is_alignment_table(file.name, lines):
        angles = _parse_alignment_table(lines, file)
    else:
        angles = _parse_one_per_line(lines, file)
    if not angles:
        raise FaketInputError("no tilt angles found (the file is empty)", file)
    return np.asarray(angles, dtype=np.float64)


def write_tilt_angles(angles: Sequence[float] | np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write tilt angles as an IMOD ``.tlt`` file (one per line), atomically.

    Each angle is written with at most 4 decimals and no trailing zeros (``-60``,
    ``1.5``, ``-0.1234``), so angles with up to 4 decimals read back exactly.

    Parameters
    ----------
    angles : sequence of float or np.ndarray
        ``(n_tilts,)`` degrees, each within [-89, 89].
    path : str or PathLike
        The file to write; its folder must exist.

    Raises
    ------
    FaketInputError
        Naming ``path``, if ``angles`` is not a non-empty 1-D list of numbers within
        [-89, 89]. Nothing is written then.
    """
    target = Path(path)
    try:
        values = np.asarray(angles, dtype=np.float64)
    except (TypeError, ValueError):
        raise FaketInputError("tilt angles must be numbers", target) from None
    if values.ndim != 1 or values.size == 0:
        raise FaketInputError(
            f"tilt angles must be a non-empty 1-D list, got shape {values.shape}", target
        )
    for index, value in enumerate(values.tolist()):
        problem = _angle_problem(value)
        if problem:
            raise FaketInputError(f"angle {index}: {problem}", target)
    text = "".join(format_decimal(value, _DECIMALS) + "\n" for value in values.tolist())
    with atomic_write(target) as temp:
        temp.write_text(text, encoding="utf-8")


def check_angle_count(
    n_tilts: int,
    angles: Sequence[float] | np.ndarray,
    *,
    stack_path: str | os.PathLike[str],
    angles_path: str | os.PathLike[str],
) -> None:
    """Check that a tilt-series has one tilt angle per image.

    Parameters
    ----------
    n_tilts : int
        The number of images in the tilt-series (its first axis).
    angles : sequence of float or np.ndarray
        ``(n_angles,)`` tilt angles in degrees.
    stack_path, angles_path : str or PathLike
        The tilt-series and tilt-angle files, named in the message.

    Raises
    ------
    FaketInputError
        ``"<angles_path>: has 41 tilt angles but <stack_path> has 61 images"``.
    """
    n_angles = len(angles)
    if n_angles != n_tilts:
        raise FaketInputError(
            f"has {n_angles} tilt angles but {stack_path} has {n_tilts} images", angles_path
        )


def _is_alignment_table(name: str, lines: list[str]) -> bool:
    """Return True for a PyTom/SHREC alignment table, by file name or header."""
    if "alignment" in name.lower():
        return True
    return any(line.lstrip().startswith("#") and "tiltangle" in line.lower() for line in lines)


def _parse_one_per_line(lines: list[str], file: Path) -> list[float]:
    """Parse an IMOD ``.tlt``-style file: one angle per line, blank lines ignored."""
    angles = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        fields = text.split()
        if len(fields) != 1:
            raise FaketInputError(
                f"line {number}: expected one tilt angle per line, got {snippet(text)}", file
            )
        value = to_float(fields[0])
        if value is None:
            raise FaketInputError(f"line {number}: {snippet(text)} is not a number", file)
        _check_angle(value, number, file)
        angles.append(value)
    return angles


def _parse_alignment_table(lines: list[str], file: Path) -> list[float]:
    """Parse a PyTom alignment table: ``#`` column names, then one row per tilt."""
    column_names: list[str] = []
    column: int | None = None
    angles = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            match = _COLUMN_NAME.match(text)
            if match and column is None:
                column_names.append(match.group(1).lower())
            continue
        if column is None:
            column = (
                column_names.index("tiltangle")
                if "tiltangle" in column_names
                else _DEFAULT_ALIGNMENT_COLUMN
            )
        fields = text.split()
        if len(fields) <= column:
            raise FaketInputError(
                f"line {number}: expected the tilt angle in column {column + 1}, "
                f"got {len(fields)} columns: {snippet(text)}",
                file,
            )
        value = to_float(fields[column])
        if value is None:
            raise FaketInputError(
                f"line {number}: tilt angle {snippet(fields[column])} (column {column + 1}) "
                "is not a number",
                file,
            )
        _check_angle(value, number, file)
        angles.append(value)
    return angles


def _check_angle(value: float, line_number: int, file: Path) -> None:
    """Raise `FaketInputError` if ``value`` is not a tilt angle."""
    problem = _angle_problem(value)
    if problem:
        raise FaketInputError(f"line {line_number}: {problem}", file)


def _angle_problem(value: float) -> str | None:
    """Return what is wrong with a tilt angle in degrees, or None."""
    if np.isnan(value):
        return "tilt angle is NaN"
    if not -MAX_TILT_DEG <= value <= MAX_TILT_DEG:
        return f"tilt angle {value:g} is outside [-{MAX_TILT_DEG:g}, {MAX_TILT_DEG:g}] degrees"
    return None
