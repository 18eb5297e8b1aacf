"""SHREC 2021 cryo-ET picking scores: localisation and classification.

The definitions follow the challenge's published ``misc/eval.py`` (Gubins et al.,
SHREC 2021: Classification in cryo-electron tomograms), as re-used with bug fixes by
FakET (``evaluate_shrec.py``):

* The ground-truth occupancy mask (voxel value = 1-based index of the particle in
  ``particle_locations.txt``, 0 = background) is grey-dilated once with the 3-D cross
  (6-connected) footprint, which closes one-voxel holes and grows each particle by one
  voxel. Where particles touch, the higher index wins (grey dilation takes the maximum).
* Each prediction (class name and ``x y z`` rounded to the nearest voxel, ties to
  even like Python's ``round``) hits the particle whose index the dilated mask holds
  at its position, or background (index 0).
* Localisation: TP = ground-truth particles with at least one hit; FP = predictions
  on background; FN = particles without a hit. ``recall = TP / n_truth`` and
  ``precision = TP / n_predicted`` where ``n_predicted`` counts *every* prediction
  (duplicates and hits on excluded particles included); ``F1`` is their harmonic mean.
* Classification: each (non-excluded) ground-truth particle is classified as its
  FIRST hit in prediction order, or as ``background`` when it has no hit or its first
  hit names an excluded class. The confusion matrix has rows = true class, columns =
  predicted class. Per class, ``precision = C[c, c] / column sum``,
  ``recall = C[c, c] / row sum``, ``F1 = 2 C[c, c] / (row sum + column sum)``.
* ``macro_f1_published`` is the mean F1 over the classes present in the true or the
  predicted vector (pycm's ``F1 Macro``), which includes ``background`` with F1 = 0
  exactly when some particle was not found (or was labelled an excluded class). It
  reproduces the published numbers. ``macro_f1_real`` is the mean F1 over the real
  (true, non-excluded) classes only.
* Excluded classes (the challenge excluded ``4V94`` and ``vesicle``) are removed from
  the ground truth; predictions that hit them are neither TP nor FP but still count
  in ``n_predicted``, as published. Unlike the published script, ``n_truth`` also
  leaves out excluded vesicles (the published script subtracted only 4V94).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

BACKGROUND = "background"

__all__ = ["BACKGROUND", "ShrecScore", "dilate_occupancy", "score_picks"]


@dataclass(frozen=True)
class ShrecScore:
    """Scores of one predicted particle list against one ground-truth tomogram.

    Attributes
    ----------
    labels : tuple of str
        Confusion-matrix labels: ``"background"`` first, then the classes by size.
    confusion : numpy.ndarray
        ``(n_labels, n_labels)`` int64 counts, rows = true class, columns = predicted.
    n_predicted, n_truth : int
        Number of predictions (all) and of non-excluded ground-truth particles.
    true_positives, false_positives, false_negatives : int
        Localisation counts as defined in the module docstring.
    n_multiple_hits : int
        Ground-truth particles with more than one prediction (duplicates).
    n_duplicates : int
        Predictions beyond the first on a found particle.
    mean_distance_vox : float or None
        Mean distance from each found particle's first hit to its centre, in voxels.
    precision, recall, f1 : float
        Localisation scores (0 where undefined).
    per_class : dict
        Label -> ``{"precision", "recall", "f1", "support"}`` (support = true count).
    macro_f1_published, macro_f1_real : float
        See the module docstring.
    excluded : tuple of str
        The excluded classes.
    """

    labels: tuple[str, ...]
    confusion: np.ndarray
    n_predicted: int
    n_truth: int
    true_positives: int
    false_positives: int
    false_negatives: int
    n_multiple_hits: int
    n_duplicates: int
    mean_distance_vox: float | None
    precision: float
    recall: float
    f1: float
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    macro_f1_published: float = 0.0
    macro_f1_real: float = 0.0
    excluded: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the scores as plain JSON-ready values."""
        return {
            "localisation": {
                "n_predicted": self.n_predicted,
                "n_truth": self.n_truth,
                "tp": self.true_positives,
                "fp": self.false_positives,
                "fn": self.false_negatives,
                "n_multiple_hits": self.n_multiple_hits,
                "n_duplicates": self.n_duplicates,
                "mean_distance_vox": self.mean_distance_vox,
                "precision": self.precision,
                "recall": self.recall,
                "f1": self.f1,
            },
            "classification": {
                "macro_f1_published": self.macro_f1_published,
                "macro_f1_real": self.macro_f1_real,
                "per_class": self.per_class,
                "labels": list(self.labels),
                "confusion": self.confusion.tolist(),
            },
            "excluded": list(self.excluded),
        }


