"""Picking evaluation: SHREC 2021 scores, particles from segmentations, comparisons.

Numerics (`score_picks`, `extract_particles`, `summarise_runs`) are pure functions;
`faket.evaluation.files` reads ground truth and predictions, `faket.evaluation.plots`
draws the figures.
"""

from faket.evaluation.compare import RunScores, bootstrap_mean, metric_values, summarise_runs
from faket.evaluation.extract import extract_particles, labels_from_scores, min_cluster_voxels
from faket.evaluation.shrec import BACKGROUND, ShrecScore, dilate_occupancy, score_picks

__all__ = [
    "BACKGROUND",
    "RunScores",
    "ShrecScore",
    "bootstrap_mean",
    "dilate_occupancy",
    "extract_particles",
    "labels_from_scores",
    "metric_values",
    "min_cluster_voxels",
    "score_picks",
    "summarise_runs",
]
