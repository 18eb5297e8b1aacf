"""The dataset's report: PNG figures of the first tomogram and one HTML page at the root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faket.io import read_mrc, read_noise_stats, read_particle_locations
from faket.pipeline.layout import MODALITY_FILES, RECONSTRUCTED
from faket.pipeline.plan import RunPlan

FIGURES = ("projections", "noise_stats", "power_spectra", "tomograms", "particle_library")
"""The report's PNGs, written to ``report/<name>.png``."""


def _curves(stats: Any) -> dict[str, np.ndarray]:
    return {k: getattr(stats, k).numpy() for k in ("r", "sigma", "mean", "std")}


def _style_reference_name(plan: RunPlan, index: int) -> str:
    j = plan.specimens[index].style_source
    if plan.config.reference.source == "files":
        return f"reference ({plan.references[j].tilt_series.name})"
    return f"reference ({plan.specimens[j].folder.name})"


def write_dataset_report(plan: RunPlan) -> Path:
    """Draw the figures of tomogram 0 and write ``report.html``; return its path."""
    from faket.noise import MODALITIES, aggregate_tilt_stats, radial_power_spectrum
    from faket.phantom import builtin_particle
    from faket.pipeline.stages import style_reference
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
    for name in ("noiseless", *MODALITY_FILES):
        series[name] = read_mrc(model / f"{name}.mrc", ndim=3).data
    plot_projections(
        series, angles.tolist(), figures / "projections.png", wanted_deg=(-40.0, 0.0, 40.0)
    )

    stats = read_noise_stats(out / "noise_stats.json")
    measured = {s.source or f"reference {k}": _curves(s) for k, s in enumerate(stats)}
    fits = {
        f"{name} fit (order {spec.order})": _curves(aggregate_tilt_stats(stats, spec.order))
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
        for name in RECONSTRUCTED
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

    sections = _sections(plan, ref_name, stats, bool(gallery))
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
        else "Tomogram i is styled with your reference tilt-series i mod m."
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
            f"Per-tilt r, sigma, mean and std of the {len(stats)} reference(s) (points) and "
            "the fits NOISY (order 2) and BASELINE (order 0) use (lines).",
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
