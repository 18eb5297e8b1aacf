"""Built-in filament monomers as Gaussian blobs, and drawing monomers on a local grid.

Blob layouts are in the monomer frame of `faket.phantom._helix` (``x`` radial, ``y``
azimuthal, ``z`` along the filament axis), in A. Positions are ``(z, y, x)`` in A in the
box frame, voxel centre ``k`` at ``k x voxel_size_a``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from faket.phantom.potential import protein_potential_density, splat_gaussians
from faket.phantom.specimen import rotate_map

PROTEIN_DA_PER_A3 = 0.81
"""Mass density of protein in Da per A^3 (1.35 g/cm^3)."""

MONOMER_MASS_DA: dict[str, float] = {"actin": 41_800.0, "microtubule": 50_000.0}
"""Mass of one monomer in Da: alpha-actin (375 residues), alpha- or beta-tubulin."""

Blobs = tuple[np.ndarray, np.ndarray, np.ndarray]  # centres (n, 3) xyz A, sigmas A, weights


def _actin_blobs() -> Blobs:
    # Four subdomains in the monomer frame (x radial, y azimuthal, z axial), in A:
    # the outer pair (SD1, SD2) and the inner pair (SD3, SD4), the small domain lighter.
    c = np.array([[4.0, -6.0, -13.0], [5.0, -5.0, 13.0], [-4.0, 6.0, -13.0], [-4.0, 5.0, 13.0]])
    w = np.array([1.0, 0.7, 1.0, 0.85])
    return c - (w[:, None] * c).sum(0) / w.sum(), np.full(4, 8.5), w


def _tubulin_blobs(beta: bool) -> Blobs:
    # Four lobes (two lateral, two along the protofilament) and an outer ridge (x radial,
    # y azimuthal, z axial), in A; beta's ridge sits a little higher along the protofilament.
    ridge = 6.0 if beta else -6.0
    c = np.array(
        [[-3.0, -11.0, -7.0], [-3.0, 11.0, -7.0], [-3.0, -11.0, 7.0], [-3.0, 11.0, 7.0]]
        + [[12.0, 0.0, ridge]]
    )
    w = np.array([0.5, 0.5, 0.5, 0.5, 0.45])
    return c - (w[:, None] * c).sum(0) / w.sum(), np.array([9.0, 9.0, 9.0, 9.0, 7.0]), w


def monomer_blobs(kind: str) -> list[Blobs]:
    """Return the built-in monomer layouts of a filament type: one, or (alpha, beta).

    Each layout is ``(centres (n, 3) in A, (x, y, z) in the monomer frame; sigmas (n,) in
    A; relative weights (n,))``, centred on the weighted centre.
    """
    if kind == "actin":
        return [_actin_blobs()]
    if kind == "microtubule":
        return [_tubulin_blobs(False), _tubulin_blobs(True)]
    raise ValueError(f"no built-in monomer for {kind!r}; choose 'actin' or 'microtubule'")


def monomer_integral_v_a3(mass_da: float) -> float:
    """Return the integrated potential of a protein monomer of a given mass, in V x A^3.

    The one place that sets filament contrast: protein of 0.81 Da/A^3 filling the
    monomer's molecular volume ``mass / 0.81`` at `protein_potential_density`, the same
    at every voxel size (as the built-in particles of `faket.phantom.builtin`).
    """
    if not mass_da > 0:
        raise ValueError(f"a monomer's mass must be positive, got {mass_da} Da")
    return protein_potential_density() * mass_da / PROTEIN_DA_PER_A3


def blob_map(blobs: Blobs, integral_v_a3: float, voxel_size_a: float) -> np.ndarray:
    """Return one monomer's map, its weighted centre at voxel ``(n // 2,) * 3``.

    Returns
    -------
    np.ndarray
        ``(n, n, n)`` float32 potential in V, ``n`` odd, holding 4 sigma of every blob.
    """
    centres, sigmas, weights = blobs
    reach = float((np.sqrt((centres**2).sum(1)) + 4.0 * sigmas).max())
    n = 2 * int(math.ceil(reach / voxel_size_a + 1.0)) + 1
    origin = -(n // 2) * voxel_size_a
    amps = integral_v_a3 * weights / weights.sum()
    return splat_gaussians(
        centres[:, ::-1] - origin, amps[:, None], (sigmas**2)[:, None], (n, n, n), voxel_size_a
    )


def _local_grid(
    points_zyx_a: np.ndarray, reach_a: float, voxel_size_a: float
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Return the corner and shape of a grid holding every point plus ``reach_a``."""
    lo = np.floor((points_zyx_a.min(0) - reach_a) / voxel_size_a).astype(int)
    hi = np.ceil((points_zyx_a.max(0) + reach_a) / voxel_size_a).astype(int) + 1
    corner = (int(lo[0]), int(lo[1]), int(lo[2]))
    shape = (int(hi[0] - lo[0]), int(hi[1] - lo[1]), int(hi[2] - lo[2]))
    return corner, shape


