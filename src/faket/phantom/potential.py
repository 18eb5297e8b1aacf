"""Electrostatic potential maps from atoms and Gaussian blobs, on a voxel grid.

Units
-----
Maps hold the voxel-averaged electrostatic potential in volts (V); a map's sum times the
voxel volume is its integrated potential in V x A^3.

Atoms use the electron scattering factors of International Tables for
Crystallography Vol. C, table 4.3.2.2 (five Gaussians, ``gemmi.Element(..).c4322``):
``f_e(s) = sum_i a_i exp(-b_i s^2)`` in A, with ``s = sin(theta) / lambda`` in 1/A.
With an isotropic B-factor ``B`` (A^2) its Fourier transform is the real-space density
``rho(r) = sum_i a_i (4 pi / (b_i + B))^(3/2) exp(-4 pi^2 r^2 / (b_i + B))`` in 1/A^2;
this is what ``gemmi.DensityCalculatorE`` puts on its grid. The potential is
``V(r) = h^2 / (2 pi m0 e) rho(r) = 47.878 V A^2 x rho(r)`` (rest mass ``m0``; the
relativistic factor belongs to the interaction constant of the microscope stage), so
one atom's integrated potential is ``47.878 x f_e(0)`` V x A^3 (carbon: 120 V x A^3).

Each Gaussian is integrated exactly over each voxel (a product of error-function
differences along the three axes), so maps keep the integral at any voxel size,
including voxels far larger than an atom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import erf

H2_OVER_2PI_M0_E = 47.87801  # h^2 / (2 pi m0 e) in V x A^2
"""Factor from gemmi's electron density (1/A^2) to potential (V)."""

_PROTEIN_DENSITY_DA_PER_A3 = 0.81  # 1.35 g/cm^3
_MEAN_RESIDUE_DA = 110.0
_MEAN_RESIDUE_ATOMS = {"C": 5.0, "N": 1.35, "O": 1.5, "S": 0.04, "H": 7.8}
_MAX_CHUNK_VALUES = 2**24


def scattering_coefficients(element: str) -> tuple[np.ndarray, np.ndarray]:
    """Return the electron scattering factor's Gaussian coefficients of an element.

    Parameters
    ----------
    element : str
        Element symbol, e.g. ``"C"``, ``"Au"``.

    Returns
    -------
    a : np.ndarray
        ``(5,)`` float64 amplitudes in A (``sum(a) = f_e(0)``).
    b : np.ndarray
        ``(5,)`` float64 widths in A^2.
    """
    import gemmi

    found = gemmi.Element(element)
    if found.atomic_number == 0:
        raise ValueError(f"unknown element {element!r}")
    if found.c4322 is None:
        raise ValueError(f"element {element!r} has no electron scattering factors")
    coefs = np.asarray(found.c4322.get_coefs(), dtype=np.float64)
    return coefs[:5], coefs[5:]


def integrated_potential(element: str) -> float:
    """Return one atom's integrated potential in V x A^3 (``47.878 f_e(0)``)."""
    a, _ = scattering_coefficients(element)
    return float(H2_OVER_2PI_M0_E * a.sum())


def protein_potential_density() -> float:
    """Return the mean potential of protein in vacuum, in V (= V x A^3 per A^3).

    An average residue (110 Da: C5 N1.35 O1.5 S0.04 H7.8) at 0.81 Da/A^3
    (1.35 g/cm^3). Built-in particles and vesicle leaflets use this density.
    """
    per_residue = sum(n * integrated_potential(e) for e, n in _MEAN_RESIDUE_ATOMS.items())
    return per_residue * _PROTEIN_DENSITY_DA_PER_A3 / _MEAN_RESIDUE_DA


def gold_potential_density() -> float:
    """Return the mean potential of gold in V (59.0 atoms per nm^3, fcc gold)."""
    return 0.05900 * integrated_potential("Au")


