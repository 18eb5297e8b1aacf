"""Filaments: helical lattices, worm-like axes, rendering and placement.

Oracles are independent of the code under test: helical parameters are measured from the
monomers' positions with plain vector algebra; persistence lengths from the tangent
correlation of many chains; widths from the rendered labels; a user's helix is redrawn
from its listed monomers by direct trilinear sampling (`scipy.ndimage.map_coordinates`).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.phantom._bodies import paste
from faket.phantom._monomers import MONOMER_MASS_DA, monomer_integral_v_a3
from faket.phantom._wormlike import worm_like_path
from faket.phantom.filaments import (
    FilamentRequest,
    HelixLattice,
    actin_filament,
    actin_monomers,
    helical_filament,
    microtubule_filament,
    microtubule_monomers,
    place_filaments,
    random_filament_path,
)


def straight_axis(direction_zyx, length_a: float, start_zyx=(0.0, 0.0, 0.0), step_a=20.0):
    d = np.asarray(direction_zyx, dtype=np.float64)
    d = d / np.linalg.norm(d)
    s = np.arange(0.0, length_a + 1e-9, step_a)
    return np.asarray(start_zyx, dtype=np.float64) + s[:, None] * d, d


def xyz(v):
    return np.asarray(v)[..., ::-1]


def helical_measures(positions, start, direction):
    """Axial positions, radii and radial unit vectors (x, y, z) about a straight axis."""
    rel = positions - start
    s = rel @ direction
    radial = rel - s[:, None] * direction
    r = np.linalg.norm(radial, axis=1)
    return s, r, xyz(radial / r[:, None])


def signed_angle_deg(a_xyz, b_xyz, axis_xyz):
    """Right-handed angle from a to b about the axis, degrees in (-180, 180]."""
    return np.degrees(np.arctan2(np.cross(a_xyz, b_xyz) @ axis_xyz, (a_xyz * b_xyz).sum(-1)))


def wrap_deg(a):
    return (np.asarray(a) + 180.0) % 360.0 - 180.0


def label_width_a(body, voxel_size_a, axis: int):
    """Extent of the label across a box axis (voxels with any label x voxel), middle half."""
    lab = body.label
    core = lab[:, :, lab.shape[2] // 4 : 3 * lab.shape[2] // 4]
    other = tuple(a for a in range(3) if a != axis)
    return float(np.any(core, axis=other).sum()) * voxel_size_a


def test_actin_rise_twist_radius_on_a_tilted_straight_axis():
    axis, d = straight_axis((0.3, -0.5, 0.8), 3000.0, start_zyx=(100.0, 50.0, -20.0))
    positions, angles = actin_monomers(axis, phase_deg=17.0)
    s, r, radial = helical_measures(positions, axis[0], d)
    assert len(positions) == int(3000.0 // 27.7) + 1
    np.testing.assert_allclose(np.diff(s), 27.7, atol=0.1)  # rise, A
    np.testing.assert_allclose(r, 20.0, atol=0.1)  # subunit radius, A
    twist = signed_angle_deg(radial[:-1], radial[1:], xyz(d))
    np.testing.assert_allclose(twist, -166.6, atol=0.1)
    # every second subunit: the long-pitch strands turn right-handedly by +26.8 deg
    np.testing.assert_allclose(
        signed_angle_deg(radial[:-2], radial[2:], xyz(d)), 360 - 2 * 166.6, atol=0.1
    )
    # the monomer frame: reference x -> radial, z -> axis direction
    m = Rotation.from_euler("ZXZ", angles, degrees=True).as_matrix()
    np.testing.assert_allclose(m[:, :, 0], radial, atol=1e-6)
    np.testing.assert_allclose(m[:, :, 2], np.broadcast_to(xyz(d), radial.shape), atol=1e-6)


def test_microtubule_lattice_13_protofilaments_3_start_with_one_seam():
    axis, d = straight_axis((0.0, 0.0, 1.0), 2000.0)
    positions, _, pf, beta = microtubule_monomers(axis, phase_deg=5.0)
    s, r, radial = helical_measures(positions, axis[0], d)
    np.testing.assert_allclose(r, 104.0, atol=0.1)
    azimuth = np.degrees(np.arctan2(radial[:, 2], radial[:, 1]))  # about +x: y towards z
    # protofilaments from the azimuths alone: 13 clusters 360/13 apart
    key = np.round(wrap_deg(azimuth) / (360 / 13)).astype(int) % 13
    assert len(np.unique(key)) == 13
    for k in np.unique(key):
        sel = key == k
        assert np.ptp(wrap_deg(azimuth[sel] - azimuth[sel][0])) < 1e-6  # parallel to the axis
        order = np.argsort(s[sel])
        np.testing.assert_allclose(np.diff(s[sel][order]), 40.0, atol=0.1)  # monomer spacing
        types = beta[sel][order]
        assert np.all(types[:-2] == types[2:]) and np.all(types[:-1] != types[1:])  # 80 A repeat
    # lateral neighbours: going right-handedly about the axis, the next protofilament's
    # nearest monomer is 3 x 40 / 13 = 9.23 A lower (a left-handed 3-start helix)
    same_type_contacts = 0
    rise_around = 0.0
    for k in range(13):
        a, b = key == k, key == (k + 1) % 13
        i = np.argmin(np.abs(s[a] - 1000.0))
        j = np.argmin(np.abs(s[b] - (s[a][i] - 9.23)))
        assert abs(s[b][j] - (s[a][i] - 120.0 / 13)) < 0.1
        rise_around += s[b][j] - s[a][i]
        same_type_contacts += int(beta[a][i] == beta[b][j])
    assert same_type_contacts == 12  # B lattice everywhere but one seam (alpha next to beta)
    assert abs(rise_around + 120.0) < 0.1  # three monomers per turn
    assert set(pf.tolist()) == set(range(13))


@pytest.mark.parametrize(
    ("render", "width_a", "voxel_size_a"),
    [(actin_filament, 70.0, 4.0), (actin_filament, 70.0, 10.0), (microtubule_filament, 250.0, 5.0)],
)
def test_rendered_width_matches_the_filament(render, width_a, voxel_size_a):
    axis, _ = straight_axis((0.0, 0.0, 1.0), 1000.0, start_zyx=(300.0, 300.0, 0.0))
    body = render(axis, voxel_size_a)
    for box_axis in (0, 1):  # across the axis, in Z and in Y
        assert abs(label_width_a(body, voxel_size_a, box_axis) - width_a) <= 2 * voxel_size_a
    assert body.class_name == ("actin" if render is actin_filament else "microtubule")
    assert np.all(np.isnan(body.angles_zxz_deg))
    assert body.extra["polyline_zyx_a"].shape == axis.shape
    if render is microtubule_filament:  # hollow: the lumen (about 16 nm) is not labelled
        lab = body.label
        c = -np.asarray(body.corner_zyx)
        z0 = int(round(300 / voxel_size_a)) + c[0]
        y0 = int(round(300 / voxel_size_a)) + c[1]
        hole = int(60 / voxel_size_a)
        assert not lab[z0 - hole : z0 + hole + 1, y0 - hole : y0 + hole + 1].any()


def test_potential_integral_is_the_monomers_mass_and_label_one_piece():
    t = np.linspace(0.0, 1.0, 151)
    curved = np.stack([300 * np.sin(3 * t), 200 * np.cos(2 * t), 3000 * t], 1)
    for render, kind in ((actin_filament, "actin"), (microtubule_filament, "microtubule")):
        body = render(curved, 8.0, phase_deg=33.0)
        m = len(body.extra["monomers"]["positions_zyx_a"])
        total = float(body.potential.sum(dtype=np.float64)) * 8.0**3
        expected = m * monomer_integral_v_a3(MONOMER_MASS_DA[kind])
        assert abs(total / expected - 1.0) < 1e-3
        assert ndimage.label(body.label)[1] == 1  # one face-connected instance
        inside = body.potential[body.label]
        assert 4.0 < float(inside.mean()) < 10.0  # about protein's 7 V


def test_persistence_length_recovered_from_tangent_correlation():
    rng = np.random.default_rng(3)
    lp, step = 1500.0, 20.0
    t0 = np.array([0.0, 0.0, 1.0])
    tangents = []
    for _ in range(300):
        p = worm_like_path(3000.0, lp, np.zeros(3), t0, rng, step_a=step)
        np.testing.assert_allclose(np.linalg.norm(np.diff(p, axis=0), axis=1), step, rtol=1e-9)
        tangents.append(np.diff(p, axis=0) / step)
    t = np.stack(tangents)  # (chains, steps, 3)
    lags = np.arange(5, 76, 5)
    corr = np.array([(t[:, :-k] * t[:, k:]).sum(-1).mean() for k in lags])
    slope = np.polyfit(lags * step, np.log(corr), 1)[0]
    assert abs(-1.0 / slope / lp - 1.0) < 0.2


def test_random_paths_keep_to_the_slab_and_are_cut_at_the_box():
    rng = np.random.default_rng(5)
    shape, voxel = (30, 64, 80), 10.0
    z_range = (60.0, 200.0)
    cut = 0
    for _ in range(40):
        p = random_filament_path(3000.0, 800.0, shape, voxel, z_range, rng)
        assert np.all((p[:, 0] >= z_range[0] - 1e-9) & (p[:, 0] <= z_range[1] + 1e-9))
        assert np.all((p[:, 1] >= -5.0) & (p[:, 1] <= 635.0))
        assert np.all((p[:, 2] >= -5.0) & (p[:, 2] <= 795.0))
        cut += int(len(p) < 151)
    assert cut > 20  # 300 nm filaments in a 64 x 80 nm box are mostly cut


def test_user_helix_redrawn_from_its_monomers():
    voxel = 6.0
    g = np.arange(11) - 5
    zz, yy, xx = np.meshgrid(g, g, g, indexing="ij")
    monomer = (
        np.exp(-((zz * 1.0) ** 2 + (yy * 1.3) ** 2 + (xx - 1.5) ** 2) / 4.0)
        + 0.5 * np.exp(-((zz - 2) ** 2 + (yy + 1) ** 2 + xx**2) / 2.0)
    ).astype(np.float32)
    monomer[zz**2 + yy**2 + xx**2 > 16] = 0.0  # inside the inscribed sphere: rotations keep it
    lattice = HelixLattice(rise_a=30.0, twist_deg=40.0, radius_a=25.0, starts=2)
    t = np.linspace(0.0, 1.0, 41)
    axis = np.stack([40 * np.sin(2 * t), 30 * t, 800 * t], 1)
    body = helical_filament(axis, monomer, voxel, lattice, name="mine", phase_deg=12.0)
    assert body.class_name == "mine"
    assert body.extra["helix"]["starts"] == 2
    mono = body.extra["monomers"]
    positions, angles = mono["positions_zyx_a"], mono["angles_zxz_deg"]
    assert positions.shape == angles.shape == (2 * (int(axis_len(axis) // 30) + 1), 3)
    # placed(centre + R r) = monomer(c + r): sample the monomer at c + R^T (x - centre)
    grid = (np.indices(body.potential.shape).reshape(3, -1).T + body.corner_zyx) * voxel
    redrawn = np.zeros(len(grid))
    for pos, ang in zip(positions, angles, strict=True):
        r_zyx = Rotation.from_euler("ZXZ", ang, degrees=True).as_matrix()[::-1, ::-1]
        near = np.abs(grid - pos).max(1) < 7 * voxel
        src = (grid[near] - pos) / voxel @ r_zyx + 5.0  # row-vector form of R^T d
        redrawn[near] += ndimage.map_coordinates(monomer, src.T, order=1, cval=0.0)
    np.testing.assert_allclose(
        body.potential.reshape(-1), redrawn, atol=1e-4 * float(monomer.max())
    )
    assert np.array_equal(body.label, body.potential > 0.2 * monomer.max())


def axis_len(axis):
    return float(np.linalg.norm(np.diff(axis, axis=0), axis=1).sum())


def test_placement_avoids_occupied_and_other_filaments_and_is_deterministic():
    shape, voxel = (40, 96, 96), 10.0
    occupied = np.zeros(shape, bool)
    occupied[:, 40:56, 40:56] = True
    before = occupied.copy()
    requests = [
        FilamentRequest("actin", 6, (400.0, 900.0), persistence_length_a=3000.0),
        FilamentRequest("microtubule", 2, (500.0, 900.0)),
    ]
    bodies = place_filaments(
        requests, shape, voxel, rng=np.random.default_rng(9), slab_voxels=34, occupied=occupied
    )
    assert [b.class_name for b in bodies] == ["microtubule"] * 2 + ["actin"] * 6
    grand = np.zeros(shape, np.float32)
    classes = np.zeros(shape, np.int32)
    instances = np.zeros(shape, np.int32)
    count = np.zeros(shape, np.int32)
    for i, b in enumerate(bodies):
        paste(grand, classes, instances, b, 1, i + 1)
        part = np.zeros(shape, np.int32)
        paste(np.zeros(shape, np.float32), part, np.zeros(shape, np.int32), b, 1, 1)
        count += part
        assert b.extra["persistence_length_a"] == (3000.0 if b.class_name == "actin" else 1e7)
    assert count.max() == 1  # no two filaments share a voxel
    assert not np.any(before & (count > 0))  # nor meet what was occupied
    assert np.array_equal(occupied, before | (count > 0))  # marked in place
    z = np.flatnonzero(np.any(count > 0, axis=(1, 2)))
    assert z.min() >= 3 and z.max() <= 36  # inside the 34-voxel slab
    again = place_filaments(
        requests, shape, voxel, rng=np.random.default_rng(9), slab_voxels=34, occupied=before
    )
    for a, b in zip(bodies, again, strict=True):
        assert a.corner_zyx == b.corner_zyx
        assert np.array_equal(a.potential, b.potential)
        assert np.array_equal(
            a.extra["monomers"]["angles_zxz_deg"], b.extra["monomers"]["angles_zxz_deg"]
        )


def test_placement_says_how_many_fit():
    requests = [FilamentRequest("microtubule", 40, (2000.0, 2000.0))]
    with pytest.raises(FaketInputError, match=r"only \d+ of 40 'microtubule' filaments fit"):
        place_filaments(requests, (30, 64, 64), 10.0, rng=np.random.default_rng(1), max_attempts=5)
    with pytest.raises(FaketInputError, match="does not fit in a slab of 10 voxels"):
        place_filaments(requests, (30, 64, 64), 10.0, rng=np.random.default_rng(1), slab_voxels=10)


def test_bad_inputs_are_refused_with_a_sentence():
    axis, _ = straight_axis((0.0, 0.0, 1.0), 200.0)
    with pytest.raises(ValueError, match="n >= 2"):
        actin_filament(axis[:1], 10.0)
    with pytest.raises(ValueError, match="odd cube"):
        helical_filament(axis, np.ones((4, 4, 4), np.float32), 10.0, HelixLattice(30, 40, 20))
    with pytest.raises(ValueError, match="needs a monomer"):
        place_filaments(
            [FilamentRequest("mine", 1, (100.0, 200.0))],
            (8, 8, 8),
            10.0,
            rng=np.random.default_rng(0),
        )
    with pytest.raises(ValueError, match="shortest <= longest"):
        place_filaments(
            [FilamentRequest("actin", 1, (300.0, 200.0))],
            (8, 8, 8),
            10.0,
            rng=np.random.default_rng(0),
        )