def dilate_occupancy(occupancy: np.ndarray) -> np.ndarray:
    """Grey-dilate an occupancy mask once with the 6-connected 3-D cross.

    Parameters
    ----------
    occupancy : numpy.ndarray
        ``(nz, ny, nx)`` integer particle indices, 0 = background.

    Returns
    -------
    numpy.ndarray
        ``(nz, ny, nx)`` int64, each voxel the maximum over itself and its 6 neighbours.
    """
    mask = np.asarray(occupancy)
    if mask.ndim != 3:
        raise ValueError(f"the occupancy mask must be 3-D (z, y, x), got shape {mask.shape}")
    footprint = ndimage.generate_binary_structure(3, 1)
    return ndimage.grey_dilation(mask.astype(np.int64), footprint=footprint, mode="nearest")


def _f1(tp: float, fp_plus_fn_sum: float) -> float:
    """Return ``2 tp / (2 tp + fp + fn)`` given ``fp + fn``; 0 where undefined."""
    denominator = 2 * tp + fp_plus_fn_sum
    return float(2 * tp / denominator) if denominator > 0 else 0.0


def _order_labels(names: Iterable[str], class_order: Sequence[str]) -> tuple[str, ...]:
    """Return ``background``, then ``class_order``'s names, then any others sorted."""
    wanted = set(names)
    ordered = [n for n in class_order if n in wanted and n != BACKGROUND]
    ordered += sorted(wanted - set(ordered) - {BACKGROUND})
    return (BACKGROUND, *ordered)


