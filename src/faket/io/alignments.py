"""Alignment and acquisition files of a tilt-series, for IMOD, AreTomo and other tools.

Next to a tilt-series stack ``<stem>.mrc``, :func:`write_microscope_alignment` writes:

======================  ===============================================================
``<stem>.tlt``          IMOD tilt angles, one per line (:func:`faket.io.write_tilt_angles`).
``<stem>.xf``           IMOD transforms, one line ``A11 A12 A21 A22 DX DY`` per image.
``<stem>.aln``          AreTomo global alignment (0-based ``SEC``), written with ``alnfile``.
``<stem>.defocus``      IMOD defocus file, version 2 (as ``ctfplotter`` writes it).
``<stem>.tilts.json``   faket's per-tilt record (:func:`faket.io.write_tilt_metadata`).
======================  ===============================================================

Sign conventions
----------------
The microscope (:mod:`faket.microscope`) moves the content of image ``i`` by
``+applied[i] = (shift_y_px, shift_x_px)`` pixels (rows, columns of the MRC image; IMOD's
and AreTomo's Y and X). The files hold the transform that UNDOES it, as each program
documents its own:

- ``.xf`` (IMOD ``newstack``/``xf2rotmagstr``): a raw position ``x`` goes to
  ``x' = A (x - c) + (DX, DY) + c`` in the aligned image (``c`` the image centre). faket's
  tilt axis is already Y, so ``A`` is the identity and ``(DX, DY) = -(applied_x,
  applied_y)``. ``shifts_px = (DY, DX)`` is what :func:`faket.io.read_tilt_series_info`
  returns for an ``.xf`` (and for an ``.aln``): the writers here take that convention.
- ``.aln`` (AreTomo): ``TX, TY`` are the shift found in the raw image, removed when
  aligning (``aligned(x) = raw(x + (TX, TY))`` with ``ROT = 0``), so ``(TX, TY) =
  (applied_x, applied_y) = -(DX, DY)``; ``alnfile.df_to_xf`` turns them into the ``.xf``
  above. ``ROT = 0`` (tilt axis along Y), ``GMAG = 1``, no dark frames.
- ``.defocus``: the mean defocus at the tilt axis, nm, underfocus positive (IMOD's
  sign); astigmatism and the defocus gradient are in the JSON sidecar only.

Precision is each program's own: ``.xf`` shifts to 0.001 px (IMOD's ``%12.3f``), ``.aln``
shifts to 0.001 px and angles to 0.01 degree (``alnfile``), ``.defocus`` angles to 0.01
degree and defocus to 0.01 nm; the ``.tlt`` and the JSON keep the full values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faket.conventions import MAX_TILT_DEG
from faket.errors import FaketInputError
from faket.io._atomic import atomic_write
from faket.io.angles import write_tilt_angles
from faket.io.tilt_metadata import tilt_metadata_path, write_tilt_metadata

__all__ = [
    "ALIGNMENT_SUFFIXES",
    "MICROSCOPE_UNITS",
    "alignment_paths",
    "write_aln",
    "write_imod_defocus",
    "write_microscope_alignment",
    "write_xf",
]

ALIGNMENT_SUFFIXES = (".tlt", ".xf", ".aln", ".defocus", ".tilts.json")
"""The files :func:`write_microscope_alignment` writes next to ``<stem>.mrc``."""

MICROSCOPE_UNITS = {
    "angle_deg": "degree",
    "prior_exposure_e_per_a2": "e-/A^2",
    "exposure_e_per_a2": "e-/A^2",
    "defocus_um": "micrometre at the centre column, underfocus positive",
    "defocus_slope_um_per_px": "micrometre per pixel along +x",
    "shift_y_px": "pixel, content moved by +shift",
    "shift_x_px": "pixel, content moved by +shift",
    "zero_loss_fraction": "fraction",
    "counts": "electrons per pixel (float32)",
}
"""The unit of each field of a microscope `TiltRecord`, for the JSON sidecar."""

_ALN_HEADER = "# AreTomo Alignment / Priims bprmMn"
_DEFOCUS_VERSION = 2
_NM_PER_UM = 1000.0


def alignment_paths(stack: str | os.PathLike[str]) -> dict[str, Path]:
    """Return the files written next to a stack, by suffix (``ts.mrc`` -> ``ts.xf`` ...).

    The stem is the stack's name without ``.mrc``/``.st``/``.ali`` (and ``.gz``/``.bz2``),
    as for :func:`faket.io.tilt_metadata_path`.
    """
    sidecar = tilt_metadata_path(stack)
    stem = sidecar.name[: -len(".tilts.json")]
    return {suffix: sidecar.with_name(stem + suffix) for suffix in ALIGNMENT_SUFFIXES}


def write_xf(shifts_px: Any, path: str | os.PathLike[str]) -> None:
    """Write an IMOD ``.xf``: identity matrices and the shifts that align each image.

    Parameters
    ----------
    shifts_px : array-like
        ``(n_images, 2)`` ``(DY, DX)`` in pixels, IMOD's convention (see the module
        docstring): the translation that ALIGNS image ``i``, i.e. minus the shift the
        microscope applied. Zeros give the identity alignment.
    path : str or PathLike
        The file to write; its folder must exist.

    Raises
    ------
    FaketInputError
        Naming ``path``, for shifts that are not a non-empty ``(n, 2)`` array of finite
        numbers. Nothing is written then.
    """
    target = Path(path)
    shifts = _checked_shifts(shifts_px, target)
    lines = [
        f"{1.0:12.7f}{0.0:12.7f}{0.0:12.7f}{1.0:12.7f}{dx:12.3f}{dy:12.3f}\n"
        for dy, dx in shifts.tolist()
    ]
    _write_text(target, "".join(lines))


def write_aln(
    angles_deg: Any,
    shifts_px: Any,
    path: str | os.PathLike[str],
    *,
    image_shape: tuple[int, int],
) -> None:
    """Write an AreTomo ``.aln`` (global alignment only) with ``alnfile``.

    Parameters
    ----------
    angles_deg : array-like
        ``(n_images,)`` tilt angles in degrees, in image order (column ``TILT``).
    shifts_px : array-like
        ``(n_images, 2)`` ``(DY, DX)``, IMOD's ``.xf`` convention as for `write_xf`;
        written as AreTomo's ``TX = -DX``, ``TY = -DY`` (see the module docstring).
    path : str or PathLike
        The file to write; its folder must exist.
    image_shape : tuple of int
        ``(ny, nx)`` of the stack's images (``# RawSize = nx ny n``).

    Raises
    ------
    FaketInputError
        Naming ``path``, for angles or shifts that are not finite, of different
        lengths, or an image shape that is not two positive integers.
    """
    from alnfile.data_model import AlnData, TiltImageAlignmentParameters

    target = Path(path)
    angles = _checked_angles(angles_deg, target)
    shifts = _checked_shifts(shifts_px, target, n=angles.size)
    ny, nx = _checked_shape(image_shape, target)
    rows = [
        TiltImageAlignmentParameters(sec=i, rot=0.0, tx=-dx, ty=-dy, tilt=angle)
        for i, (angle, (dy, dx)) in enumerate(zip(angles.tolist(), shifts.tolist(), strict=True))
    ]
    aln = AlnData(header=_ALN_HEADER, RawSize=(nx, ny, angles.size), GlobalAlignments=rows)
    _write_text(target, str(aln))


def write_imod_defocus(angles_deg: Any, defocus_um: Any, path: str | os.PathLike[str]) -> None:
    """Write an IMOD defocus file (version 2): one line per image, views from 1.

    Each line is ``view view angle angle defocus_nm``; the first line ends with the
    version number 2, as ``ctfplotter`` writes it and ``ctfphaseflip`` reads it.

    Parameters
    ----------
    angles_deg : array-like
        ``(n_images,)`` tilt angles in degrees, in image order.
    defocus_um : array-like
        ``(n_images,)`` defocus at the tilt axis in µm, underfocus positive.
    path : str or PathLike
        The file to write; its folder must exist.

    Raises
    ------
    FaketInputError
        Naming ``path``, for values that are not finite or lists of different lengths.
    """
    target = Path(path)
    angles = _checked_angles(angles_deg, target)
    defocus = _checked_vector(defocus_um, target, "defocus", angles.size)
    lines = []
    for view, (angle, value) in enumerate(zip(angles.tolist(), defocus.tolist(), strict=True)):
        line = f"{view + 1}\t{view + 1}\t{angle:.2f}\t{angle:.2f}\t{value * _NM_PER_UM:.2f}"
        lines.append(f"{line}\t{_DEFOCUS_VERSION}\n" if view == 0 else f"{line}\n")
    _write_text(target, "".join(lines))


def write_microscope_alignment(
    tilts: Sequence[Mapping[str, Any]],
    stack: str | os.PathLike[str],
    *,
    image_shape: tuple[int, int],
    pixel_size_a: float,
    settings: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write the ``.tlt``, ``.xf``, ``.aln``, ``.defocus`` and ``.tilts.json`` of a stack.

    Parameters
    ----------
    tilts : sequence of mapping
        One microscope record per image in image order (``MicroscopeResult.records()``),
        with at least ``angle_deg``, ``shift_y_px``, ``shift_x_px`` (the shift the
        microscope APPLIED) and ``defocus_um``.
    stack : str or PathLike
        The tilt-series MRC the files describe; they go next to it
        (`alignment_paths`). The stack itself is not read or written.
    image_shape : tuple of int
        ``(ny, nx)`` of the stack's images.
    pixel_size_a : float
        Pixel size of the stack in Å (for the JSON).
    settings : mapping, optional
        The microscope settings (plain values, for the JSON).

    Returns
    -------
    list of Path
        The files written, in the order of `ALIGNMENT_SUFFIXES`.

    Raises
    ------
    FaketInputError
        Naming the file, for a record without those fields or with values that are not
        finite; the files written before it stay.
    """
    paths = alignment_paths(stack)
    angles = _field(tilts, "angle_deg", paths[".tlt"])
    applied = np.stack(
        [_field(tilts, "shift_y_px", paths[".xf"]), _field(tilts, "shift_x_px", paths[".xf"])],
        axis=1,
    )
    aligning = -applied
    write_tilt_angles(angles, paths[".tlt"])
    write_xf(aligning, paths[".xf"])
    write_aln(angles, aligning, paths[".aln"], image_shape=image_shape)
    write_imod_defocus(angles, _field(tilts, "defocus_um", paths[".defocus"]), paths[".defocus"])
    write_tilt_metadata(
        tilts,
        paths[".tilts.json"],
        pixel_size_a=pixel_size_a,
        settings=settings,
        units=MICROSCOPE_UNITS,
    )
    return list(paths.values())


