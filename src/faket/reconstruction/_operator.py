"""The back-projector of one Y-slice as a sparse matrix (private helper).

Voxel ``(k, x)`` of an output slice of shape ``(nz, nx)`` sits at ``dx = x - nx // 2``
and ``dz`` from the tilt axis (see `slab_dz`); at tilt ``t`` it reads the filtered
projection at detector position ``u = width // 2 + dx cos(t) - dz sin(t)`` (the geometry
of :func:`faket.projection.project_tilt_series`) with linear interpolation between
pixels ``floor(u)`` and ``floor(u) + 1``, and zero outside ``[0, width - 1]`` (as
``numpy.interp(..., left=0, right=0)`` in scikit-image's ``iradon``). That is two weights
per (voxel, tilt), identical for every Y-slice, so the back-projection of all Y-slices is
one sparse-dense matrix product with a CSR matrix ``(nz * nx, n_tilts * width)``,
assembled once per geometry and cached.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from faket._sparse import torch_csr

_ROWS_PER_BLOCK = 2**16  # voxels per assembly block: bounds the float64 temporaries


def slab_dz(thickness: int, z_offset: float, z_flip: bool) -> np.ndarray:
    """Return the distance from the tilt axis along Z of each output row, in voxels.

    Row ``k`` of an unflipped slab is at ``dz = k - thickness // 2 + z_offset``; with
    ``z_flip`` the rows are in the opposite order.
    """
    dz = np.arange(thickness, dtype=np.float64) - thickness // 2 + z_offset
    return dz[::-1].copy() if z_flip else dz


def _block_weights(
    dz: np.ndarray, nx: int, width: int, angles_rad: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (entries per row, column indices, weights) for the voxel rows of ``dz``.

    The entries of each row are ordered by tilt, then detector pixel, so the column
    indices of a row are increasing (CSR order without sorting).
    """
    dx = np.arange(nx, dtype=np.float64) - nx // 2
    cos_t, sin_t = np.cos(angles_rad), np.sin(angles_rad)
    # (n_dz, nx, n_tilts): float64 like iradon's coordinates.
    u = width // 2 + dx[None, :, None] * cos_t - dz[:, None, None] * sin_t
    inside = (u >= 0) & (u <= width - 1)
    u0 = np.floor(u)
    frac = u - u0
    lower = np.where(inside, 1.0 - frac, 0.0)
    upper = np.where(inside, frac, 0.0)
    base = u0.astype(np.int64) + np.arange(len(angles_rad)) * width
    cols = np.stack((base, base + 1), axis=-1).reshape(len(dz) * nx, -1)
    vals = np.stack((lower, upper), axis=-1).reshape(len(dz) * nx, -1)
    keep = vals != 0  # drops voxels that miss the detector and exact-pixel neighbours
    return keep.sum(axis=1), cols[keep], vals[keep]


@lru_cache(maxsize=2)
def _backprojection_csr(
    thickness: int,
    nx: int,
    width: int,
    tilt_angles_deg: tuple[float, ...],
    z_offset: float,
    z_flip: bool,
    value_dtype: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Assemble the CSR arrays (indptr, indices, data) of the back-projector, cached."""
    angles_rad = np.deg2rad(np.asarray(tilt_angles_deg, dtype=np.float64))
    dz_all = slab_dz(thickness, z_offset, z_flip)
    rows_per_block = max(1, _ROWS_PER_BLOCK // nx)
    counts, indices, data = [], [], []
    for k0 in range(0, thickness, rows_per_block):
        n_row, cols, vals = _block_weights(dz_all[k0 : k0 + rows_per_block], nx, width, angles_rad)
        counts.append(n_row)
        indices.append(cols)
        data.append(vals.astype(value_dtype))
    nnz = sum(len(c) for c in indices)
    # torch wants indptr and indices alike; int32 while they fit halves the index memory.
    index_dtype = np.int32 if max(nnz, len(tilt_angles_deg) * width) < 2**31 else np.int64
    indptr = np.zeros(thickness * nx + 1, dtype=index_dtype)
    np.cumsum(np.concatenate(counts), out=indptr[1:])
    return indptr, np.concatenate(indices).astype(index_dtype), np.concatenate(data)


def backprojection_operator(
    thickness: int,
    nx: int,
    width: int,
    tilt_angles_deg: tuple[float, ...],
    *,
    z_offset: float = 0.0,
    z_flip: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Return the back-projector of one Y-slice as a sparse CSR tensor.

    Parameters
    ----------
    thickness, nx : int
        Output slice shape ``(nz, nx)`` in voxels.
    width : int
        Detector width in pixels.
    tilt_angles_deg : tuple of float
        Tilt angles in degrees.
    z_offset : float
        ``dz`` of the slab's centre row ``thickness // 2``, in voxels.
    z_flip : bool
        Reverse the order of the output rows.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        Sparse CSR ``(thickness * nx, n_tilts * width)``: row ``k * nx + x`` holds the
        interpolation weights of voxel ``(k, x)`` on the flattened ``(tilt, u)`` sinogram.
    """
    if not all(math.isfinite(a) for a in tilt_angles_deg):
        raise ValueError("tilt angles must be finite numbers of degrees")
    value_dtype = "float64" if dtype == torch.float64 else "float32"
    indptr, indices, data = _backprojection_csr(
        thickness, nx, width, tuple(tilt_angles_deg), float(z_offset), z_flip, value_dtype
    )
    return torch_csr(
        indptr,
        indices,
        data,
        (thickness * nx, len(tilt_angles_deg) * width),
        dtype=dtype,
        device=device,
    )