def render_blob_monomers(
    positions_zyx_a: np.ndarray,
    angles_zxz_deg: np.ndarray,
    layouts: Sequence[Blobs],
    layout_index: np.ndarray,
    amplitudes_v_a3: Sequence[float],
    voxel_size_a: float,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Draw Gaussian-blob monomers on a local grid in one `splat_gaussians` call.

    Parameters
    ----------
    positions_zyx_a : np.ndarray
        ``(m, 3)`` monomer centres ``(z, y, x)`` in A (box frame).
    angles_zxz_deg : np.ndarray
        ``(m, 3)`` ZXZ Euler angles in degrees.
    layouts : sequence of Blobs
        Blob layouts in the monomer frame (see `monomer_blobs`).
    layout_index : np.ndarray
        ``(m,)`` int: each monomer's layout.
    amplitudes_v_a3 : sequence of float
        Each layout's integrated potential in V x A^3.
    voxel_size_a : float
        Voxel size in A.

    Returns
    -------
    potential : np.ndarray
        ``(dz, dy, dx)`` float32 potential in V.
    corner_zyx : tuple of int
        Box index of the grid's voxel ``(0, 0, 0)``.
    """
    matrices = Rotation.from_euler("ZXZ", angles_zxz_deg, degrees=True).as_matrix()
    centres, amps, variances = [], [], []
    for k, (c_xyz, sig, w) in enumerate(layouts):
        sel = np.flatnonzero(layout_index == k)
        offsets = np.einsum("mij,bj->mbi", matrices[sel], c_xyz)[..., ::-1]  # (m, b, zyx)
        centres.append((positions_zyx_a[sel, None, :] + offsets).reshape(-1, 3))
        amps.append(np.tile(amplitudes_v_a3[k] * w / w.sum(), len(sel)))
        variances.append(np.tile(sig**2, len(sel)))
    all_c = np.concatenate(centres)
    var = np.concatenate(variances)
    reach = 4.0 * math.sqrt(float(var.max())) + voxel_size_a
    corner, shape = _local_grid(all_c, reach, voxel_size_a)
    origin = np.asarray(corner, dtype=np.float64) * voxel_size_a
    potential = splat_gaussians(
        all_c - origin, np.concatenate(amps)[:, None], var[:, None], shape, voxel_size_a
    )
    return potential, corner


def render_map_monomers(
    positions_zyx_a: np.ndarray,
    angles_zxz_deg: np.ndarray,
    monomer: np.ndarray,
    voxel_size_a: float,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Draw copies of a monomer map on a local grid, rotated and shifted (trilinear).

    Parameters
    ----------
    positions_zyx_a : np.ndarray
        ``(m, 3)`` monomer centres ``(z, y, x)`` in A (box frame).
    angles_zxz_deg : np.ndarray
        ``(m, 3)`` ZXZ Euler angles in degrees.
    monomer : np.ndarray
        ``(n, n, n)`` float32 map in V, ``n`` odd, centred at ``(n // 2,) * 3``.
    voxel_size_a : float
        Voxel size in A.

    Returns
    -------
    potential : np.ndarray
        ``(dz, dy, dx)`` float32 potential in V.
    corner_zyx : tuple of int
        Box index of the grid's voxel ``(0, 0, 0)``.
    """
    n = monomer.shape[0]
    half = n // 2
    corner, shape = _local_grid(positions_zyx_a, (half + 1) * voxel_size_a, voxel_size_a)
    out = np.zeros(shape, dtype=np.float32)
    rotations = Rotation.from_euler("ZXZ", angles_zxz_deg, degrees=True)
    local = positions_zyx_a / voxel_size_a - np.asarray(corner)
    base = np.rint(local).astype(int)
    for m in range(len(local)):
        placed = rotate_map(monomer, rotations[m], local[m] - base[m])
        z, y, x = base[m] - half
        out[z : z + n, y : y + n, x : x + n] += placed
    return out, corner