def splat_gaussians(
    centres_zyx_a: np.ndarray,
    amplitudes: np.ndarray,
    variances_a2: np.ndarray,
    shape: tuple[int, int, int],
    voxel_size_a: float,
    *,
    n_sigma: float = 4.0,
) -> np.ndarray:
    """Return the voxel averages of a sum of isotropic 3-D Gaussians.

    Voxel ``(k, j, i)`` spans ``[k - 1/2, k + 1/2] x voxel_size_a`` along Z (and so on),
    its centre at ``k x voxel_size_a``. Each Gaussian is integrated exactly over each
    voxel within ``n_sigma`` standard deviations (plus one voxel) of its centre.

    Parameters
    ----------
    centres_zyx_a : np.ndarray
        ``(n, 3)`` centres ``(z, y, x)`` in A.
    amplitudes : np.ndarray
        ``(n, k)`` integrals of the ``k`` Gaussians of each centre (e.g. V x A^3).
    variances_a2 : np.ndarray
        ``(n, k)`` variance per axis of each Gaussian, in A^2.
    shape : tuple of int
        ``(nz, ny, nx)`` of the map.
    voxel_size_a : float
        Voxel size in A.
    n_sigma : float
        Truncation radius in standard deviations.

    Returns
    -------
    np.ndarray
        ``(nz, ny, nx)`` float32: integral over each voxel divided by its volume
        (e.g. V for amplitudes in V x A^3).
    """
    if voxel_size_a <= 0:
        raise ValueError(f"the voxel size must be positive, got {voxel_size_a} A")
    centres = np.asarray(centres_zyx_a, dtype=np.float64).reshape(-1, 3) / voxel_size_a
    amps = np.asarray(amplitudes, dtype=np.float64).reshape(len(centres), -1)
    sig = np.sqrt(np.asarray(variances_a2, dtype=np.float64)).reshape(amps.shape) / voxel_size_a
    if np.any(sig <= 0):
        raise ValueError("every Gaussian needs a positive variance")
    out = np.zeros(int(np.prod(shape)), dtype=np.float64)
    if len(centres) == 0:
        return out.reshape(shape).astype(np.float32)
    half = int(math.ceil(n_sigma * float(sig.max()))) + 1
    width = 2 * half + 1
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    chunk = max(1, _MAX_CHUNK_VALUES // (width**3 * amps.shape[1]))
    offsets = np.arange(-half, half + 1)
    for start in range(0, len(centres), chunk):
        c = centres[start : start + chunk]
        base = np.rint(c).astype(np.int64)  # (m, 3)
        idx = base[:, :, None] + offsets  # (m, 3, w) voxel indices per axis
        lo = (idx - 0.5 - c[:, :, None])[:, :, None, :]  # (m, 3, 1, w)
        s = sig[start : start + chunk][:, None, :, None] * math.sqrt(2.0)  # (m, 1, k, 1)
        w = 0.5 * (erf((lo + 1.0) / s) - erf(lo / s))  # (m, 3, k, w) axis weights
        w[:, 0] *= amps[start : start + chunk][:, :, None]
        values = np.einsum("mka,mkb,mkc->mabc", w[:, 0], w[:, 1], w[:, 2], optimize=True)
        valid = (idx >= 0) & (idx < np.array(shape)[None, :, None])  # (m, 3, w)
        keep = valid[:, 0, :, None, None] & valid[:, 1, None, :, None] & valid[:, 2, None, None, :]
        flat = (
            idx[:, 0, :, None, None] * strides[0]
            + idx[:, 1, None, :, None] * strides[1]
            + idx[:, 2, None, None, :] * strides[2]
        )
        out += np.bincount(flat[keep], weights=values[keep], minlength=out.size)
    return (out / voxel_size_a**3).reshape(shape).astype(np.float32)


def atoms_potential(
    positions_zyx_a: np.ndarray,
    elements: Sequence[str],
    b_factors_a2: np.ndarray,
    occupancies: np.ndarray,
    voxel_size_a: float,
    *,
    extra_b_a2: float = 0.0,
    margin_a: float = 0.0,
) -> np.ndarray:
    """Return the potential map of atoms, centred on their centre of mass.

    Parameters
    ----------
    positions_zyx_a : np.ndarray
        ``(n, 3)`` atom positions ``(z, y, x)`` in A.
    elements : sequence of str
        ``n`` element symbols.
    b_factors_a2 : np.ndarray
        ``(n,)`` isotropic B-factors in A^2 (``B = 8 pi^2 <u^2>``).
    occupancies : np.ndarray
        ``(n,)`` occupancies, multiplying each atom's potential.
    voxel_size_a : float
        Voxel size in A.
    extra_b_a2 : float
        B-factor added to every atom, in A^2.
    margin_a : float
        Extra empty margin around the atoms, in A.

    Returns
    -------
    np.ndarray
        ``(n, n, n)`` float32 potential in V, ``n`` odd; the centre of mass (atomic
        weights times occupancies) lies at the centre of voxel ``(n // 2,) * 3``. The
        inscribed sphere holds every atom plus 4 standard deviations of its widest
        Gaussian, so the map can be rotated about its centre without clipping.
    """
    import gemmi

    positions = np.asarray(positions_zyx_a, dtype=np.float64).reshape(-1, 3)
    if len(positions) == 0:
        raise ValueError("there are no atoms")
    if voxel_size_a <= 0:
        raise ValueError(f"the voxel size must be positive, got {voxel_size_a} A")
    occ = np.asarray(occupancies, dtype=np.float64)
    b = np.asarray(b_factors_a2, dtype=np.float64) + extra_b_a2
    symbols = sorted(set(elements))
    table = {e: scattering_coefficients(e) for e in symbols}
    weight = {e: gemmi.Element(e).weight for e in symbols}
    index = np.array([symbols.index(e) for e in elements])
    a_all = np.stack([table[e][0] for e in symbols])[index]  # (n, 5)
    b_all = np.stack([table[e][1] for e in symbols])[index]
    masses = np.array([weight[e] for e in symbols])[index] * occ
    centre = (masses[:, None] * positions).sum(0) / masses.sum()
    variances = (b_all + np.clip(b, 0.0, None)[:, None]) / (8 * math.pi**2)
    extent = np.sqrt(((positions - centre) ** 2).sum(1)).max()
    reach = extent + 4.0 * math.sqrt(float(variances.max())) + margin_a + voxel_size_a
    n = 2 * int(math.ceil(reach / voxel_size_a)) + 1
    origin = centre - (n // 2) * voxel_size_a
    amplitudes = H2_OVER_2PI_M0_E * a_all * occ[:, None]
    return splat_gaussians(positions - origin, amplitudes, variances, (n, n, n), voxel_size_a)


def blobs_potential(
    centres_zyx_a: np.ndarray,
    sigmas_a: np.ndarray,
    weights: np.ndarray,
    voxel_size_a: float,
    *,
    density_v: float | None = None,
    label_fraction: float = 0.2,
) -> np.ndarray:
    """Return a particle map made of Gaussian blobs, at protein-like potential.

    The blobs are summed, then the whole map is scaled so that its mean inside the
    labelled region (voxels above ``label_fraction`` of the maximum) is ``density_v``:
    the particle then has the integrated potential of protein filling its label.

    Parameters
    ----------
    centres_zyx_a : np.ndarray
        ``(n, 3)`` blob centres ``(z, y, x)`` in A, relative to the particle's centre.
    sigmas_a : np.ndarray
        ``(n,)`` blob standard deviations in A.
    weights : np.ndarray
        ``(n,)`` relative blob integrals.
    voxel_size_a : float
        Voxel size in A.
    density_v : float, optional
        Mean potential inside the label in V; default `protein_potential_density`.
    label_fraction : float
        The label threshold as a fraction of the map's maximum.

    Returns
    -------
    np.ndarray
        ``(n, n, n)`` float32 potential in V, ``n`` odd, the weighted centre of the
        blobs at voxel ``(n // 2,) * 3``.
    """
    centres = np.asarray(centres_zyx_a, dtype=np.float64).reshape(-1, 3)
    sig = np.asarray(sigmas_a, dtype=np.float64).reshape(-1)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    centres = centres - (w[:, None] * centres).sum(0) / w.sum()
    reach = np.sqrt((centres**2).sum(1)) + 4.0 * sig
    n = 2 * int(math.ceil(float(reach.max()) / voxel_size_a + 1.0)) + 1
    origin = -(n // 2) * voxel_size_a
    volume = splat_gaussians(
        centres - origin, w[:, None], (sig**2)[:, None], (n, n, n), voxel_size_a
    )
    inside = volume > label_fraction * volume.max()
    target = protein_potential_density() if density_v is None else density_v
    return (volume * (target / float(volume[inside].mean()))).astype(np.float32)