def score_picks(
    truth_names: Sequence[str],
    truth_xyz: np.ndarray,
    occupancy: np.ndarray,
    predicted_names: Sequence[str],
    predicted_xyz: np.ndarray,
    *,
    class_order: Sequence[str] = (),
    exclude: Iterable[str] = (),
) -> ShrecScore:
    """Score predicted particles against a ground-truth tomogram, the SHREC 2021 way.

    Parameters
    ----------
    truth_names : sequence of str
        Class of each ground-truth particle; particle ``i`` has index ``i + 1`` in
        ``occupancy``.
    truth_xyz : numpy.ndarray
        ``(n_truth, 3)`` ground-truth centres ``x y z`` in voxels.
    occupancy : numpy.ndarray
        ``(nz, ny, nx)`` occupancy mask (undilated; it is dilated here).
    predicted_names : sequence of str
        Class of each prediction, in file order.
    predicted_xyz : numpy.ndarray
        ``(n_predicted, 3)`` predicted centres ``x y z`` in voxels, inside the volume.
    class_order : sequence of str
        Order of the confusion matrix's classes (by particle size); unknown names go last.
    exclude : iterable of str
        Classes left out of the evaluation.

    Returns
    -------
    ShrecScore

    Raises
    ------
    ValueError
        If the shapes disagree, a prediction lies outside the volume, or the mask holds
        an index with no ground-truth particle.
    """
    excluded = tuple(dict.fromkeys(exclude))
    truth_xyz = np.asarray(truth_xyz, dtype=np.float64).reshape(-1, 3)
    predicted = np.asarray(predicted_xyz, dtype=np.float64).reshape(-1, 3)
    if len(truth_names) != len(truth_xyz):
        raise ValueError("truth_names and truth_xyz must have the same length")
    if len(predicted_names) != len(predicted):
        raise ValueError("predicted_names and predicted_xyz must have the same length")
    dilated = dilate_occupancy(occupancy)
    if dilated.size and (dilated.min() < 0 or dilated.max() > len(truth_names)):
        raise ValueError(
            f"the occupancy mask holds indices up to {int(dilated.max())} but there are "
            f"only {len(truth_names)} ground-truth particles"
        )
    voxel = np.rint(predicted).astype(np.int64)  # ties to even, as Python's round()
    upper = np.array(dilated.shape[::-1])  # (nx, ny, nz)
    outside = np.flatnonzero(np.any((voxel < 0) | (voxel >= upper), axis=1))
    if outside.size:
        raise ValueError(
            f"prediction {int(outside[0])} at {predicted[outside[0]].tolist()} lies outside "
            f"the volume (x y z sizes {upper.tolist()})"
        )
    hit_ids = dilated[voxel[:, 2], voxel[:, 1], voxel[:, 0]] if len(voxel) else np.zeros(0, int)

    hits: list[list[int]] = [[] for _ in range(len(truth_names) + 1)]
    for prediction, gt_id in enumerate(hit_ids.tolist()):
        hits[gt_id].append(prediction)
    kept = [i for i, name in enumerate(truth_names) if name not in excluded]

    n_found = sum(1 for i in kept if hits[i + 1])
    false_positives = len(hits[0])
    precision = n_found / len(predicted) if len(predicted) else 0.0
    recall = n_found / len(kept) if kept else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    distances = [
        float(np.linalg.norm(voxel[hits[i + 1][0]] - truth_xyz[i])) for i in kept if hits[i + 1]
    ]

    true_vector = [truth_names[i] for i in kept]
    predicted_vector = []
    for i in kept:
        first = predicted_names[hits[i + 1][0]] if hits[i + 1] else BACKGROUND
        predicted_vector.append(BACKGROUND if first in excluded else first)
    names = [n for n in (*class_order, *true_vector, *predicted_vector) if n not in excluded]
    labels = _order_labels(names, class_order)
    index = {name: k for k, name in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for true_name, predicted_name in zip(true_vector, predicted_vector, strict=True):
        confusion[index[true_name], index[predicted_name]] += 1

    per_class: dict[str, dict[str, float]] = {}
    rows, cols = confusion.sum(axis=1), confusion.sum(axis=0)
    for k, name in enumerate(labels):
        tp = float(confusion[k, k])
        per_class[name] = {
            "precision": tp / cols[k] if cols[k] else 0.0,
            "recall": tp / rows[k] if rows[k] else 0.0,
            "f1": _f1(tp, rows[k] + cols[k] - 2 * tp),
            "support": int(rows[k]),
        }
    present = [n for k, n in enumerate(labels) if rows[k] + cols[k] > 0]
    real = [n for k, n in enumerate(labels) if rows[k] > 0 and n != BACKGROUND]
    return ShrecScore(
        labels=labels,
        confusion=confusion,
        n_predicted=len(predicted),
        n_truth=len(kept),
        true_positives=n_found,
        false_positives=false_positives,
        false_negatives=len(kept) - n_found,
        n_multiple_hits=sum(1 for i in kept if len(hits[i + 1]) > 1),
        n_duplicates=sum(len(hits[i + 1]) - 1 for i in kept if hits[i + 1]),
        mean_distance_vox=float(np.mean(distances)) if distances else None,
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        per_class=per_class,
        macro_f1_published=float(np.mean([per_class[n]["f1"] for n in present]))
        if present
        else 0.0,
        macro_f1_real=float(np.mean([per_class[n]["f1"] for n in real])) if real else 0.0,
        excluded=excluded,
    )
