"""RELION 5 tilt-series STAR files, read with ``starfile``.

``tomograms.star`` has a ``global`` table, one row per tilt-series: ``rlnTomoName``,
``rlnTomoTiltSeriesPixelSize`` (A), ``rlnTomoTiltSeriesStarFile`` (the tilt-series'
own STAR file) and, from RELION 4, ``rlnTomoTiltSeriesName`` (a stack). The
tilt-series' STAR file has one row per tilt image, in its order:
``rlnTomoNominalStageTiltAngle`` and, after alignment, ``rlnTomoYTilt`` (preferred:
RELION reconstructs with it), ``rlnMicrographPreExposure`` (e/A^2 before the image),
``rlnDefocusU/V`` (A), ``rlnTomoZRot``, ``rlnTomoXShiftAngst``,
``rlnTomoYShiftAngst`` and one MRC per image: ``rlnMicrographName`` and the half sets
``rlnMicrographNameEven/Odd``.

Paths in RELION STAR files are relative to the RELION project folder, which is not
written anywhere: it is taken to be the STAR file's folder, or the first folder above
it, in which the tilt-series STAR file (for a ``tomograms.star``) or the first
micrograph (for a tilt-series STAR file) exists; every other path is taken relative to
it, whether or not it exists. The acquisition order is the rank of the pre-exposure when all
differ. The shifts (divided by the pixel size) and ``rlnTomoZRot`` are read as
AreTomo's ``TX, TY, ROT`` (RELION's AreTomo import copies them so) and turned into
IMOD ``.xf`` form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import starfile

from faket.errors import FaketInputError
from faket.io.tilt_series_files import (
    READ_ERRORS,
    TiltSeriesInfo,
    library_error,
    rank,
    transform_from_aretomo,
)

_ANGLE_COLUMNS = ("rlnTomoYTilt", "rlnTomoNominalStageTiltAngle")
_MAX_NAMES_SHOWN = 8


def read_relion_star(file: Path, name: str | None) -> TiltSeriesInfo:
    """Read a RELION ``tomograms.star`` (its tilt-series ``name``) or a tilt-series STAR."""
    blocks = _read_star(file)
    table = blocks.get("global")
    if isinstance(table, pd.DataFrame) and "rlnTomoTiltSeriesStarFile" in table.columns:
        return _read_tomograms_row(file, _select_row(file, table, name))
    if name is not None:
        raise FaketInputError(
            f"is a tilt-series STAR file, not a tomograms.star; name={name!r} selects nothing",
            file,
        )
    tilts = _tilt_table(blocks)
    if tilts is None:
        raise FaketInputError(
            "has no rlnTomoTiltSeriesStarFile (tomograms.star) or rlnTomoNominalStageTiltAngle "
            "(tilt-series) table",
            file,
        )
    first = str(tilts["rlnMicrographName"].iloc[0]) if "rlnMicrographName" in tilts else ""
    root = project_root(first, file) if first else None
    return _read_tilt_table(
        file, tilts, root=root or file.parent.absolute(), pixel_size_a=None, stack=None
    )


def _read_star(file: Path) -> dict[str, Any]:
    """Return the data blocks of a STAR file, names kept as text."""
    try:
        blocks = starfile.read(file, always_dict=True, parse_as_string=["rlnTomoName"])
    except READ_ERRORS as err:
        raise library_error(file, "STAR", err) from err
    return dict(blocks)


def _tilt_table(blocks: dict[str, Any]) -> pd.DataFrame | None:
    """Return the first table with a tilt-angle column."""
    for block in blocks.values():
        if isinstance(block, pd.DataFrame) and any(c in block.columns for c in _ANGLE_COLUMNS):
            return block
    return None


def _select_row(file: Path, table: pd.DataFrame, name: str | None) -> pd.Series:
    """Return the ``global`` row of tilt-series ``name`` (or the only one)."""
    names = [str(value) for value in table.get("rlnTomoName", pd.Series(dtype=str))]
    if name is None and len(table) == 1:
        return table.iloc[0]
    shown = ", ".join(names[:_MAX_NAMES_SHOWN]) + (", ..." if len(names) > _MAX_NAMES_SHOWN else "")
    if name is None:
        raise FaketInputError(f"holds {len(table)} tilt-series ({shown}); choose one by name", file)
    if names.count(name) != 1:
        raise FaketInputError(f"has no single tilt-series named {name!r} (it has {shown})", file)
    return table.iloc[names.index(name)]


def _read_tomograms_row(file: Path, row: pd.Series) -> TiltSeriesInfo:
    """Read the tilt-series STAR file a ``tomograms.star`` row points to."""
    relative = str(row["rlnTomoTiltSeriesStarFile"])
    root = project_root(relative, file)
    if root is None:
        raise FaketInputError(
            f"its tilt-series STAR file {relative} was found neither next to it nor in a "
            "folder above it",
            file,
        )
    tilt_star = _resolve(relative, root)
    tilts = _tilt_table(_read_star(tilt_star))
    if tilts is None:
        raise FaketInputError("has no rlnTomoNominalStageTiltAngle table", tilt_star)
    pixel = row.get("rlnTomoTiltSeriesPixelSize")
    stack = row.get("rlnTomoTiltSeriesName")
    return _read_tilt_table(
        tilt_star,
        tilts,
        root=root,
        pixel_size_a=None if pixel is None else float(pixel),
        stack=None if stack is None else _resolve(str(stack), root),
        listed_in=file,
    )


def _read_tilt_table(
    file: Path,
    tilts: pd.DataFrame,
    *,
    root: Path,
    pixel_size_a: float | None,
    stack: Path | None,
    listed_in: Path | None = None,
) -> TiltSeriesInfo:
    """Read one tilt-series' table (one row per image)."""
    angle_column = next(c for c in _ANGLE_COLUMNS if c in tilts.columns)
    angles = _column(tilts, angle_column)
    assert angles is not None  # the column is there
    prior = _column(tilts, "rlnMicrographPreExposure")
    shifts, rotation = _shifts(tilts, pixel_size_a)
    defocus_u, defocus_v = _column(tilts, "rlnDefocusU"), _column(tilts, "rlnDefocusV")
    origin = "" if listed_in is None else f", listed in {listed_in}"
    return TiltSeriesInfo(
        angles_deg=angles,
        pixel_size_a=pixel_size_a,
        acquisition_order=None if prior is None else rank(prior),
        prior_dose_e_per_a2=prior,
        shifts_px=shifts,
        in_plane_rotation_deg=rotation,
        defocus_um=None
        if defocus_u is None or defocus_v is None
        else (defocus_u + defocus_v) / 2 / 1e4,
        tilt_series=stack,
        images=_paths(tilts, "rlnMicrographName", root),
        even_images=_paths(tilts, "rlnMicrographNameEven", root),
        odd_images=_paths(tilts, "rlnMicrographNameOdd", root),
        source=f"{file} (RELION tilt-series STAR, angles from {angle_column}{origin})",
    )


