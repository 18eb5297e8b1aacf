"""Ideal-geometry protein models the crowded demo builds itself (no downloads), as PDB files.

Three atomic-model particle classes, of poly-alanine alpha helices (rise 1.5 A per
residue, 3.6 residues per turn, CA on a 2.3 A radius; atoms N, CA, C, O, CB):

* ``bundle7``: a bundle of 7 antiparallel helices of 40 residues (one central, six
  around at 10 A), about 6 nm long and 3 nm wide.
* ``coiledcoil``: two helices of 120 residues wound round each other (supercoil radius
  4.9 A, pitch 150 A), about 18 nm long and 2 nm thin.
* ``helixring``: a hollow ring of 12 three-helix bundles (40 residues) on a 55 A
  radius, about 13 nm across and 6 nm high.

:func:`write_demo_structures` writes them as ``<name>.pdb`` (the class name is the file
name's stem), atomically, and leaves a file that already holds the same text untouched,
so a re-run's inputs (and resume keys) stay the same.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

RISE_A = 1.5
"""Rise of an alpha helix per residue, A."""

RESIDUES_PER_TURN = 3.6
"""Residues per turn of an alpha helix."""

_ATOMS = (
    # name, element, radius (A), phase (deg) and height (A) relative to the residue's CA
    ("N", "N", 1.55, -28.0, -0.95),
    ("CA", "C", 2.30, 0.0, 0.0),
    ("C", "C", 1.65, 26.0, 0.95),
    ("O", "O", 1.85, 30.0, 2.15),
    ("CB", "C", 3.40, -15.0, -0.70),
)
"""Backbone and CB atoms of an ideal alpha helix in cylindrical coordinates."""

ATOMS_PER_RESIDUE = len(_ATOMS)


def helix_atoms(n_residues: int) -> np.ndarray:
    """Return an ideal alpha helix along +z, centred at the origin.

    Parameters
    ----------
    n_residues : int
        Residues of the helix.

    Returns
    -------
    np.ndarray
        ``(n_residues, 5, 3)`` float64 positions ``(x, y, z)`` in A of the atoms N, CA,
        C, O, CB of each residue.
    """
    if n_residues < 1:
        raise ValueError(f"a helix needs at least one residue, got {n_residues}")
    i = np.arange(n_residues)[:, None]
    radius, phase, height = (np.array([a[k] for a in _ATOMS])[None, :] for k in (2, 3, 4))
    angle = np.deg2rad(360.0 / RESIDUES_PER_TURN * i + phase)
    z = RISE_A * (i - (n_residues - 1) / 2) + height
    return np.stack([radius * np.cos(angle), radius * np.sin(angle), z], axis=-1)


def _placed(helix: np.ndarray, x_a: float, y_a: float, *, up: bool = True) -> np.ndarray:
    """Return ``helix`` (along +z, or flipped to -z) with its axis moved to ``(x, y)``."""
    out = helix.copy() if up else helix * np.array([1.0, -1.0, -1.0])
    out[..., 0] += x_a
    out[..., 1] += y_a
    return out


def bundle7(n_residues: int = 40, spacing_a: float = 10.0) -> list[np.ndarray]:
    """Return a 7-helix bundle: one central helix and six around it, antiparallel.

    Returns
    -------
    list of np.ndarray
        One ``(n_residues, 5, 3)`` array per helix, positions in A.
    """
    helix = helix_atoms(n_residues)
    helices = [_placed(helix, 0.0, 0.0)]
    for k in range(6):
        a = 2 * math.pi * k / 6
        helices.append(
            _placed(helix, spacing_a * math.cos(a), spacing_a * math.sin(a), up=k % 2 == 1)
        )
    return helices


def coiled_coil(
    n_residues: int = 120, radius_a: float = 4.9, pitch_a: float = 150.0
) -> list[np.ndarray]:
    """Return a parallel two-helix coiled coil along z, ``RISE_A * n_residues`` long.

    Each helix is set at ``radius_a`` from the coil's axis and the pair is twisted about
    it by one turn per ``pitch_a``.
    """
    helices = []
    for k in range(2):
        atoms = _placed(helix_atoms(n_residues), radius_a * (1 - 2 * k), 0.0)
        twist = 2 * math.pi * atoms[..., 2] / pitch_a
        x, y = atoms[..., 0].copy(), atoms[..., 1].copy()
        atoms[..., 0] = x * np.cos(twist) - y * np.sin(twist)
        atoms[..., 1] = x * np.sin(twist) + y * np.cos(twist)
        helices.append(atoms)
    return helices


def helix_ring(
    n_bundles: int = 12, ring_radius_a: float = 55.0, n_residues: int = 40
) -> list[np.ndarray]:
    """Return a hollow ring of three-helix bundles around z, about 13 nm across."""
    helix = helix_atoms(n_residues)
    bundle_radius = 10.0 / math.sqrt(3.0)  # three helices 10 A apart
    helices = []
    for b in range(n_bundles):
        a = 2 * math.pi * b / n_bundles
        cx, cy = ring_radius_a * math.cos(a), ring_radius_a * math.sin(a)
        for k in range(3):
            h = a + 2 * math.pi * k / 3
            x, y = cx + bundle_radius * math.cos(h), cy + bundle_radius * math.sin(h)
            helices.append(_placed(helix, x, y, up=(b + k) % 2 == 0))
    return helices


DEMO_STRUCTURES: dict[str, Callable[[], list[np.ndarray]]] = {
    "bundle7": bundle7,
    "coiledcoil": coiled_coil,
    "helixring": helix_ring,
}
"""The crowded demo's atomic-model classes: name -> builder of its helices."""

