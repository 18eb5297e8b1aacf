"""Noiseless parallel-beam projection of a volume about the Y axis (REFERENCE.md section 1)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from faket.conventions import TiltAngles
from faket.projection._operator import detector_length, radon_operator

DEFAULT_MAX_CHUNK_BYTES = 256 * 2**20
"""Default bound on the working memory of one chunk of Y-slices (256 MiB)."""


def project_tilt_series(
    volume: torch.Tensor,
    tilt_angles_deg: TiltAngles,
    *,
    width: int | None = None,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Project a volume to a noiseless tilt-series, tilting about the Y axis.

    Each Y-slice, a ``(nz, nx)`` image, is Radon-transformed exactly as scikit-image's
    ``radon(slice, theta=tilt_angles_deg, circle=False)`` does (zero padding to the
    square of side ``ceil(sqrt(2) * max(nz, nx))``, rotation about its centre pixel with
    bilinear interpolation, sum along Z), the detector is cropped centred to ``width``
    and the values are negated (dose 0 minus the line integral), so dense matter is dark.

    Geometry: a voxel at ``(dz, dx)`` voxels from the slice centre ``(nz // 2, nx // 2)``
    lands on detector pixel ``width // 2 + dx * cos(t) - dz * sin(t)`` at tilt ``t``; Y
    is unchanged. At tilt 0 with ``width == nx`` the projection is ``-volume.sum(0)``.

    Parameters
    ----------
    volume : torch.Tensor
        ``(nz, ny, nx)`` floating point, any device; values in any unit (e.g. potential).
    tilt_angles_deg : sequence of float or torch.Tensor
        ``(n_tilts,)`` tilt angles in degrees, in the order of the output images.
    width : int, optional
        Detector width in pixels after the centred crop; default ``nx``. At most the
        uncropped detector length ``ceil(sqrt(2) * max(nz, nx))``.
    max_chunk_bytes : int
        Bound on the working memory per chunk of Y-slices: the slices are processed in
        chunks whose copy and result fit in this many bytes. The sparse operator itself
        (about ``8 * 2 * n_tilts * nz * nx`` bytes) comes on top and is cached per geometry.
    progress : callable, optional
        Called with the number of Y-slices finished after each chunk (for progress bars).

    Returns
    -------
    torch.Tensor
        ``(n_tilts, ny, width)`` noiseless tilt-series, same dtype and device as
        ``volume``, line integrals in volume units times voxels, negated.

    Raises
    ------
    ValueError
        If the volume is not 3-D floating point, has no tilt angles, or ``width`` does
        not fit the detector.
    """
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3-D (nz, ny, nx); got shape {tuple(volume.shape)}")
    if not volume.is_floating_point():
        raise ValueError(f"volume must be floating point; got {volume.dtype}")
    angles = torch.as_tensor(tilt_angles_deg, dtype=torch.float64).reshape(-1)
    if angles.numel() == 0:
        raise ValueError("at least one tilt angle is needed")
    if not torch.isfinite(angles).all():
        raise ValueError("tilt angles must be finite numbers of degrees")
    nz, ny, nx = volume.shape
    width = nx if width is None else int(width)
    longest = detector_length(nz, nx)
    if not 0 < width <= longest:
        raise ValueError(
            f"detector width {width} must be between 1 and {longest} "
            f"(the longest projection of a {nz} x {nx} slice)"
        )
    n_tilts = angles.numel()
    operator = radon_operator(
        nz, nx, tuple(angles.tolist()), width, dtype=volume.dtype, device=volume.device
    )
    out = volume.new_empty((n_tilts, ny, width))
    bytes_per_slice = volume.element_size() * (nz * nx + n_tilts * width)
    chunk = max(1, min(ny, max_chunk_bytes // bytes_per_slice))
    for y0 in range(0, ny, chunk):
        y1 = min(ny, y0 + chunk)
        # (nz, cy, nx) -> (nz * nx, cy): one dense column per Y-slice.
        slices = volume[:, y0:y1, :].permute(0, 2, 1).reshape(nz * nx, y1 - y0)
        sums = (operator @ slices).reshape(n_tilts, width, y1 - y0)
        out[:, y0:y1, :] = sums.permute(0, 2, 1).neg()
        if progress is not None:
            progress(y1 - y0)
    return out
