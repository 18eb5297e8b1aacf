"""Potential maps from atoms: scattering-factor integrals, gemmi's oracle, cache, maps."""

from __future__ import annotations

import math
from pathlib import Path

import gemmi
import numpy as np
import pytest

from faket.errors import FaketInputError
from faket.io import write_mrc
from faket.phantom import (
    BUILTIN_PARTICLES,
    H2_OVER_2PI_M0_E,
    atoms_potential,
    builtin_particle,
    integrated_potential,
    load_structure,
    resample_map,
)


def _structure(positions_xyz, elements, b_iso=30.0) -> gemmi.Structure:
    st = gemmi.Structure()
    st.cell = gemmi.UnitCell(40, 40, 40, 90, 90, 90)
    st.spacegroup_hm = "P 1"
    model = gemmi.Model(1)
    chain = gemmi.Chain("A")
    for i, (pos, el) in enumerate(zip(positions_xyz, elements, strict=True)):
        res = gemmi.Residue()
        res.name = "GLY"
        res.seqid = gemmi.SeqId(str(i + 1))
        atom = gemmi.Atom()
        atom.name = el
        atom.element = gemmi.Element(el)
        atom.pos = gemmi.Position(*pos)
        atom.b_iso = b_iso
        atom.occ = 1.0
        res.add_atom(atom)
        chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    return st


@pytest.fixture
def atoms(rng):
    xyz = 14.0 + 12.0 * rng.random((30, 3))
    elements = list(rng.choice(["C", "N", "O", "S"], 30))
    return xyz, elements


def test_integral_scales_with_atom_content_as_the_scattering_factors_say(atoms):
    xyz, elements = atoms
    zyx = xyz[:, ::-1]
    b = np.full(len(elements), 20.0)
    occ = np.ones(len(elements))
    whole = atoms_potential(zyx, elements, b, occ, 2.0).sum() * 2.0**3
    carbons = [i for i, e in enumerate(elements) if e == "C"]
    part = atoms_potential(zyx[carbons], ["C"] * len(carbons), b[carbons], occ[carbons], 2.0)
    expected_whole = sum(integrated_potential(e) for e in elements)
    # Exact voxel integration loses only the Gaussians' tails beyond 4 sigma (< 1e-3).
    assert whole == pytest.approx(expected_whole, rel=2e-3)
    assert part.sum() * 8.0 == pytest.approx(len(carbons) * integrated_potential("C"), rel=2e-3)
    # C, N, O differ by their f_e(0): 2.51, 2.21?, 1.98? A (gemmi c4322 sums), not by Z.
    a_c, a_o = integrated_potential("C"), integrated_potential("O")
    assert a_c > a_o
    assert a_c == pytest.approx(H2_OVER_2PI_M0_E * sum(gemmi.Element("C").c4322.get_coefs()[:5]))


