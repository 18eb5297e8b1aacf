"""Reference tilt-series metadata from the files that acquisition and alignment software write.

One entry point, :func:`read_tilt_series_info`, reads what faket needs to know about a
user's own tilt-series (tilt angles, pixel size, acquisition order, dose, shifts,
defocus, dropped images, half-set files) from the metadata file next to the stack, and
returns it per image in IMAGE (file) order, whatever order the format lists it in.

==========================  ==========================================================
input                       read with / what it gives
==========================  ==========================================================
``.tlt`` ``.rawtlt``        :func:`faket.io.read_tilt_angles`: angles.
``.txt``                    the same (one angle per line, or a SHREC/PyTom table).
``.xf``                     IMOD transforms: shifts and in-plane rotation; the angles
                            come from the sibling ``<stem>.tlt`` (else ``.rawtlt``).
``.mdoc``                   ``mdocfile`` (SerialEM): angles, pixel size, dose, prior
                            dose, acquisition order, target defocus.
``.aln``                    ``alnfile`` (AreTomo): angles, shifts, in-plane rotation,
                            dark (excluded) images.
``.xml``                    ``warpxmlfile`` (Warp/M): angles, prior dose (and the
                            acquisition order it implies), ``UseTilt``, and
                            defocus and pixel size when Warp fitted the CTF.
``.star``                   ``starfile`` (RELION 5 ``tomograms.star`` or one
                            tilt-series' star file): angles, pixel size, prior dose,
                            acquisition order, defocus, shifts, per-image
                            micrograph and even/odd files.
a folder                    a CryoET Data Portal download (dataset, run or
                            ``TiltSeries`` folder): the stack, angles, pixel size,
                            acquisition order, dose, defocus, alignment shifts.
==========================  ==========================================================

Conventions shared by every format
----------------------------------
- Arrays are per image, in the stack's order: ``x[i]`` belongs to image ``i``.
- Angles are returned as the file writes them (no sign flips), and must lie within
  [-89, 89] degrees (:data:`faket.conventions.MAX_TILT_DEG`).
- ``shifts_px`` and ``in_plane_rotation_deg`` follow IMOD's ``.xf`` convention: the
  transform that aligns image ``i`` maps a raw position ``x`` (about the image centre)
  to ``R(rotation) x + (dx, dy)``; ``shifts_px[i] = (dy, dx)`` in pixels of the stack.
  AreTomo's ``ROT, TX, TY`` (and RELION's ``rlnTomoZRot``, ``rlnTomoX/YShiftAngst``,
  which RELION copies from AreTomo times the pixel size) are turned into that form
  with ``alnfile.df_to_xf``. Excluded images without an alignment get NaN rows.
- ``defocus_um`` is positive for underfocus, as in :mod:`faket.microscope`.
- ``acquisition_order[i]`` is the exposure rank of image ``i`` (0 = exposed first);
  it is None when the file does not say. :func:`assume_dose_symmetric_order` gives
  the order of a dose-symmetric scheme for when a caller chooses to assume one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from faket.conventions import MAX_TILT_DEG
from faket.errors import FaketInputError

__all__ = ["TiltSeriesInfo", "assume_dose_symmetric_order", "read_tilt_series_info"]

ANGLE_SUFFIXES = (".tlt", ".rawtlt", ".txt")
"""Plain tilt-angle files (one angle per line, or a SHREC/PyTom alignment table)."""

STACK_SUFFIXES = (".mrc", ".st", ".ali", ".mrcs")
"""Names a tilt-series stack (MRC) may end in; looked for next to a metadata file."""

_PER_IMAGE = (
    "acquisition_order",
    "dose_e_per_a2",
    "prior_dose_e_per_a2",
    "shifts_px",
    "in_plane_rotation_deg",
    "defocus_um",
    "excluded",
)
_MESSAGE_LIMIT = 120


@dataclass(frozen=True, kw_only=True, eq=False)
class TiltSeriesInfo:
    """What a reference tilt-series' metadata says, per image in image (file) order.

    Arrays are read-only. Fields the file does not record are None. Equality is
    identity (the fields are arrays); compare fields with numpy.

    Attributes
    ----------
    angles_deg : np.ndarray
        float64 ``(n,)``, degrees, as the file writes them.
    pixel_size_a : float or None
        Pixel size in Angstrom.
    acquisition_order : np.ndarray or None
        int64 ``(n,)``, a permutation of ``0 .. n-1``: the exposure rank of each image.
    dose_e_per_a2 : np.ndarray or None
        float64 ``(n,)``, the exposure of each image in e/A^2.
    prior_dose_e_per_a2 : np.ndarray or None
        float64 ``(n,)``, the exposure the specimen received before each image, e/A^2.
    shifts_px : np.ndarray or None
        float64 ``(n, 2)``, ``(dy, dx)`` in pixels, IMOD ``.xf`` convention (see the
        module docstring); NaN rows for excluded images without an alignment.
    in_plane_rotation_deg : np.ndarray or None
        float64 ``(n,)``, degrees, the rotation of the same transform.
    defocus_um : np.ndarray or None
        float64 ``(n,)``, micrometres, underfocus positive.
    excluded : np.ndarray or None
        bool ``(n,)``, images the software dropped (AreTomo dark frames, Warp
        ``UseTilt = False``, Data Portal sections without an alignment).
    even, odd : Path or None
        Even/odd half-set stacks of the whole tilt-series.
    tilt_series : Path or None
        The tilt-series stack, when the metadata names it or it is the only stack with
        the metadata file's name next to it. It may not exist (paths in STAR files).
    images, even_images, odd_images : tuple of Path or None
        One file per image (RELION 5 keeps each tilt image in its own MRC file).
    source : str
        The file read and its format, e.g. ``"TS_01.mrc.mdoc (SerialEM mdoc)"``.
    """

    angles_deg: np.ndarray
    pixel_size_a: float | None = None
    acquisition_order: np.ndarray | None = None
    dose_e_per_a2: np.ndarray | None = None
    prior_dose_e_per_a2: np.ndarray | None = None
    shifts_px: np.ndarray | None = None
    in_plane_rotation_deg: np.ndarray | None = None
    defocus_um: np.ndarray | None = None
    excluded: np.ndarray | None = None
    even: Path | None = None
    odd: Path | None = None
    tilt_series: Path | None = None
    images: tuple[Path, ...] | None = None
    even_images: tuple[Path, ...] | None = None
    odd_images: tuple[Path, ...] | None = None
    source: str

    @property
    def n_images(self) -> int:
        """The number of images (tilts) in the tilt-series."""
        return int(self.angles_deg.size)


def read_tilt_series_info(
    path: str | os.PathLike[str], *, n_images: int | None = None, name: str | None = None
) -> TiltSeriesInfo:
    """Read a reference tilt-series' metadata, in image order.

    The format is chosen from the name: ``.tlt``/``.rawtlt``/``.txt`` (angles), ``.xf``
    (IMOD transforms; angles from the sibling ``<stem>.tlt``, else ``<stem>.rawtlt``),
    ``.mdoc`` (SerialEM), ``.aln`` (AreTomo), ``.xml`` (Warp/M), ``.star`` (RELION 5),
    or a folder (a CryoET Data Portal download). See the module docstring for what
    each gives and the conventions.

    Parameters
    ----------
    path : str or PathLike
        The metadata file or folder.
    n_images : int, optional
        The number of images in the tilt-series stack; the metadata must describe as
        many.
    name : str, optional
        Which tilt-series, where the input holds several: the ``rlnTomoName`` of a
        RELION ``tomograms.star``, the run of a Data Portal dataset folder, or the
        tilt-series id of a run folder. Not needed when there is only one.

    Returns
    -------
    TiltSeriesInfo
        The metadata per image in image order.

    Raises
    ------
    FaketInputError
        One line naming the file: it is missing or unreadable, its format is unknown,
        it describes a different number of images than ``n_images``, an angle is NaN
        or outside [-89, 89], a per-image list has the wrong length, or ``name`` does
        not select exactly one tilt-series.
    """
    file = Path(path)
    if n_images is not None and (isinstance(n_images, bool) or n_images < 1):
        raise ValueError(f"n_images must be a positive number of images, got {n_images!r}")
    if not file.exists():
        raise FaketInputError("file not found", file)
    info = _dispatch(file, name)
    checked = _checked(info, file)
    if n_images is not None and checked.n_images != n_images:
        raise FaketInputError(
            f"describes {checked.n_images} tilt images but the tilt-series has {n_images}", file
        )
    return checked


def assume_dose_symmetric_order(angles_deg: Any) -> np.ndarray:
    """Return the acquisition order of a dose-symmetric scheme (an assumption, not data).

    The scheme starts at the angle closest to 0 and then alternates sides one tilt at a
    time, positive side first: ``0, +3, -3, +6, -6, ...`` (Hagen, Wan & Briggs 2017
    with groups of 1). Real acquisitions often use groups of 2 or 3, start elsewhere
    or are sequential; use this only when the metadata gives no order and the user
    says the data were collected this way. It is faket's microscope ordering
    (:func:`faket.microscope.acquisition_order` with ``group_size=1``).

    Parameters
    ----------
    angles_deg : array-like
        ``(n,)`` tilt angles in degrees, in image order.

    Returns
    -------
    np.ndarray
        int64 ``(n,)``: ``order[i]`` is the exposure rank of image ``i``.

    Raises
    ------
    ValueError
        If the angles are not a non-empty 1-D list of finite numbers.
    """
    angles = np.asarray(angles_deg, dtype=np.float64)
    if angles.ndim != 1 or angles.size == 0 or not np.all(np.isfinite(angles)):
        raise ValueError("angles_deg must be a non-empty 1-D list of finite angles in degrees")
    from faket.microscope.schemes import acquisition_order

    return acquisition_order(angles, scheme="dose-symmetric", group_size=1)


# --- helpers shared by the format readers ---------------------------------------------


def library_error(file: Path, kind: str, err: BaseException) -> FaketInputError:
    """Return the one-line error for a file that ``kind``'s library could not read."""
    detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if len(detail) > _MESSAGE_LIMIT:
        detail = detail[: _MESSAGE_LIMIT - 3] + "..."
    return FaketInputError(f"not a readable {kind} file ({detail})", file)