def _field(tilts: Sequence[Mapping[str, Any]], key: str, target: Path) -> np.ndarray:
    """Return one numeric field of every record, or raise naming the file."""
    try:
        return np.asarray([float(t[key]) for t in tilts], dtype=np.float64)
    except KeyError:
        raise FaketInputError(f"a tilt record has no {key!r}", target) from None
    except (TypeError, ValueError):
        raise FaketInputError(f"a tilt record's {key!r} is not a number", target) from None


def _checked_vector(values: Any, target: Path, what: str, n: int | None = None) -> np.ndarray:
    """Return a non-empty 1-D float64 array of finite values (of length ``n``), or raise."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise FaketInputError(f"the {what} values must be numbers", target) from None
    if array.ndim != 1 or array.size == 0:
        raise FaketInputError(
            f"the {what} values must be a non-empty 1-D list, got shape {array.shape}", target
        )
    if n is not None and array.size != n:
        raise FaketInputError(f"{array.size} {what} values for {n} tilt images", target)
    if not np.all(np.isfinite(array)):
        raise FaketInputError(f"a {what} value is NaN or infinite", target)
    return array


def _checked_angles(angles_deg: Any, target: Path) -> np.ndarray:
    """Return the tilt angles as a checked 1-D array (finite, within ±89 degrees)."""
    angles = _checked_vector(angles_deg, target, "tilt angle")
    if np.any(np.abs(angles) > MAX_TILT_DEG):
        raise FaketInputError(
            f"tilt angles must lie within [-{MAX_TILT_DEG:g}, {MAX_TILT_DEG:g}] degrees", target
        )
    return angles


def _checked_shifts(shifts_px: Any, target: Path, n: int | None = None) -> np.ndarray:
    """Return ``(n, 2)`` finite float64 shifts, or raise naming ``target``."""
    try:
        shifts = np.asarray(shifts_px, dtype=np.float64)
    except (TypeError, ValueError):
        raise FaketInputError("the shifts must be numbers", target) from None
    if shifts.ndim != 2 or shifts.shape[1] != 2 or shifts.shape[0] == 0:
        raise FaketInputError(f"the shifts must be (n, 2) (dy, dx), got {shifts.shape}", target)
    if n is not None and shifts.shape[0] != n:
        raise FaketInputError(f"{shifts.shape[0]} shifts for {n} tilt images", target)
    if not np.all(np.isfinite(shifts)):
        raise FaketInputError("a shift is NaN or infinite", target)
    return shifts


def _checked_shape(image_shape: tuple[int, int], target: Path) -> tuple[int, int]:
    """Return ``(ny, nx)`` as two positive ints, or raise naming ``target``."""
    values = tuple(image_shape)
    if len(values) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise FaketInputError(
            f"image_shape must be two positive integers (ny, nx), got {image_shape!r}", target
        )
    return int(values[0]), int(values[1])


def _write_text(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_write(target) as temp:
        temp.write_text(text, encoding="utf-8")
