"""Filtered back-projection about the Y axis (REFERENCE.md section 4).

Geometry: the same as :func:`faket.projection.project_tilt_series`. A voxel at
``(dz, dx)`` voxels from the tilt axis is seen at detector pixel
``width // 2 + dx cos(t) - dz sin(t)`` at tilt ``t``, so projecting a volume and
reconstructing its tilt-series gives the volume back in place (with its contrast: the
projections are negated line integrals, so dense matter stays dark, as in real
tomograms).

Output slab: ``thickness`` Z slices (default: the detector width, a cube as in the FakET
reference) centred on the tilt axis, shifted by ``z_offset`` voxels; the output X axis is
the detector's (``nx = width``, centre ``width // 2``); Y is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from faket.conventions import TiltAngles
from faket.reconstruction._operator import backprojection_operator
from faket.reconstruction.filters import DEFAULT_MAX_CHUNK_BYTES, filter_tilt_series

WEIGHTINGS = ("none", "spacing")
"""Angle weightings accepted by :func:`backproject_tilt_series`."""


def angle_weights(tilt_angles_deg: TiltAngles, weighting: str = "none") -> torch.Tensor:
    """Return the factor each filtered projection is multiplied by before back-projection.

    ``none`` (the FakET reference: radontea with ``weight_angles=False``, and scikit-image's
    ``iradon``): ``pi / (2 n_tilts)`` for every tilt. With the ramp filter (1 at Nyquist,
    i.e. ``2 |f|``) this is the filtered back-projection formula for tilts spread evenly
    over 180 degrees.

    ``spacing``: half the angular interval each tilt covers, in radians: ``(a[i+1] -
    a[i-1]) / 4`` between its neighbours in sorted order, ``(a[1] - a[0]) / 2`` at the
    ends (no wrap-around, suited to limited tilt ranges); equal angles share their
    interval. This is the filtered back-projection formula for uneven tilt steps.

    Parameters
    ----------
    tilt_angles_deg : sequence of float or torch.Tensor
        ``(n_tilts,)`` degrees.
    weighting : {"none", "spacing"}
        See above.

    Returns
    -------
    torch.Tensor
        float64 ``(n_tilts,)`` on the CPU.
    """
    angles = torch.as_tensor(tilt_angles_deg, dtype=torch.float64).reshape(-1)
    n = angles.numel()
    if weighting == "none":
        return torch.full((n,), math.pi / (2 * n), dtype=torch.float64)
    if weighting != "spacing":
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
    unique, inverse, counts = torch.unique(
        torch.deg2rad(angles), sorted=True, return_inverse=True, return_counts=True
    )
    if unique.numel() < 2:
        return torch.full((n,), math.pi / (2 * n), dtype=torch.float64)
    edges = torch.cat((unique[:1], (unique[1:] + unique[:-1]) / 2, unique[-1:]))
    interval = edges[1:] - edges[:-1]
    interval[0] += interval[0]  # the ends cover a whole step on their free side too
    interval[-1] += interval[-1]
    return (interval / counts)[inverse] / 2


def check_slab(width: int, thickness: int | None, z_offset: float) -> int:
    """Return the slab thickness (default ``width``) after checking it against the detector.

    Raises
    ------
    ValueError
        If ``thickness`` is not between 1 and the detector width (a slab deeper than
        the detector is wide makes no sense for a tilt-series alone), or ``z_offset`` is
        not finite.
    """
    thickness = width if thickness is None else int(thickness)
    if thickness < 1:
        raise ValueError(f"thickness must be at least 1 voxel, got {thickness}")
    if thickness > width:
        raise ValueError(
            f"thickness {thickness} is larger than the detector width {width}, which makes "
            f"no sense for a tilt-series: use at most {width} (a cube)"
        )
    if not math.isfinite(z_offset):
        raise ValueError(f"z_offset must be a finite number of voxels, got {z_offset}")
    return thickness


def z_range_to_slab(depth: int, z_range: tuple[float, float]) -> tuple[int, int]:
    """Return ``(thickness, z_offset)`` of a relative Z crop of a ``depth``-slice volume.

    The FakET reference reconstructs a cube (depth = detector width) and keeps the Z
    slices ``round(lo * depth)`` to ``round(hi * depth)`` (exclusive), e.g. SHREC's
    ``(0.32226, 0.67382)`` of 512 slices is slices 165 to 344. Reconstructing only that
    slab gives the same voxels without computing the rest.

    Parameters
    ----------
    depth : int
        Number of Z slices of the uncropped volume (centre slice ``depth // 2``).
    z_range : tuple of float
        ``(lo, hi)``, ``0 <= lo < hi <= 1``.

    Returns
    -------
    thickness, z_offset : int
        The slab for :func:`backproject_tilt_series`.
    """
    lo, hi = (float(v) for v in z_range)
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"z_range must satisfy 0 <= lo < hi <= 1; got ({lo}, {hi})")
    start, stop = round(lo * depth), round(hi * depth)
    if stop <= start:
        raise ValueError(f"z_range ({lo}, {hi}) of {depth} slices keeps no slice")
    thickness = stop - start
    return thickness, start + thickness // 2 - depth // 2


def backproject_tilt_series(
    tilt_series: torch.Tensor,
    tilt_angles_deg: TiltAngles,
    *,
    thickness: int | None = None,
    z_offset: int = 0,
    z_flip: bool = False,
    weighting: str = "none",
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Back-project (already filtered) projections into a volume, tilting about Y.

    Each output voxel sums, over the tilts, the projection linearly interpolated at its
    detector position ``width // 2 + dx cos(t) - dz sin(t)`` (zero off the detector),
    times the tilt's weight (:func:`angle_weights`). The per-slice back-projector is a
    sparse matrix built once per geometry (cached) and applied to chunks of Y-slices.

    Parameters
    ----------
    tilt_series : torch.Tensor
        ``(n_tilts, ny, width)`` floating point, any device; tilt axis = Y.
    tilt_angles_deg : sequence of float or torch.Tensor
        ``(n_tilts,)`` degrees, in the order of the images.
    thickness : int, optional
        Number of output Z slices, at most ``width``; default ``width``.
    z_offset : int
        Distance along Z from the tilt axis of the slab's centre slice ``thickness // 2``,
        in voxels (positive: towards higher Z indices of the projected volume).
    z_flip : bool
        Reverse the order of the output Z slices. Off by default: in this geometry the
        output is already in the orientation of the volume that was projected. (The FakET
        reference flipped Z after radontea, whose Z axis runs the other way; its result
        has this module's unflipped orientation.)
    weighting : {"none", "spacing"}
        Angle weighting, see :func:`angle_weights`; "none" is the reference setting.
    max_chunk_bytes : int
        Bound on the working memory per chunk of Y-slices (input copy and result). The
        sparse operator (about ``2 * 8 * n_tilts * thickness * width`` bytes) comes on top.
    progress : callable, optional
        Called with the number of Y-slices finished after each chunk.

    Returns
    -------
    torch.Tensor
        ``(thickness, ny, width)`` volume, same dtype and device as ``tilt_series``.
    """
    angles = _check_inputs(tilt_series, tilt_angles_deg)
    n_tilts, ny, width = tilt_series.shape
    thickness = check_slab(width, thickness, z_offset)
    weights = angle_weights(angles, weighting).to(tilt_series.device, tilt_series.dtype)
    operator = backprojection_operator(
        thickness,
        width,
        width,
        tuple(angles.tolist()),
        z_offset=z_offset,
        z_flip=z_flip,
        dtype=tilt_series.dtype,
        device=tilt_series.device,
    )
    out = tilt_series.new_empty((thickness, ny, width))
    bytes_per_slice = tilt_series.element_size() * (n_tilts * width + thickness * width)
    chunk = max(1, min(ny, max_chunk_bytes // bytes_per_slice))
    # Two work buffers reused by every chunk: fresh large allocations would be page-faulted
    # in again each time, which costs about as much as the product itself on the CPU.
    sinogram_buffer = tilt_series.new_empty(n_tilts * width * chunk)
    volume_buffer = tilt_series.new_empty(thickness * width * chunk)
    for y0 in range(0, ny, chunk):
        y1 = min(ny, y0 + chunk)
        cy = y1 - y0
        # (n_tilts, cy, width) -> (n_tilts * width, cy): one column per Y-slice, weighted.
        sinogram = sinogram_buffer[: n_tilts * width * cy].view(n_tilts, width, cy)
        torch.mul(tilt_series[:, y0:y1, :].permute(0, 2, 1), weights[:, None, None], out=sinogram)
        volume = volume_buffer[: thickness * width * cy].view(thickness * width, cy)
        torch.mm(operator, sinogram.view(n_tilts * width, cy), out=volume)
        out[:, y0:y1, :] = volume.view(thickness, width, cy).permute(0, 2, 1)
        if progress is not None:
            progress(cy)
    return out


def reconstruct_tomogram(
    tilt_series: torch.Tensor,
    tilt_angles_deg: TiltAngles,
    *,
    filter_name: str = "ramp",
    crowther_frequency: float | None = None,
    pad: bool = True,
    thickness: int | None = None,
    z_offset: int = 0,
    z_flip: bool = False,
    weighting: str = "none",
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> torch.Tensor:
    """Reconstruct a tomogram by filtered back-projection (filter, then back-project).

    See :func:`faket.reconstruction.filter_tilt_series` for ``filter_name``,
    ``crowther_frequency`` and ``pad``, and :func:`backproject_tilt_series` for the rest.
    The FakET reference setting is ``filter_name="approx-shrec", pad=False`` on a
    tilt-series binned 2x by cubic spline (:func:`faket.reconstruction.bin_tilt_series`
    with ``method="spline"``), ``weighting="none"``, ``z_flip=False`` (see
    :func:`backproject_tilt_series`) and the SHREC slab
    ``z_range_to_slab(width, (0.32226, 0.67382))``.

    Parameters
    ----------
    tilt_series : torch.Tensor
        ``(n_tilts, ny, width)`` floating point, any device; tilt axis = Y.
    tilt_angles_deg : sequence of float or torch.Tensor
        ``(n_tilts,)`` degrees.
    filter_name, crowther_frequency, pad
        The filter (default: the ramp, zero-padded).
    thickness, z_offset, z_flip, weighting, max_chunk_bytes, progress
        As for :func:`backproject_tilt_series`.
    overwrite : bool, default False
        Filter ``tilt_series`` in place (it is changed): one tilt-series less in memory,
        for a caller that is done with it.

    Returns
    -------
    torch.Tensor
        ``(thickness, ny, width)`` tomogram, same dtype and device as ``tilt_series``.
    """
    _check_inputs(tilt_series, tilt_angles_deg)
    check_slab(tilt_series.shape[2], thickness, z_offset)
    filtered = filter_tilt_series(
        tilt_series,
        filter_name,
        crowther_frequency=crowther_frequency,
        pad=pad,
        max_chunk_bytes=max_chunk_bytes,
        out=tilt_series if overwrite else None,
    )
    return backproject_tilt_series(
        filtered,
        tilt_angles_deg,
        thickness=thickness,
        z_offset=z_offset,
        z_flip=z_flip,
        weighting=weighting,
        max_chunk_bytes=max_chunk_bytes,
        progress=progress,
    )


def _check_inputs(tilt_series: torch.Tensor, tilt_angles_deg: TiltAngles) -> np.ndarray:
    """Validate the tilt-series and angles; return the angles as float64 numpy."""
    if tilt_series.ndim != 3:
        raise ValueError(
            f"tilt_series must be 3-D (n_tilts, ny, nx); got shape {tuple(tilt_series.shape)}"
        )
    if not tilt_series.is_floating_point():
        raise ValueError(f"tilt_series must be floating point; got {tilt_series.dtype}")
    angles = torch.as_tensor(tilt_angles_deg, dtype=torch.float64).reshape(-1).cpu().numpy()
    if angles.size == 0:
        raise ValueError("at least one tilt angle is needed")
    if not np.isfinite(angles).all():
        raise ValueError("tilt angles must be finite numbers of degrees")
    if angles.size != tilt_series.shape[0]:
        raise ValueError(
            f"{angles.size} tilt angles were given for {tilt_series.shape[0]} projections"
        )
    return angles
