"""The dataset's report: PNG figures, a thumbnail row per tomogram, one HTML page at the root."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faket.io import (
    map_mrc,
    read_classes_json,
    read_noise_stats,
    read_particle_locations,
    read_voxel_size,
)
from faket.io.tilt_stack import MrcTilts
from faket.pipeline.layout import modality_names, reconstructed_names
from faket.pipeline.plan import RunPlan

FIGURES = ("projections", "noise_stats", "power_spectra", "tomograms", "particle_library")
"""The report's PNGs of tomogram 0, written to ``report/<name>.png`` (and a
``report/thumbnails_<folder>.png`` per tomogram)."""


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


MAX_THUMBNAIL_ROWS = 100
"""At most this many tomograms get a thumbnail row (the first ones)."""

THUMBNAIL_SLAB_A = 100.0
"""Thickness in Angstrom of the central slab averaged into each thumbnail."""

_LINKED_ROOT_FILES = ("dataset.json", "config.yaml", "noise_stats.json")
_LINKED_REPORT_FILES = ("likeness.json", "likeness.csv")


def write_dataset_report(plan: RunPlan) -> Path:
    """Draw the report's figures and write ``report.html``; return its path.

    The detailed figures show tomogram 0; every tomogram (up to `MAX_THUMBNAIL_ROWS`)
    gets a row of thumbnails, its particle counts and links to its files.
    """
    from faket.report import write_report

    config = plan.config
    out = plan.output
    figures = out / "report"
    figures.mkdir(exist_ok=True)
    ref_name = _style_reference_name(plan, 0)
    stats = read_noise_stats(out / "noise_stats.json")
    labels = read_labels(plan.specimens[0].folder, plan.voxel_size_a)
    _draw_model_figures(plan, figures, ref_name, stats, labels)
    gallery = _draw_gallery(plan, figures)
    thumbnails = _draw_thumbnails(plan, figures)
    likeness = _likeness(plan, figures) if config.report.likeness else None
    sections = [
        _run_section(plan, ref_name),
        _likeness_section(likeness),
        thumbnails,
        *_figure_sections(plan, stats, gallery),
        _timings_section(plan),
    ]
    path = out / "report.html"
    write_report(path, f"faket dataset: {out.name}", sections)
    return path


def read_labels(folder: Path, voxel_size_a: float) -> Any:
    """Return a tomogram's `faket.report.Labels` from its class mask, classes and particles.

    ``voxel_size_a`` is used when the class mask's header has no voxel size. An integer
    mask (faket's int8) stays memory-mapped (`map_mrc`): the figures read its central
    slices only.
    """
    from faket.report import Labels

    file = folder / "class_mask.mrc"
    mask = map_mrc(file)
    classes = read_classes_json(folder / "classes.json")
    particles = read_particle_locations(folder / "particle_locations.txt")
    if not np.issubdtype(mask.dtype, np.integer):  # a float mode: rounded, in memory
        mask = np.rint(mask).astype(np.int32)
    return Labels(
        class_mask=mask,
        voxel_size_a=read_voxel_size(file) or voxel_size_a,
        names={int(c["id"]): str(c["name"]) for c in classes},
        points_zyx=np.array([(p.z, p.y, p.x) for p in particles], dtype=float).reshape(-1, 3),
        point_names=[p.class_name for p in particles],
    )


def _draw_model_figures(
    plan: RunPlan, figures: Path, ref_name: str, stats: list[Any], labels: Any
) -> None:
    """Draw tomogram 0's projections, noise statistics, spectra and tomogram slices."""
    from faket.noise import MODALITIES, aggregate_tilt_stats, radial_power_spectrum
    from faket.pipeline.tomogram import style_reference
    from faket.report import (
        nearest_tilts,
        plot_noise_stats,
        plot_power_spectra,
        plot_projections,
        plot_tomogram_slices,
    )

    config = plan.config
    model = plan.specimens[0].folder
    angles = plan.tilt_angles
    wanted_deg = (-40.0, 0.0, 40.0)
    picked = sorted({*nearest_tilts(angles.tolist(), wanted_deg), _centre_tilt(angles)})
    names = ("noiseless", *modality_names(config.noise.models, tuple(config.style.ablation_models)))
    files = {name: MrcTilts(model / f"{name}.mrc") for name in names}
    series = {
        name: tilts.take(picked).numpy()  # only these tilts: never a whole series
        for name, tilts in {ref_name: style_reference(plan, 0), **files}.items()
    }
    plot_projections(
        series,
        angles[picked].tolist(),
        figures / "projections.png",
        wanted_deg=wanted_deg,
        pixel_size_a=plan.voxel_size_a,
    )

    measured = {s.source or f"reference {k}": _curves(s) for k, s in enumerate(stats)}
    fits = {
        f"{name} fit (order {spec.order})": _curves(
            aggregate_tilt_stats(stats, spec.order, at=angles)
        )
        for name, spec in MODALITIES.items()
        if name != "content"
    }
    plot_noise_stats(measured, fits, figures / "noise_stats.png")

    centre = [picked.index(_centre_tilt(angles))]
    spectra = {}
    for name, values in series.items():
        freq, power = radial_power_spectrum(torch.from_numpy(values[centre]))
        spectra[name] = (freq.numpy(), power[0].numpy())
    plot_power_spectra(spectra, figures / "power_spectra.png", pixel_size_a=plan.voxel_size_a)

    tomograms = {name: map_mrc(file) for name, file in _tomogram_files(plan, model).items()}
    plot_tomogram_slices(  # mapped: only the central XY and XZ slices are read
        tomograms,
        figures / "tomograms.png",
        pixel_size_a=plan.tomogram_voxel_size_a,
        labels=labels,
    )


def _centre_tilt(angles: np.ndarray) -> int:
    """Return the index of the tilt nearest to 0 degrees."""
    return int(np.argmin(np.abs(angles)))


def _tomogram_files(plan: RunPlan, folder: Path) -> dict[str, Path]:
    """Return each reconstruction of a tomogram folder that exists, in the run's order."""
    config = plan.config
    names = reconstructed_names(config.noise.models, tuple(config.style.ablation_models))
    files = {name: folder / f"tomogram_{name}.mrc" for name in names}
    return {name: file for name, file in files.items() if file.is_file()}


def _draw_gallery(plan: RunPlan, figures: Path) -> bool:
    """Draw the particle library; return whether there was one."""
    from faket.phantom import builtin_particle, load_structure
    from faket.report import plot_particle_gallery

    config = plan.config
    v = plan.voxel_size_a
    gallery = {kind: builtin_particle(kind, v) for kind in config.phantom.builtin}
    for entry in config.phantom.structures:
        gallery[entry.path.name.split(".")[0]] = load_structure(
            entry.path, v, cache=config.phantom.cache_dir
        )
    if gallery:
        plot_particle_gallery(gallery, figures / "particle_library.png", voxel_size_a=v)
    return bool(gallery)


def _draw_thumbnails(plan: RunPlan, figures: Path) -> Any:
    """Draw a thumbnail row per tomogram; return the section with rows and class counts."""
    from matplotlib.colors import to_hex

    from faket.report import Row, Section, Swatch, plot_thumbnails, scale_bar_nm

    tomograms = plan.specimens[: min(plan.n_tomograms, MAX_THUMBNAIL_ROWS)]
    index = _dataset_files(plan.output)
    rows, counts, colours = [], [], {}
    width_nm = plan.config.phantom.shape_zyx[2] * plan.voxel_size_a / 10.0
    for spec in tomograms:
        labels = read_labels(spec.folder, plan.voxel_size_a)
        depth = _slab_voxels(plan.tomogram_voxel_size_a)
        slices = {
            name: central_slab(map_mrc(file), depth)
            for name, file in _tomogram_files(plan, spec.folder).items()
        }
        labels = _slab_labels(labels)
        name = spec.folder.name
        image = f"report/thumbnails_{name}.png"
        plot_thumbnails(
            slices, plan.output / image, pixel_size_a=plan.tomogram_voxel_size_a, labels=labels
        )
        counts.append(labels.counts())
        colours.update({k: to_hex(c) for k, c in labels.colours().items() if k not in colours})
        total = sum(counts[-1].values())
        files = index.get(name) or sorted(p.name for p in spec.folder.iterdir() if p.is_file())
        rows.append(
            Row(
                f"{name}: {total} particles, seed {spec.seed}, styled with "
                f"{_style_reference_name(plan, spec.index)}",
                image,
                links=[(f, f"{name}/{f}") for f in files if (spec.folder / f).is_file()],
            )
        )
    names = list(colours)
    table: list[list[Any]] = [["tomogram", *(Swatch(n, colours[n]) for n in names), "total"]]
    for spec, c in zip(tomograms, counts, strict=True):
        cells = [str(c.get(n, 0)) for n in names]
        table.append([spec.folder.name, *cells, str(sum(c.values()))])
    shown = len(tomograms)
    more = f" (the first {shown} of {plan.n_tomograms})" if shown < plan.n_tomograms else ""
    return Section(
        "Tomograms at a glance",
        text=f"Each reconstruction of every tomogram{more}: the mean of its central "
        f"{THUMBNAIL_SLAB_A / 10:g} nm of XY slices "
        f"({_slab_voxels(plan.tomogram_voxel_size_a)} slices), stretched to its own "
        f"1st-99th percentile grey range; scale bars {scale_bar_nm(width_nm):g} nm. Last "
        "panel: the classes in the same slab of the class mask (background black), in the "
        "colours of the table, which counts the particles of each class "
        "(particle_locations.txt). Below each row: links to its files.",
        table=table,
        rows=rows,
    )


def _slab_voxels(voxel_size_a: float) -> int:
    """Return the number of slices of a `THUMBNAIL_SLAB_A` slab (at least 1)."""
    return max(1, round(THUMBNAIL_SLAB_A / voxel_size_a))


def central_slab(volume: np.ndarray, depth: int) -> np.ndarray:
    """Return the mean of the ``depth`` central XY slices of a volume.

    Parameters
    ----------
    volume : numpy.ndarray
        ``(nz, ny, nx)`` volume.
    depth : int
        Number of slices (clipped to 1 .. nz); the slab starts at ``(nz - depth) // 2``.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` float64 mean; ``depth = 1`` gives slice ``nz // 2`` for odd ``nz``
        and ``(nz - 1) // 2`` for even ``nz``.
    """
    nz = volume.shape[0]
    depth = min(max(1, depth), nz)
    start = (nz - depth) // 2
    return np.asarray(volume[start : start + depth], dtype=np.float64).mean(axis=0)


def _slab_labels(labels: Any) -> Any:
    """Return ``labels`` with a one-slice class mask: the classes in its central slab."""
    mask = labels.class_mask
    depth = min(_slab_voxels(labels.voxel_size_a), mask.shape[0])
    start = (mask.shape[0] - depth) // 2
    slab = mask[start : start + depth].max(axis=0)  # two classes in one column: the higher id
    return dataclasses.replace(labels, class_mask=slab[None])


def _dataset_files(output: Path) -> dict[str, list[str]]:
    """Return each tomogram folder's file list from ``dataset.json`` (empty if none)."""
    file = output / "dataset.json"
    if not file.is_file():
        return {}
    data = json.loads(file.read_text(encoding="utf-8"))
    return {str(t["folder"]): [str(f) for f in t["files"]] for t in data.get("tomograms", [])}


def _root_links(output: Path) -> list[tuple[str, str]]:
    """Return (text, relative href) of the dataset's root files and reference tomograms."""
    files = [*_LINKED_ROOT_FILES, *(f"report/{n}" for n in _LINKED_REPORT_FILES)]
    refs = output / "references"
    if refs.is_dir():
        files += sorted(f"references/{p.name}" for p in refs.iterdir() if p.is_file())
    return [(f, f) for f in files if (output / f).is_file()]


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


def _timings_section(plan: RunPlan) -> Any:
    from faket.report import Section

    return Section("Timings (seconds per stage)", table=_timings_table(plan))


def _run_section(plan: RunPlan, ref_name: str) -> Any:
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
    nz, ny, nx = config.phantom.shape_zyx
    v = config.phantom.voxel_size_a
    return Section(
        "Run",
        text=f"{n} tomogram(s) of {nz} x {ny} x {nx} voxels (z, y, x) at {v:g} Å "
        f"({nx * v / 10:g} x {ny * v / 10:g} x {nz * v / 10:g} nm), tomograms at "
        f"{plan.tomogram_voxel_size_a:g} Å, {len(plan.tilt_angles_deg)} tilts from "
        f"{min(plan.tilt_angles_deg):+g} to {max(plan.tilt_angles_deg):+g} degrees, seed "
        f"{config.run.seed}, style backbone {config.style.backbone} ({plan.precision}). "
        f"{pairing} The detailed figures below show model_0, styled with {ref_name}. "
        "Files: the index (dataset.json), the configuration that made it (config.yaml; "
        "faket simulate config.yaml redoes it) and the noise statistics of the references:",
        links=_root_links(plan.output),
    )


def _figure_sections(plan: RunPlan, stats: list[Any], gallery: bool) -> list[Any]:
    from faket.report import Section, scale_bar_nm

    config = plan.config
    v = plan.voxel_size_a
    width_nm = config.phantom.shape_zyx[2] * v / 10.0
    bar = f"Scale bars: {scale_bar_nm(width_nm):g} nm."
    stretch = "Each image is stretched to its own 1st-99th percentile grey range."
    sections = [
        Section(
            "Projections",
            "report/projections.png",
            "Tilts nearest -40, 0 and +40 degrees of the reference and of each modality of "
            f"model_0: FAKET should look like the reference, NOISY and BASELINE less so. "
            f"{stretch} {bar}",
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
            "the reference, each divided by its median, from 0 to Nyquist "
            f"({0.5 / v:.3g} 1/Å at {v:g} Å per pixel; top axis: the resolution, 1 / "
            "frequency, in Å): FAKET's should follow the reference's.",
        ),
        Section(
            "Tomogram slices",
            "report/tomograms.png",
            "Central XY and XZ slices of each reconstruction of model_0 (filtered "
            "back-projection; the missing wedge elongates objects along Z). Circles: "
            "particle centres within 3 voxels of the slice, in their class colour. Last "
            f"row: the class mask. Legend: each class and its particle count. {stretch} "
            f"{bar}",
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
    plot_likeness(record, figures / "likeness.png", pixel_size_a=plan.voxel_size_a)
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
    rows = [
        [
            "modality",
            "pairs",
            "spectrum log-distance",
            "x floor",
            "grey W1",
            "x floor",
            "domain AUC",
        ]
    ]
    for row in result.table():
        rows.append(
            [
                str(row["modality"]),
                str(row["n_pairs"]),
                f"{row['spectrum_log_distance']:.3f}",
                _ratio_text(row.get("spectrum_log_distance_ratio")),
                f"{row['grey_w1']:.3f}",
                _ratio_text(row.get("grey_w1_ratio")),
                f"{row['domain_auc']:.3f}",
            ]
        )
    return Section(
        title,
        "report/likeness.png",
        _likeness_summary(result.table()) + " "
        "Each modality against the reference of ANOTHER tomogram: the radial power-spectrum "
        "log-distance (decades), the Wasserstein-1 distance of standardised grey values, "
        "and the held-out AUC of a small CNN trained to tell the modality's patches from "
        "the reference's (0.5: indistinguishable). The floor row: two references of "
        "different tomograms of the same microscope; x floor: the distance divided by the "
        "floor's (1: as alike as two real tomograms). Lower distances are more alike, an "
        "AUC nearer 0.5 is more alike. Files: report/likeness.json, report/likeness.csv.",
        table=rows,
    )


def _ratio_text(ratio: float | None) -> str:
    return "" if ratio is None or not np.isfinite(ratio) else f"{ratio:.2f}"


def _likeness_summary(table: list[dict[str, Any]]) -> str:
    """Return one sentence: the modalities nearest the floor by spectrum and by AUC."""
    floor = next(r for r in table if r["modality"] == "floor")
    rows = [r for r in table if r["modality"] not in ("floor", "noiseless")]
    if not rows:
        return ""
    spectrum = min(rows, key=lambda r: r["spectrum_log_distance"])
    auc = min(rows, key=lambda r: abs(r["domain_auc"] - 0.5))
    return (
        f"Most alike: {spectrum['modality']} by spectrum "
        f"({spectrum['spectrum_log_distance']:.3f} decades; floor "
        f"{floor['spectrum_log_distance']:.3f}), {auc['modality']} by domain AUC "
        f"({auc['domain_auc']:.3f}; floor {floor['domain_auc']:.3f})."
    )
