"""Specimen assembly: uniform rotations, no overlaps, labels that agree with the list."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.phantom import ParticleClass, build_specimen, builtin_particle, random_rotations

VOXEL = 10.0
SHAPE = (48, 96, 96)


@pytest.fixture(scope="module")
def specimen():
    classes = [
        ParticleClass(name, builtin_particle(name, VOXEL), count, f"builtin:{name}")
        for name, count in [("cluster", 12), ("ring", 6), ("rod", 5), ("globule", 15)]
    ]
    return build_specimen(
        classes,
        SHAPE,
        VOXEL,
        slab_voxels=40,
        n_vesicles=1,
        vesicle_radius_a=(150.0, 180.0),
        n_fiducials=8,
        seed=3,
    )


def test_random_rotations_are_uniform_on_so3():
    n = 20000
    rotated = random_rotations(n, np.random.default_rng(1)).apply(np.array([0.3, -0.5, 0.81]))
    rotated /= np.linalg.norm([0.3, -0.5, 0.81])
    # For a uniform direction: E[u] = 0 (sd 1/sqrt(3n)), E[u u^T] = I/3 (off-diagonal sd
    # 1/sqrt(15n), diagonal sd sqrt(4/45n)); 5 sd bounds fail a biased sampler but not
    # this one by chance (p < 1e-5 per entry).
    assert np.abs(rotated.mean(0)).max() < 5 / np.sqrt(3 * n)
    second = rotated.T @ rotated / n
    assert np.abs(second - np.eye(3) / 3).max() < 5 * np.sqrt(4 / 45 / n)
    # A biased sampler (uniform Euler angles) fails the same bound.
    biased = Rotation.from_euler(
        "ZXZ", np.random.default_rng(1).uniform(0, 180, (n, 3)), degrees=True
    ).apply(np.array([0.0, 0.0, 1.0]))
    assert np.abs(biased.T @ biased / n - np.eye(3) / 3).max() > 5 * np.sqrt(4 / 45 / n)


def test_counts_are_met_and_instances_do_not_overlap(specimen):
    names = [p.class_name for p in specimen.particles]
    assert names.count("cluster") == 12 and names.count("globule") == 15
    assert names.count("vesicle") == 1 and names.count("fiducial") == 8
    occ = specimen.occupancy_mask
    # One id per voxel is built in; overlaps would show as instances missing voxels of
    # their own rotated label, so count each instance's voxels vs an isolated render.
    ids, sizes = np.unique(occ[occ > 0], return_counts=True)
    np.testing.assert_array_equal(ids, np.arange(1, len(specimen.particles) + 1))
    assert sizes.min() > 0
    # Gold beads are balls: disjoint labels need centre distances of at least the sum
    # of their label radii, less one voxel diagonal for the partial-volume edges.
    beads = [i for i, p in enumerate(specimen.particles) if p.class_name == "fiducial"]
    centres = np.array([(p.z, p.y, p.x) for p in specimen.particles])
    radii = {
        i: np.sqrt(((np.argwhere(occ == i + 1) - centres[i]) ** 2).sum(1)).max() for i in beads
    }
    for a in beads:
        for b in beads:
            if a < b:
                distance = np.linalg.norm(centres[a] - centres[b])
                assert distance >= radii[a] + radii[b] - np.sqrt(3)


def test_no_voxel_belongs_to_two_instances(specimen):
    # Re-render every instance alone and check the labels are disjoint and all kept.
    from faket.phantom import rotate_map

    seen = np.zeros(SHAPE, dtype=np.int32)
    for index, p in enumerate(specimen.particles, start=1):
        if p.class_name in ("vesicle", "fiducial"):
            continue
        ref = builtin_particle(p.class_name, VOXEL)
        rot = Rotation.from_euler("ZXZ", (p.phi, p.theta, p.psi), degrees=True)
        centre = np.array([p.z, p.y, p.x])
        base = np.rint(centre).astype(int)
        label = rotate_map(ref, rot, centre - base) > 0.2 * ref.max()
        idx = np.argwhere(label) - ref.shape[0] // 2 + base
        inside = np.all((idx >= 0) & (idx < np.array(SHAPE)), axis=1)
        idx = idx[inside]
        voxels = tuple(idx.T)
        assert np.all(seen[voxels] == 0), f"instance {index} overlaps another"
        seen[voxels] = index
        np.testing.assert_array_equal(specimen.occupancy_mask[voxels], index)


def test_centres_lie_in_their_instances_and_classes_agree(specimen):
    occ, cls = specimen.occupancy_mask, specimen.class_mask
    ids = {c["name"]: c["id"] for c in specimen.classes}
    for index, p in enumerate(specimen.particles, start=1):
        voxel = (round(p.z), round(p.y), round(p.x))
        own = occ == index
        np.testing.assert_array_equal(np.unique(cls[own]), [ids[p.class_name]])
        if p.class_name in ("cluster", "globule", "rod", "fiducial"):  # solid at the centre
            assert occ[voxel] == index
        else:  # hollow (ring, vesicle): the centre is in the hole, the labels surround it
            assert occ[voxel] == 0
            centroid = np.argwhere(own).mean(0)
            np.testing.assert_allclose(centroid, [p.z, p.y, p.x], atol=1.0)
    assert np.all((cls > 0) == (occ > 0))


def test_rotation_convention_maps_the_reference_onto_the_particle(specimen):
    # Forward-map each labelled voxel offset r of the reference to centre + R r (R from
    # the listed ZXZ angles, acting on (x, y, z)); nearly all must land in the instance.
    # Rounding and trilinear resampling blur the label edge, hence 90 % (0.94 to 0.99
    # seen); the inverse rotation (the other convention) lands far fewer for rods.
    checked = 0
    for index, p in enumerate(specimen.particles, start=1):
        if p.class_name not in ("cluster", "rod"):
            continue
        ref = builtin_particle(p.class_name, VOXEL)
        offsets_xyz = (np.argwhere(ref > 0.3 * ref.max()) - ref.shape[0] // 2)[:, ::-1]
        rot = Rotation.from_euler("ZXZ", (p.phi, p.theta, p.psi), degrees=True)

        def hit_fraction(r: Rotation, p=p, offsets_xyz=offsets_xyz, index=index) -> float:
            xyz = np.rint(np.array([p.x, p.y, p.z]) + r.apply(offsets_xyz)).astype(int)
            zyx = xyz[:, ::-1]
            ok = np.all((zyx >= 0) & (zyx < np.array(SHAPE)), axis=1)
            return float(np.mean(specimen.occupancy_mask[tuple(zyx[ok].T)] == index))

        assert hit_fraction(rot) > 0.9
        if p.class_name == "rod" and abs(np.cos(np.radians(p.theta))) < 0.8:
            assert hit_fraction(rot.inv()) < 0.7
        checked += 1
    assert checked >= 10


def test_same_seed_same_specimen_and_another_seed_differs():
    classes = [ParticleClass("cluster", builtin_particle("cluster", VOXEL), 6)]
    a = build_specimen(classes, (32, 64, 64), VOXEL, n_fiducials=2, seed=5)
    b = build_specimen(classes, (32, 64, 64), VOXEL, n_fiducials=2, seed=5)
    c = build_specimen(classes, (32, 64, 64), VOXEL, n_fiducials=2, seed=6)
    assert a.grandmodel.tobytes() == b.grandmodel.tobytes()
    assert a.occupancy_mask.tobytes() == b.occupancy_mask.tobytes()
    assert a.class_mask.tobytes() == b.class_mask.tobytes()
    assert a.particles == b.particles
    assert a.grandmodel.tobytes() != c.grandmodel.tobytes()


def test_impossible_requests_are_clear_errors():
    ring = builtin_particle("ring", VOXEL)
    with pytest.raises(FaketInputError, match=r"only \d+ of 500 'ring' particles fit"):
        build_specimen([ParticleClass("ring", ring, 500)], (24, 64, 64), VOXEL, seed=0)
    with pytest.raises(FaketInputError, match="does not fit in the box"):
        build_specimen([ParticleClass("ring", ring, 1)], (8, 64, 64), VOXEL)
    with pytest.raises(ValueError, match="voxel size must be positive"):
        build_specimen([], (8, 8, 8), 0.0)
