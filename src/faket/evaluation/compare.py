"""Compare scores over modalities and seeds: means with seeded bootstrap intervals.

Runs are grouped by modality; within a group every run (one training seed) gives one
value per metric. A metric's summary is the mean over seeds with percentile bootstrap
intervals of the mean (resampling the seeds with replacement), at 68 % and 95 %, from
a seeded generator so a re-run gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RunScores", "bootstrap_mean", "metric_values", "summarise_runs"]

HEADLINE = ("localisation_f1", "macro_f1_published", "macro_f1_real")


@dataclass(frozen=True)
class RunScores:
    """The scores of one run: its modality, seed and ``score.json`` content."""

    modality: str
    seed: int | None
    scores: Mapping[str, Any]


def metric_values(scores: Mapping[str, Any]) -> dict[str, float]:
    """Flatten a ``score.json`` into ``{metric: value}``.

    Keys: ``localisation_precision``, ``localisation_recall``, ``localisation_f1``,
    ``macro_f1_published``, ``macro_f1_real`` and ``f1_<class>`` for each class with
    true particles (support > 0).
    """
    loc = scores["localisation"]
    cls = scores["classification"]
    values = {
        "localisation_precision": float(loc["precision"]),
        "localisation_recall": float(loc["recall"]),
        "localisation_f1": float(loc["f1"]),
        "macro_f1_published": float(cls["macro_f1_published"]),
        "macro_f1_real": float(cls["macro_f1_real"]),
    }
    for name, stats in cls["per_class"].items():
        if stats["support"] > 0:
            values[f"f1_{name}"] = float(stats["f1"])
    return values


def bootstrap_mean(
    values: Sequence[float],
    *,
    levels: Sequence[float] = (0.68, 0.95),
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Return the mean of ``values`` and percentile bootstrap intervals of the mean.

    Parameters
    ----------
    values : sequence of float
        One value per run (seed); at least one.
    levels : sequence of float
        Confidence levels in ``(0, 1)``.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling generator.

    Returns
    -------
    dict
        ``mean``, ``n`` and, per level ``L`` in percent, ``low_L`` and ``high_L``
        (e.g. ``low_68``). One value gives a zero-width interval.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise ValueError("bootstrap_mean needs a non-empty 1-D sequence of values")
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.size, size=(n_resamples, data.size))
    means = data[picks].mean(axis=1)
    out = {"mean": float(data.mean()), "n": float(data.size)}
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"confidence levels must be in (0, 1), got {level}")
        tail = 100 * (1 - level) / 2
        low, high = np.percentile(means, [tail, 100 - tail])
        out[f"low_{round(100 * level)}"] = float(low)
        out[f"high_{round(100 * level)}"] = float(high)
    return out


def summarise_runs(
    runs: Sequence[RunScores], *, n_resamples: int = 2000, seed: int = 0
) -> dict[str, dict[str, dict[str, float]]]:
    """Summarise runs by modality: ``{modality: {metric: bootstrap_mean(...)}}``.

    Modalities keep their first-seen order; a metric is summarised over the runs of a
    modality that have it.
    """
    if not runs:
        raise ValueError("no runs to compare")
    grouped: dict[str, list[dict[str, float]]] = {}
    for run in runs:
        grouped.setdefault(run.modality, []).append(metric_values(run.scores))
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for modality, rows in grouped.items():
        metrics = list(dict.fromkeys(k for row in rows for k in row))
        summary[modality] = {
            m: bootstrap_mean(
                [row[m] for row in rows if m in row], n_resamples=n_resamples, seed=seed
            )
            for m in metrics
        }
    return summary
