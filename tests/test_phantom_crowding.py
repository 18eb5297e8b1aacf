"""Crowding to a volume fraction, on top of existing matter (a base specimen)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.io import Particle
from faket.phantom import ParticleClass, Specimen, build_specimen, builtin_particle, rotate_map

VOXEL = 10.0
SHAPE = (40, 96, 96)
SLAB = 32  # voxels 4 to 35
Z0 = (SHAPE[0] - SLAB) // 2
WEIGHTS = {"ring": 1, "cluster": 2, "globule": 3}


def classes(counts: dict[str, int] = WEIGHTS) -> list[ParticleClass]:
    return [ParticleClass(n, builtin_particle(n, VOXEL), c) for n, c in counts.items()]


def base_specimen() -> Specimen:
    """A flat membrane (Z 8-11) and a filament along X (radius 3 voxels), drawn by hand."""
    grandmodel = np.zeros(SHAPE, np.float32)
    class_mask = np.zeros(SHAPE, np.int32)
    occupancy = np.zeros(SHAPE, np.int32)
    membrane = np.zeros(SHAPE, bool)
    membrane[8:12] = True
    z, y, _ = np.indices(SHAPE)
    filament = ((z - 26) ** 2 + (y - 40) ** 2 <= 9) & ~membrane
    for index, label in enumerate((membrane, filament), start=1):
        grandmodel[label] = 5.0
        class_mask[label] = index
        occupancy[label] = index
    particles = [
        Particle("membrane", 48.0, 48.0, 9.5, *(float("nan"),) * 3),
        Particle("actin", 48.0, 40.0, 26.0, *(float("nan"),) * 3),
    ]
    infos: list[dict[str, object]] = [
        {"id": 1, "name": "membrane", "source": "test", "diameter_a": 0.0},
        {"id": 2, "name": "actin", "source": "test", "diameter_a": 60.0},
    ]
    return Specimen(grandmodel, class_mask, occupancy, particles, infos, VOXEL)


def rendered_label(p: Particle) -> np.ndarray:
    """Voxel indices ``(m, 3)`` of a particle's label, re-rendered from its list entry."""
    ref = builtin_particle(p.class_name, VOXEL)
    centre = np.array([p.z, p.y, p.x])
    base = np.rint(centre).astype(int)
    rotation = Rotation.from_euler("ZXZ", (p.phi, p.theta, p.psi), degrees=True)
    label = rotate_map(ref, rotation, centre - base) > 0.2 * ref.max()
    return np.argwhere(label) - ref.shape[0] // 2 + base


@pytest.fixture(scope="module")
def crowded():
    base = base_specimen()
    before = base.occupancy_mask.copy()
    out = build_specimen(
        classes(), SHAPE, VOXEL, slab_voxels=SLAB, seed=2, base=base, volume_fraction=0.15
    )
    return before, out


def test_crowding_reaches_the_volume_fraction_of_the_cytosol(crowded):
    before, out = crowded
    # Oracle: the masks alone. Cytosol = slab voxels the base did not occupy.
    cytosol = np.count_nonzero(before[Z0 : Z0 + SLAB] == 0)
    ids = [c["id"] for c in out.classes if c["name"] in WEIGHTS]
    soluble = np.count_nonzero(np.isin(out.class_mask, ids))
    # The last particle overshoots by its own volume (a ring: 0.2 % of this cytosol).
    assert soluble / cytosol == pytest.approx(0.15, abs=0.02)
    assert soluble / cytosol >= 0.15
    # Nothing soluble outside the slab.
    assert not np.isin(out.class_mask[:Z0], ids).any()
    assert not np.isin(out.class_mask[Z0 + SLAB :], ids).any()


def test_counts_weigh_the_classes(crowded):
    _, out = crowded
    n = {name: sum(p.class_name == name for p in out.particles) for name in WEIGHTS}
    total = sum(n.values())
    # A plan in proportion (largest remainder: within 1), then rounds of 1 ring, 2
    # clusters, 3 globules, the last one maybe cut short (within the class's weight).
    for name, weight in WEIGHTS.items():
        share = weight / sum(WEIGHTS.values())
        assert abs(n[name] - share * total) <= 1 + weight
    assert n["ring"] >= 10


def test_nothing_overlaps_the_base_and_ids_continue(crowded):
    before, out = crowded
    # The base's labels are untouched (a new label on them would overwrite their ids).
    np.testing.assert_array_equal(out.occupancy_mask[before > 0], before[before > 0])
    assert [c["id"] for c in out.classes] == [1, 2, 3, 4, 5]
    assert [c["name"] for c in out.classes[2:]] == list(WEIGHTS)
    assert [p.class_name for p in out.particles[:2]] == ["membrane", "actin"]
    # Each new particle, re-rendered alone, lies where the base was empty and carries
    # its own index (3, 4, ...) and class id.
    ids = {c["name"]: c["id"] for c in out.classes}
    for index, p in enumerate(out.particles[2:], start=3):
        voxels = tuple(rendered_label(p).T)
        assert np.all(before[voxels] == 0)
        np.testing.assert_array_equal(out.occupancy_mask[voxels], index)
        np.testing.assert_array_equal(out.class_mask[voxels], ids[p.class_name])
    assert out.occupancy_mask.max() == len(out.particles)


def test_counts_on_a_base_are_placed_without_overlaps():
    base = base_specimen()
    before = base.occupancy_mask.copy()
    out = build_specimen(
        classes({"ring": 4, "globule": 10}), SHAPE, VOXEL, n_fiducials=3, seed=4, base=base
    )
    names = [p.class_name for p in out.particles]
    assert names.count("ring") == 4 and names.count("globule") == 10
    assert names.count("fiducial") == 3
    np.testing.assert_array_equal(out.occupancy_mask[before > 0], before[before > 0])
    ids, sizes = np.unique(out.occupancy_mask[out.occupancy_mask > 2], return_counts=True)
    np.testing.assert_array_equal(ids, np.arange(3, len(out.particles) + 1))
    assert out.grandmodel is base.grandmodel  # drawn in place, as documented


def test_crowding_is_deterministic():
    kwargs = dict(slab_voxels=SLAB, seed=9, volume_fraction=0.05)
    a = build_specimen(classes(), SHAPE, VOXEL, **kwargs)
    b = build_specimen(classes(), SHAPE, VOXEL, **kwargs)
    assert a.grandmodel.tobytes() == b.grandmodel.tobytes()
    assert a.particles == b.particles


def test_bad_or_unreachable_fractions_are_clear_errors():
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="volume fraction must lie between 0 and 1"):
            build_specimen(classes(), SHAPE, VOXEL, volume_fraction=fraction)
    with pytest.raises(ValueError, match="positive count"):
        build_specimen(classes({"ring": 0}), SHAPE, VOXEL, volume_fraction=0.1)
    with pytest.raises(FaketInputError, match=r"reached a volume fraction of 0\.\d+ .* not 0\.6"):
        build_specimen(classes({"ring": 1}), (24, 48, 48), VOXEL, seed=0, volume_fraction=0.6)
    wrong = base_specimen()
    with pytest.raises(ValueError, match="not the box"):
        build_specimen(classes(), (40, 96, 64), VOXEL, base=wrong)
