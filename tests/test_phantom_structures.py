"""Real-world structure files: MD files without elements, solvent boxes, odd columns.

Each file is written here, column by column, as the tools that make such files write
them. The oracle is chemistry we state by hand (the elements a CHARMM peptide is made
of, which residues are solvent), not the reader's own tables: a map's integral (sum x
voxel volume) must equal the sum of `integrated_potential` over the atoms that should be
there, to 0.2 % (the splatting truncates each Gaussian at 4 sigma, losing < 0.1 %).
The wrong elements differ by far more: carbon gives 120 V A^3, calcium 475, hydrogen
25 against mercury 525.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import math
from pathlib import Path

import gemmi
import numpy as np
import pytest

from faket.errors import FaketInputError
from faket.phantom import integrated_potential, load_structure, read_atoms
from faket.phantom._elements import infer_element

VOXEL_A = 2.0
REL = 2e-3  # 4-sigma truncation of the Gaussians (< 1e-3) and float32 sums

# A CHARMM peptide: (residue, atom names with their true elements).
PEPTIDE = [
    ("SER", "N HT1 HT2 HT3 CA HA CB HB1 HB2 OG HG1 C O", "N H H H C H C H H O H C O"),
    ("PRO", "N CD HD1 HD2 CG HG1 HG2 CB HB1 HB2 CA HA C O", "N C H H C H H C H H C H C O"),
    (
        "ARG",
        "N HN CA HA CB CG CD NE HE CZ NH1 HH11 NH2 HH22 C O",
        "N H C H C C C N H C N H N H C O",
    ),
    ("HSD", "N HN CA CB CG ND1 HD1 CE1 HE1 NE2 CD2 HD2 C O", "N H C C C N H C H N C H C O"),
    ("CYS", "N HN CA CB SG HG1 C O", "N H C C S H C O"),
    ("MET", "N HN CA CB CG SD CE HE1 C O", "N H C C C S C H C O"),
    ("LEU", "N HN CA CB CG CD1 HD11 HD12 CD2 C OT1 OT2", "N H C C C C H H C C O O"),
]


def _pdb_line(
    serial: int,
    name: str,
    residue: str,
    number: int,
    xyz: np.ndarray,
    *,
    element: str = "",
    record: str = "ATOM",
    chain: str = " ",
    occupancy: str = "  1.00",
    b_factor: str = " 20.00",
    segid: str = "",
) -> str:
    """One ATOM/HETATM record; the name starts in column 13 as CHARMM writes it."""
    x, y, z = xyz
    return (
        f"{record:<6}{serial:>5} {name:<4} {residue:<4}{chain}{number:>4}    "
        f"{x:8.3f}{y:8.3f}{z:8.3f}{occupancy:>6}{b_factor:>6}      {segid:<4}{element:>2}"
    )


def _walk(rng: np.random.Generator, n: int, start=(0.0, 0.0, 0.0)) -> np.ndarray:
    steps = rng.normal(size=(n, 3))
    steps *= 1.45 / np.linalg.norm(steps, axis=1, keepdims=True)
    return np.asarray(start) + np.cumsum(steps, axis=0)


def _peptide(
    rng: np.random.Generator, *, elements: bool = False, xyz: np.ndarray | None = None
) -> tuple[list[str], list[str], np.ndarray]:
    """PDB lines, true elements and positions (x, y, z) of the CHARMM peptide."""
    atoms = [
        (res, number + 1, name, el)
        for number, (res, names, els) in enumerate(PEPTIDE)
        for name, el in zip(names.split(), els.split(), strict=True)
    ]
    xyz = _walk(rng, len(atoms)) if xyz is None else xyz
    lines = [
        _pdb_line(i + 1, name, res, num, p, element=el.upper() if elements else "", segid="PROA")
        for i, ((res, num, name, el), p) in enumerate(zip(atoms, xyz, strict=True))
    ]
    return lines, [a[3] for a in atoms], xyz


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([*lines, "END", ""]))
    return path


def _integral(density: np.ndarray) -> float:
    return float(density.sum(dtype=np.float64)) * VOXEL_A**3


def _expected(elements: list[str]) -> float:
    return sum(integrated_potential(e) for e in elements)


def test_charmm_names_without_element_columns_give_the_right_elements(tmp_path, rng):
    lines, truth, xyz = _peptide(rng)
    path = _write(tmp_path / "charmm.pdb", lines)
    # From the names alone (gemmi's guess) CA is calcium, HG1 mercury, OG oganesson.
    positions, elements, _, _ = read_atoms(path)
    assert elements == truth
    np.testing.assert_allclose(positions, xyz[:, ::-1], atol=1e-3)
    density = load_structure(path, VOXEL_A, cache=tmp_path / "cache")
    assert _integral(density) == pytest.approx(_expected(truth), rel=REL)
    # The same peptide with its element columns written gives the same map.
    with_elements, _, _ = _peptide(rng, elements=True, xyz=xyz)
    reference = _write(tmp_path / "with_elements.pdb", with_elements)
    np.testing.assert_allclose(
        density, load_structure(reference, VOXEL_A, cache=tmp_path / "cache"), atol=1e-6
    )


@pytest.mark.parametrize(
    ("residue", "name", "element"),
    [
        ("ALA", "CA", "C"),
        ("SER", "HG1", "H"),
        ("LEU", "HG", "H"),
        ("PRO", "CD", "C"),
        ("ARG", "NE", "N"),
        ("SER", "OG", "O"),
        ("HSE", "HE2", "H"),
        ("HIP", "ND1", "N"),
        ("CYX", "SG", "S"),
        ("NALA", "H3", "H"),
        ("GLY", "OXT", "O"),
        ("ALA", "1HB", "H"),
        ("MSE", "SE", "Se"),
        ("DA", "OP1", "O"),
        ("DT", "O1P", "O"),
        ("G", "C1'", "C"),
        ("U", "O4*", "O"),
        ("GUA", "H5T", "H"),
        ("ADE", "P", "P"),
        ("SOD", "SOD", "Na"),
        ("POT", "POT", "K"),
        ("CLA", "CLA", "Cl"),
        ("CAL", "CAL", "Ca"),
        ("ZN2", "ZN", "Zn"),
        ("Na+", "Na+", "Na"),
        ("Cl-", "Cl-", "Cl"),
        ("NA", "NA", "Na"),
        ("CL", "CL", "Cl"),
        ("CA", "CA", "Ca"),
        ("MG", "MG", "Mg"),
        ("HEM", "FE", "Fe"),
        ("HEM", "NA", "N"),
        ("HEM", "CAA", "C"),
        ("LIG", "CL1", "Cl"),
        ("LIG", "BR", "Br"),
        ("POPC", "H13A", "H"),
        ("LIG", "CO", None),
        ("LIG", "LP1", None),
        ("LIG", "X", None),
        ("ALA", "XA", None),
    ],
)
def test_element_table(residue, name, element):
    assert infer_element(residue, name) == element


def _solvent_lines(rng: np.random.Generator, start: int, far: np.ndarray) -> list[str]:
    """Water of four force fields and free ions, all farther than 20 A from `far`."""
    lines, serial = [], start
    waters = [("TIP3", "OH2 H1 H2"), ("SOL", "OW HW1 HW2 MW"), ("WAT", "O H1 H2"), ("HOH", "O")]
    ions = [("SOD", "SOD"), ("CLA", "CLA"), ("POT", "POT"), ("NA", "NA"), ("CL", "CL")]
    ions += [("Na+", "Na+"), ("Cl-", "Cl-")]
    number = 1
    for k in range(6):
        for residue, names in waters:
            for name, p in zip(names.split(), _walk(rng, 4, far + (0, 3.0 * k, 0)), strict=False):
                lines.append(_pdb_line(serial, name, residue, number, p, segid="SOLV"))
                serial += 1
            number += 1
    for k, (residue, name) in enumerate(ions):
        p = far + (10.0, 4.0 * k, 0.0)
        lines.append(_pdb_line(serial, name, residue, number, p, segid="IONS"))
        serial, number = serial + 1, number + 1
    return lines


def test_solvated_md_system_keeps_the_protein_and_its_bound_ion(tmp_path, rng):
    lines, truth, xyz = _peptide(rng)
    far = xyz.mean(0) + (40.0, 0.0, 0.0)
    solvent = _solvent_lines(rng, len(lines) + 1, far)
    # A sodium 2.4 A from the C-terminal oxygen is bound, so it stays.
    out = xyz[-1] - xyz.mean(0)
    bound = xyz[-1] + 2.4 * out / np.linalg.norm(out)
    ion = _pdb_line(len(lines) + len(solvent) + 1, "SOD", "SOD", 999, bound, segid="IONS")
    path = _write(tmp_path / "solvated.pdb", [*lines, *solvent, ion])
    _, elements, _, _ = read_atoms(path)
    assert sorted(elements) == sorted([*truth, "Na"])
    density = load_structure(path, VOXEL_A, cache=tmp_path / "cache")
    assert _integral(density) == pytest.approx(_expected([*truth, "Na"]), rel=REL)
    # The box spans the peptide and its ion only, not the solvent 40 A away.
    reach = np.linalg.norm(np.vstack([xyz, bound]) - xyz.mean(0), axis=1).max()
    assert density.shape[0] * VOXEL_A < 2 * reach + 30.0


def test_crystal_ions_bound_are_kept_and_free_ones_removed(tmp_path, rng):
    # A zinc finger: Zn 2.3 A from four cysteine sulfurs (element columns, HETATM).
    sulfurs = 2.3 * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / math.sqrt(3)
    lines = [
        _pdb_line(i + 1, "SG", "CYS", i + 1, p, element="S", chain="A")
        for i, p in enumerate(sulfurs)
    ]
    lines.append(_pdb_line(5, "ZN", "ZN", 101, np.zeros(3), element="ZN", record="HETATM"))
    # A magnesium held only by waters (removed) is solvent, and goes with them.
    lines.append(_pdb_line(6, "MG", "MG", 102, (12.0, 0, 0), element="MG", record="HETATM"))
    lines.append(_pdb_line(7, "O", "HOH", 201, (14.1, 0, 0), element="O", record="HETATM"))
    path = _write(tmp_path / "zinc.pdb", lines)
    _, elements, _, _ = read_atoms(path)
    assert sorted(elements) == ["S", "S", "S", "S", "Zn"]
    # A file of nothing but ions keeps them: they are the structure.
    ions = [
        _pdb_line(1, "ZN", "ZN", 1, np.zeros(3), element="ZN", record="HETATM"),
        _pdb_line(2, "ZN", "ZN", 2, (9.0, 0, 0), element="ZN", record="HETATM"),
    ]
    assert read_atoms(_write(tmp_path / "ions.pdb", ions))[1] == ["Zn", "Zn"]


def _c60_xyz(radius_a: float = 3.55) -> np.ndarray:
    """The 60 vertices of a truncated icosahedron (C60), scaled to ``radius_a``.

    The cyclic permutations of (0, +-1, +-3 phi), (+-1, +-(2 + phi), +-2 phi) and
    (+-phi, +-2, +-phi^3), phi the golden ratio.
    """
    phi = (1 + math.sqrt(5)) / 2
    base = [(0.0, 1.0, 3 * phi), (1.0, 2 + phi, 2 * phi), (phi, 2.0, phi**3)]
    points = {
        tuple(s * v[(i + shift) % 3] for i, s in enumerate(signs))
        for v in base
        for shift in range(3)
        for signs in itertools.product((1.0, -1.0), repeat=3)
    }
    xyz = np.array(sorted(points), dtype=np.float64)
    return radius_a * xyz / np.linalg.norm(xyz[0])


@pytest.mark.parametrize(
    ("occupancy", "b_factor"),
    [("inf", "inf"), ("", ""), ("nan", "nan"), ("  0.00", "  0.00")],
)
def test_fullerene_with_missing_occupancies_and_b_factors(tmp_path, occupancy, b_factor):
    xyz = _c60_xyz()
    assert len(xyz) == 60
    assert np.linalg.norm(xyz, axis=1) == pytest.approx(3.55)
    lines = [
        _pdb_line(
            i + 1,
            "C" if i == 0 else f"C{i}",
            "MOL",
            1,
            p,
            element="C",
            occupancy=occupancy,
            b_factor=b_factor,
        )
        for i, p in enumerate(xyz)
    ]
    path = _write(tmp_path / "fullerene.pdb", lines)
    _, _, b, occ = read_atoms(path)
    np.testing.assert_array_equal(occ, 1.0)
    np.testing.assert_array_equal(b, 0.0)
    density = load_structure(path, VOXEL_A, cache=tmp_path / "cache")
    assert _integral(density) == pytest.approx(60 * integrated_potential("C"), rel=REL)
    n = density.shape[0]
    centre = [float((g * density).sum() / density.sum()) for g in np.indices(density.shape)]
    np.testing.assert_allclose(centre, [n // 2] * 3, atol=0.05)  # the cage's centre


@pytest.mark.parametrize(
    ("line", "where"),
    [
        (("LP1", "LIG", 7, ""), "residue LIG 7, atom LP1: no element in columns 77-78"),
        (("CO", "B12", 3, ""), "residue B12 3, atom CO: no element in columns 77-78"),
        (("ES", "ES", 9, "ES"), "residue ES 9, atom ES: element Es has no electron scattering"),
    ],
)
def test_unknown_elements_are_refused_in_one_line_and_nothing_is_cached(tmp_path, rng, line, where):
    lines, _, xyz = _peptide(rng)
    name, residue, number, element = line
    lines.append(
        _pdb_line(99, name, residue, number, xyz[-1] + 1.5, element=element, record="HETATM")
    )
    path = _write(tmp_path / "ligand.pdb", lines)
    with pytest.raises(FaketInputError) as info:
        load_structure(path, VOXEL_A, cache=tmp_path / "cache")
    message = str(info.value)
    assert message.startswith(f"{path}: {where}") and "\n" not in message
    assert not list(tmp_path.glob("cache/**/*.npy"))


def test_mmcif_without_type_symbol_is_read_by_names(tmp_path, rng):
    lines, truth, _ = _peptide(rng)
    path = _write(tmp_path / "p.pdb", lines)
    doc = gemmi.read_structure(str(path)).make_mmcif_document()  # gemmi's guesses ...
    doc[0].find_mmcif_category("_atom_site.").loop.remove_column("_atom_site.type_symbol")
    doc.write_file(str(tmp_path / "p.cif"))  # ... removed: names only
    assert sorted(read_atoms(tmp_path / "p.cif")[1]) == sorted(truth)


@pytest.mark.parametrize(
    ("suffix", "compress"), [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)]
)
def test_compressed_files_give_the_plain_file_map(tmp_path, rng, suffix, compress):
    lines, _, _ = _peptide(rng)
    plain = _write(tmp_path / "p.pdb", lines)
    packed = tmp_path / f"p.pdb{suffix}"
    packed.write_bytes(compress(plain.read_bytes()))
    np.testing.assert_array_equal(
        load_structure(packed, VOXEL_A, cache=tmp_path / "c1"),
        load_structure(plain, VOXEL_A, cache=tmp_path / "c2"),
    )
    broken = tmp_path / f"broken.pdb{suffix}"
    broken.write_bytes(b"not compressed\n")
    with pytest.raises(FaketInputError, match=rf"broken.pdb{suffix}: not a readable"):
        read_atoms(broken)


def test_water_only_file_is_refused(tmp_path, rng):
    lines = _solvent_lines(rng, 1, np.zeros(3))
    lines = [line for line in lines if line[17:21].strip() in ("TIP3", "SOL", "WAT", "HOH")]
    with pytest.raises(FaketInputError, match="no atoms besides water"):
        read_atoms(_write(tmp_path / "water.pdb", lines))
