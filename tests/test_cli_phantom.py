"""``faket phantom``: the output folder, its files, and one-line errors."""

from __future__ import annotations

import json

import gemmi
import numpy as np
import pytest

from faket.io import read_mrc, read_particle_locations
from faket.io.particles_star import read_classes_json, read_particles_star


@pytest.fixture
def pdb(tmp_path, rng):
    st = gemmi.Structure()
    model = gemmi.Model(1)
    chain = gemmi.Chain("A")
    for i, xyz in enumerate(rng.uniform(0, 30, (40, 3))):
        res = gemmi.Residue()
        res.name = "GLY"
        res.seqid = gemmi.SeqId(str(i + 1))
        atom = gemmi.Atom()
        atom.name, atom.element = "C", gemmi.Element("C")
        atom.pos, atom.b_iso, atom.occ = gemmi.Position(*xyz), 40.0, 1.0
        res.add_atom(atom)
        chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    path = tmp_path / "prot.pdb"
    st.write_pdb(str(path))
    return path


def test_phantom_writes_every_file(run_cli, tmp_path, pdb, monkeypatch):
    monkeypatch.setenv("FAKET_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "model_0"
    code, stdout, err = run_cli(
        "phantom",
        "--structure",
        pdb,
        "--count",
        5,
        "--builtin",
        "ring:3",
        "--builtin",
        "cluster:4:8",
        "--box",
        40,
        80,
        80,
        "--voxel-size",
        10,
        "--slab",
        30,
        "--fiducials",
        2,
        "--seed",
        1,
        "-o",
        out,
    )
    assert code == 0, err
    grand = read_mrc(out / "grandmodel.mrc", ndim=3)
    assert grand.data.shape == (40, 80, 80) and grand.voxel_size_a == pytest.approx(10.0)
    occ = read_mrc(out / "occupancy_mask.mrc").data
    cls = read_mrc(out / "class_mask.mrc").data
    listed = read_particle_locations(out / "particle_locations.txt")
    assert len(listed) == 14 and int(occ.max()) == 14
    classes = read_classes_json(out / "classes.json")
    assert [c["name"] for c in classes] == ["prot", "ring", "cluster", "fiducial"]
    assert set(np.unique(cls)) == {0, 1, 2, 3, 4}
    star, pixel = read_particles_star(out / "particles.star")
    assert [p.class_name for p in star] == [p.class_name for p in listed] and pixel == 10.0
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == 1 and prov["n_particles"] == 14
    assert list((tmp_path / "cache" / "structures").glob("*.npy"))

    # Same seed, same files (byte for byte; provenance holds timings and is left out).
    again = tmp_path / "model_1"
    code, _, err = run_cli(
        "phantom",
        "--structure",
        pdb,
        "--count",
        5,
        "--builtin",
        "ring:3",
        "--builtin",
        "cluster:4:8",
        "--box",
        40,
        80,
        80,
        "--voxel-size",
        10,
        "--slab",
        30,
        "--fiducials",
        2,
        "--seed",
        1,
        "-o",
        again,
    )
    assert code == 0, err
    for name in (
        "grandmodel.mrc",
        "class_mask.mrc",
        "occupancy_mask.mrc",
        "particle_locations.txt",
        "particles.star",
        "classes.json",
    ):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def _ligand_pdb(path):
    """A peptide atom and a CHARMM lone pair (LP1): no element columns, no element."""
    path.write_text(
        "ATOM      1 CA   ALA     1       0.000   0.000   0.000  1.00  0.00      PROA\n"
        "HETATM    2 LP1  LIG     7       1.500   0.000   0.000  1.00  0.00      HETA\n"
        "END\n"
    )


_FINITE = "--voxel-size: must be a finite positive number of Angstrom"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--voxel-size", 0], _FINITE),
        (["--voxel-size", -3], _FINITE),
        (["--voxel-size", "inf"], _FINITE),
        (["--voxel-size", "nan"], _FINITE),
        (["--voxel-size", 1e300], "--voxel-size: must be 0.01 to 10000 Angstrom, got 1e+300"),
        (["--voxel-size", 1e-300], "--voxel-size: must be 0.01 to 10000 Angstrom"),
        (["--voxel-size", "ten"], "--voxel-size"),
        (["--voxel-size", 10, "--builtin", "ring:500"], "only"),
        (["--voxel-size", 10, "--builtin", "ribosome:1"], "does not fit in the box"),
        (["--voxel-size", 10, "--builtin", "ring:-3"], "--builtin: 'ring:-3': the count must be"),
        (["--voxel-size", 10, "--builtin", "ring"], "--builtin: 'ring': not TYPE:COUNT"),
        (["--voxel-size", 10, "--builtin", "ring:2.5"], "--builtin: 'ring:2.5': not TYPE:COUNT"),
        (["--voxel-size", 10, "--builtin", "blob:3"], "--builtin: 'blob:3': unknown type 'blob'"),
        (["--voxel-size", 10, "--builtin", "ring:3:nan"], "the diameter must be a finite positive"),
        (["--voxel-size", 10, "--builtin", "ring:3:inf"], "the diameter must be a finite positive"),
        (["--voxel-size", 10, "--builtin", "ring:3:0"], "the diameter must be a finite positive"),
        (["--voxel-size", 10, "--builtin", "ring:1:1e9"], "voxels wide, more than the box"),
        (["--voxel-size", 10, "--box", 0, 40, 40], "--box: 0 is not in the range"),
        (["--voxel-size", 10, "--box", -5, 40, 40], "--box: -5 is not in the range"),
        (["--voxel-size", 10, "--slab", 30], "--slab: 30 voxels is thicker than the box (20"),
        (["--voxel-size", 10, "--slab", 0], "--slab: 0 is not in the range"),
        (["--voxel-size", 10, "--vesicles", -1], "--vesicles: -1 is not in the range"),
        (["--voxel-size", 10, "--seed", -1], "--seed: -1 is not in the range"),
        (["--voxel-size", 10, "--count", 2], "give one --count per --structure"),
        (["--voxel-size", 10, "--structure", "empty.pdb", "--count", 1], "no atoms"),
        (["--voxel-size", 10, "--structure", "missing.pdb", "--count", 1], "does not exist"),
        (["--voxel-size", 10, "--structure", "ligand.pdb", "--count", 1], "atom LP1: no element"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(run_cli, tmp_path, args, message):
    (tmp_path / "empty.pdb").write_text("END\n")
    _ligand_pdb(tmp_path / "ligand.pdb")
    names = ("empty.pdb", "missing.pdb", "ligand.pdb")
    args = [str(tmp_path / a) if a in names else a for a in args]
    out = tmp_path / "out"
    code, _, err = run_cli(
        "phantom", "--box", 20, 40, 40, "-o", out, "--cache-dir", tmp_path / "c", *args
    )
    assert code == 2
    # The progress bar redraws with carriage returns; the error is the one last line.
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("faket: error: ") and message in last
    assert "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob("c/**/*.npy"))


def test_solvated_charmm_file_without_elements_runs(run_cli, tmp_path):
    """A CHARMM file: no element columns, a TIP3 water and a free sodium, both left out."""
    lines = [
        "ATOM      1 N    ALA     1       0.000   0.000   0.000  1.00  0.00      PROA",
        "ATOM      2 CA   ALA     1       1.458   0.000   0.000  1.00  0.00      PROA",
        "ATOM      3 HG1  SER     2       2.000   1.400   0.000  1.00  0.00      PROA",
        "ATOM      4 OG   SER     2       2.500   2.300   0.500  1.00  0.00      PROA",
        "ATOM      5 OH2  TIP3 3001      40.000   0.000   0.000  1.00  0.00      SOLV",
        "ATOM      6 SOD  SOD  4001     -40.000   0.000   0.000  1.00  0.00      IONS",
    ]
    pdb = tmp_path / "md.pdb"
    pdb.write_text("\n".join([*lines, "END", ""]))
    out = tmp_path / "m"
    code, _, err = run_cli(
        "phantom", "--structure", pdb, "--count", 2, "--box", 20, 40, 40,
        "--voxel-size", 10, "-o", out, "--cache-dir", tmp_path / "c",
    )  # fmt: skip
    assert code == 0, err
    assert len(read_particle_locations(out / "particle_locations.txt")) == 2
    # Four protein atoms at 10 A voxels: a 5-voxel map, not one spanning the 80 A solvent.
    (cached,) = (tmp_path / "c" / "structures").glob("*.npy")
    assert np.load(cached).shape == (5, 5, 5)


def test_help_states_the_units(run_cli):
    code, out, _ = run_cli("phantom", "--help")
    text = " ".join(out.split())
    assert code == 0
    assert "Voxel size in Angstrom" in text and "slab in voxels" in text and "ZXZ" in text
