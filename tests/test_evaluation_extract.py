"""Particles from label maps, and bootstrap summaries of runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faket.evaluation import (
    RunScores,
    bootstrap_mean,
    extract_particles,
    labels_from_scores,
    min_cluster_voxels,
    summarise_runs,
)

# (label, radius in voxels, centre z y x)
BLOBS = [(1, 2, (8, 8, 8)), (1, 4, (8, 30, 28)), (2, 3, (30, 10, 30)), (2, 5, (28, 30, 10))]


def ball_labels(shape=(40, 40, 40)) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.int64)
    zz, yy, xx = np.indices(shape)
    for label, radius, (z, y, x) in BLOBS:
        labels[(zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = label
    return labels


def test_min_cluster_voxels_rule():
    # diameter 4 voxels: sphere pi/6 * 64 = 33.51 voxels; 10 % -> 3
    assert min_cluster_voxels(40.0, 10.0) == 3
    assert min_cluster_voxels(40.0, 10.0, fraction=1.0) == math.floor(math.pi / 6 * 64)
    assert min_cluster_voxels(0.0, 10.0) == 1
    with pytest.raises(ValueError, match="voxel size"):
        min_cluster_voxels(40.0, 0.0)


@pytest.mark.parametrize(("method", "bandwidth"), [("meanshift", 5.0), ("components", None)])
def test_recovers_blob_centres_within_one_voxel(method, bandwidth):
    labels = ball_labels()
    labels[36:38, 36, 36] = 1  # a 2-voxel speck of class 1, under the threshold
    names = {1: "small", 2: "large"}
    particles = extract_particles(
        labels, names, method=method, bandwidth_vox=bandwidth, min_voxels={1: 5, 2: 5}
    )
    assert len(particles) == len(BLOBS)
    for label, _, (z, y, x) in BLOBS:
        distances = [
            math.dist((p.x, p.y, p.z), (x, y, z)) for p in particles if p.class_name == names[label]
        ]
        assert min(distances) <= 1.0
    kept = extract_particles(labels, names, method=method, bandwidth_vox=bandwidth)
    assert len(kept) == len(BLOBS) + 1  # the speck is kept without a minimum size


def test_minimum_size_drops_small_blobs():
    labels = ball_labels()
    # radius 2 ball has 33 voxels, radius 4 has 257
    particles = extract_particles(labels, {1: "a"}, method="components", min_voxels={1: 34})
    assert [(p.x, p.y, p.z) for p in particles] == [(28.0, 30.0, 8.0)]


def test_labels_from_scores_and_bad_arguments():
    scores = np.zeros((3, 2, 2, 2))
    scores[2, 0, 0, 0] = 1.0
    labels = labels_from_scores(scores)
    assert labels[0, 0, 0] == 2 and labels.sum() == 2
    with pytest.raises(ValueError, match="bandwidth"):
        extract_particles(labels, {2: "a"}, method="meanshift")
    with pytest.raises(ValueError, match="unknown method"):
        extract_particles(labels, {2: "a"}, method="watershed")


def test_bootstrap_is_seeded_and_nested():
    values = [0.5, 0.6, 0.7, 0.65, 0.55, 0.62]
    a = bootstrap_mean(values, seed=3)
    assert a == bootstrap_mean(values, seed=3)
    assert a["mean"] == pytest.approx(np.mean(values), abs=1e-12)
    assert a["low_95"] <= a["low_68"] <= a["mean"] <= a["high_68"] <= a["high_95"]
    assert a["low_95"] >= min(values) and a["high_95"] <= max(values)
    one = bootstrap_mean([0.4])
    assert one["low_95"] == one["high_95"] == 0.4


def test_summarise_groups_by_modality():
    def scores(f1):
        return {
            "localisation": {"precision": f1, "recall": f1, "f1": f1},
            "classification": {
                "macro_f1_published": f1,
                "macro_f1_real": f1,
                "per_class": {"A": {"f1": f1, "support": 2}, "B": {"f1": 0.0, "support": 0}},
            },
        }

    runs = [RunScores("faket", 1, scores(0.8)), RunScores("faket", 2, scores(0.6))]
    runs.append(RunScores("baseline", 1, scores(0.3)))
    summary = summarise_runs(runs, n_resamples=200)
    assert list(summary) == ["faket", "baseline"]
    assert summary["faket"]["localisation_f1"]["mean"] == pytest.approx(0.7, abs=1e-12)
    assert summary["faket"]["localisation_f1"]["n"] == 2
    assert "f1_A" in summary["baseline"] and "f1_B" not in summary["baseline"]


@pytest.mark.parametrize("method", ["meanshift", "components"])
def test_snap_puts_the_pick_of_a_ring_on_the_ring_not_in_its_hole(method):
    z, y, x = np.mgrid[:24, :40, :40]
    # A torus in the XY plane around (12, 20, 20): major radius 8, minor radius 2.
    ring = (np.hypot(y - 20, x - 20) - 8) ** 2 + (z - 12) ** 2 <= 4
    labels = ring.astype(np.int64)
    kwargs = {"method": method, "bandwidth_vox": 12.0}
    (centre,) = extract_particles(labels, {1: "ring"}, **kwargs)
    assert (centre.z, centre.y, centre.x) == pytest.approx((12, 20, 20), abs=0.5)
    assert not ring[round(centre.z), round(centre.y), round(centre.x)]  # the hole
    (snapped,) = extract_particles(labels, {1: "ring"}, snap=True, **kwargs)
    voxel = (int(snapped.z), int(snapped.y), int(snapped.x))
    assert ring[voxel]
    # ... and no labelled voxel is nearer to the centre than the one chosen.
    nearest = np.min((z[ring] - 12) ** 2 + (y[ring] - 20) ** 2 + (x[ring] - 20) ** 2)
    assert (voxel[0] - 12) ** 2 + (voxel[1] - 20) ** 2 + (voxel[2] - 20) ** 2 == nearest


def test_particle_volumes_are_voxels_per_particle_of_each_class():
    from faket.evaluation.study import particle_volumes

    a = np.zeros((4, 4, 4))
    a[0, :2, :2] = 1  # 4 voxels of class 1
    a[3, :, :] = 2  # 16 voxels of class 2
    b = np.zeros((4, 4, 4))
    b[1, 0, :] = 1  # 4 more voxels of class 1
    classes = [{"id": 1, "name": "p"}, {"id": 2, "name": "q"}, {"id": 3, "name": "r"}]
    sizes = particle_volumes([a, b], [["p", "q"], ["p", "p", "p"]], classes)
    assert sizes == {"p": 8 / 4, "q": 16 / 1}  # r has no particles: left out
