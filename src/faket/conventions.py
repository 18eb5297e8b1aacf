"""The project's conventions, in one place.

Arrays
------
- Volume: float32 ``(nz, ny, nx)``; Z is the beam direction at zero tilt.
- Tilt-series: float32 ``(n_tilts, ny, nx)``; one image per tilt, in file order.
- The tilt axis is the volume's Y axis. Each Y-slice of a volume is a ``(nz, nx)``
  image that is projected like a 2D Radon transform (scikit-image ``radon``
  convention, ``circle=False``).
- Pixel/voxel sizes are in Angstrom and travel in MRC headers and provenance.
- Tilt angles are in degrees, in the order of the tilt-series' images.

Centres
-------
The centre of an axis of length ``n`` is the pixel ``n // 2`` (scikit-image and
MRC/IMOD practice for even sizes). A centred crop of length ``m`` from length ``n``
therefore starts at ``n // 2 - m // 2``, so that centre pixel ``n // 2`` lands on
``m // 2``.

Contrast
--------
Projections are negated line integrals (``dose - sum`` with dose 0): dense matter
is darker than the background, as in transmission images.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import torch

VOLUME_AXES = ("z", "y", "x")
"""Axis order of every volume array."""

TILT_SERIES_AXES = ("tilt", "y", "x")
"""Axis order of every tilt-series array."""

TILT_AXIS = "y"
"""The volume axis the specimen is tilted about."""

TiltAngles: TypeAlias = "Sequence[float] | np.ndarray | torch.Tensor"
"""Tilt angles in degrees, ``(n_tilts,)``, in the order of the tilt-series' images."""


class TiltStack(Protocol):
    """A tilt-series read a few tilts at a time: a tensor, or one in a file.

    ``stack[a:b]`` returns tilts ``a .. b-1`` as a ``(b - a, ny, nx)`` floating tensor;
    ``shape`` is ``(n_tilts, ny, nx)``. A :class:`torch.Tensor` is one;
    :class:`faket.io.tilt_stack.MrcTilts` reads them from an MRC file when asked.
    """

    @property
    def shape(self) -> Sequence[int]:
        """``(n_tilts, ny, nx)``."""
        ...

    @property
    def ndim(self) -> int:
        """3."""
        ...

    def __getitem__(self, index: slice, /) -> torch.Tensor: ...


DTYPE = "float32"
"""dtype of every volume and tilt-series written to disk."""

MAX_TILT_DEG = 89.0
"""The largest tilt angle magnitude, in degrees, anywhere in faket (files, config, stages).

One limit for every reader and stage: an angles file, the config's tilt range and the
microscope all accept ``|t| <= 89``. At 90 degrees the specimen is edge-on and the
microscope's path length ``t / cos(t)`` is infinite.
"""


def centre_index(n: int) -> int:
    """Return the index of the centre pixel of an axis of length ``n`` (``n // 2``)."""
    return n // 2


def centred_crop_start(n: int, m: int) -> int:
    """Return the start of a centred crop of length ``m`` from an axis of length ``n``.

    Parameters
    ----------
    n : int
        Length of the axis to crop.
    m : int
        Length of the crop, ``0 < m <= n``.

    Returns
    -------
    int
        ``n // 2 - m // 2``, so that pixel ``n // 2`` becomes pixel ``m // 2``.
    """
    if not 0 < m <= n:
        raise ValueError(f"cannot crop {m} pixels centred from an axis of {n} pixels")
    return centre_index(n) - centre_index(m)


def tilt_parts(shape: Sequence[int], max_values: int) -> Iterator[slice]:
    """Yield slices of whole tilts of an ``(n, ny, nx)`` stack, in order, for streamed passes.

    Each part holds at most ``max_values`` values, and at least one tilt.
    """
    n_tilts, ny, nx = (int(k) for k in shape)
    step = max(1, max_values // max(1, ny * nx))
    for start in range(0, n_tilts, step):
        yield slice(start, min(start + step, n_tilts))
