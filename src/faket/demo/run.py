"""The built-in demo: every stage that exists, on an analytic specimen, no user files.

Until the end-to-end pipeline exists, the demo runs: phantom -> noiseless projection ->
the reference microscope (for a second specimen, so the reference never shows the
content it styles) -> noise statistics (paired and unlabelled) -> NOISY, CONTENT and
BASELINE modalities -> FAKET (style transfer of NOISY towards the reference), and writes
MRCs, PNGs and one HTML report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from faket.io import (
    Particle,
    write_mrc,
    write_noise_stats,
    write_particle_locations,
    write_tilt_angles,
)
from faket.io.provenance import write_provenance
from faket.microscope import MicroscopeSettings, simulate_tilt_series
from faket.noise import (
    MODALITIES,
    TiltStats,
    aggregate_tilt_stats,
    estimate_tilt_stats,
    estimate_tilt_stats_unlabelled,
    make_modality,
    radial_power_spectrum,
)
from faket.phantom import (
    BUILTIN_PARTICLES,
    Sphere,
    builtin_particle,
    demo_specimen,
    protein_potential_density,
)
from faket.projection import project_tilt_series
from faket.reconstruction import reconstruct_tomogram
from faket.report import (
    Section,
    plot_noise_stats,
    plot_particle_gallery,
    plot_power_spectra,
    plot_projections,
    plot_tomogram_slices,
)
from faket.report import write_report as write_html_report
from faket.style import load_backbone
from faket.style.series import stylize_tilt_series

CLASS_NAMES = {1: "ball_small", 2: "ball_medium", 3: "ball_large", 4: "vesicle"}
"""Names of the demo specimen's classes, by label."""

STAGES = (
    "phantom",
    "project",
    "reference",
    "noise stats",
    "modalities",
    "style",
    "reconstruct",
    "files",
    "report",
)
"""The demo's stages, in order, for progress bars."""


def demo_tilt_angles() -> np.ndarray:
    """Return the published tilt scheme: -60 to +60 degrees in steps of 2 (61 tilts)."""
    return np.arange(-60.0, 60.0 + 1e-9, 2.0)


def _particles(spheres: list[Sphere]) -> list[Particle]:
    return [
        Particle(CLASS_NAMES[s.label], s.centre_zyx[2], s.centre_zyx[1], s.centre_zyx[0])
        for s in spheres
    ]


def _stats_dict(stats: TiltStats) -> dict[str, np.ndarray]:
    return {k: getattr(stats, k).numpy() for k in ("r", "sigma", "mean", "std")}


