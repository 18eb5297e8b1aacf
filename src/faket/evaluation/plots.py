"""Figures of the evaluation, saved as PNG (matplotlib, no GUI, atomic writes)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from faket.report.figures import _figure, _save

__all__ = ["plot_class_f1", "plot_compare_metrics", "plot_confusion", "plot_training_curves"]


def plot_confusion(
    labels: Sequence[str], confusion: np.ndarray, path: str | os.PathLike[str]
) -> None:
    """Draw a confusion matrix heat map, rows = true class, normalised per row.

    Parameters
    ----------
    labels : sequence of str
        Class names in matrix order.
    confusion : numpy.ndarray
        ``(n, n)`` counts, rows = true, columns = predicted.
    path : str or PathLike
        PNG to write. Cells show the counts; colour is the row fraction.
    """
    counts = np.asarray(confusion, dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    fraction = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    n = len(labels)
    fig, axes = _figure(1, 1, (1.0 + 0.55 * n, 0.8 + 0.5 * n))
    ax = axes[0, 0]
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                colour = "white" if fraction[i, j] > 0.5 else "black"
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of true class")
    _save(fig, path)


def plot_class_f1(f1_by_class: Mapping[str, float], path: str | os.PathLike[str]) -> None:
    """Draw per-class F1 as bars, in the mapping's order (by particle size)."""
    names = list(f1_by_class)
    fig, axes = _figure(1, 1, (1.5 + 0.45 * len(names), 3.2))
    ax = axes[0, 0]
    ax.bar(range(len(names)), [f1_by_class[n] for n in names], color="tab:blue")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    _save(fig, path)


def plot_compare_metrics(
    summary: Mapping[str, Mapping[str, Mapping[str, float]]],
    metrics: Sequence[str],
    path: str | os.PathLike[str],
) -> None:
    """Draw metric means per modality with 68 % (thick) and 95 % (thin) intervals.

    Parameters
    ----------
    summary : mapping
        ``{modality: {metric: {"mean", "low_68", "high_68", "low_95", "high_95"}}}``
        as from `faket.evaluation.summarise_runs`.
    metrics : sequence of str
        Metrics along the X axis; one marker series per modality.
    path : str or PathLike
        PNG to write.
    """
    modalities = list(summary)
    fig, axes = _figure(1, 1, (2.0 + 0.6 * len(metrics) * max(1, len(modalities) / 3), 3.6))
    ax = axes[0, 0]
    width = 0.8 / max(1, len(modalities))
    for k, modality in enumerate(modalities):
        xs, means, lo68, hi68, lo95, hi95 = [], [], [], [], [], []
        for i, metric in enumerate(metrics):
            stats = summary[modality].get(metric)
            if stats is None:
                continue
            xs.append(i - 0.4 + width * (k + 0.5))
            means.append(stats["mean"])
            lo68.append(stats["mean"] - stats["low_68"])
            hi68.append(stats["high_68"] - stats["mean"])
            lo95.append(stats["mean"] - stats["low_95"])
            hi95.append(stats["high_95"] - stats["mean"])
        colour = f"C{k % 10}"
        ax.errorbar(xs, means, yerr=[lo95, hi95], fmt="none", ecolor=colour, elinewidth=0.8)
        ax.errorbar(
            xs,
            means,
            yerr=[lo68, hi68],
            fmt="o",
            color=colour,
            elinewidth=2.5,
            label=modality,
            markersize=4,
        )
    ax.set_xticks(range(len(metrics)), metrics, rotation=60, fontsize=8, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("score (mean over seeds)")
    ax.legend(fontsize=7, loc="best")
    _save(fig, path)


def plot_training_curves(
    curves: Mapping[str, Sequence[Mapping[str, float]]], path: str | os.PathLike[str]
) -> None:
    """Draw training (dashed) and validation (solid) loss per epoch, one colour per run.

    Parameters
    ----------
    curves : mapping
        Run name -> epoch records with ``epoch``, ``train_loss`` and ``val_loss``.
    path : str or PathLike
        PNG to write.
    """
    fig, axes = _figure(1, 1, (7.0, 4.0))
    ax = axes[0, 0]
    for k, (name, records) in enumerate(curves.items()):
        epochs = [r["epoch"] for r in records]
        colour = f"C{k % 10}"
        ax.plot(epochs, [r["train_loss"] for r in records], "--", color=colour, linewidth=0.8)
        ax.plot(epochs, [r["val_loss"] for r in records], "-", color=colour, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (dashed: training, solid: validation)")
    if curves:
        ax.legend(fontsize=6, loc="best", ncol=2)
    _save(fig, path)
