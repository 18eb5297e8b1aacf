"""The Radon operator of one Y-slice as a sparse matrix (private helper).

scikit-image's ``radon(image, theta, circle=False)`` pads the ``(nz, nx)`` image with
zeros to a square of side ``D = ceil(sqrt(2) * max(nz, nx))``, rotates it about the pixel
``D // 2`` with bilinear interpolation (zero outside) and sums the rotated image over its
rows. Every step is linear in the image and identical for every Y-slice, so the whole
transform is one sparse matrix ``(n_tilts * width, nz * nx)`` that we assemble once per
geometry and then apply to all Y-slices at once as a sparse-dense matrix product.

The matrix holds exactly the bilinear weights scikit-image uses, so the product equals
its per-slice result up to float rounding.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.sparse
import torch

from faket._sparse import torch_csr
from faket.conventions import centred_crop_start


def detector_length(nz: int, nx: int) -> int:
    """Return the uncropped detector length of scikit-image's ``radon(circle=False)``.

    Parameters
    ----------
    nz, nx : int
        Shape of one Y-slice of the volume, in pixels.

    Returns
    -------
    int
        ``ceil(sqrt(2) * max(nz, nx))``, the side of the zero-padded square.
    """
    return math.ceil(math.sqrt(2) * max(nz, nx))


def _bilinear_ray_weights(
    nz: int, nx: int, angle_rad: float, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return COO triplets (detector bin, pixel index, weight) for one tilt angle.

    Sample ``(r, c)`` of the rotated padded image reads the input at
    ``x = nx//2 + cos(a) (c - D//2) + sin(a) (r - D//2)`` and
    ``z = nz//2 - sin(a) (c - D//2) + cos(a) (r - D//2)`` (scikit-image's rotation
    matrix, shifted from the padded to the unpadded image); detector bin ``c`` collects
    the sum over ``r``. Coordinates are computed in float64, as scikit-image does.
    """
    d = detector_length(nz, nx)
    centre = d // 2
    start = centred_crop_start(d, width)
    r = np.arange(d, dtype=np.float64)[:, None] - centre
    c = np.arange(start, start + width, dtype=np.float64)[None, :] - centre
    cos_a, sin_a = math.cos(angle_rad), math.sin(angle_rad)
    x = nx // 2 + cos_a * c + sin_a * r
    z = nz // 2 - sin_a * c + cos_a * r
    inside = (x > -1) & (x < nx) & (z > -1) & (z < nz)
    x, z = x[inside], z[inside]
    bins = np.broadcast_to(np.arange(width), inside.shape)[inside]
    x0, z0 = np.floor(x), np.floor(z)
    dx, dz = x - x0, z - z0
    x0, z0 = x0.astype(np.int64), z0.astype(np.int64)
    rows, cols, vals = [], [], []
    for oz, ox, w in (
        (0, 0, (1 - dz) * (1 - dx)),
        (0, 1, (1 - dz) * dx),
        (1, 0, dz * (1 - dx)),
        (1, 1, dz * dx),
    ):
        zi, xi = z0 + oz, x0 + ox
        keep = (zi >= 0) & (zi < nz) & (xi >= 0) & (xi < nx) & (w > 0)
        rows.append(bins[keep])
        cols.append(zi[keep] * nx + xi[keep])
        vals.append(w[keep])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


@lru_cache(maxsize=2)
def _radon_matrix(
    nz: int, nx: int, tilt_angles_deg: tuple[float, ...], width: int, value_dtype: str
) -> scipy.sparse.csr_matrix:
    """Assemble the CSR matrix ``(n_tilts * width, nz * nx)``, cached per geometry."""
    blocks = []
    for angle in np.deg2rad(np.asarray(tilt_angles_deg, dtype=np.float64)):
        rows, cols, vals = _bilinear_ray_weights(nz, nx, float(angle), width)
        # COO -> CSR sums the duplicate (bin, pixel) pairs that neighbouring samples create.
        block = scipy.sparse.coo_matrix(
            (vals.astype(value_dtype), (rows, cols)), shape=(width, nz * nx)
        ).tocsr()
        blocks.append(block)
    matrix = scipy.sparse.vstack(blocks, format="csr")
    matrix.sort_indices()
    return matrix


def radon_operator(
    nz: int,
    nx: int,
    tilt_angles_deg: tuple[float, ...],
    width: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Return the per-slice Radon transform as a sparse CSR tensor.

    Parameters
    ----------
    nz, nx : int
        Shape of one Y-slice, in pixels.
    tilt_angles_deg : tuple of float
        Tilt angles in degrees.
    width : int
        Detector width after the centred crop, in pixels.
    dtype, device
        Of the returned tensor (the caller's volume).

    Returns
    -------
    torch.Tensor
        Sparse CSR ``(n_tilts * width, nz * nx)``: row ``t * width + u`` holds the weights
        of detector pixel ``u`` at tilt ``t`` on the flattened ``(z, x)`` slice.
    """
    # float64 weights only for float64 volumes: the operator is the largest array here.
    value_dtype = "float64" if dtype == torch.float64 else "float32"
    angles = tuple(float(a) for a in tilt_angles_deg)
    matrix = _radon_matrix(nz, nx, angles, width, value_dtype)
    return torch_csr(
        matrix.indptr, matrix.indices, matrix.data, matrix.shape, dtype=dtype, device=device
    )
