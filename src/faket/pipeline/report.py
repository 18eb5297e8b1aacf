"""The dataset's report: PNG figures of the first tomogram and one HTML page at the root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faket.io import read_mrc, read_noise_stats, read_particle_locations
from faket.pipeline.layout import modality_names, reconstructed_names
from faket.pipeline.plan import RunPlan

FIGURES = ("projections", "noise_stats", "power_spectra", "tomograms", "particle_library")
"""The report's PNGs, written to ``report/<name>.png``."""


def _curves(stats: Any) -> dict[str, np.ndarray]:
    curves = {k: getattr(stats, k).numpy() for k in ("r", "sigma", "mean", "std")}
    if stats.tilt_angles_deg is not None:
        curves["angle_deg"] = stats.tilt_angles_deg.numpy()
    return curves


_METHOD_TEXT = {
    "paired": "against their noiseless twins (noise.method paired)",
    "unlabelled": "from each reference alone, a CTF fit of its spectrum (noise.method unlabelled)",
    "even-odd": "from the difference of their even and odd half-sets (noise.method even-odd)",
    "file": "as given in noise.stats_file (noise.method file)",
}


def _reference_text(k: int, ref: Any) -> str:
    """One sentence on what the run made of user reference ``k``."""
    return (
        f"Reference {k} ({ref.tilt_series.name}, angles from {ref.angles.name}): "
        f"{ref.pixel_size_a:g} A pixels rescaled to {ref.run_pixel_size_a:.4g} A, "
        f"{len(ref.run_tilts)} of its {len(ref.used)} images paired with the run's tilts "
        f"by angle, acquisition order {ref.acquisition}."
    )


def _style_reference_name(plan: RunPlan, index: int) -> str:
    j = plan.specimens[index].style_source
    if plan.config.reference.source == "files":
        return f"reference ({plan.references[j].tilt_series.name})"
    return f"reference ({plan.specimens[j].folder.name})"


def write_dataset_report(plan: RunPlan) -> Path:
    """Draw the figures of tomogram 0 and write ``report.html``; return its path."""
    from faket.noise import MODALITIES, aggregate_tilt_stats, radial_power_spectrum
    from faket.phantom import builtin_particle
    from faket.pipeline.tomogram import style_reference
    from faket.report import (
        plot_noise_stats,
        plot_particle_gallery,
        plot_power_spectra,
        plot_projections,
        plot_tomogram_slices,
        write_report,
    )

    config = plan.config
    out = plan.output
    figures = out / "report"
    figures.mkdir(exist_ok=True)
    model = plan.specimens[0].folder
    angles = plan.tilt_angles
    ref_name = _style_reference_name(plan, 0)
    series = {ref_name: style_reference(plan, 0).numpy()}
    for name in (
        "noiseless",
        *modality_names(config.noise.models, tuple(config.style.ablation_models)),
    ):
        series[name] = read_mrc(model / f"{name}.mrc", ndim=3).data
    plot_projections(
        series, angles.tolist(), figures / "projections.png", wanted_deg=(-40.0, 0.0, 40.0)
    )

    stats = read_noise_stats(out / "noise_stats.json")
    measured = {s.source or f"reference {k}": _curves(s) for k, s in enumerate(stats)}
    fits = {
        f"{name} fit (order {spec.order})": _curves(
            aggregate_tilt_stats(stats, spec.order, at=angles)
        )
        for name, spec in MODALITIES.items()
        if name != "content"
    }
    plot_noise_stats(measured, fits, figures / "noise_stats.png")

    centre = [int(np.argmin(np.abs(angles)))]
    spectra = {}
    for name, values in series.items():
        freq, power = radial_power_spectrum(torch.from_numpy(values[centre]))
        spectra[name] = (freq.numpy(), power[0].numpy())
    plot_power_spectra(spectra, figures / "power_spectra.png")

    binning = config.reconstruction.binning
    tomograms = {
        name: read_mrc(model / f"tomogram_{name}.mrc", ndim=3).data
        for name in reconstructed_names(config.noise.models, tuple(config.style.ablation_models))
        if (model / f"tomogram_{name}.mrc").is_file()
    }
    particles = read_particle_locations(model / "particle_locations.txt")
    points = [(p.z / binning, p.y / binning, p.x / binning) for p in particles]
    plot_tomogram_slices(tomograms, figures / "tomograms.png", points_zyx=points)

    v = plan.voxel_size_a
    gallery = {kind: builtin_particle(kind, v) for kind in config.phantom.builtin}
    for entry in config.phantom.structures:
        from faket.phantom import load_structure

        gallery[entry.path.name.split(".")[0]] = load_structure(
            entry.path, v, cache=config.phantom.cache_dir
        )
    if gallery:
        plot_particle_gallery(gallery, figures / "particle_library.png", voxel_size_a=v)

    likeness = _likeness(plan, figures) if config.report.likeness else None
    sections = _sections(plan, ref_name, stats, bool(gallery))
    sections.insert(len(sections) - 1, _likeness_section(likeness))
    path = out / "report.html"
    write_report(path, f"faket dataset: {out.name}", sections)
    return path