def _column(table: pd.DataFrame, name: str) -> np.ndarray | None:
    """Return a numeric column as float64, or None if it is absent."""
    if name not in table.columns:
        return None
    return pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)


def _shifts(
    tilts: pd.DataFrame, pixel_size_a: float | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return the shifts and rotation in IMOD ``.xf`` form, or (None, None)."""
    x_shift, y_shift = _column(tilts, "rlnTomoXShiftAngst"), _column(tilts, "rlnTomoYShiftAngst")
    if x_shift is None or y_shift is None or not pixel_size_a:
        return None, None
    rot = _column(tilts, "rlnTomoZRot")
    rot = np.zeros_like(x_shift) if rot is None else rot
    return transform_from_aretomo(rot, x_shift / pixel_size_a, y_shift / pixel_size_a)


def _paths(table: pd.DataFrame, column: str, root: Path) -> tuple[Path, ...] | None:
    """Return the per-image files of ``column`` relative to the project folder ``root``."""
    if column not in table.columns:
        return None
    return tuple(_resolve(str(value), root) for value in table[column])


def _resolve(relative: str, root: Path) -> Path:
    """Return a STAR file's path (``:mrc`` suffix dropped) relative to the project ``root``."""
    relative = relative.rsplit(":", 1)[0] if relative.endswith((":mrc", ":mrcs")) else relative
    return Path(relative) if Path(relative).is_absolute() else root / relative


def project_root(relative: str, star: Path) -> Path | None:
    """Return the folder at or above the STAR file's in which ``relative`` exists, or None."""
    if Path(relative).is_absolute():
        return star.parent.absolute() if Path(relative).exists() else None
    folder = star.parent.absolute()
    for candidate in (folder, *folder.parents):
        if (candidate / relative).exists():
            return candidate
    return None
