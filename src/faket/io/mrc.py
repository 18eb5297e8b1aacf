"""MRC files (volumes, tilt-series, images, masks), read and written with ``mrcfile``.

Every array faket reads or writes is float32 and C-contiguous, with axes ``(z, y, x)``
for a volume, ``(tilt, y, x)`` for a tilt-series and ``(y, x)`` for an image (see
:mod:`faket.conventions`). The voxel size is carried in Angstrom.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np

from faket.errors import FaketInputError
from faket.io._atomic import atomic_write
from faket.io._text import require_file

_RELATIVE_TOLERANCE = 1e-5  # voxel sizes are float32 in the header
_READ_ERRORS = (ValueError, OSError, EOFError, zlib.error, Warning)
_LABEL = "Created by faket (mrcfile)"
_COPY_CHUNK_BYTES = 1 << 22


@dataclass(frozen=True)
class MrcData:
    """The data and voxel size of an MRC file.

    Attributes
    ----------
    data : np.ndarray
        float32, C-contiguous, writeable. Axes ``(z, y, x)`` for a volume,
        ``(tilt, y, x)`` for a tilt-series, ``(y, x)`` for a single image.
    voxel_size_a : float or None
        The voxel (pixel) size along X in Angstrom; None when the header leaves it
        unset (zero).
    """

    data: np.ndarray
    voxel_size_a: float | None


def read_mrc(
    path: str | os.PathLike[str],
    *,
    ndim: int | None = None,
    volume: bool = False,
    allow_nonfinite: bool = False,
) -> MrcData:
    """Read an MRC file (optionally gzip/bzip2-compressed) as float32.

    Data of any real MRC mode (int8, int16, uint16, float16, float32) are converted to
    float32. Image stacks (space group 0) and volumes (space group 1) with several
    sections are both returned as 3-D arrays.

    Parameters
    ----------
    path : str or PathLike
        The MRC file.
    ndim : {2, 3} or None, optional
        The number of dimensions the caller needs; None accepts both. Since MRC cannot
        tell a single image from a one-section stack (both have ``nz == 1``), a file with
        one section is returned with the shape asked for: ``(1, ny, nx)`` for ``ndim=3``
        and ``(ny, nx)`` for ``ndim=2``.
    volume : bool, optional
        The caller needs a volume ``(nz, ny, nx)`` (implies ``ndim=3``): refuse a file
        with a single section, a 2-D image, instead of reading it as ``(1, ny, nx)``.
    allow_nonfinite : bool, optional
        Return NaN and Inf values instead of refusing the file.

    Returns
    -------
    MrcData
        ``data`` float32 ``(z, y, x)`` / ``(tilt, y, x)`` / ``(y, x)``, and the X voxel
        size in Angstrom (None when unset).

    Raises
    ------
    FaketInputError
        If the file is missing, is not a readable MRC file (bad header, truncated or
        over-long data block), holds complex or 4-D (volume stack) data, has an axis of
        size 0, does not have ``ndim`` dimensions, is a single image when ``volume`` is
        set, has NaN/Inf values (unless ``allow_nonfinite``), or has
        different voxel sizes along X and Y. The Z voxel size is not checked: for
        tilt-series it is often 0, 1 or the tilt step, and carries no meaning.
    """
    if ndim not in (None, 2, 3):
        raise ValueError(f"ndim must be 2, 3 or None, got {ndim!r}")
    if volume and ndim == 2:
        raise ValueError("volume=True asks for 3-D data; it cannot go with ndim=2")
    file = require_file(path)
    header, raw = _open(file, header_only=False)
    voxel_size_a = _voxel_size_from_header(header, file)

    if np.iscomplexobj(raw):
        raise FaketInputError(f"complex data (MRC mode {int(header.mode)}) is not supported", file)
    if raw.ndim == 4:
        raise FaketInputError(f"4-D volume stacks are not supported (shape {raw.shape})", file)
    if 0 in raw.shape:
        raise FaketInputError(f"has an axis of size 0 (shape {raw.shape}); it holds no data", file)
    data = _to_float32_writeable(raw)
    if volume and (data.ndim == 2 or data.shape[0] == 1):
        image = data.shape[-2:]
        raise FaketInputError(
            f"is a 2-D image (ny, nx) = {image}, expected a volume (nz, ny, nx)", file
        )
    if volume:
        ndim = 3
    if ndim == 3 and data.ndim == 2:
        data = data[np.newaxis]
    elif ndim == 2 and data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if ndim is not None and data.ndim != ndim:
        raise FaketInputError(
            f"expected {ndim}-D data, got {data.ndim}-D data of shape {data.shape}", file
        )
    if not allow_nonfinite:
        n_bad = _count_nonfinite(data)
        if n_bad:
            raise FaketInputError(f"{n_bad} of {data.size} values are NaN or Inf", file)
    return MrcData(data=data, voxel_size_a=voxel_size_a)


def map_mrc(path: str | os.PathLike[str]) -> np.ndarray:
    """Map a plain MRC file's data read-only: ``(z, y, x)`` in the file's own dtype.

    Nothing is read until touched: a central slice of a detector-sized tomogram reads
    that slice's pages only, and they are released with the array. For figures of
    files faket wrote; unlike `read_mrc`, the values are not converted to float32 nor
    checked for NaN/Inf (that would read them all). A compressed file (gzip, bzip2)
    cannot be mapped and is read whole with `read_mrc` (float32).

    Parameters
    ----------
    path : str or PathLike
        The MRC file.

    Returns
    -------
    numpy.ndarray
        A read-only ``numpy.memmap`` of shape ``(z, y, x)``; a single image is
        ``(1, ny, nx)``.

    Raises
    ------
    FaketInputError
        If the file is missing, has a bad header, complex or 4-D data, or is shorter
        than its header says.
    """
    file = require_file(path)
    with file.open("rb") as stream:
        magic = stream.read(3)
    if magic[:2] == b"\x1f\x8b" or magic == b"BZh":
        return read_mrc(file, ndim=3).data
    header, _ = _open(file, header_only=True)
    dtype = mrcfile.utils.data_dtype_from_header(header)
    shape = tuple(int(n) for n in mrcfile.utils.data_shape_from_header(header))
    if np.issubdtype(dtype, np.complexfloating) or len(shape) == 4:
        raise FaketInputError(f"cannot map MRC mode {int(header.mode)}, shape {shape}", file)
    shape = (1, *shape) if len(shape) == 2 else shape
    offset = int(header.nbytes) + int(header.nsymbt)
    needed = offset + math.prod(shape) * dtype.itemsize
    if 0 in shape:
        raise FaketInputError(f"has an axis of size 0 (shape {shape}); it holds no data", file)
    if file.stat().st_size < needed:
        raise FaketInputError(f"holds fewer bytes than its header's shape {shape} needs", file)
    return np.memmap(file, dtype=dtype, mode="r", offset=offset, shape=shape)


def read_voxel_size(path: str | os.PathLike[str]) -> float | None:
    """Read the X voxel size of an MRC file from its header alone (the data is not read).

    Parameters
    ----------
    path : str or PathLike
        The MRC file.

    Returns
    -------
    float or None
        The voxel size along X in Angstrom; None when the header leaves it unset (zero).

    Raises
    ------
    FaketInputError
        If the file is missing or its header is not an MRC header, or if the voxel sizes
        along X and Y differ (see `read_mrc`).
    """
    file = require_file(path)
    header, _ = _open(file, header_only=True)
    return _voxel_size_from_header(header, file)


def write_mrc(
    data: Any,
    path: str | os.PathLike[str],
    *,
    voxel_size_a: float | None = None,
    overwrite: bool = True,
) -> None:
    """Write an image, tilt-series or volume to an MRC file as float32, atomically.

    The file appears at ``path`` only once it is complete (see
    :func:`faket.io.atomic_write`). The header statistics (min, max, mean, rms) are set
    from the data. A name ending in ``.gz`` or ``.bz2`` gives a compressed file.

    Parameters
    ----------
    data : np.ndarray or torch.Tensor
        Real numbers (bool, int or float; any device for a tensor), shape ``(y, x)``, or
        ``(z, y, x)`` / ``(tilt, y, x)``. Written as float32 (MRC mode 2).
    path : str or PathLike
        The file to write; its folder must exist.
    voxel_size_a : float, optional
        Voxel size in Angstrom, set for all three axes. None leaves it unset (zero).
    overwrite : bool, optional
        Replace an existing file (the default); if False, refuse to.

    Raises
    ------
    FaketInputError
        Naming ``path``, if the data are not 2-D or 3-D, are empty, complex or not
        numbers, have NaN/Inf values (after conversion to float32), if ``voxel_size_a``
        is not a positive number, if the file exists and ``overwrite`` is False, or if
        the folder does not exist. Nothing is written then.
    """
    target = Path(path)
    array = _as_float32_array(data, target)
    if voxel_size_a is not None:
        voxel_size_a = float(voxel_size_a)
        if not (math.isfinite(voxel_size_a) and voxel_size_a > 0):
            raise FaketInputError(
                f"voxel size must be a positive number of Angstrom, got {voxel_size_a}", target
            )
    if not overwrite and target.exists():
        raise FaketInputError("file exists and overwrite is off", target)
    with atomic_write(target) as temp:
        if target.name.endswith(".gz"):
            _write_gzip(array, voxel_size_a, temp, inner_name=target.name[: -len(".gz")])
        else:
            bzip2 = target.name.endswith(".bz2")
            _write_plain(array, voxel_size_a, temp, compression="bzip2" if bzip2 else None)


def _write_plain(
    array: np.ndarray, voxel_size_a: float | None, file: Path, compression: str | None = None
) -> None:
    """Write an MRC file with mrcfile, with a fixed label so equal data give equal bytes."""
    with mrcfile.new(file, compression=compression, overwrite=True) as mrc:
        mrc.set_data(array)  # also sets the header's shape, mode and statistics
        if voxel_size_a is not None:
            mrc.voxel_size = voxel_size_a
        mrc.header.label[0] = _LABEL  # mrcfile's default label has the time of day
        mrc.header.nlabl = 1


def _write_gzip(
    array: np.ndarray, voxel_size_a: float | None, file: Path, *, inner_name: str
) -> None:
    """Write a gzip-compressed MRC file whose bytes depend on the data only.

    mrcfile's own gzip writer stores the time and the (temporary) file name in the gzip
    header; here the MRC is written plainly next to ``file`` and compressed with a zero
    time stamp and the final name.
    """
    plain = file.with_suffix(".mrc")
    try:
        _write_plain(array, voxel_size_a, plain)
        with open(plain, "rb") as source, open(file, "wb") as raw:
            packed = gzip.GzipFile(
                filename=inner_name, mode="wb", compresslevel=6, fileobj=raw, mtime=0
            )
            with packed:
                shutil.copyfileobj(source, packed, _COPY_CHUNK_BYTES)
    finally:
        plain.unlink(missing_ok=True)


def _open(file: Path, *, header_only: bool) -> tuple[Any, np.ndarray]:
    """Open ``file`` strictly and return (a copy of its header, its data array).

    With ``header_only`` the data array is an empty placeholder.

    mrcfile's warnings (e.g. a data block longer than the header says) are turned into
    errors too: the file is refused rather than half-understood.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with mrcfile.open(file, mode="r", permissive=False, header_only=header_only) as mrc:
                header = mrc.header.copy()
                data = np.empty(0, np.float32) if header_only else mrc.data
    except PermissionError:
        raise FaketInputError("cannot read the file (permission denied)", file) from None
    except _READ_ERRORS as err:
        raise FaketInputError(_describe_read_error(err), file) from err
    return header, data


