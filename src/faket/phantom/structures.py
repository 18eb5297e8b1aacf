"""Particle maps from files: atomic models (PDB, mmCIF) and density maps (MRC), cached.

A structure's map is computed once per file content and voxel size and kept in the
cache folder ``$FAKET_CACHE_DIR`` (default ``~/.cache/faket``) as
``structures/<sha256 of the file, 16 hex>_<voxel size>A_b<extra B>_v2.npy`` (a float32
``(n, n, n)`` array in V); a changed file gets a new hash, so the cache never goes stale.

Atomic models
-------------
Only the first model is read; alternate locations are all kept, weighted by their
occupancies. Files may be compressed (``.gz``, ``.bz2``, ``.xz``).

* Elements: an atom's element column (PDB columns 77-78, mmCIF
  ``_atom_site.type_symbol``) is used when it names an element. Where it is empty or
  missing (molecular-dynamics files), the element comes from the residue and atom
  names (`faket.phantom._elements.infer_element`: amino acids and their MD variants,
  nucleotides, the ions of CHARMM, AMBER, GROMACS and the PDB, and ligand atoms whose
  name settles it, as ``C12``, ``HO2'``, ``CL1``, ``FE``), never from the name alone as
  gemmi would (``CA`` calcium, ``HG`` mercury). An atom whose element is still unknown,
  or has no electron scattering factors, is refused with its residue and name.
* What is removed: water is always removed, under any common residue name (HOH,
  WAT, SOL, TIP3, SPC, T3P, DOD ...; `_elements.WATER_RESIDUES`). Free ions, residues
  made of ion atoms only (Na, K, Cl, Mg, Ca, Zn ...; SOD, POT, CLA, NA+, Cl- ...),
  are removed as part of the solvent unless they lie within 3.5 A of an atom of the
  rest of the structure, as a zinc in a zinc finger or a calcium in calmodulin does
  (metal-ligand bonds are 1.9-2.8 A); a file of nothing but ions keeps them all.
  Everything else is kept (ligands, lipids, cofactors).
* Occupancies and B-factors: an occupancy that is not a finite number is taken as 1,
  and so is every occupancy when all of them are 0 (writers that leave the column
  blank); a B-factor that is not a finite number is taken as 0 A^2.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from faket.errors import FaketInputError
from faket.io import atomic_write, read_mrc
from faket.phantom._elements import (
    ION_ELEMENTS,
    element_symbol,
    has_scattering_factors,
    infer_element,
    is_water,
)
from faket.phantom.potential import atoms_potential

if TYPE_CHECKING:
    import gemmi

_CACHE_VERSION = 2  # 2: elements from names, MD water and free ions removed
_MAP_SUFFIXES = (".mrc", ".map", ".mrcs", ".rec", ".mrc.gz", ".map.gz")
_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.decompress,
    ".bz2": bz2.decompress,
    ".xz": lzma.decompress,
}
ION_CONTACT_A = 3.5
"""A free ion closer than this (A) to another atom of the structure is kept as bound."""


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
    """Read the first model of a PDB or mmCIF file, without its solvent, with gemmi.

    Elements come from the element columns where the file has them, else from the
    residue and atom names (see the module's docstring); water is removed, and so are
    free ions that touch nothing else.

    Parameters
    ----------
    path : str or PathLike
        A PDB or mmCIF file, optionally compressed (``.gz``, ``.bz2``, ``.xz``).

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
        Naming the file, if it is missing, cannot be read, has no atoms besides solvent,
        or has an atom whose element is unknown or has no scattering factors.
    """
    file = Path(path)
    if not file.is_file():
        raise FaketInputError("no such file", file)
    text, suffix = _read_text(file)
    is_cif = suffix in (".cif", ".mmcif") or (
        suffix not in (".pdb", ".ent") and text.lstrip().startswith("data_")
    )
    structure = _cif_structure(text, file) if is_cif else _pdb_structure(text, file)
    if len(structure) == 0 or not structure[0].count_atom_sites():
        raise FaketInputError("the structure has no atoms besides water", file)
    positions, elements, b_factors, occupancies, free = _atom_table(structure[0], file)
    keep = _bound_or_not_ions(positions, free)
    b_factors, occupancies = _filled(b_factors[keep], occupancies[keep])
    return (
        positions[keep],
        [e for e, k in zip(elements, keep, strict=True) if k],
        b_factors,
        occupancies,
    )


def _filled(b_factors_a2: np.ndarray, occupancies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return B-factors and occupancies with the values a writer left out filled in."""
    b_factors = np.where(np.isfinite(b_factors_a2), b_factors_a2, 0.0)
    occ = np.where(np.isfinite(occupancies), occupancies, 1.0)
    return b_factors, occ if occ.any() else np.ones_like(occ)


def _read_text(file: Path) -> tuple[str, str]:
    """Return a file's text, decompressed, and its suffix without the compression's."""
    data, name = file.read_bytes(), file.name.lower()
    for suffix, decompress in _DECOMPRESS.items():
        if name.endswith(suffix):
            try:
                data = decompress(data)
            except (OSError, EOFError, ValueError, lzma.LZMAError) as err:
                raise FaketInputError(f"not a readable {suffix[1:]} file ({err})", file) from err
            name = name[: -len(suffix)]
            break
    return data.decode("utf-8", errors="replace"), Path(name).suffix


def _pdb_structure(text: str, file: Path) -> gemmi.Structure:
    """Parse a PDB file's first model, its water removed and every element column filled."""
    import gemmi

    lines = []
    for line in text.splitlines():
        if line.startswith("ENDMDL"):
            break
        if line.startswith(("ANISOU", "SIGATM", "SIGUIJ")):
            continue  # unused, and they would follow removed atoms
        if line.startswith(("ATOM", "HETATM")):
            padded = line.ljust(80)
            residue, name = padded[17:21].strip(), padded[12:16].strip()
            if is_water(residue):
                continue
            element = element_symbol(padded[76:78]) or infer_element(residue, name)
            if element is None:
                where = f"residue {residue} {padded[22:27].strip()}, atom {name}"
                raise FaketInputError(
                    f"{where}: no element in columns 77-78 and its name does not tell it; "
                    "write the element symbols there",
                    file,
                )
            line = padded[:76] + element.upper().rjust(2) + padded[78:]
        lines.append(line)
    try:
        return gemmi.read_pdb_string("\n".join(lines) + "\n")
    except (RuntimeError, ValueError) as err:
        raise FaketInputError(f"not a readable PDB file ({err})", file) from err


def _cif_structure(text: str, file: Path) -> gemmi.Structure:
    """Parse an mmCIF file, its water removed and every ``type_symbol`` filled."""
    import gemmi

    try:
        block = gemmi.cif.read_string(text)[0]
    except (RuntimeError, ValueError, IndexError) as err:
        raise FaketInputError(f"not a readable mmCIF file ({err})", file) from err
    elements = _cif_elements(block, file)
    table = block.find_mmcif_category("_atom_site.")
    table.ensure_loop()
    if not block.find_values("_atom_site.type_symbol"):
        table.loop.add_columns(["_atom_site.type_symbol"], "?")
    column = block.find_values("_atom_site.type_symbol")
    for index, element in enumerate(elements):
        column[index] = element or "?"
    for index in reversed(range(len(elements))):
        if not elements[index]:
            table.remove_row(index)
    try:
        return gemmi.make_structure_from_block(block)
    except (RuntimeError, ValueError, IndexError) as err:
        raise FaketInputError(f"not a readable mmCIF file ({err})", file) from err


def _cif_elements(block: gemmi.cif.Block, file: Path) -> list[str]:
    """Return the element of each ``_atom_site`` row, ``""`` for water."""
    residues = _cif_values(block, "label_comp_id", "auth_comp_id")
    names = _cif_values(block, "label_atom_id", "auth_atom_id")
    numbers = _cif_values(block, "auth_seq_id", "label_seq_id") or ["?"] * len(names)
    given = _cif_values(block, "type_symbol") or [""] * len(names)
    if not residues or len(residues) != len(names):
        raise FaketInputError("no _atom_site loop with residue and atom names", file)
    elements = []
    for residue, name, number, symbol in zip(residues, names, numbers, given, strict=True):
        if is_water(residue):
            elements.append("")
            continue
        element = element_symbol(symbol) or infer_element(residue, name)
        if element is None:
            raise FaketInputError(
                f"residue {residue} {number}, atom {name}: no _atom_site.type_symbol and its "
                "name does not tell the element; give the element symbols",
                file,
            )
        elements.append(element)
    return elements


def _cif_values(block: gemmi.cif.Block, *tags: str) -> list[str]:
    """Return the first of the ``_atom_site`` columns ``tags`` that the block has, unquoted."""
    import gemmi

    for tag in tags:
        values = block.find_values(f"_atom_site.{tag}")
        if values:
            return [gemmi.cif.as_string(v) for v in values]
    return []


def _atom_table(
    model: gemmi.Model, file: Path
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Return positions (z, y, x), elements, B, occupancies and which atoms are free ions."""
    positions, elements, b_factors, occupancies, free = [], [], [], [], []
    for chain in model:
        for residue in chain:
            ions = all(atom.element.name in ION_ELEMENTS for atom in residue)
            for atom in residue:
                xyz = (atom.pos.z, atom.pos.y, atom.pos.x)
                where = f"residue {residue.name} {residue.seqid.num}, atom {atom.name}"
                if not has_scattering_factors(atom.element.name):
                    problem = f"element {atom.element.name} has no electron scattering factors"
                    raise FaketInputError(f"{where}: {problem}", file)
                if not all(math.isfinite(v) for v in xyz):
                    raise FaketInputError(f"{where}: the coordinates are not numbers", file)
                positions.append(xyz)
                elements.append(atom.element.name)
                b_factors.append(atom.b_iso)
                occupancies.append(atom.occ)
                free.append(ions)
    return (
        np.asarray(positions, dtype=np.float64).reshape(-1, 3),
        elements,
        np.asarray(b_factors, dtype=np.float64),
        np.asarray(occupancies, dtype=np.float64),
        np.asarray(free, dtype=bool),
    )


def _bound_or_not_ions(positions_zyx_a: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Return which atoms to keep: all but the free ions farther than 3.5 A from the rest."""
    from scipy.spatial import cKDTree

    if free.all() or not free.any():
        return np.ones(len(free), dtype=bool)
    tree = cKDTree(positions_zyx_a[~free])
    distance, _ = tree.query(positions_zyx_a[free], distance_upper_bound=ION_CONTACT_A)
    keep = ~free
    keep[free] = np.isfinite(distance)
    return keep


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
        A ``.pdb``/``.cif``/``.ent`` atomic model (optionally ``.gz``, ``.bz2``,
        ``.xz``), or an MRC map (``.mrc``, ``.map``) with its voxel size in the header.
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
