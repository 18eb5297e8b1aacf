"""Warp / M tilt-series XML files, read with ``warpxmlfile``.

Per tilt, in the XML's order (the order of the stack Warp works on): ``Angles``
(degrees), ``Dose`` (the exposure accumulated before the tilt, e/A^2: 0 for the first
tilt exposed), ``UseTilt``. Per-tilt defocus is ``GridCTF`` when it has one node per
tilt (Warp's tilt-series CTF fit writes a ``1 x 1 x n`` grid of defocus in um,
underfocus positive). The pixel size is the ``CTF`` block's ``PixelSize`` (the pixel
size Warp processed at), given only with that fit: an unfitted XML keeps Warp's
defaults (``PixelSize`` 1.0, ``Defocus`` 1.0, a one-node grid). The acquisition order
is the rank of ``Dose`` when all doses differ. Warp's ``AxisOffsetX/Y`` are not turned
into shifts: their sign and centre relative to IMOD's ``.xf`` are not pinned down
here, so ``shifts_px`` is None.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import warpxmlfile

from faket.io.tilt_series_files import (
    READ_ERRORS,
    TiltSeriesInfo,
    library_error,
    rank,
    sibling_stack,
)


def read_warp_xml(file: Path) -> TiltSeriesInfo:
    """Read a Warp / M tilt-series XML (see the module docstring)."""
    try:
        series = warpxmlfile.read(file)
    except READ_ERRORS as err:
        raise library_error(file, "Warp tilt-series XML", err) from err
    angles = np.asarray(series.angles, dtype=np.float64)
    n = angles.size
    dose = None if series.dose is None else np.asarray(series.dose, dtype=np.float64)
    prior = dose if dose is not None and dose.size == n else None
    defocus = _defocus(series, n)
    return TiltSeriesInfo(
        angles_deg=angles,
        pixel_size_a=None if defocus is None else _pixel_size(series),
        acquisition_order=None if prior is None else rank(prior),
        prior_dose_e_per_a2=prior,
        defocus_um=defocus,
        excluded=~np.asarray(series.use_tilt, dtype=bool),
        tilt_series=sibling_stack(file),
        source=f"{file} (Warp tilt-series XML)",
    )


def _pixel_size(series: warpxmlfile.WarpTiltSeries) -> float | None:
    """Return the CTF block's positive ``PixelSize`` in A, or None."""
    text = (series.ctf or {}).get("PixelSize")
    try:
        size = float(text) if text is not None else 0.0
    except ValueError:
        return None
    return size if size > 0 else None


def _defocus(series: warpxmlfile.WarpTiltSeries, n: int) -> np.ndarray | None:
    """Return the per-tilt defocus of a ``GridCTF`` with one node per tilt, or None."""
    grid = series.grids.get("GridCTF")
    if grid is None or grid.values.ndim != 3 or grid.values.shape[0] != n:
        return None
    return np.asarray(grid.values, dtype=np.float64).mean(axis=(1, 2))