_CHAINS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def pdb_text(helices: list[np.ndarray]) -> str:
    """Return helices as PDB text: one chain of ALA residues per helix, elements set.

    Parameters
    ----------
    helices : list of np.ndarray
        ``(n_residues, 5, 3)`` positions ``(x, y, z)`` in A (atoms N, CA, C, O, CB).
    """
    import gemmi

    if len(helices) > len(_CHAINS):
        raise ValueError(f"{len(helices)} helices: at most {len(_CHAINS)} chains")
    model = gemmi.Model(1)
    for chain_id, helix in zip(_CHAINS, helices, strict=False):
        chain = gemmi.Chain(chain_id)
        for r, residue_xyz in enumerate(helix):
            residue = gemmi.Residue()
            residue.name = "ALA"
            residue.seqid = gemmi.SeqId(r + 1, " ")
            for (name, element, *_), xyz in zip(_ATOMS, residue_xyz, strict=True):
                atom = gemmi.Atom()
                atom.name, atom.element = name, gemmi.Element(element)
                atom.pos = gemmi.Position(*(round(float(c), 3) for c in xyz))
                atom.occ, atom.b_iso = 1.0, 20.0
                residue.add_atom(atom)
            chain.add_residue(residue)
        model.add_chain(chain)
    structure = gemmi.Structure()
    structure.add_model(model)
    structure.setup_entities()
    return structure.make_minimal_pdb()


def write_demo_structures(folder: str | os.PathLike[str]) -> list[Path]:
    """Write the crowded demo's structures into ``folder`` as ``<name>.pdb`` (created).

    A file that already holds the same text is left untouched (same mtime, same hash).

    Returns
    -------
    list of Path
        The files, in the order of :data:`DEMO_STRUCTURES`.
    """
    from faket.io import atomic_write

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, build in DEMO_STRUCTURES.items():
        file = out / f"{name}.pdb"
        text = pdb_text(build())
        if not (file.is_file() and file.read_text(encoding="utf-8") == text):
            with atomic_write(file) as tmp:
                tmp.write_text(text, encoding="utf-8")
        files.append(file)
    return files
