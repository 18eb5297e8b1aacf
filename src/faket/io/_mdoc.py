"""SerialEM ``.mdoc`` tilt-series metadata, read with ``mdocfile``.

SerialEM writes one ``[ZValue = i]`` section per image, ``i`` the image's index in the
stack, with ``TiltAngle``, ``ExposureDose`` (e/A^2 of that image), ``PriorRecordDose``
(e/A^2 received before it), ``DateTime`` and ``TargetDefocus`` (um, negative for
underfocus); the header has ``PixelSpacing`` (A). (SerialEM's "about formats" page.)

The acquisition order is taken, in this order of preference, from ``DateTime`` (ties
broken by the sections' order in the file), from ``PriorRecordDose`` (when all differ),
or else from the order of the sections in the file, which SerialEM appends as it
acquires. ``source`` says which.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from mdocfile.data_models import Mdoc

from faket.errors import FaketInputError
from faket.io.tilt_series_files import (
    READ_ERRORS,
    TiltSeriesInfo,
    library_error,
    rank,
    sibling_stack,
)

_EPOCH = datetime(1970, 1, 1)
_DATE_FORMATS = ("%d-%b-%y %H:%M:%S", "%d-%b-%Y %H:%M:%S", "%Y-%b-%d %H:%M:%S")


def read_mdoc(file: Path) -> TiltSeriesInfo:
    """Read a SerialEM tilt-series ``.mdoc`` (see the module docstring)."""
    try:
        with _quiet_mdocfile():
            mdoc = Mdoc.from_file(str(file))
    except UnicodeDecodeError:
        raise FaketInputError("not a SerialEM mdoc file (it is not text)", file) from None
    except READ_ERRORS as err:
        raise library_error(file, "SerialEM mdoc", err) from err
    sections = list(mdoc.section_data)
    image = _image_indices(sections, file)
    angles = _per_image(sections, image, "TiltAngle")
    if angles is None:
        raise FaketInputError("a section has no TiltAngle; not a tilt-series mdoc", file)
    order, order_source = _acquisition_order(sections, image)
    target = _per_image(sections, image, "TargetDefocus")
    return TiltSeriesInfo(
        angles_deg=angles,
        pixel_size_a=_pixel_size(mdoc, file),
        acquisition_order=order,
        dose_e_per_a2=_per_image(sections, image, "ExposureDose"),
        prior_dose_e_per_a2=_per_image(sections, image, "PriorRecordDose"),
        defocus_um=None if target is None else -target,
        tilt_series=_stack(file, mdoc),
        source=f"{file} (SerialEM mdoc, acquisition order from {order_source})",
    )


@contextmanager
def _quiet_mdocfile() -> Iterator[None]:
    """Hold back mdocfile's log warnings (unknown fields, renamed keys) while reading."""
    logger = logging.getLogger("mdocfile")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _image_indices(sections: list[Any], file: Path) -> np.ndarray:
    """Return each section's image index (its ZValue), checked to be ``0 .. n-1``."""
    if not sections:
        raise FaketInputError("has no [ZValue = ...] sections; not a tilt-series mdoc", file)
    z_values = [section.ZValue for section in sections]
    if any(z is None for z in z_values):
        raise FaketInputError("has sections without a ZValue (a montage or frame mdoc?)", file)
    image = np.asarray(z_values, dtype=np.int64)
    if not np.array_equal(np.sort(image), np.arange(image.size)):
        raise FaketInputError(
            f"the ZValues of its {image.size} sections are not 0 .. {image.size - 1}", file
        )
    return image


def _per_image(sections: list[Any], image: np.ndarray, key: str) -> np.ndarray | None:
    """Return ``key`` of every section in image order, or None if a section lacks it."""
    values = [getattr(section, key) for section in sections]
    if any(value is None for value in values):
        return None
    result = np.empty(image.size, dtype=np.float64)
    result[image] = np.asarray(values, dtype=np.float64)
    return result


def _acquisition_order(sections: list[Any], image: np.ndarray) -> tuple[np.ndarray, str]:
    """Return the exposure rank of each image and where it came from."""
    file_position = np.arange(len(sections), dtype=np.float64)
    times = [_parse_time(section.DateTime) for section in sections]
    prior = [section.PriorRecordDose for section in sections]
    if all(t is not None for t in times):
        seconds = np.asarray([(t - _EPOCH).total_seconds() for t in times if t is not None])
        keys, where = np.lexsort((file_position, seconds)), "DateTime"
    elif all(p is not None for p in prior) and rank(np.asarray(prior, float)) is not None:
        keys, where = np.argsort(np.asarray(prior, float), kind="stable"), "PriorRecordDose"
    else:
        keys, where = np.arange(len(sections)), "the order of the sections in the file"
    by_section = np.empty(len(sections), dtype=np.int64)
    by_section[keys] = np.arange(len(sections))
    order = np.empty(image.size, dtype=np.int64)
    order[image] = by_section
    return order, where


def _parse_time(text: str | None) -> datetime | None:
    """Parse SerialEM's ``DateTime`` (``17-Feb-21  11:47:31``), or return None."""
    if not text:
        return None
    tidy = " ".join(text.split())
    for layout in _DATE_FORMATS:
        try:
            return datetime.strptime(tidy, layout)
        except ValueError:
            continue
    return None


def _pixel_size(mdoc: Mdoc, file: Path) -> float | None:
    """Return the header's ``PixelSpacing``, else the one all sections share, else None."""
    if mdoc.global_data.PixelSpacing:
        return float(mdoc.global_data.PixelSpacing)
    sizes = {section.PixelSpacing for section in mdoc.section_data}
    if len(sizes) == 1 and None not in sizes:
        return float(sizes.pop())
    if len(sizes - {None}) > 1:
        raise FaketInputError("its sections have different PixelSpacing values", file)
    return None


def _stack(file: Path, mdoc: Mdoc) -> Path | None:
    """Return the stack the mdoc describes: ``TS.mrc`` for ``TS.mrc.mdoc``, or ImageFile."""
    named = file.with_suffix("")  # TS.mrc.mdoc -> TS.mrc
    if named.suffix.lower() in (".mrc", ".st", ".mrcs") and named.is_file():
        return named
    image_file = mdoc.global_data.ImageFile
    if image_file is not None and file.with_name(Path(image_file).name).is_file():
        return file.with_name(Path(image_file).name)
    return sibling_stack(file)
