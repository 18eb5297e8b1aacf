"""Particle lists round-trip through SHREC text, RELION STAR and classes.json."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.io import Particle, read_particle_locations, write_particle_locations
from faket.io.particles_star import (
    read_classes_json,
    read_particles_star,
    write_classes_json,
    write_particles_star,
    zxz_to_zyz,
    zyz_to_zxz,
)


@pytest.fixture
def particles(rng):
    angles = Rotation.random(20, random_state=rng).as_euler("ZXZ", degrees=True)
    names = ["ring", "rod", "1bxn", "vesicle"]
    return [
        Particle(names[i % 4], *np.round(rng.uniform(0, 500, 3), 3), *np.round(angles[i], 4))
        for i in range(20)
    ] + [Particle("fiducial", 10.0, 20.0, 30.0, 0.0, 0.0, 0.0)]


def _matrix(p: Particle) -> np.ndarray:
    return Rotation.from_euler("ZXZ", (p.phi, p.theta, p.psi), degrees=True).as_matrix()


def test_zxz_and_relion_zyz_describe_the_same_rotation(rng):
    for zxz in Rotation.random(50, random_state=rng).as_euler("ZXZ", degrees=True):
        rot, tilt, psi = zxz_to_zyz(*zxz)
        same = Rotation.from_euler("ZYZ", (rot, tilt, psi), degrees=True).as_matrix()
        np.testing.assert_allclose(
            same, Rotation.from_euler("ZXZ", zxz, degrees=True).as_matrix(), atol=1e-9
        )
        np.testing.assert_allclose(zyz_to_zxz(rot, tilt, psi), zxz, atol=1e-9)
    # ZXZ = ZYZ with the first and last angles shifted by 90 degrees.
    assert zxz_to_zyz(30.0, 40.0, 50.0) == pytest.approx((-60.0, 40.0, 140.0))


def test_every_format_round_trips(tmp_path, particles):
    write_particle_locations(particles, tmp_path / "particle_locations.txt")
    assert read_particle_locations(tmp_path / "particle_locations.txt") == particles

    ids = {"ring": 1, "rod": 2, "1bxn": 3, "vesicle": 4, "fiducial": 5}
    write_particles_star(particles, ids, tmp_path / "particles.star", pixel_size_a=10.0)
    back, pixel = read_particles_star(tmp_path / "particles.star")
    assert pixel == pytest.approx(10.0)
    assert [p.class_name for p in back] == [p.class_name for p in particles]
    for a, b in zip(particles, back, strict=True):
        np.testing.assert_allclose([b.x, b.y, b.z], [a.x, a.y, a.z], atol=1e-6)
        # %.6f angles: rotation matrices agree to ~1e-7.
        np.testing.assert_allclose(_matrix(b), _matrix(a), atol=1e-6)

    classes = [
        {"id": v, "name": k, "source": f"builtin:{k}", "diameter_a": 100.0 + v}
        for k, v in ids.items()
    ]
    write_classes_json(classes, tmp_path / "classes.json")
    assert read_classes_json(tmp_path / "classes.json") == classes


def test_bad_files_are_one_line_errors(tmp_path, particles):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(FaketInputError, match="bad.json: not a faket classes.json"):
        read_classes_json(bad)
    with pytest.raises(FaketInputError, match="no class number"):
        write_particles_star(particles, {}, tmp_path / "x.star", pixel_size_a=1.0)
    assert not (tmp_path / "x.star").exists()
    with pytest.raises(FaketInputError, match="no such file"):
        read_particles_star(tmp_path / "none.star")
