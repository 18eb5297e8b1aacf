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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--voxel-size", 0], "--voxel-size must be positive"),
        (["--voxel-size", 10, "--builtin", "ring:500"], "only"),
        (["--voxel-size", 10, "--builtin", "ribosome:1"], "does not fit in the box"),
        (["--voxel-size", 10, "--structure", "empty.pdb", "--count", 1], "no atoms"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(run_cli, tmp_path, args, message):
    (tmp_path / "empty.pdb").write_text("END\n")
    args = [str(tmp_path / a) if a == "empty.pdb" else a for a in args]
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


def test_help_states_the_units(run_cli):
    code, out, _ = run_cli("phantom", "--help")
    text = " ".join(out.split())
    assert code == 0
    assert "Voxel size in Angstrom" in text and "slab in voxels" in text and "ZXZ" in text
