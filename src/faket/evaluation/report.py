"""Comparison tables (markdown and CSV) of summarised runs."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from faket.evaluation.compare import HEADLINE, RunScores
from faket.io import atomic_write

__all__ = ["format_markdown", "write_compare_tables"]

Summary = Mapping[str, Mapping[str, Mapping[str, float]]]


def _metrics(summary: Summary) -> list[str]:
    """Return the headline metrics, then every other metric in first-seen order."""
    seen = list(dict.fromkeys(m for stats in summary.values() for m in stats))
    return [m for m in HEADLINE if m in seen] + [m for m in seen if m not in HEADLINE]


def format_markdown(summary: Summary, runs: Sequence[RunScores]) -> str:
    """Return a markdown table: a row per modality, a column per metric.

    Cells read ``mean [low_95, high_95]``; a second column gives the seeds used.
    """
    metrics = _metrics(summary)
    seeds: dict[str, list[str]] = {}
    for run in runs:
        seeds.setdefault(run.modality, []).append("?" if run.seed is None else str(run.seed))
    lines = [
        "| modality | seeds | " + " | ".join(metrics) + " |",
        "|---|---|" + "---|" * len(metrics),
    ]
    for modality, stats in summary.items():
        cells = []
        for m in metrics:
            s = stats.get(m)
            cells.append(
                "-" if s is None else f"{s['mean']:.3f} [{s['low_95']:.3f}, {s['high_95']:.3f}]"
            )
        lines.append(f"| {modality} | {','.join(seeds[modality])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_compare_tables(
    summary: Summary, runs: Sequence[RunScores], folder: str | os.PathLike[str]
) -> str:
    """Write ``compare.md`` and ``compare.csv`` (long format) into ``folder``; return the markdown.

    CSV columns: ``modality, metric, n, mean, low_68, high_68, low_95, high_95``.
    """
    root = Path(folder)
    markdown = format_markdown(summary, runs)
    with atomic_write(root / "compare.md") as tmp:
        tmp.write_text(markdown, encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = ["n", "mean", "low_68", "high_68", "low_95", "high_95"]
    writer.writerow(["modality", "metric", *columns])
    for modality, stats in summary.items():
        for metric in _metrics({modality: stats}):
            s = stats[metric]
            writer.writerow([modality, metric, int(s["n"]), *(f"{s[c]:.6g}" for c in columns[1:])])
    with atomic_write(root / "compare.csv") as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return markdown
