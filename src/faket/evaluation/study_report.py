"""The picking study's comparison: tables, figures, study.json and report.html."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faket.evaluation.study_plan import StudyPlan
from faket.io import read_json_object, write_json

__all__ = ["study_targets", "write_comparison", "write_score_files"]


def study_targets(summary: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    """Return the study's targets (issue 15) that its rows allow checking, with the numbers.

    FAKET (spectral) at >= 90 % of REFERENCE's macro-F1 and >= 95 % of its
    localisation F1, >= 0.10 macro-F1 above BASELINE, and FAKET with the random backbone
    below the pretrained one (macro-F1). Means over seeds.
    """

    def mean(modality: str, metric: str) -> float | None:
        row = summary.get(modality, {}).get(metric)
        return None if row is None else row["mean"]

    checks = []
    macro, loc = "macro_f1_published", "localisation_f1"
    faket, ref = mean("faket_spectral", macro), mean("reference", macro)
    if faket is not None and ref:
        checks.append(("FAKET (spectral) macro-F1 / REFERENCE's >= 0.90", faket / ref, 0.90))
    faket_loc, ref_loc = mean("faket_spectral", loc), mean("reference", loc)
    if faket_loc is not None and ref_loc:
        checks.append(("FAKET (spectral) loc. F1 / REFERENCE's >= 0.95", faket_loc / ref_loc, 0.95))
    base = mean("baseline", macro)
    if faket is not None and base is not None:
        checks.append(("FAKET (spectral) macro-F1 - BASELINE's >= 0.10", faket - base, 0.10))
    rand = mean("faket_random_spectral", macro)
    if faket is not None and rand is not None:
        checks.append(("FAKET (spectral) macro-F1 - random backbone's > 0", faket - rand, 1e-12))
    return [
        {"target": name, "value": float(value), "met": bool(value >= bar)}
        for name, value, bar in checks
    ]


def write_score_files(folder: Path, result: Any) -> None:
    """Write a run's confusion matrix (CSV, PNG) and per-class F1 figure beside score.json."""
    from faket.evaluation.files import write_confusion_csv
    from faket.evaluation.plots import plot_class_f1, plot_confusion

    write_confusion_csv(result.labels, result.confusion, folder / "score_confusion.csv")
    plot_confusion(result.labels, result.confusion, folder / "score_confusion.png")
    real = {n: s["f1"] for n, s in result.per_class.items() if s["support"] > 0}
    plot_class_f1(real, folder / "score_f1.png")


def write_comparison(
    plan: StudyPlan, runs: list[dict[str, Any]], scores: Sequence[Any]
) -> dict[str, Any]:
    """Write compare/, the training curves, report.html and study.json; return study.json."""
    from faket.evaluation.compare import summarise_runs
    from faket.evaluation.plots import plot_compare_metrics, plot_training_curves
    from faket.evaluation.report import write_compare_tables
    from faket.report.html import Section, write_report

    folder = plan.output / "compare"
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarise_runs(list(scores))
    write_compare_tables(summary, list(scores), folder)
    headline = ["localisation_f1", "macro_f1_published", "macro_f1_real"]
    plot_compare_metrics(summary, headline, folder / "compare_metrics.png")
    class_metrics = list(
        dict.fromkeys(m for s in summary.values() for m in s if m.startswith("f1_"))
    )
    if class_metrics:
        plot_compare_metrics(summary, class_metrics, folder / "compare_classes.png")
    curves = {}
    for run in runs:
        log = read_json_object(
            plan.output / f"{run['modality']}_seed{run['seed']}" / "training_log.json"
        )
        if log is not None:
            curves[f"{run['modality']} seed {run['seed']}"] = log["epochs"]
    plot_training_curves(curves, folder / "training_curves.png")
    targets = study_targets(summary)
    study = {
        "dataset": str(plan.dataset),
        "modalities": list(plan.modalities),
        "seeds": list(plan.seeds),
        **plan.results_record(),
        "jobs": plan.jobs,
        "threads": plan.threads,
        "runs": runs,
        "summary": summary,
        "targets": targets,
    }
    write_json(study, plan.output / "study.json")
    rows = [
        [
            "modality",
            "seed",
            "best epoch",
            "min fraction (on val)",
            "train s",
            "segment s",
            "loc. F1",
            "macro-F1",
        ]
    ]
    for run, score in zip(runs, scores, strict=True):
        rows.append(
            [
                run["modality"],
                str(run["seed"]),
                str(run["best_epoch"]),
                str(run["min_fraction"]),
                f"{run['train_s']:.0f}",
                f"{run['segment_s']:.0f}",
                f"{score.scores['localisation']['f1']:.3f}",
                f"{score.scores['classification']['macro_f1_published']:.3f}",
            ]
        )
    table = [["modality", "runs", *headline]]
    for modality, stats in summary.items():
        cells = [
            f"{stats[m]['mean']:.3f} [{stats[m]['low_95']:.3f}, {stats[m]['high_95']:.3f}]"
            for m in headline
        ]
        table.append([modality, str(int(stats[headline[0]]["n"])), *cells])
    sections = [
        Section(
            "Scores by modality",
            text="Mean over seeds [bootstrap 95 % interval]; also in compare/compare.md.",
            table=table,
        ),
        Section(
            "Targets",
            text="Means over seeds; the issue's bars for FAKET with the spectral noise model.",
            table=[["target", "value", "met"]]
            + [[t["target"], f"{t['value']:.3f}", "yes" if t["met"] else "NO"] for t in targets],
        )
        if targets
        else None,
        Section("Headline metrics", image="compare/compare_metrics.png"),
        Section("Per-class F1", image="compare/compare_classes.png") if class_metrics else None,
        Section("Training curves", image="compare/training_curves.png"),
        Section("Runs", table=rows),
    ]
    sections += _class_sections(plan)
    write_report(
        plan.output / "report.html", "faket picking study", [s for s in sections if s is not None]
    )
    return study


def _class_sections(plan: StudyPlan) -> list[Any]:
    """Return the report's per-class F1 and confusion of FAKET and REFERENCE (first seed).

    FAKET is the spectral model's when the study has it, else the published one's.
    """
    from faket.report.html import Section

    faket = next((m for m in ("faket_spectral", "faket") if m in plan.modalities), None)
    out = []
    for modality in (faket, "reference"):
        if modality is None or modality not in plan.modalities:
            continue
        run = f"{modality}_seed{plan.seeds[0]}"
        for name, what in (("score_f1.png", "per-class F1"), ("score_confusion.png", "confusion")):
            if (plan.output / run / name).is_file():
                out.append(
                    Section(f"{modality}, seed {plan.seeds[0]}: {what}", image=f"{run}/{name}")
                )
    return out