def _timings_table(plan: RunPlan) -> list[list[str]]:
    rows: list[dict[str, float]] = []
    tomograms = plan.specimens[: plan.n_tomograms]
    for spec in tomograms:
        file = spec.folder / "provenance.json"
        data = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
        rows.append(data.get("timings_s", {}))
    stages = list(dict.fromkeys(k for row in rows for k in row))
    table = [["tomogram", *stages, "total"]]
    for spec, row in zip(tomograms, rows, strict=True):
        cells = [f"{row[s]:.2f}" if s in row else "" for s in stages]
        table.append([spec.folder.name, *cells, f"{sum(row.values()):.2f}"])
    return table


def _sections(plan: RunPlan, ref_name: str, stats: list[Any], gallery: bool) -> list[Any]:
    from faket.report import Section

    config = plan.config
    n = plan.n_tomograms
    pairing = (
        "Tomogram i is styled with the microscope's reference tilt-series of specimen "
        "(i + 1) mod n, never with one of its own content."
        if config.reference.source == "microscope"
        else "Tomogram i is styled with your reference tilt-series i mod m. "
        + " ".join(_reference_text(k, r) for k, r in enumerate(plan.references))
    )
    sections = [
        Section(
            "Run",
            text=f"{n} tomogram(s) of {tuple(config.phantom.shape_zyx)} voxels (z, y, x) at "
            f"{config.phantom.voxel_size_a:g} A, seed {config.run.seed}, style backbone "
            f"{config.style.backbone} ({plan.precision}). {pairing} The figures show "
            f"model_0, styled with {ref_name}.",
        ),
        Section(
            "Projections",
            "report/projections.png",
            "Tilts nearest -40, 0 and +40 degrees of the reference and of each modality of "
            "model_0: FAKET should look like the reference, NOISY and BASELINE less so.",
        ),
        Section(
            "Noise statistics",
            "report/noise_stats.png",
            f"Per-tilt r, sigma, mean and std of the {len(stats)} reference(s) (points), "
            f"measured {_METHOD_TEXT[config.noise_method()]}, and the fits over the tilt "
            "angle that NOISY (order 2) and BASELINE (order 0) use (lines).",
        ),
        Section(
            "Power spectra",
            "report/power_spectra.png",
            "Radially averaged power spectra of the zero-degree tilt of each modality and "
            "the reference: FAKET's should follow the reference's.",
        ),
        Section(
            "Tomograms",
            "report/tomograms.png",
            "Central XY and XZ slices of each reconstruction of model_0 (filtered "
            "back-projection; the missing wedge elongates objects along Z). Red circles: "
            "particle centres within 3 voxels of the slice.",
        ),
    ]
    if gallery:
        sections.append(
            Section(
                "Particle library",
                "report/particle_library.png",
                "The particle classes placed in every tomogram (projections along Z and X).",
            )
        )
    sections.append(Section("Timings (seconds per stage)", table=_timings_table(plan)))
    return sections


def _likeness(plan: RunPlan, figures: Path) -> Any:
    """Measure every modality against another tomogram's reference; None without a floor."""
    from faket.errors import FaketInputError
    from faket.evaluation import dataset_likeness, write_likeness_csv
    from faket.io import write_json
    from faket.report.figures import plot_likeness

    try:
        result = dataset_likeness(
            plan.output, seed=plan.config.run.seed, steps=plan.config.report.likeness_steps
        )
    except FaketInputError:  # fewer than two references: no floor to compare with
        return None
    record = result.to_dict()
    write_json(record, figures / "likeness.json")
    write_likeness_csv(result, figures / "likeness.csv")
    plot_likeness(record, figures / "likeness.png")
    return result


def _likeness_section(result: Any) -> Any:
    from faket.report import Section

    title = "Likeness to the microscope"
    if result is None:
        return Section(
            title,
            text="Not measured: it needs the references of two different tomograms (the "
            "floor), or report.likeness is off. Run faket evaluate likeness on a dataset "
            "with two or more.",
        )
    rows = [["modality", "spectrum log-distance", "grey W1", "domain AUC", "spectrum / floor"]]
    for row in result.table():
        ratio = row.get("spectrum_log_distance_ratio")
        rows.append(
            [
                str(row["modality"]),
                f"{row['spectrum_log_distance']:.3f}",
                f"{row['grey_w1']:.3f}",
                f"{row['domain_auc']:.3f}",
                "" if ratio is None else f"{ratio:.2f}",
            ]
        )
    return Section(
        title,
        "report/likeness.png",
        "Each modality against the reference of ANOTHER tomogram: the radial power-spectrum "
        "log-distance (decades), the Wasserstein-1 distance of standardised grey values, "
        "and the held-out AUC of a small CNN trained to tell the modality's patches from "
        "the reference's (0.5: indistinguishable). The floor row: two references of "
        "different tomograms of the same microscope. Lower is more alike. Files: "
        "report/likeness.json, report/likeness.csv.",
        table=rows,
    )
