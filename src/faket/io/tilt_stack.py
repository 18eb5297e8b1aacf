"""Tilt-series in MRC files, read and written a few tilts at a time.

A 61 x 3500 x 3500 float32 tilt-series is 3 GB; a tomogram's run holds half a dozen of
them. :class:`MrcTilts` reads tilts on demand and :class:`MrcTiltWriter` writes them as
they are made, so that a stage holds only the tilts it works on. Both map the file only
for the duration of one access: pages read or written are released with the mapping, so
the resident memory stays that of the tilts in hand (a mapping held open keeps every
page it touched resident).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import mrcfile
import numpy as np
import torch

from faket.conventions import tilt_parts
from faket.errors import FaketInputError
from faket.io._atomic import atomic_write
from faket.io.mrc import _LABEL, read_mrc

__all__ = ["PART_ELEMENTS", "MrcTiltWriter", "MrcTilts", "write_mrc_in_parts"]

PART_ELEMENTS = 2**26
"""Values per part of a streamed pass over a tilt-series or volume (256 MB of float32)."""


class MrcTilts:
    """A tilt-series (or volume) in a plain MRC file, read ``tilt, y, x`` slabs on demand.

    Indexing with an int or a slice (step 1) returns those tilts as a float32 CPU tensor,
    read from the file at that moment. Compressed files (``.gz``, ``.bz2``) cannot be
    read in parts: they are read whole once and held.

    Parameters
    ----------
    path : str or PathLike
        An MRC file with 3-D data.

    Raises
    ------
    FaketInputError
        Naming ``path``, if it is unreadable or not 3-D.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._held: torch.Tensor | None = None
        if self.path.name.endswith((".gz", ".bz2")):
            self._held = torch.from_numpy(read_mrc(self.path, ndim=3).data)
            self.shape = tuple(int(n) for n in self._held.shape)
            return
        try:
            with mrcfile.mmap(self.path, mode="r") as mrc:
                shape = tuple(int(n) for n in mrc.data.shape)
        except (ValueError, OSError, EOFError) as err:
            raise FaketInputError(f"cannot read the MRC file: {err}", self.path) from None
        if len(shape) != 3:
            raise FaketInputError(f"expected 3-D data (tilt, y, x), got shape {shape}", self.path)
        self.shape = shape

    @property
    def ndim(self) -> int:
        """Always 3."""
        return 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int | slice) -> torch.Tensor:
        """Return tilts ``index`` as a float32 tensor: ``(ny, nx)`` for an int, else 3-D."""
        if self._held is not None:
            return self._held[index]
        if isinstance(index, slice) and index.step not in (None, 1):
            raise ValueError("MrcTilts reads contiguous tilts only (slice step 1)")
        with mrcfile.mmap(self.path, mode="r") as mrc:
            part = np.array(mrc.data[index], dtype=np.float32, order="C")
        return torch.from_numpy(part)

    def take(self, tilts: list[int]) -> torch.Tensor:
        """Return tilts ``tilts`` (ascending) as one ``(len(tilts), ny, nx)`` float32 tensor.

        Each run of consecutive tilts is read in one access; no other tilt is read.
        """
        runs: list[list[int]] = []
        for t in tilts:
            if runs and t == runs[-1][-1] + 1:
                runs[-1].append(t)
            else:
                runs.append([t])
        parts = [self[r[0] : r[-1] + 1] for r in runs]
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class MrcTiltWriter:
    """Write a float32 MRC file a few tilts at a time, atomically.

    Use it as a context manager. The file appears at ``path`` only when the ``with``
    block ends without an exception and every tilt was written; the header statistics
    (min, max, mean, rms about the mean) are accumulated in float64 from the parts, as
    :func:`faket.io.write_mrc` sets them from the whole.

    Parameters
    ----------
    path : str or PathLike
        The file to write (plain ``.mrc``; its folder must exist).
    shape : (int, int, int)
        ``(n_tilts, ny, nx)``.
    voxel_size_a : float, optional
        Voxel size in Angstrom for all three axes; None leaves it unset.

    Examples
    --------
    >>> with MrcTiltWriter("faket.mrc", (61, 1024, 1024)) as out:  # doctest: +SKIP
    ...     for start in range(0, 61, 4):
    ...         out.write(start, tilts[start : start + 4])
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        shape: tuple[int, int, int],
        *,
        voxel_size_a: float | None = None,
    ) -> None:
        self.path = Path(path)
        if self.path.name.endswith((".gz", ".bz2")):
            raise ValueError(f"{self.path}: MrcTiltWriter writes plain MRC files only")
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"shape must be three positive sizes, got {shape}")
        self.shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        self.voxel_size_a = voxel_size_a
        self._atomic: Any = None
        self._temp: Path | None = None
        self._written = np.zeros(self.shape[0], dtype=bool)
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._min = math.inf
        self._max = -math.inf

    def __enter__(self) -> MrcTiltWriter:
        self._atomic = atomic_write(self.path)
        self._temp = self._atomic.__enter__()
        with mrcfile.new_mmap(self._temp, self.shape, mrc_mode=2, overwrite=True) as mrc:
            if self.voxel_size_a is not None:
                mrc.voxel_size = self.voxel_size_a
            mrc.header.label[0] = _LABEL
            mrc.header.nlabl = 1
        return self

    def write(self, start: int, tilts: Any) -> None:
        """Write ``tilts`` (``(k, ny, nx)``, array or tensor) as tilts ``start .. start+k``.

        Raises
        ------
        FaketInputError
            Naming the file, if the tilts hold NaN or Inf.
        ValueError
            If the shape does not fit, or a tilt is written twice.
        """
        if self._temp is None:
            raise ValueError("MrcTiltWriter.write outside its with block")
        part = _as_float32(tilts)
        k = part.shape[0]
        if part.ndim != 3 or part.shape[1:] != self.shape[1:] or start < 0:
            raise ValueError(f"tilts of shape {part.shape} at {start} do not fit {self.shape}")
        if start + k > self.shape[0] or self._written[start : start + k].any():
            raise ValueError(f"tilts {start}..{start + k - 1} are out of range or written")
        if not np.isfinite(part).all():
            raise FaketInputError("the tilt-series has NaN or Inf values", self.path)
        with mrcfile.mmap(self._temp, mode="r+") as mrc:
            mrc.data[start : start + k] = part
        self._written[start : start + k] = True
        self._accumulate(part)

    def _accumulate(self, part: np.ndarray) -> None:
        """Merge the part's count, mean and sum of squared deviations (Chan et al.)."""
        n = part.size
        mean = float(part.mean(dtype=np.float64))
        m2 = float(np.square(part - np.float32(mean), dtype=np.float64).sum())
        total = self._count + n
        delta = mean - self._mean
        self._mean += delta * n / total
        self._m2 += m2 + delta * delta * self._count * n / total
        self._count = total
        self._min = min(self._min, float(part.min()))
        self._max = max(self._max, float(part.max()))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            try:
                self._finish_header()
            except BaseException as failure:  # the temporary file goes, then the error
                self._atomic.__exit__(type(failure), failure, failure.__traceback__)
                self._temp = None
                raise
        self._atomic.__exit__(kind, error, trace)
        self._temp = None

    def _finish_header(self) -> None:
        """Check every tilt was written; set the header's statistics."""
        if not self._written.all():
            missing = int((~self._written).sum())
            raise ValueError(f"{missing} tilts of {self.path} were never written")
        assert self._temp is not None
        with mrcfile.mmap(self._temp, mode="r+") as mrc:  # touches the header only
            mrc.header.dmin = self._min
            mrc.header.dmax = self._max
            mrc.header.dmean = self._mean
            mrc.header.rms = math.sqrt(self._m2 / self._count)


def write_mrc_in_parts(
    data: Any, path: str | os.PathLike[str], *, voxel_size_a: float | None = None
) -> None:
    """Write 3-D data to a float32 MRC file a part at a time, atomically.

    As :func:`faket.io.write_mrc` for a plain file, without a whole float32 copy of the
    data (masks of int8 or int32 are converted one part at a time).

    Parameters
    ----------
    data : np.ndarray, torch.Tensor or TiltStack
        ``(n, ny, nx)`` real numbers.
    path : str or PathLike
        The file (plain ``.mrc``).
    voxel_size_a : float, optional
        Voxel size in Angstrom.
    """
    n, ny, nx = (int(k) for k in data.shape)
    with MrcTiltWriter(path, (n, ny, nx), voxel_size_a=voxel_size_a) as out:
        for part in tilt_parts(data.shape, PART_ELEMENTS):
            out.write(part.start, data[part])


def _as_float32(tilts: Any) -> np.ndarray:
    """Return tilts as a float32 numpy array (a CPU copy of a tensor)."""
    if isinstance(tilts, torch.Tensor):
        tilts = tilts.detach().to("cpu", torch.float32).numpy()
    return np.ascontiguousarray(tilts, dtype=np.float32)
