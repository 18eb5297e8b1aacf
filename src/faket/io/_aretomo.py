"""AreTomo ``.aln`` alignment files, read with ``alnfile``.

An ``.aln`` describes the stack AreTomo read (``# RawSize = nx ny n``): one global
alignment row ``SEC ROT GMAG TX TY SMEAN SFIT SCALE BASE TILT`` per kept image, and one
``# DarkFrame = frame section tilt`` line per image AreTomo dropped. ``SEC`` and the
dark frame's second number are the image's section in that stack: 0-based in
AreTomo 1/2 (RELION 5 reads them so), 1-based in AreTomo3 (cryoet-alignment subtracts
1). The base is taken from the numbers themselves: together they must number the
``n`` images once each, as ``0 .. n-1`` or ``1 .. n``; rows and dark frames with
different bases, or the dark frame's first number, are accepted when only that fits.
``TILT`` includes AreTomo's ``AlphaOffset``; it is returned as written. ``ROT, TX, TY``
become IMOD ``.xf`` shifts and rotation with ``alnfile.df_to_xf``; dark images get NaN
there and ``excluded = True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from alnfile.data_model import AlnData

from faket.errors import FaketInputError
from faket.io._text import read_text
from faket.io.tilt_series_files import (
    READ_ERRORS,
    TiltSeriesInfo,
    library_error,
    sibling_stack,
    transform_from_aretomo,
)

_LOCAL_ALIGNMENT = "# Local Alignment"


def read_aln(file: Path) -> TiltSeriesInfo:
    """Read an AreTomo ``.aln`` (see the module docstring)."""
    text = read_text(file, kind="AreTomo .aln")
    # Only the global alignment is needed; older AreTomo versions write local rows that
    # alnfile cannot parse, so the local section is left out.
    global_part = text.split(_LOCAL_ALIGNMENT, 1)[0]
    try:
        aln = AlnData.from_string(global_part)
    except READ_ERRORS as err:
        raise library_error(file, "AreTomo .aln", err) from err
    rows, darks = aln.GlobalAlignments, aln.DarkFrames
    n = int(aln.RawSize[2])
    if not rows or n < 1:
        raise FaketInputError("has no global alignment rows (or RawSize is 0)", file)
    rows_image, dark_image = _image_indices(
        [row.sec for row in rows],
        ([dark.val2 for dark in darks], [dark.section_idx for dark in darks]),
        n,
        file,
    )
    angles = np.full(n, np.nan)
    angles[rows_image] = [row.tilt for row in rows]
    angles[dark_image] = [dark.angle for dark in darks]
    excluded = np.zeros(n, dtype=bool)
    excluded[dark_image] = True
    shifts = np.full((n, 2), np.nan)
    rotation = np.full(n, np.nan)
    shifts[rows_image], rotation[rows_image] = transform_from_aretomo(
        np.asarray([row.rot for row in rows], dtype=np.float64),
        np.asarray([row.tx for row in rows], dtype=np.float64),
        np.asarray([row.ty for row in rows], dtype=np.float64),
    )
    return TiltSeriesInfo(
        angles_deg=angles,
        shifts_px=shifts,
        in_plane_rotation_deg=rotation,
        excluded=excluded,
        tilt_series=sibling_stack(file),
        source=f"{file} (AreTomo .aln)",
    )


def _image_indices(
    row_sections: list[int],
    dark_numberings: tuple[list[int], list[int]],
    n: int,
    file: Path,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the 0-based image index of each row and dark frame (see the module docstring).

    The dark frames' section (second number) is tried before their first number, and
    rows and dark frames with the same base before mixed bases (AreTomo versions
    differ); the first reading that numbers the ``n`` images once each is used.
    """
    rows = np.asarray(row_sections, dtype=np.int64)
    for numbers in dark_numberings:
        darks = np.asarray(numbers, dtype=np.int64)
        for row_base, dark_base in ((0, 0), (1, 1), (1, 0), (0, 1)):
            images = np.concatenate([rows - row_base, darks - dark_base])
            if np.array_equal(np.sort(images), np.arange(n)):
                return rows - row_base, darks - dark_base
    raise FaketInputError(
        f"its {rows.size} alignment rows and {len(dark_numberings[0])} dark frames do not "
        f"number the {n} images of RawSize once each (as 0 .. {n - 1} or 1 .. {n})",
        file,
    )
