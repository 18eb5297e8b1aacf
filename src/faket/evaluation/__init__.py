"""Evaluation: SHREC 2021 scores, particles from segmentations, comparisons, likeness.

Numerics (`score_picks`, `extract_particles`, `summarise_runs`, and the likeness measures
`spectrum_log_distance`, `grey_value_distance`, `domain_auc`, `roc_auc`) are pure
functions; `faket.evaluation.files` reads ground truth and predictions,
`dataset_likeness` compares a dataset's modalities with its references,
`faket.evaluation.plots` draws the figures.
"""

from faket.evaluation.compare import RunScores, bootstrap_mean, metric_values, summarise_runs
from faket.evaluation.extract import extract_particles, labels_from_scores, min_cluster_voxels
from faket.evaluation.likeness import (
    DomainAuc,
    SpectrumDistance,
    TiltSeriesLikeness,
    compare_tilt_series,
    domain_auc,
    grey_value_distance,
    roc_auc,
    spectrum_log_distance,
)
from faket.evaluation.likeness_dataset import dataset_likeness, find_modalities
from faket.evaluation.likeness_result import (
    DatasetLikeness,
    ModalityLikeness,
    PairLikeness,
    write_likeness_csv,
)
from faket.evaluation.shrec import BACKGROUND, ShrecScore, dilate_occupancy, score_picks

__all__ = [
    "BACKGROUND",
    "DatasetLikeness",
    "DomainAuc",
    "ModalityLikeness",
    "PairLikeness",
    "RunScores",
    "ShrecScore",
    "SpectrumDistance",
    "TiltSeriesLikeness",
    "bootstrap_mean",
    "compare_tilt_series",
    "dataset_likeness",
    "dilate_occupancy",
    "domain_auc",
    "extract_particles",
    "find_modalities",
    "grey_value_distance",
    "labels_from_scores",
    "metric_values",
    "min_cluster_voxels",
    "roc_auc",
    "score_picks",
    "spectrum_log_distance",
    "summarise_runs",
    "write_likeness_csv",
]
