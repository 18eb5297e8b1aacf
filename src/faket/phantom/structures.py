"""Particle maps from files: atomic models (PDB, mmCIF) and density maps (MRC), cached.

A structure's map is computed once per file content and voxel size and kept in the
cache folder ``$FAKET_CACHE_DIR`` (default ``~/.cache/faket``) as
``structures/<sha256 of the file, 16 hex>_<voxel size>A_b<extra B>_v1.npy`` (a float32
``(n, n, n)`` array in V); a changed file gets a new hash, so the cache never goes stale.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from pathlib import Path

import numpy as np

from faket.errors import FaketInputError
from faket.io import atomic_write, read_mrc
from faket.phantom.potential import atoms_potential

_CACHE_VERSION = 1
_MAP_SUFFIXES = (".mrc", ".map", ".mrcs", ".rec", ".mrc.gz", ".map.gz")


def cache_dir() -> Path:
    """Return the cache folder: ``$FAKET_CACHE_DIR`` or ``~/.cache/faket``."""
    env = os.environ.get("FAKET_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "faket"


def is_density_map(path: str | os.PathLike[str]) -> bool:
    """Return whether ``path`` names a density map (MRC) rather than an atomic model."""
    return str(path).lower().endswith(_MAP_SUFFIXES)


def read_atoms(
    path: str | os.PathLike[str],
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Read the first model of a PDB or mmCIF file (waters removed) with gemmi.

    Parameters
    ----------
    path : str or PathLike
        A PDB or mmCIF file (optionally gzipped).

    Returns
    -------
    positions_zyx_a : np.ndarray
        ``(n, 3)`` float64 positions ``(z, y, x)`` in A.
    elements : list of str
        Element symbols.
    b_factors_a2 : np.ndarray
        ``(n,)`` isotropic B-factors in A^2.
    occupancies : np.ndarray
        ``(n,)`` occupancies.

    Raises
    ------
    FaketInputError
        If the file is missing, cannot be read, or has no atoms of known elements.
    """
    import gemmi

    file = Path(path)
    if not file.is_file():
        raise FaketInputError("no such file", file)
    try:
        structure = gemmi.read_structure(str(file))
    except (RuntimeError, ValueError, OSError) as err:
        raise FaketInputError(f"not a readable PDB/mmCIF file ({err})", file) from err
    if len(structure) == 0:
        raise FaketInputError("the structure has no atoms", file)
    structure.remove_waters()
    positions, elements, b_factors, occupancies = [], [], [], []
    for chain in structure[0]:
        for residue in chain:
            for atom in residue:
                if atom.element.atomic_number == 0:
                    continue
                positions.append((atom.pos.z, atom.pos.y, atom.pos.x))
                elements.append(atom.element.name)
                b_factors.append(atom.b_iso)
                occupancies.append(atom.occ)
    if not positions:
        raise FaketInputError("the structure has no atoms", file)
    return (
        np.asarray(positions, dtype=np.float64),
        elements,
        np.asarray(b_factors, dtype=np.float64),
        np.asarray(occupancies, dtype=np.float64),
    )


def resample_map(density: np.ndarray, from_voxel_a: float, to_voxel_a: float) -> np.ndarray:
    """Resample a density map to another voxel size and centre it on its centre of mass.

    Values are kept (a map in V stays in V). When shrinking, the map is first smoothed
    by a Gaussian of ``sigma = 0.5 x (to / from)`` input voxels against aliasing, then
    interpolated trilinearly. The centre of mass of the map's positive part is moved to
    the centre of an odd cube whose inscribed sphere holds the whole input box.

    Parameters
    ----------
    density : np.ndarray
        ``(nz, ny, nx)`` map.
    from_voxel_a, to_voxel_a : float
        Input and output voxel sizes in A.

    Returns
    -------
    np.ndarray
        ``(n, n, n)`` float32, ``n`` odd, centre of mass at voxel ``(n // 2,) * 3``.
    """
    from scipy import ndimage

    if from_voxel_a <= 0 or to_voxel_a <= 0:
        raise ValueError("voxel sizes must be positive")
    data = np.asarray(density, dtype=np.float64)
    factor = to_voxel_a / from_voxel_a  # input voxels per output voxel
    if factor > 1:
        data = ndimage.gaussian_filter(data, sigma=0.5 * factor, mode="constant")
    positive = np.clip(data, 0.0, None)
    if positive.sum() <= 0:
        raise ValueError("the map has no positive density")
    com = np.array(ndimage.center_of_mass(positive))  # input voxels (z, y, x)
    half_diag = 0.5 * math.sqrt(sum((s * from_voxel_a) ** 2 for s in data.shape))
    n = 2 * int(math.ceil(half_diag / to_voxel_a)) + 1
    grid = (np.arange(n) - n // 2) * factor
    coords = np.stack(np.meshgrid(grid, grid, grid, indexing="ij")) + com[:, None, None, None]
    out = ndimage.map_coordinates(data, coords, order=1, mode="constant", cval=0.0)
    return out.astype(np.float32)


def load_structure(
    path: str | os.PathLike[str],
    voxel_size_a: float,
    *,
    extra_b_a2: float = 0.0,
    cache: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Return a structure's potential map at a voxel size, from the cache when there.

    Atomic models (PDB, mmCIF) go through `faket.phantom.potential.atoms_potential`;
    MRC maps are resampled with `resample_map` (their values kept, taken as V).

    Parameters
    ----------
    path : str or PathLike
        A ``.pdb``/``.cif``/``.ent`` (optionally ``.gz``) atomic model, or an MRC map
        (``.mrc``, ``.map``) with its voxel size in the header.
    voxel_size_a : float
        Voxel size in A.
    extra_b_a2 : float
        B-factor added to every atom, in A^2.
    cache : str or PathLike, optional
        Cache folder; default `cache_dir`.

    Returns
    -------
    np.ndarray
        ``(n, n, n)`` float32 potential in V, ``n`` odd, centred at ``(n // 2,) * 3``.

    Raises
    ------
    FaketInputError
        Naming the file, if it is missing, unreadable, empty, or a map without a voxel
        size or positive density.
    """
    file = Path(path)
    if not voxel_size_a > 0:
        raise FaketInputError(f"the voxel size must be positive, got {voxel_size_a} A")
    if not file.is_file():
        raise FaketInputError("no such file", file)
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
    folder = Path(cache) if cache is not None else cache_dir()
    key = f"{digest}_{voxel_size_a:.4f}A_b{extra_b_a2:.2f}_v{_CACHE_VERSION}.npy"
    cached = folder / "structures" / key
    if cached.is_file():
        try:
            return np.load(cached).astype(np.float32, copy=False)
        except (OSError, ValueError):
            pass  # a broken cache entry is recomputed
    if is_density_map(file):
        mrc = read_mrc(file, ndim=3)
        if mrc.voxel_size_a is None:
            raise FaketInputError("the map has no voxel size in its header", file)
        try:
            density = resample_map(mrc.data, mrc.voxel_size_a, voxel_size_a)
        except ValueError as err:
            raise FaketInputError(str(err), file) from err
    else:
        positions, elements, b_factors, occupancies = read_atoms(file)
        density = atoms_potential(
            positions, elements, b_factors, occupancies, voxel_size_a, extra_b_a2=extra_b_a2
        )
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, density)
        with atomic_write(cached) as temp:
            temp.write_bytes(buffer.getvalue())
    except OSError:
        pass  # an unwritable cache only costs time
    return density