def run_demo(
    output: str | os.PathLike[str],
    *,
    shape: tuple[int, int, int] = (64, 128, 128),
    seed: int = 0,
    voxel_size_a: float = 10.0,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Run the demo into ``output`` and return the seconds each stage took.

    Parameters
    ----------
    output : str or PathLike
        Folder to write; created if missing, files in it are replaced.
    shape : tuple of int
        ``(nz, ny, nx)`` of the specimens, in voxels.
    seed : int
        Seed of the specimens and the noise; the same seed gives identical files.
    voxel_size_a : float
        Voxel size written to the MRC headers, in Angstrom.
    device : torch.device or str
        Where the numerics run.
    precision : str
        Precision of the style transfer's convolutions: ``fp32``, ``bf16`` or ``fp16``.
    on_stage : callable, optional
        Called with each stage's name when it starts (for progress bars).

    Returns
    -------
    dict of str to float
        Stage name -> wall-clock seconds.
    """
    out = Path(output)
    (out / "model_0").mkdir(parents=True, exist_ok=True)
    (out / "reference_0").mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        if on_stage is not None:
            on_stage(name)
        start = time.perf_counter()
        yield
        timings[name] = time.perf_counter() - start

    angles = demo_tilt_angles()
    with stage("phantom"):
        # Balls and shells at the potential of protein, in volts (as faket.phantom).
        protein_v = protein_potential_density()
        content_volume, spheres = demo_specimen(shape, seed=seed)
        reference_volume, _ = demo_specimen(shape, seed=seed + 1)
        content_volume, reference_volume = content_volume * protein_v, reference_volume * protein_v
        content_volume = content_volume.to(device)
        reference_volume = reference_volume.to(device)
    with stage("project"):
        noiseless = project_tilt_series(content_volume, angles)
        reference_noiseless = project_tilt_series(reference_volume, angles)
    with stage("reference"):
        # The reference microscope images the second specimen in a slab of ice that
        # fills the box (its noiseless projection pairs with it for the noise statistics).
        settings = MicroscopeSettings(slab_nm=shape[0] * voxel_size_a / 10)
        reference = simulate_tilt_series(
            reference_volume, angles, voxel_size_a, settings, seed=seed + 2
        ).counts
    with stage("noise stats"):
        paired = estimate_tilt_stats(reference, reference_noiseless, tilt_angles_deg=angles)
        unlabelled = estimate_tilt_stats_unlabelled(reference, tilt_angles_deg=angles)
    with stage("modalities"):
        modalities = {
            name: make_modality(noiseless, [paired], name, seed=seed + 10 + i)
            for i, name in enumerate(MODALITIES)
        }
    with stage("style"):
        backbone = load_backbone("vgg16-hed").to(device)
        modalities["faket"] = stylize_tilt_series(
            backbone,
            modalities["noisy"],
            modalities["content"],
            reference,
            precision=precision,
        )
    with stage("reconstruct"):
        tomograms = {
            name: reconstruct_tomogram(series, angles, filter_name="ramp", thickness=shape[0])
            for name, series in {
                "noiseless": noiseless,
                **modalities,
                "reference": reference,
            }.items()
        }
    with stage("files"):
        model, ref_dir = out / "model_0", out / "reference_0"
        write_mrc(content_volume, model / "grandmodel.mrc", voxel_size_a=voxel_size_a)
        write_particle_locations(_particles(spheres), model / "particle_locations.txt")
        write_tilt_angles(angles, model / "tilt_angles.tlt")
        write_mrc(noiseless, model / "noiseless.mrc", voxel_size_a=voxel_size_a)
        for name, series in modalities.items():
            write_mrc(series, model / f"{name}.mrc", voxel_size_a=voxel_size_a)
        write_mrc(reference_volume, ref_dir / "grandmodel.mrc", voxel_size_a=voxel_size_a)
        write_tilt_angles(angles, ref_dir / "tilt_angles.tlt")
        write_mrc(reference_noiseless, ref_dir / "noiseless.mrc", voxel_size_a=voxel_size_a)
        write_mrc(reference, ref_dir / "reference.mrc", voxel_size_a=voxel_size_a)
        for name, tomogram in tomograms.items():
            folder = ref_dir if name == "reference" else model
            write_mrc(tomogram, folder / f"tomogram_{name}.mrc", voxel_size_a=voxel_size_a)
        write_noise_stats([paired], out / "noise_stats.json")
        write_noise_stats([unlabelled], out / "noise_stats_unlabelled.json")
    with stage("report"):
        shown = {"reference (microscope)": reference, "noiseless": noiseless, **modalities}
        shown_np = {k: v.cpu().numpy() for k, v in shown.items()}
        plot_projections(shown_np, angles.tolist(), out / "projections.png")
        fits = {
            f"{name} fit (order {spec.order})": _stats_dict(
                aggregate_tilt_stats([paired], spec.order)
            )
            for name, spec in MODALITIES.items()
            if name != "content"
        }
        plot_noise_stats(
            {"paired": _stats_dict(paired), "unlabelled": _stats_dict(unlabelled)},
            fits,
            out / "noise_stats.png",
        )
        centre = [len(angles) // 2]
        spectra = {}
        for name, series in shown.items():
            freq, power = radial_power_spectrum(series[centre].cpu())
            spectra[name] = (freq.numpy(), power[0].numpy())
        plot_power_spectra(spectra, out / "power_spectra.png")
        gallery = {name: builtin_particle(name, voxel_size_a) for name in BUILTIN_PARTICLES}
        plot_particle_gallery(gallery, out / "particle_library.png", voxel_size_a=voxel_size_a)
        plot_tomogram_slices(
            {k: v.cpu().numpy() for k, v in tomograms.items() if k != "reference"},
            out / "tomograms.png",
            points_zyx=[s.centre_zyx for s in spheres],
        )
    provenance = {
        "device": str(device),
        "seed": seed,
        "shape_zyx": list(shape),
        "voxel_size_a": voxel_size_a,
        "tilt_angles_deg": angles.tolist(),
        "timings_s": timings,
    }
    write_provenance(out / "provenance.json", provenance)
    _write_report(out, timings, paired, unlabelled)
    return timings


def _write_report(
    out: Path, timings: dict[str, float], paired: TiltStats, unlabelled: TiltStats
) -> None:
    error = (unlabelled.sigma - paired.sigma).abs()
    sections = [
        Section(
            "Projections",
            "projections.png",
            "Tilts -60, -40, 0, +40 and +60 degrees of each modality; the reference comes "
            "from a second specimen through the reference microscope (ice, CTF, dose, "
            "electron counting: faket.microscope).",
        ),
        Section(
            "Noise statistics",
            "noise_stats.png",
            "Per-tilt r, sigma, mean and std of the reference: paired (with its noiseless "
            "projections) and unlabelled (power-spectrum plateau) estimates, and the fits "
            "the NOISY (order 2) and BASELINE (order 0) modalities use. Unlabelled sigma vs "
            f"paired: mean absolute difference {float(error.mean()):.3f}, "
            f"max {float(error.max()):.3f}.",
        ),
        Section(
            "Power spectra",
            "power_spectra.png",
            "Radially averaged power spectra of the zero-degree tilt of each modality.",
        ),
        Section(
            "Tomograms",
            "tomograms.png",
            "Central XY and XZ slices of each modality's reconstruction (ramp-filtered "
            "back-projection over -60..60 degrees; the missing wedge elongates objects "
            "along Z). Red circles: particle centres within 3 voxels of the slice.",
        ),
        Section(
            "Built-in particle library",
            "particle_library.png",
            "The particle types `faket phantom --builtin` places (projections along Z and X "
            "at the demo's voxel size), procedurally made of Gaussian blobs at protein "
            "density.",
        ),
        Section(
            "Timings",
            table=[("stage", "seconds")] + [(k, f"{v:.2f}") for k, v in timings.items()],
        ),
    ]
    write_html_report(out / "report.html", "faket demo", sections)