def _describe_read_error(err: BaseException) -> str:
    """Turn an exception from mrcfile into a short problem description."""
    message = str(err) or type(err).__name__
    if "Map ID string not found" in message:
        return "not an MRC file (no 'MAP' id in the header)"
    if "enough bytes for MRC header" in message:
        return "not an MRC file (shorter than the 1024-byte MRC header)"
    if "data block" in message or "extended header" in message:
        return f"truncated or corrupt MRC file ({message})"
    if "larger than expected" in message:
        return f"corrupt MRC file ({message} from its header)"
    return f"not a readable MRC file ({message})"


def _voxel_size_from_header(header: Any, file: Path) -> float | None:
    """Return the X voxel size in Angstrom from an MRC header, None when unset."""
    x_size = _axis_voxel_size(float(header.cella.x), int(header.mx))
    y_size = _axis_voxel_size(float(header.cella.y), int(header.my))
    for size in (x_size, y_size):
        if not (math.isfinite(size) and size >= 0):
            raise FaketInputError(f"invalid voxel size {size} in the header", file)
    if not math.isclose(x_size, y_size, rel_tol=_RELATIVE_TOLERANCE):
        raise FaketInputError(
            f"pixels are not square (voxel size x {_tidy(x_size):g} A, y {_tidy(y_size):g} A)",
            file,
        )
    if x_size == 0:
        return None
    return _tidy(x_size)