def test_map_matches_gemmi_density_calculator(atoms):
    """gemmi's DensityCalculatorE on a 0.25 A grid, box-averaged to 2 A voxels."""
    xyz, elements = atoms
    voxel, fine = 2.0, 0.25
    ours = atoms_potential(
        xyz[:, ::-1], elements, np.full(len(xyz), 30.0), np.ones(len(xyz)), voxel
    )
    n = ours.shape[0]
    # Our voxel (k, j, i) centre sits at com + (idx - n//2) * voxel.
    masses = np.array([gemmi.Element(e).weight for e in elements])
    com = (masses[:, None] * xyz).sum(0) / masses.sum()
    origin = com - (n // 2) * voxel - voxel / 2 + fine / 2  # first fine sample (x, y, z)
    shifted = _structure(xyz - origin, elements, b_iso=30.0)
    side = n * voxel
    shifted.cell = gemmi.UnitCell(side, side, side, 90, 90, 90)
    calc = gemmi.DensityCalculatorE()
    calc.blur = 0.0
    calc.set_grid_cell_and_spacegroup(shifted)
    m = int(round(side / fine))
    calc.grid.set_size(m, m, m)
    calc.add_model_density_to_grid(shifted[0])
    dens = np.array(calc.grid, copy=False).transpose(2, 1, 0)  # gemmi (x, y, z) -> (z, y, x)
    f = int(voxel / fine)
    oracle = H2_OVER_2PI_M0_E * dens.reshape(n, f, n, f, n, f).mean(axis=(1, 3, 5))
    # The oracle is the midpoint rule over each voxel: its error is about
    # h^2 / (24 sigma^2) = 0.7 % of a Gaussian's value for h = 0.25 A and the
    # sharpest Gaussian here (sigma = 0.62 A, B = 30 A^2); gemmi's own cutoff (1e-5)
    # and float32 add < 1e-4. We allow 1 % of the peak; 0.5 A sampling would be 2.7 %.
    assert np.abs(ours - oracle).max() < 1e-2 * oracle.max()
    assert ours.sum() == pytest.approx(oracle.sum(), rel=1e-2)


def _write_pdb(path: Path, xyz, elements) -> None:
    _structure(xyz, elements).write_pdb(str(path))


def test_pdb_and_mmcif_give_the_same_map_and_are_cached(tmp_path, atoms, monkeypatch):
    xyz, elements = atoms
    pdb = tmp_path / "a.pdb"
    _write_pdb(pdb, xyz, elements)
    cif = tmp_path / "a.cif"
    st = gemmi.read_structure(str(pdb))
    st.make_mmcif_document().write_file(str(cif))
    monkeypatch.setenv("FAKET_CACHE_DIR", str(tmp_path / "cache"))
    from_pdb = load_structure(pdb, 4.0)
    from_cif = load_structure(cif, 4.0)
    np.testing.assert_allclose(from_pdb, from_cif, atol=1e-4 * from_pdb.max())
    cached = sorted((tmp_path / "cache" / "structures").glob("*.npy"))
    assert len(cached) == 2 and all("4.0000A" in p.name for p in cached)
    np.testing.assert_array_equal(load_structure(pdb, 4.0), from_pdb)
    n = from_pdb.shape[0]
    assert n % 2 == 1
    zz, yy, xx = np.indices(from_pdb.shape)
    centre = [float((g * from_pdb).sum() / from_pdb.sum()) for g in (zz, yy, xx)]
    # Centred on the centre of mass (atomic weights); the map's centroid weighs by f_e(0).
    np.testing.assert_allclose(centre, [n // 2] * 3, atol=0.5)


def test_bad_structures_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty.pdb"
    empty.write_text("END\n")
    with pytest.raises(FaketInputError, match="empty.pdb: .*no atoms"):
        load_structure(empty, 5.0, cache=tmp_path)
    with pytest.raises(FaketInputError, match="no such file"):
        load_structure(tmp_path / "missing.cif", 5.0, cache=tmp_path)
    with pytest.raises(FaketInputError, match="voxel size must be positive"):
        load_structure(empty, 0.0, cache=tmp_path)


def test_density_map_is_resampled_and_centred(tmp_path):
    from faket.phantom import ball

    density = ball((40, 40, 40), (22.0, 20.0, 18.0), 8.0).numpy() * 7.0
    path = tmp_path / "m.mrc"
    write_mrc(density, path, voxel_size_a=2.0)
    out = load_structure(path, 4.0, cache=tmp_path)
    n = out.shape[0]
    zz, yy, xx = np.indices(out.shape)
    centre = [float((g * out).sum() / out.sum()) for g in (zz, yy, xx)]
    np.testing.assert_allclose(centre, [n // 2] * 3, atol=0.1)
    # The integral (value x voxel volume) is kept within the edge's interpolation error.
    assert out.sum() * 4.0**3 == pytest.approx(density.sum() * 2.0**3, rel=0.03)
    with pytest.raises(ValueError, match="positive"):
        resample_map(np.zeros((4, 4, 4)), 1.0, 2.0)


def test_builtin_library_is_deterministic_and_spans_5_to_30_nm():
    assert len(BUILTIN_PARTICLES) >= 8
    sizes = []
    for name in BUILTIN_PARTICLES:
        a = builtin_particle(name, 10.0)
        np.testing.assert_array_equal(a, builtin_particle(name, 10.0))
        label = a > 0.2 * a.max()
        idx = np.argwhere(label) - a.shape[0] // 2
        sizes.append(2 * math.sqrt((idx**2).sum(1).max()) + 1)  # voxels = nm at 10 A
    assert min(sizes) <= 8 and max(sizes) >= 25 and max(sizes) <= 34
    with pytest.raises(ValueError, match="unknown built-in"):
        builtin_particle("blob", 10.0)


def test_gallery_figure_is_written(tmp_path):
    from faket.report.figures import plot_particle_gallery

    maps = {name: builtin_particle(name, 20.0) for name in BUILTIN_PARTICLES}
    plot_particle_gallery(maps, tmp_path / "gallery.png", voxel_size_a=20.0)
    assert (tmp_path / "gallery.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
