"""Per-tilt acquisition metadata of a simulated tilt-series, as a JSON sidecar.

``projections.mrc`` gets ``projections.tilts.json``. Layout (version 1)::

    {
      "format": "faket-tilt-metadata",
      "version": 1,
      "pixel_size_a": 10.0,
      "units": {"angle_deg": "degree", ...},
      "settings": {...},
      "tilts": [
        {"index": 0, "angle_deg": -60.0, "acquisition_rank": 58,
         "prior_exposure_e_per_a2": 114.1, "exposure_e_per_a2": 1.97,
         "defocus_um": 3.02, "shift_y_px": 0.4, "shift_x_px": -1.1,
         "zero_loss_fraction": 0.39},
        ...
      ]
    }

One row per image, in image (file) order. Numbers are written with Python's shortest
round-trip representation, so they read back bit-identical.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from faket.errors import FaketInputError
from faket.io._atomic import atomic_write
from faket.io._text import read_text
from faket.io.provenance import provenance_path

__all__ = [
    "TILT_METADATA_FORMAT",
    "TILT_METADATA_VERSION",
    "read_tilt_metadata",
    "tilt_metadata_path",
    "write_tilt_metadata",
]

TILT_METADATA_FORMAT = "faket-tilt-metadata"
"""Value of the ``"format"`` key that identifies a tilt-metadata sidecar."""

TILT_METADATA_VERSION = 1
"""Version of the layout written by :func:`write_tilt_metadata`."""

_PROVENANCE_SUFFIX = ".provenance.json"


def tilt_metadata_path(output: str | os.PathLike[str]) -> Path:
    """Return the sidecar next to a tilt-series (``TS.mrc`` -> ``TS.tilts.json``)."""
    name = provenance_path(output).name
    return Path(output).with_name(name[: -len(_PROVENANCE_SUFFIX)] + ".tilts.json")


def write_tilt_metadata(
    tilts: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    pixel_size_a: float,
    settings: Mapping[str, Any] | None = None,
    units: Mapping[str, str] | None = None,
) -> None:
    """Write the per-tilt metadata of a tilt-series as JSON, atomically.

    Parameters
    ----------
    tilts : sequence of mapping
        One mapping of plain numbers per image, in image order.
    path : str or PathLike
        The JSON file to write; its folder must exist.
    pixel_size_a : float
        Pixel size of the tilt-series in Å.
    settings : mapping, optional
        The settings that made the tilt-series (plain values).
    units : mapping, optional
        The unit of each per-tilt field, for readers.

    Raises
    ------
    FaketInputError
        Naming ``path``, if a value is not finite or not JSON-serialisable, or the folder
        does not exist. Nothing is written then.
    """
    target = Path(path)
    record = {
        "format": TILT_METADATA_FORMAT,
        "version": TILT_METADATA_VERSION,
        "pixel_size_a": float(pixel_size_a),
        "units": dict(units or {}),
        "settings": dict(settings or {}),
        "tilts": [dict(t) for t in tilts],
    }
    try:
        text = json.dumps(record, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as err:
        raise FaketInputError(f"cannot write the tilt metadata ({err})", target) from err
    with atomic_write(target) as temp:
        temp.write_text(text, encoding="utf-8")


def read_tilt_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a tilt-metadata sidecar written by :func:`write_tilt_metadata`.

    Returns
    -------
    dict
        The whole record; ``record["tilts"]`` is a list of one dict per image.

    Raises
    ------
    FaketInputError
        If the file is missing, not JSON, not a faket tilt-metadata file of a known
        version, or has a tilt row that is not a mapping of numbers.
    """
    file = Path(path)
    try:
        record = json.loads(read_text(file, kind="JSON"))
    except json.JSONDecodeError as err:
        raise FaketInputError(f"not valid JSON (line {err.lineno}: {err.msg})", file) from None
    if not isinstance(record, dict) or record.get("format") != TILT_METADATA_FORMAT:
        raise FaketInputError(f"not a {TILT_METADATA_FORMAT} file", file)
    if record.get("version") != TILT_METADATA_VERSION:
        raise FaketInputError(f"unsupported version {record.get('version')!r}", file)
    tilts = record.get("tilts")
    if not isinstance(tilts, list) or not tilts:
        raise FaketInputError("no tilts listed", file)
    for index, row in enumerate(tilts):
        if not isinstance(row, dict) or not all(
            isinstance(v, int | float) and math.isfinite(v) for v in row.values()
        ):
            raise FaketInputError(f"tilt {index} is not a mapping of finite numbers", file)
    return record
