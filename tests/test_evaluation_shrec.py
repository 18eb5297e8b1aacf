"""SHREC 2021 scores on hand-built tomograms whose answers are worked out here.

The tomogram (z, y, x) = (8, 16, 24) holds four 3x3x3 cubes:
  1 "A"  centre x y z = (3, 3, 3)
  2 "B"  centre (11, 3, 3)
  3 "A"  centre (19, 11, 3)
  4 "C"  centre (11, 11, 5)
Scores are fractions of small integers, compared with a 1e-12 tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from faket.evaluation import BACKGROUND, dilate_occupancy, score_picks

NAMES = ["A", "B", "A", "C"]
CENTRES = np.array([[3, 3, 3], [11, 3, 3], [19, 11, 3], [11, 11, 5]], dtype=float)
ORDER = ["B", "A", "C"]  # by size, smallest first
TOL = 1e-12


@pytest.fixture
def occupancy() -> np.ndarray:
    mask = np.zeros((8, 16, 24), dtype=np.int32)
    for i, (x, y, z) in enumerate(CENTRES.astype(int), start=1):
        mask[z - 1 : z + 2, y - 1 : y + 2, x - 1 : x + 2] = i
    return mask


def score(occupancy, names, xyz, **kwargs):
    return score_picks(
        NAMES, CENTRES, occupancy, names, np.array(xyz, float), class_order=ORDER, **kwargs
    )


def test_perfect_picks_score_one(occupancy):
    s = score(occupancy, NAMES, CENTRES)
    assert (s.true_positives, s.false_positives, s.false_negatives) == (4, 0, 0)
    assert s.precision == s.recall == s.f1 == 1.0
    assert s.macro_f1_published == s.macro_f1_real == 1.0
    assert s.labels == (BACKGROUND, "B", "A", "C")
    np.testing.assert_array_equal(np.diag(s.confusion), [0, 1, 2, 1])
    assert s.confusion.sum() == 4
    assert s.mean_distance_vox == 0.0


def test_missed_particle_adds_zero_background_term(occupancy):
    s = score(occupancy, ["A", "B", "C"], CENTRES[[0, 1, 3]])
    assert (s.true_positives, s.false_positives, s.false_negatives) == (3, 0, 1)
    assert s.precision == 1.0
    assert s.recall == pytest.approx(3 / 4, abs=TOL)
    assert s.f1 == pytest.approx(6 / 7, abs=TOL)
    # A: 1 of 2 found -> F1 2/3; background predicted once, never true -> F1 0
    assert s.per_class["A"]["f1"] == pytest.approx(2 / 3, abs=TOL)
    assert s.per_class[BACKGROUND]["f1"] == 0.0
    assert s.macro_f1_published == pytest.approx((0 + 2 / 3 + 1 + 1) / 4, abs=TOL)
    assert s.macro_f1_real == pytest.approx((2 / 3 + 1 + 1) / 3, abs=TOL)
    assert s.confusion[s.labels.index("A"), 0] == 1


def test_false_positive_lowers_precision_only(occupancy):
    s = score(occupancy, [*NAMES, "B"], [*CENTRES.tolist(), [0, 15, 7]])
    assert (s.true_positives, s.false_positives, s.false_negatives) == (4, 1, 0)
    assert s.precision == pytest.approx(4 / 5, abs=TOL)
    assert s.recall == 1.0
    assert s.f1 == pytest.approx(8 / 9, abs=TOL)
    # nothing missed: no background term, classification perfect
    assert s.macro_f1_published == s.macro_f1_real == 1.0


def test_duplicate_stays_in_precision_denominator(occupancy):
    s = score(occupancy, [*NAMES, "A"], [*CENTRES.tolist(), [4, 3, 3]])
    assert (s.true_positives, s.false_positives, s.false_negatives) == (4, 0, 0)
    assert (s.n_duplicates, s.n_multiple_hits) == (1, 1)
    assert s.precision == pytest.approx(4 / 5, abs=TOL)
    assert s.macro_f1_published == 1.0


def test_misclassified_particle(occupancy):
    s = score(occupancy, ["A", "A", "A", "C"], CENTRES)
    assert s.f1 == 1.0
    assert s.confusion[s.labels.index("B"), s.labels.index("A")] == 1
    # A: tp 2, row 2, column 3 -> 4/5; B: tp 0 -> 0; C: 1
    assert s.per_class["A"]["f1"] == pytest.approx(4 / 5, abs=TOL)
    assert s.per_class["B"]["f1"] == 0.0
    assert s.macro_f1_published == pytest.approx(0.6, abs=TOL)
    assert s.macro_f1_real == pytest.approx(0.6, abs=TOL)


@pytest.mark.parametrize(("first", "expected_f1_b"), [("A", 0.0), ("B", 1.0)])
def test_first_prediction_classifies(occupancy, first, expected_f1_b):
    other = "B" if first == "A" else "A"
    names = ["A", first, other, "A", "C"]
    xyz = [CENTRES[0], CENTRES[1], CENTRES[1], CENTRES[2], CENTRES[3]]
    s = score(occupancy, names, xyz)
    assert s.per_class["B"]["f1"] == expected_f1_b


def test_pick_one_voxel_outside_hits_after_dilation(occupancy):
    # cube 1 spans x 2..4; x = 5 touches it face-on, (5, 5) only diagonally
    assert score(occupancy, ["A"], [[5, 3, 3]]).true_positives == 1
    assert score(occupancy, ["A"], [[5.4, 3, 3]]).true_positives == 1  # rounds to 5
    assert score(occupancy, ["A"], [[6, 3, 3]]).false_positives == 1
    assert score(occupancy, ["A"], [[5, 5, 3]]).false_positives == 1
    assert dilate_occupancy(occupancy)[3, 3, 5] == 1


def test_excluded_class(occupancy):
    s = score(occupancy, NAMES, CENTRES, exclude=["C"])
    assert s.n_truth == 3 and s.n_predicted == 4
    assert (s.true_positives, s.false_positives, s.false_negatives) == (3, 0, 0)
    assert s.precision == pytest.approx(3 / 4, abs=TOL)  # the hit on C stays counted
    assert "C" not in s.labels
    assert s.macro_f1_published == 1.0
    # a first prediction naming an excluded class classifies its particle as background
    t = score(occupancy, ["C", "B", "A"], CENTRES[:3], exclude=["C"])
    assert t.confusion[t.labels.index("A"), 0] == 1
    assert t.per_class[BACKGROUND]["f1"] == 0.0
    assert t.macro_f1_published < t.macro_f1_real


def test_confusion_rows_sum_to_true_counts(occupancy, rng):
    xyz = rng.uniform(0, [23, 15, 7], size=(30, 3))
    names = rng.choice(["A", "B", "C"], size=30).tolist()
    s = score(occupancy, names, xyz)
    rows = s.confusion.sum(axis=1)
    for k, label in enumerate(s.labels):
        assert rows[k] == NAMES.count(label)
        assert s.per_class[label]["support"] == NAMES.count(label)


def test_outside_volume_and_bad_mask_raise(occupancy):
    with pytest.raises(ValueError, match="outside the volume"):
        score(occupancy, ["A"], [[24, 0, 0]])
    bad = occupancy.copy()
    bad[0, 0, 0] = 9
    with pytest.raises(ValueError, match="only 4 ground-truth"):
        score(bad, ["A"], [[3, 3, 3]])
