"""The specimen: the grandmodel's potential embedded in a slab of amorphous ice.

The ice is a laterally infinite slab of thickness ``t`` centred on the volume:

- its mean potential ``V_ice`` is added analytically to every projection
  (``V_ice t / cos(tilt)`` in V Å), so no edge of the volume shows at high tilt;
- particles displace ice: a grandmodel voxel with potential ``V`` loses
  ``V_ice clip(V / V_particle, 0, 1)``;
- its density fluctuations are a Gaussian random field on a grid periodic in Y and X
  (the volume's lateral size), white at the voxel scale with the variance of the
  molecule count, ``(V_ice)^2 S(0) / (n v)`` per voxel (``n`` molecules per Å^3, ``v`` the
  voxel volume in Å^3), low-passed by a Gaussian of ``ice_correlation_a``. It is
  projected through the slab with periodic wrap-around (`project_periodic_slab`), so
  every tilt sees the same ice.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse
import torch

from faket._sparse import torch_csr

ICE_MOLECULES_PER_A3 = 0.03142
"""Molecules per Å^3 of low-density amorphous ice (0.94 g/cm^3)."""


def displace_ice(
    volume_v: torch.Tensor,
    ice_potential_v: float,
    particle_potential_v: float | None,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return the grandmodel's potential minus the ice that its particles displace.

    Parameters
    ----------
    volume_v : torch.Tensor
        ``(nz, ny, nx)`` grandmodel, voxel-averaged potential in V (0 = vacuum/solvent).
    ice_potential_v : float
        Mean potential of the ice, V.
    particle_potential_v : float or None
        Potential of fully dense particle matter, V; None returns ``volume_v``.
    out : torch.Tensor, optional
        Where to write the result (``volume_v`` itself works: the volume is then
        displaced in place, without a second volume); default a new tensor. Made a
        Z-slice at a time, so no temporary volume is needed either way.

    Returns
    -------
    torch.Tensor
        ``(nz, ny, nx)`` in V, relative to a uniform ice slab: same dtype and device.
    """
    if particle_potential_v is None or ice_potential_v == 0:
        if out is not None and out is not volume_v:
            out.copy_(volume_v)
            return out
        return volume_v
    result = torch.empty_like(volume_v) if out is None else out
    for k in range(volume_v.shape[0]):
        occupancy = (volume_v[k] / particle_potential_v).clamp(0, 1)
        torch.sub(volume_v[k], occupancy, alpha=ice_potential_v, out=result[k])
    return result


