"""IMOD files: tilt angles (``.tlt``, ``.rawtlt``, ``.txt``) and transforms (``.xf``).

``.xf``: one line per image of the raw stack, six numbers ``A11 A12 A21 A22 DX DY``:
the transform ``x' = A x + (DX, DY)`` (about the image centre) that aligns the image
(IMOD ``xfmodel``/``newstack`` documentation). A ``.xf`` has no angles; they come
from the sibling ``<stem>.tlt`` (the refined angles of the same images), else
``<stem>.rawtlt``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faket.errors import FaketInputError
from faket.io._text import read_text_lines, snippet, to_float
from faket.io.angles import read_tilt_angles
from faket.io.tilt_series_files import TiltSeriesInfo, sibling_stack

_XF_COLUMNS = 6


def read_angles(file: Path) -> TiltSeriesInfo:
    """Read a tilt-angle file (see :func:`faket.io.read_tilt_angles`)."""
    return TiltSeriesInfo(
        angles_deg=read_tilt_angles(file),
        tilt_series=sibling_stack(file),
        source=f"{file} (tilt angles)",
    )


def read_xf(file: Path) -> TiltSeriesInfo:
    """Read an IMOD ``.xf`` and the angles of its sibling ``.tlt``/``.rawtlt``."""
    rows = read_xf_rows(file)
    angles_file = next(
        (file.with_suffix(s) for s in (".tlt", ".rawtlt") if file.with_suffix(s).is_file()),
        None,
    )
    if angles_file is None:
        raise FaketInputError(
            f"an .xf file has no tilt angles; put {file.with_suffix('.tlt').name} "
            f"(or {file.with_suffix('.rawtlt').name}) next to it",
            file,
        )
    angles = read_tilt_angles(angles_file)
    if angles.size != len(rows):
        raise FaketInputError(
            f"has {len(rows)} transforms but {angles_file} has {angles.size} tilt angles", file
        )
    return TiltSeriesInfo(
        angles_deg=angles,
        shifts_px=rows[:, [5, 4]],
        in_plane_rotation_deg=np.degrees(np.arctan2(rows[:, 2], rows[:, 0])),
        tilt_series=sibling_stack(file),
        source=f"{file} (IMOD .xf, angles from {angles_file.name})",
    )


def read_xf_rows(file: Path) -> np.ndarray:
    """Return the ``(n, 6)`` float64 rows ``A11 A12 A21 A22 DX DY`` of an IMOD ``.xf``."""
    rows = []
    for number, line in enumerate(read_text_lines(file), start=1):
        fields = line.split()
        if not fields:
            continue
        values = [to_float(field) for field in fields]
        if len(values) != _XF_COLUMNS or any(v is None for v in values):
            raise FaketInputError(
                f"line {number}: expected 6 numbers (A11 A12 A21 A22 DX DY), got "
                f"{snippet(line.strip())}",
                file,
            )
        rows.append(values)
    if not rows:
        raise FaketInputError("no transforms found (the file is empty)", file)
    return np.asarray(rows, dtype=np.float64)
