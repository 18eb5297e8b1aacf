"""Particle lists round-trip through SHREC text, RELION 5 STAR and classes.json.

Oracles: the ``eulerangles`` package (RELION's convention: ZYZ, intrinsic,
right-handed, passive), ``starfile`` reading the blocks, and RELION 5's centre
``size / 2`` written out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import starfile
from eulerangles import convert_eulers, euler2matrix
from eulerangles.base import ConversionMeta
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.io import Particle, read_particle_locations, write_particle_locations
from faket.io.particles_star import (
    read_classes_json,
    read_particles_star,
    relion_to_zxz,
    write_classes_json,
    write_particles_star,
    zxz_to_relion,
    zxz_to_zyz,
    zyz_to_zxz,
)

# faket's angles as eulerangles describes them: ZXZ, intrinsic, right-handed, and the
# matrix places the reference onto the particle (active).
FAKET = ConversionMeta(
    name="faket", axes="zxz", intrinsic=True, right_handed_rotation=True, active=True
)
NAN = float("nan")


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


def _relion_matrix(rot: float, tilt: float, psi: float) -> np.ndarray:
    """RELION's matrix of three angles, by eulerangles (independent of faket)."""
    return euler2matrix(
        np.array([rot, tilt, psi]), axes="zyz", intrinsic=True, right_handed_rotation=True
    )


def test_relion_angles_agree_with_eulerangles(rng):
    # Tolerance: double-precision round-off, 1e-9 on matrix entries.
    for zxz in Rotation.random(50, random_state=rng).as_euler("ZXZ", degrees=True):
        ours = zxz_to_relion(*zxz)
        theirs = convert_eulers(np.array(zxz), FAKET, "relion")
        np.testing.assert_allclose(_relion_matrix(*ours), _relion_matrix(*theirs), atol=1e-9)
        back = relion_to_zxz(*ours)
        np.testing.assert_allclose(
            Rotation.from_euler("ZXZ", back, degrees=True).as_matrix(),
            Rotation.from_euler("ZXZ", zxz, degrees=True).as_matrix(),
            atol=1e-9,
        )


def test_a_particle_turned_90_degrees_about_z_reads_back_as_relion_means_it(tmp_path):
    """A particle whose x axis points along +y: RELION's matrix is the inverse of that."""
    path = tmp_path / "p.star"
    write_particles_star(
        [Particle("a", 1.0, 2.0, 3.0, 90.0, 0.0, 0.0)], {"a": 1}, path, pixel_size_a=5.0
    )
    row = starfile.read(path)["particles"].iloc[0]
    relion = _relion_matrix(row["rlnAngleRot"], row["rlnAngleTilt"], row["rlnAnglePsi"])
    # RELION's matrix (passive) maps the tomogram frame to the particle frame: its
    # transpose turns the reference's x axis onto the particle's, +y.
    np.testing.assert_allclose(relion.T @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(relion @ [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], atol=1e-6)
    # And a general one: the angles in the file are eulerangles' RELION angles.
    zxz = (30.0, 40.0, 50.0)
    write_particles_star([Particle("a", 1.0, 2.0, 3.0, *zxz)], {"a": 1}, path, pixel_size_a=5.0)
    row = starfile.read(path)["particles"].iloc[0]
    written = [row[k] for k in ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")]
    np.testing.assert_allclose(written, convert_eulers(np.array(zxz), FAKET, "relion"), atol=1e-5)


def test_optics_block_and_centred_angstrom_coordinates(tmp_path):
    path = tmp_path / "particles.star"
    shape_zyx = (50, 60, 81)  # RELION 5 centre (x, y, z) = (40.5, 30, 25) voxels
    points = [Particle("a", 40.5, 30.0, 25.0), Particle("b", 0.0, 60.0, 10.0, 1.0, 2.0, 3.0)]
    write_particles_star(
        points,
        {"a": 1, "b": 2},
        path,
        pixel_size_a=10.0,
        tomo_name="model_0",
        tomo_shape_zyx=shape_zyx,
    )
    blocks = starfile.read(path, always_dict=True)
    assert list(blocks) == ["optics", "particles"]
    optics = blocks["optics"]
    assert optics["rlnOpticsGroup"].tolist() == [1]
    assert optics["rlnTomoTiltSeriesPixelSize"].tolist() == [10.0]
    assert optics["rlnImagePixelSize"].tolist() == [10.0]
    rows = blocks["particles"]
    assert rows["rlnTomoName"].tolist() == ["model_0", "model_0"]
    assert rows["rlnTomoParticleName"].tolist() == ["model_0/1", "model_0/2"]
    assert rows["rlnOpticsGroup"].tolist() == [1, 1]
    assert rows["rlnClassNumber"].tolist() == [1, 2]
    assert rows["rlnClassName"].tolist() == ["a", "b"]
    centred = rows[[f"rlnCenteredCoordinate{a}Angst" for a in "XYZ"]].to_numpy()
    # (voxel - size / 2) * pixel size; %.6f in the file.
    np.testing.assert_allclose(centred, [[0, 0, 0], [-405, 300, -150]], atol=1e-6)
    np.testing.assert_allclose(rows["rlnCoordinateX"], [40.5, 0.0], atol=1e-6)

    # A RELION 5 file with only the centred coordinates reads back given the shape.
    only = tmp_path / "relion5.star"
    starfile.write(
        {"optics": optics, "particles": rows.drop(columns=[f"rlnCoordinate{a}" for a in "XYZ"])},
        only,
    )
    back, pixel = read_particles_star(only, tomo_shape_zyx=shape_zyx)
    assert pixel == 10.0
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in back], [[40.5, 30, 25], [0, 60, 10]])
    with pytest.raises(FaketInputError, match="relion5.star: has only rlnCenteredCoordinate"):
        read_particles_star(only)