READ_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OSError)
"""What the field libraries raise on a malformed file (pydantic's errors are ValueErrors)."""


def rank(values: np.ndarray) -> np.ndarray | None:
    """Return the rank of each value (0 = smallest), or None if two values are equal."""
    if np.unique(values).size != values.size:
        return None
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size, dtype=np.int64)
    ranks[order] = np.arange(values.size)
    return ranks


def sibling_stack(file: Path, stem: str | None = None) -> Path | None:
    """Return the only stack named ``<stem>.mrc|.st|.ali|.mrcs`` next to ``file``, or None."""
    stem = file.stem if stem is None else stem
    found = [file.with_name(stem + suffix) for suffix in STACK_SUFFIXES]
    found = [candidate for candidate in found if candidate.is_file()]
    return found[0] if len(found) == 1 else None


def transform_from_aretomo(
    rot_deg: np.ndarray, tx_px: np.ndarray, ty_px: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Turn AreTomo's ``ROT, TX, TY`` into IMOD ``.xf`` form with ``alnfile.df_to_xf``.

    Returns
    -------
    shifts_px : np.ndarray
        ``(n, 2)`` ``(dy, dx)``.
    rotation_deg : np.ndarray
        ``(n,)``, the rotation angle of the ``.xf`` matrix.
    """
    import alnfile
    import pandas as pd

    frame = pd.DataFrame({"rot": rot_deg, "tx": tx_px, "ty": ty_px})
    xf = np.asarray(alnfile.df_to_xf(frame), dtype=np.float64)  # (n, 2, 3)
    shifts = np.stack([xf[:, 1, 2], xf[:, 0, 2]], axis=1)
    rotation = np.degrees(np.arctan2(xf[:, 1, 0], xf[:, 0, 0]))
    return shifts, rotation


def _dispatch(file: Path, name: str | None) -> TiltSeriesInfo:
    """Read ``file`` with the reader its name (or being a folder) calls for."""
    if file.is_dir():
        from faket.io import _portal

        return _portal.read_folder(file, name)
    suffix = file.suffix.lower()
    if name is not None and suffix != ".star":
        raise FaketInputError(f"holds one tilt-series; name={name!r} selects nothing", file)
    if suffix in ANGLE_SUFFIXES or suffix == ".xf":
        from faket.io import _imod

        return _imod.read_xf(file) if suffix == ".xf" else _imod.read_angles(file)
    if suffix == ".mdoc":
        from faket.io import _mdoc

        return _mdoc.read_mdoc(file)
    if suffix == ".aln":
        from faket.io import _aretomo

        return _aretomo.read_aln(file)
    if suffix == ".xml":
        from faket.io import _warp

        return _warp.read_warp_xml(file)
    if suffix == ".star":
        from faket.io import _relion_tomograms

        return _relion_tomograms.read_relion_star(file, name)
    raise FaketInputError(
        f"unknown tilt-series metadata format {file.suffix or '(no extension)'!r}; expected "
        ".tlt, .rawtlt, .txt, .xf, .mdoc, .aln, .xml, .star or a Data Portal folder",
        file,
    )


def _checked(info: TiltSeriesInfo, file: Path) -> TiltSeriesInfo:
    """Validate ``info`` (angles, per-image lengths, values) and make its arrays read-only."""
    angles = np.asarray(info.angles_deg, dtype=np.float64)
    if angles.ndim != 1 or angles.size == 0:
        raise FaketInputError("lists no tilt images", file)
    for index, value in enumerate(angles.tolist()):
        if math.isnan(value):
            raise FaketInputError(f"image {index}: tilt angle is NaN", file)
        if not -MAX_TILT_DEG <= value <= MAX_TILT_DEG:
            raise FaketInputError(
                f"image {index}: tilt angle {value:g} is outside "
                f"[-{MAX_TILT_DEG:g}, {MAX_TILT_DEG:g}] degrees",
                file,
            )
    n = angles.size
    values: dict[str, Any] = {f.name: getattr(info, f.name) for f in fields(info)}
    values["angles_deg"] = angles
    for key in _PER_IMAGE:
        if values[key] is not None:
            values[key] = _checked_array(key, values[key], n, file, values["excluded"])
    if values["pixel_size_a"] is not None:
        size = float(values["pixel_size_a"])
        if not (math.isfinite(size) and size > 0):
            raise FaketInputError(f"pixel size must be a positive number of A, got {size}", file)
        values["pixel_size_a"] = size
    for key in ("images", "even_images", "odd_images"):
        if values[key] is not None and len(values[key]) != n:
            raise FaketInputError(f"has {len(values[key])} {key} for {n} tilt images", file)
    for array in values.values():
        if isinstance(array, np.ndarray):
            array.flags.writeable = False
    return TiltSeriesInfo(**values)


def _checked_array(
    key: str, raw: Any, n: int, file: Path, excluded: np.ndarray | None
) -> np.ndarray:
    """Return one per-image array as a fresh array of its dtype, or raise if it is wrong."""
    dtype: type = {"acquisition_order": np.int64, "excluded": np.bool_}.get(key, np.float64)
    array: np.ndarray = np.array(raw, dtype=dtype)
    shape = (n, 2) if key == "shifts_px" else (n,)
    if array.shape != shape:
        raise FaketInputError(f"{key} has shape {array.shape}, expected {shape}", file)
    if key == "acquisition_order" and not np.array_equal(np.sort(array), np.arange(n)):
        raise FaketInputError("the acquisition order is not a permutation of the images", file)
    if array.dtype == np.float64:
        finite = np.isfinite(array)
        if key in ("shifts_px", "in_plane_rotation_deg") and excluded is not None:
            mask = np.asarray(excluded, dtype=bool)
            finite[mask] = True  # excluded images may have no alignment
        if not np.all(finite):
            bad = int(np.argwhere(~finite)[0][0])
            raise FaketInputError(f"image {bad}: {key} is NaN or infinite", file)
        if key in ("dose_e_per_a2", "prior_dose_e_per_a2") and np.any(array < 0):
            raise FaketInputError(f"{key} has negative values", file)
    return array