def _axis_voxel_size(cell_a: float, samples: int) -> float:
    """Return the voxel size along one axis: cell length / samples, 0 if no samples."""
    return cell_a / samples if samples > 0 else 0.0


def _tidy(size: float) -> float:
    """Round a size read from a float32 header to its shortest float32 decimal."""
    return float(str(np.float32(size)))


def _to_float32_writeable(raw: np.ndarray) -> np.ndarray:
    """Return ``raw`` as a writeable, C-contiguous, native float32 array.

    mrcfile hands out read-only arrays over a private buffer that nothing else uses once
    the file is closed; when no conversion is needed the array is made writeable in place
    instead of copied, so a large tomogram does not take twice its size in memory.
    """
    if raw.dtype == np.float32 and raw.dtype.isnative and raw.flags.c_contiguous:
        try:
            raw.flags.writeable = True
        except ValueError:
            return raw.copy()
        return raw
    return np.ascontiguousarray(raw, dtype=np.float32)


def _count_nonfinite(array: np.ndarray) -> int:
    """Return the number of NaN and Inf values in a float array."""
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def _as_float32_array(data: Any, target: Path) -> np.ndarray:
    """Return ``data`` (numpy array or torch tensor) as a C-contiguous float32 array."""
    if hasattr(data, "detach"):  # a torch.Tensor; torch is not imported by this module
        tensor = data.detach().cpu()
        if tensor.is_complex():
            raise FaketInputError(f"cannot write complex data ({tensor.dtype}) to MRC", target)
        data = tensor.float().numpy()
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise FaketInputError(
            f"cannot write data of dtype {array.dtype} to MRC (real numbers needed)", target
        )
    if array.ndim not in (2, 3):
        raise FaketInputError(
            f"expected a 2-D image or 3-D volume/tilt-series, got shape {array.shape}", target
        )
    if array.size == 0:
        raise FaketInputError(f"cannot write an empty array (shape {array.shape})", target)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow shows up as Inf below
        array = np.ascontiguousarray(array, dtype=np.float32)
    n_bad = _count_nonfinite(array)
    if n_bad:
        raise FaketInputError(
            f"refusing to write {n_bad} NaN/Inf values (of {array.size}, as float32)", target
        )
    return array