def test_every_format_round_trips(tmp_path, particles):
    write_particle_locations(particles, tmp_path / "particle_locations.txt")
    assert read_particle_locations(tmp_path / "particle_locations.txt") == particles

    ids = {"ring": 1, "rod": 2, "1bxn": 3, "vesicle": 4, "fiducial": 5}
    write_particles_star(
        particles, ids, tmp_path / "particles.star", pixel_size_a=10.0, tomo_shape_zyx=(9, 9, 9)
    )
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


def test_equal_lists_give_equal_bytes(tmp_path, particles):
    for name in ("a.star", "b.star"):
        write_particles_star(
            particles,
            {p.class_name: 1 for p in particles},
            tmp_path / name,
            pixel_size_a=2.0,
            tomo_name="t",
            tomo_shape_zyx=(4, 5, 6),
        )
    assert (tmp_path / "a.star").read_bytes() == (tmp_path / "b.star").read_bytes()


def test_old_faket_files_are_read_with_their_convention(tmp_path):
    """A file as faket wrote it before RELION 5 layout: angles of R itself, no optics."""
    zxz = (30.0, 40.0, 50.0)
    rot, tilt, psi = Rotation.from_euler("ZXZ", zxz, degrees=True).as_euler("ZYZ", degrees=True)
    old = tmp_path / "old.star"
    old.write_text(
        "\ndata_particles\n\nloop_\n"
        "_rlnCoordinateX #1\n_rlnCoordinateY #2\n_rlnCoordinateZ #3\n"
        "_rlnAngleRot #4\n_rlnAngleTilt #5\n_rlnAnglePsi #6\n"
        "_rlnClassNumber #7\n_rlnClassName #8\n_rlnImagePixelSize #9\n"
        f"1.000000\t2.000000\t3.000000\t{rot:.6f}\t{tilt:.6f}\t{psi:.6f}\t1\tring\t8.000000\n"
    )
    (back,), pixel = read_particles_star(old)
    assert pixel == 8.0 and back.class_name == "ring"
    np.testing.assert_allclose(
        _matrix(back), Rotation.from_euler("ZXZ", zxz, degrees=True).as_matrix(), atol=1e-6
    )


def test_particles_without_angles_get_relion_angles_zero(tmp_path):
    path = tmp_path / "p.star"
    write_particles_star(
        [Particle("v", 1.0, 2.0, 3.0, NAN, NAN, NAN)], {"v": 1}, path, pixel_size_a=1.0
    )
    row = starfile.read(path)["particles"].iloc[0]
    assert [row[k] for k in ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")] == [0.0, 0.0, 0.0]


def test_zxz_and_zyz_of_the_same_rotation(rng):
    for zxz in Rotation.random(20, random_state=rng).as_euler("ZXZ", degrees=True):
        np.testing.assert_allclose(zyz_to_zxz(*zxz_to_zyz(*zxz)), zxz, atol=1e-9)
    # ZXZ = ZYZ with the first and last angles shifted by 90 degrees.
    assert zxz_to_zyz(30.0, 40.0, 50.0) == pytest.approx((-60.0, 40.0, 140.0))


def test_bad_files_are_one_line_errors(tmp_path, particles):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(FaketInputError, match="bad.json: not a faket classes.json"):
        read_classes_json(bad)
    with pytest.raises(FaketInputError, match="no class number"):
        write_particles_star(particles, {}, tmp_path / "x.star", pixel_size_a=1.0)
    with pytest.raises(FaketInputError, match="tomogram name 'a b' must be one word"):
        write_particles_star([], {}, tmp_path / "x.star", pixel_size_a=1.0, tomo_name="a b")
    assert not (tmp_path / "x.star").exists()
    with pytest.raises(FaketInputError, match="no such file"):
        read_particles_star(tmp_path / "none.star")
    empty = tmp_path / "empty.star"
    empty.write_text("data_optics\n\nloop_\n_rlnOpticsGroup #1\n1\n")
    with pytest.raises(FaketInputError, match="no block with rlnCoordinateX"):
        read_particles_star(empty)


def test_copick_reads_our_file_as_we_placed_the_particles(tmp_path, particles):
    """Second oracle: copick's RELION import (poses and RELION 5 / RELION 4 coordinates)."""
    from copick.util.formats import relion_coordinates_to_angstrom
    from copick.util.relion import relion_rows_to_poses

    path = tmp_path / "particles.star"
    shape_zyx, pixel = (64, 500, 510), 7.5
    ids = {p.class_name: 1 for p in particles}
    write_particles_star(
        particles, ids, path, pixel_size_a=pixel, tomo_name="m", tomo_shape_zyx=shape_zyx
    )
    blocks = starfile.read(path, always_dict=True)
    rows = blocks["particles"]
    rotations, _ = relion_rows_to_poses(rows)  # copick: object-to-tomogram rotations
    for p, rotation in zip(particles, rotations, strict=True):
        np.testing.assert_allclose(rotation, _matrix(p), atol=1e-6)
    expected_a = np.array([[p.x, p.y, p.z] for p in particles]) * pixel
    centre_a = tuple(np.array(shape_zyx[::-1]) / 2 * pixel)  # copick: shape / 2 * voxel size
    for version, centre in (("relion5", centre_a), ("relion4", None)):
        found = relion_coordinates_to_angstrom(
            rows.drop(columns=["rlnTomoName"]),
            tomogram_center=centre,
            optics=blocks["optics"],
            relion_version=version,
        )
        np.testing.assert_allclose(found, expected_a, atol=1e-4)  # %.6f of A and voxels
