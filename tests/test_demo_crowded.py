"""The crowded demo (``faket demo --crowded``): its structures, config and specimens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from faket.demo import demo_config
from faket.demo.run import CROWDED_BUILTIN, CROWDED_STRUCTURES, STRUCTURES_FOLDER
from faket.demo.structures import (
    ATOMS_PER_RESIDUE,
    RISE_A,
    bundle7,
    coiled_coil,
    helix_atoms,
    helix_ring,
    write_demo_structures,
)
from faket.phantom import BUILTIN_PARTICLES, build_specimen, read_atoms
from faket.pipeline.layout import specimen_seed
from faket.pipeline.plan import plan_run
from faket.pipeline.stages import particle_classes


@pytest.fixture
def structures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    monkeypatch.setenv("FAKET_CACHE_DIR", str(tmp_path / "cache"))
    return write_demo_structures(tmp_path / "out" / STRUCTURES_FOLDER)


def _max_ca_distance(positions: np.ndarray) -> float:
    return float(pdist(positions[1::ATOMS_PER_RESIDUE]).max())


# name, helices, residues per helix, intended extent (A): analytic, from the geometry
EXPECTED = {
    # the helix length 39 * 1.5 A across the bundle's diagonal (2 * (10 + 2.3) A)
    "bundle7": (7, 40, np.hypot(39 * RISE_A, 2 * 12.3)),
    # a coiled coil of n residues is about 1.5 A * n long
    "coiledcoil": (2, 120, 120 * RISE_A),
    # the ring's diameter 2 * (55 + 5.8 + 2.3) A against its height
    "helixring": (36, 40, np.hypot(39 * RISE_A, 2 * 63.1)),
}


def test_the_structures_read_back_with_their_atoms_and_sizes(structures):
    assert [f.stem for f in structures] == list(EXPECTED)
    for file in structures:
        n_helices, n_residues, extent_a = EXPECTED[file.stem]
        positions, elements, _, occupancies = read_atoms(file)
        assert len(positions) == n_helices * n_residues * ATOMS_PER_RESIDUE
        assert set(elements) == {"N", "C", "O"} and np.all(occupancies == 1)
        assert _max_ca_distance(positions) == pytest.approx(extent_a, rel=0.3), file.stem


def test_an_ideal_helix_has_the_alpha_geometry():
    ca = helix_atoms(37)[:, 1]
    assert np.hypot(ca[:, 0], ca[:, 1]) == pytest.approx(2.3)
    assert np.diff(ca[:, 2]) == pytest.approx(RISE_A)
    # 3.6 residues per turn: residue i + 18 is five turns on, straight above i
    assert ca[18, :2] == pytest.approx(ca[0, :2], abs=1e-9)
    assert np.linalg.norm(ca[1] - ca[0]) == pytest.approx(3.8, abs=0.1)  # CA-CA distance
    for build in (bundle7, coiled_coil, helix_ring):
        atoms = np.concatenate([h.reshape(-1, 3) for h in build()])
        assert pdist(atoms).min() > 1.0, build.__name__  # no two atoms on top of each other


def test_the_files_are_not_rewritten_when_unchanged(structures):
    stamps = [f.stat().st_mtime_ns for f in structures]
    again = write_demo_structures(structures[0].parent)
    assert [f.stat().st_mtime_ns for f in again] == stamps


def test_the_crowded_config_has_twelve_classes_and_the_ablation(tmp_path):
    config = demo_config(tmp_path / "out", crowded=True)
    p = config.phantom
    names = [*p.builtin, *(s.path.stem for s in p.structures)]
    assert len(names) == len(set(names)) == 12
    assert set(p.builtin) == set(BUILTIN_PARTICLES)
    assert not set(CROWDED_STRUCTURES) & set(BUILTIN_PARTICLES)
    total = sum(p.builtin.values()) + sum(s.count for s in p.structures)
    assert 230 <= total <= 270 and p.shape_zyx == (96, 256, 256) and p.voxel_size_a == 10
    assert config.noise.models == ("published", "spectral")
    assert config.style.ablation_models == ["spectral"]
    assert demo_config(tmp_path / "out").phantom.structures == []  # the default demo as it was


def test_a_crowded_specimen_places_every_particle(tmp_path, structures):
    config = demo_config(tmp_path / "out", crowded=True, device="cpu")
    plan_run(config)  # the structures inside the output are inputs, not faket's files
    classes = particle_classes(config)
    p = config.phantom
    specimen = build_specimen(
        classes,
        p.shape_zyx,
        p.voxel_size_a,
        n_vesicles=p.vesicles,
        vesicle_radius_a=(10 * p.vesicle_radius_nm[0], 10 * p.vesicle_radius_nm[1]),
        n_fiducials=p.fiducials,
        seed=specimen_seed(config, 0),
    )
    counts = {**CROWDED_BUILTIN, **CROWDED_STRUCTURES, "vesicle": 2, "fiducial": 6}
    placed = [particle.class_name for particle in specimen.particles]
    assert {name: placed.count(name) for name in counts} == counts
    assert len(placed) == sum(counts.values())


def test_the_cli_option_asks_for_the_crowded_demo(tmp_path, monkeypatch, run_cli):
    from types import SimpleNamespace

    import faket.demo

    asked: dict[str, object] = {}

    def fake_run_demo(output: Path, **settings: object) -> SimpleNamespace:
        asked.update(settings)
        return SimpleNamespace(report=Path(output) / "report.html")

    monkeypatch.setattr(faket.demo, "run_demo", fake_run_demo)
    code, out, err = run_cli("demo", "-o", tmp_path / "s", "--crowded", "--device", "cpu")
    assert code == 0, err
    assert asked["crowded"] is True and "report.html" in out
