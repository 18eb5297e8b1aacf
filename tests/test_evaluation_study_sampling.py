"""Background patches, DeepFinder epochs, the validation subset and the cluster-size rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import two_class_tomogram
from faket.evaluation.patches import background_centres
from faket.evaluation.shrec import score_picks
from faket.evaluation.study_rule import choose_min_fraction, keep_large
from faket.evaluation.training import (
    LabelledVolume,
    TrainingSettings,
    epoch_patches,
    steps_per_epoch,
    validation_patches,
)
from faket.io import Particle


def _volume(seed: int = 0) -> LabelledVolume:
    image, mask, _, _, xyz = two_class_tomogram(seed=seed)
    return LabelledVolume(torch.from_numpy(image), torch.from_numpy(mask), xyz)


def test_background_centres_lie_on_background_voxels_spread_over_the_volume() -> None:
    volume = _volume()
    centres = background_centres(volume.labels, 4000, np.random.default_rng(1))
    assert centres.shape == (4000, 3)
    labels = volume.labels.numpy()
    assert (labels[tuple(centres.T)] == 0).all()
    # Uniform over the background: each Z half gets its share within 5 sigma (binomial).
    nz = labels.shape[0]
    share = (labels[: nz // 2] == 0).sum() / (labels == 0).sum()
    low = np.count_nonzero(centres[:, 0] < nz // 2)
    sigma = np.sqrt(4000 * share * (1 - share))
    assert abs(low - 4000 * share) < 5 * sigma


def test_no_background_is_refused() -> None:
    full = torch.ones((8, 8, 8), dtype=torch.int64)
    with pytest.raises(ValueError, match="no background"):
        background_centres(full, 3, np.random.default_rng(0))


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5])
def test_an_epoch_has_the_stated_fraction_of_background_patches(fraction: float) -> None:
    volumes = [_volume(0), _volume(1)]
    settings = TrainingSettings(patch=16, batch_size=4, background_fraction=fraction)
    which, centres, turns = epoch_patches(volumes, settings, np.random.default_rng(3))
    n_particles = sum(len(v.xyz) for v in volumes)
    on_background = np.array(
        [int(volumes[v].labels[tuple(c)]) == 0 for v, c in zip(which, centres, strict=True)]
    )
    # Particle patches are shifted by at most a quarter patch (4 voxels): a small ball's
    # centre may move off it, so count background patches by construction instead: the
    # total is n / (1 - f) and at least that many centres are background voxels.
    total = int(np.ceil(n_particles / (1 - fraction)))
    assert len(which) == len(centres) == len(turns) == total
    n_back = int(round(total * fraction))
    assert on_background.sum() >= n_back
    assert steps_per_epoch(volumes, settings) == -(-total // 4)


def test_background_patches_are_centred_on_background_at_the_fraction_without_shift() -> None:
    volumes = [_volume(0)]
    base = TrainingSettings(patch=16, batch_size=4, shift_fraction=0.0)
    settings = TrainingSettings(patch=16, batch_size=4, shift_fraction=0.0, background_fraction=0.4)
    _, particles, _ = epoch_patches(volumes, base, np.random.default_rng(0))
    _, mixed, _ = epoch_patches(volumes, settings, np.random.default_rng(0))
    centre_set = {tuple(c) for c in particles.tolist()}
    extra = [c for c in mixed.tolist() if tuple(c) not in centre_set]
    # With no shift, every particle patch sits on a particle centre; the others are the
    # background ones: 40 % of the epoch, all on background voxels.
    assert len(extra) == round(len(mixed) * 0.4)
    labels = volumes[0].labels.numpy()
    assert all(labels[tuple(c)] == 0 for c in extra)


def test_deepfinder_epochs_draw_a_fixed_number_of_batches_without_repeats() -> None:
    volumes = [_volume(0)]
    settings = TrainingSettings(patch=16, batch_size=2, steps_per_epoch=3, shift_fraction=0.0)
    which, centres, _ = epoch_patches(volumes, settings, np.random.default_rng(0))
    assert len(which) == 6 and steps_per_epoch(volumes, settings) == 3
    assert len({tuple(c) for c in centres.tolist()}) == 6  # 6 of 12 particles, no repeat


def test_validation_uses_the_same_evenly_spread_subset_and_background_every_time() -> None:
    volume = _volume(0)
    settings = TrainingSettings(patch=16, val_patches=4, background_fraction=0.5)
    a = validation_patches(volume, settings)[1]
    b = validation_patches(volume, settings)[1]
    assert np.array_equal(a, b) and len(a) == 8  # 4 particles + 4 background
    labels = volume.labels.numpy()
    assert all(labels[tuple(c)] == 0 for c in a[4:])


def _truth(xyz: np.ndarray, names: list[str], occupancy: np.ndarray):  # noqa: ANN202
    class Truth:
        pass

    t = Truth()
    t.names, t.xyz, t.occupancy, t.class_order = names, xyz, occupancy, ["small", "large"]  # type: ignore[attr-defined]
    return t


CLASSES = [
    {"id": 1, "name": "small", "diameter_a": 40.0},
    {"id": 2, "name": "large", "diameter_a": 80.0},
]


def test_the_cluster_rule_is_chosen_on_validation_by_brute_force() -> None:
    _, _, occupancy, names, xyz = two_class_tomogram(seed=0)
    # Candidates: every true particle with a cluster of 30 voxels, and noise blobs of 3
    # to 12 voxels far from any particle (corners of the volume).
    picks = [Particle(n, *p) for n, p in zip(names, xyz.tolist(), strict=True)]
    sizes = [30] * len(picks)
    for k, size in enumerate((3, 6, 9, 12)):
        picks.append(Particle("small", 1.0 + k, 1.0, 1.0))
        sizes.append(size)
    truth = _truth(xyz, names, occupancy)
    volumes = {"small": 30.0, "large": 30.0}
    grid = (0.05, 0.25, 0.5, 1.0, 2.0)
    fraction, table = choose_min_fraction(
        picks, sizes, truth, CLASSES, 10.0, particle_voxels=volumes, grid=grid
    )
    # Brute force: score every fraction by hand.
    objectives = {}
    for f in grid:
        kept = [p for p, s in zip(picks, sizes, strict=True) if s >= max(1, int(f * 30))]
        r = score_picks(
            names,
            xyz,
            occupancy,
            [p.class_name for p in kept],
            np.array([[p.x, p.y, p.z] for p in kept]).reshape(-1, 3),
            class_order=["small", "large"],
        )
        objectives[f] = (r.f1 + r.macro_f1_published) / 2
    assert [row["objective"] for row in table] == pytest.approx([objectives[f] for f in grid])
    assert objectives[fraction] == max(objectives.values())
    # 0.5 (15 voxels) drops all noise and keeps all particles; so would 1.0: the
    # smallest of equals wins. 2.0 drops everything.
    assert fraction == 0.5
    assert keep_large(picks, sizes, CLASSES, 10.0, 0.5, volumes) == picks[: len(names)]


def test_binning_is_the_block_mean_and_centres_map_both_ways() -> None:
    from faket.evaluation.study_files import bin_labels, bin_volume, from_binned, to_binned

    rng = np.random.default_rng(0)
    volume = rng.normal(size=(6, 8, 9)).astype(np.float32)
    binned = bin_volume(volume, 2)
    assert binned.shape == (3, 4, 4)  # the ninth X voxel does not fill a block
    for z, y, x in np.ndindex(*binned.shape):  # brute force
        block = volume[2 * z : 2 * z + 2, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2]
        assert binned[z, y, x] == pytest.approx(block.mean(), abs=1e-6)
    labels = rng.integers(0, 5, size=(6, 8, 8))
    assert np.array_equal(bin_labels(labels, 2), labels[1::2, 1::2, 1::2])
    xyz = rng.uniform(0, 8, size=(5, 3))
    assert np.allclose(from_binned(to_binned(xyz, 2), 2), xyz)
    # Block k of factor f covers voxels f*k .. f*k + f - 1: its centre maps to k.
    assert np.allclose(to_binned(np.array([[2.5, 0.5, 4.5]]), 2), [[1.0, 0.0, 2.0]])


def test_a_binned_volume_keeps_its_particles_on_their_labels(tmp_path) -> None:
    from faket.evaluation.study_files import load_volume
    from faket.io import Particle, write_mrc, write_particle_locations

    image, mask, _, names, xyz = two_class_tomogram(seed=2)
    folder = tmp_path / "model_0"
    folder.mkdir()
    write_mrc(image, folder / "tomogram_reference.mrc", voxel_size_a=10.0)
    write_mrc(mask.astype(np.float32), folder / "class_mask.mrc", voxel_size_a=10.0)
    particles = [Particle(n, *p) for n, p in zip(names, xyz.tolist(), strict=True)]
    write_particle_locations(particles, folder / "particle_locations.txt")
    volume, size = load_volume(tmp_path, 0, "reference", torch.device("cpu"), factor=2)
    assert size == 20.0 and tuple(volume.image.shape) == (12, 32, 32)
    centres = np.rint(volume.xyz[:, ::-1]).astype(int)
    found = volume.labels.numpy()[tuple(centres.T)]
    expected = [1 if n == "small" else 2 for n in names]
    assert list(found) == expected