def ice_fluctuations(
    shape: tuple[int, int, int],
    voxel_size_a: float,
    *,
    ice_potential_v: float,
    structure_factor: float,
    correlation_a: float,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Return the ice's potential fluctuations, a Gaussian field periodic in Y and X.

    Parameters
    ----------
    shape : tuple of int
        ``(n_slab, ny, nx)`` voxels: the slab's thickness and the lateral size.
    voxel_size_a : float
        Voxel size, Å.
    ice_potential_v, structure_factor, correlation_a : float
        Mean potential (V), S(0) and low-pass length (Å); see the module docstring.
    generator : torch.Generator
        Source of the random numbers; the result is on its device.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    torch.Tensor
        ``(n_slab, ny, nx)`` zero-mean potential in V.
    """
    molecules = ICE_MOLECULES_PER_A3 * voxel_size_a**3
    std = ice_potential_v * math.sqrt(structure_factor / molecules)
    field = torch.randn(shape, generator=generator, dtype=dtype, device=generator.device)
    field *= std
    sigma_px = correlation_a / voxel_size_a
    if sigma_px > 0:
        _gaussian_low_pass_periodic(field, sigma_px)
    return field


_FFT_BLOCK_ELEMENTS = 1 << 24
"""Largest block one FFT call along Z transforms (elements of the real input)."""


def _gaussian_low_pass_periodic(field: torch.Tensor, sigma_px: float) -> None:
    """Filter ``field`` ``(nz, ny, nx)`` in place by a periodic Gaussian of ``sigma_px``.

    The Gaussian is separable, so the 3-D filter is a 2-D one per Z-slice and a 1-D one
    along Z, done in blocks of rows: the same result as one 3-D FFT, in small calls
    (torch 2.13's CPU inverse real 3-D FFT crashes the process beyond about 1e8
    elements, e.g. a 16 x 3500 x 3500 ice slab) and without a full-size complex copy.
    """
    nz, ny, nx = field.shape
    a = -2 * math.pi**2 * sigma_px**2
    kw = {"dtype": field.dtype, "device": field.device}
    fy = torch.fft.fftfreq(ny, **kw)[:, None]
    fx = torch.fft.rfftfreq(nx, **kw)[None, :]
    gauss_yx = torch.exp(a * (fy**2 + fx**2))
    for k in range(nz):
        field[k] = torch.fft.irfft2(torch.fft.rfft2(field[k]) * gauss_yx, s=(ny, nx))
    if nz == 1:
        return
    gauss_z = torch.exp(a * torch.fft.rfftfreq(nz, **kw) ** 2)[:, None, None]
    rows = max(1, _FFT_BLOCK_ELEMENTS // (nz * nx))
    for j in range(0, ny, rows):
        block = field[:, j : j + rows]
        block.copy_(torch.fft.irfft(torch.fft.rfft(block, dim=0) * gauss_z, n=nz, dim=0))


def slab_columns(field: torch.Tensor) -> torch.Tensor:
    """Return ``field`` ``(n_slab, ny, nx)`` as ``(n_slab * nx, ny)`` columns for projection."""
    n_slab, ny, nx = field.shape
    return field.permute(0, 2, 1).reshape(n_slab * nx, ny).contiguous()


def _periodic_slab_operator(
    n_slab: int, nx: int, tilt_deg: float, *, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Return the sparse CSR ``(nx, n_slab * nx)`` operator of `project_periodic_slab`."""
    t = math.radians(tilt_deg)
    cos_t, tan_t = math.cos(t), math.tan(t)
    u = np.arange(nx, dtype=np.float64) - nx // 2
    k = np.arange(n_slab)[:, None]
    x = nx // 2 + u[None, :] / cos_t + (k - n_slab // 2) * tan_t  # (n_slab, nx)
    x0 = np.floor(x)
    frac = x - x0
    i0 = x0.astype(np.int64) % nx
    i1 = (i0 + 1) % nx
    rows = np.broadcast_to(np.arange(nx), (n_slab, nx)).ravel()
    base = k * nx
    matrix = scipy.sparse.coo_matrix(
        (
            np.concatenate([(1 - frac).ravel(), frac.ravel()]) / cos_t,
            (
                np.concatenate([rows, rows]),
                np.concatenate([(base + i0).ravel(), (base + i1).ravel()]),
            ),
        ),
        shape=(nx, n_slab * nx),
    ).tocsr()  # sums the duplicates where both neighbours wrap onto one voxel
    matrix.sort_indices()
    return torch_csr(
        matrix.indptr, matrix.indices, matrix.data, matrix.shape, dtype=dtype, device=device
    )


def project_periodic_slab(
    field: torch.Tensor, tilt_deg: float, *, columns: torch.Tensor | None = None
) -> torch.Tensor:
    """Project a slab that is periodic in X along the tilted beam (tilt axis Y).

    Same geometry as :func:`faket.projection.project_tilt_series` (a voxel at
    ``(dz, dx)`` from the centre lands on detector pixel ``nx // 2 + dx cos t - dz sin t``),
    but the slab repeats in X, as a laterally infinite specimen does: detector pixel
    ``u`` sums the layers at ``x = nx // 2 + (u - nx // 2) / cos t + dz tan t`` (linear
    interpolation, wrapped), each weighted by the path length ``1 / cos t``.

    Parameters
    ----------
    field : torch.Tensor
        ``(n_slab, ny, nx)`` floating.
    tilt_deg : float
        Tilt angle in degrees, ``|t| < 90``.
    columns : torch.Tensor, optional
        ``slab_columns(field)``, to reuse across tilts.

    Returns
    -------
    torch.Tensor
        ``(ny, nx)`` line integrals in field units times voxels (not negated).
    """
    if columns is None:
        columns = slab_columns(field)
    return project_slab_columns(columns, tuple(field.shape), tilt_deg)


def project_slab_columns(
    columns: torch.Tensor, shape: tuple[int, ...], tilt_deg: float
) -> torch.Tensor:
    """Return `project_periodic_slab` of a slab given only as its `slab_columns`.

    Parameters
    ----------
    columns : torch.Tensor
        ``(n_slab * nx, ny)``: ``slab_columns(field)``.
    shape : tuple of int
        ``(n_slab, ny, nx)``, the field's shape.
    tilt_deg : float
        Tilt angle in degrees, ``|t| < 90``.

    Returns
    -------
    torch.Tensor
        ``(ny, nx)`` line integrals (not negated).
    """
    n_slab, ny, nx = shape
    if tuple(columns.shape) != (n_slab * nx, ny):
        raise ValueError(f"columns of shape {tuple(columns.shape)} do not hold a slab {shape}")
    operator = _periodic_slab_operator(
        n_slab, nx, tilt_deg, dtype=columns.dtype, device=columns.device
    )
    return (operator @ columns).T
