"""Phase 3 of the pipeline: one tomogram's modalities, FAKET and reconstructions.

:func:`make_tomogram` (a top-level, picklable ``fn(plan, index)``) makes, for each noise
model of the run (``noise.model`` first, then ``noise.extra_models``), NOISY and CONTENT
and styles NOISY into FAKET with the reference of ANOTHER specimen (and, for the models
in ``style.ablation_models``, into FAKET_RANDOM with the random backbone); BASELINE (the
published model at order 0) once; then it reconstructs every tilt-series and writes
``provenance.json`` last: it marks the tomogram complete.

One noise field per tomogram: BASELINE, NOISY and CONTENT of every model draw it from
the same seed, as in the authors' code, so CONTENT is NOISY's noise realisation at a
quarter of its amplitude, not a new draw (REFERENCE.md section 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from faket.io import read_json_object, read_mrc, read_noise_stats, write_mrc
from faket.io.provenance import write_provenance
from faket.pipeline.layout import RANDOM_FAKET, model_suffix, reconstructed_names
from faket.pipeline.references import prepared_path
from faket.pipeline.stages import (
    NOISE_SEED_OFFSET,
    StageTimer,
    is_done,
    load_style_backbone,
    reconstruct_series,
    set_threads,
)

if TYPE_CHECKING:
    from faket.pipeline.plan import RunPlan


def style_reference(plan: RunPlan, index: int) -> torch.Tensor:
    """Return the reference tilt-series that styles tomogram ``index`` (another content)."""
    return torch.from_numpy(read_mrc(_style_path(plan, index), ndim=3).data)


def _style_path(plan: RunPlan, index: int) -> Path:
    """Return the file of the reference that styles tomogram ``index``."""
    j = plan.specimens[index].style_source
    if plan.config.reference.source == "files":
        return prepared_path(plan.output, j)  # on the run's grid, at the run's angles
    return plan.specimens[j].folder / "reference.mrc"


def _make_modalities(
    plan: RunPlan, index: int, noiseless: torch.Tensor, stats: list[Any], model: str
) -> dict[str, torch.Tensor]:
    """NOISY and CONTENT of one noise model (and BASELINE with the primary), written."""
    from faket.noise import make_modality

    spec = plan.specimens[index]
    primary = model == plan.config.noise.model
    suffix = model_suffix(model, plan.config.noise.model)
    series = {}
    for modality in ("baseline", "noisy", "content") if primary else ("noisy", "content"):
        name = f"{modality}{suffix}"
        series[name] = make_modality(
            noiseless,
            stats,
            modality,
            seed=spec.seed + NOISE_SEED_OFFSET,
            name=str(spec.folder / "noiseless.mrc"),
            model="published" if modality == "baseline" else model,
            at=plan.tilt_angles,
        )
        write_mrc(series[name], spec.folder / f"{name}.mrc", voxel_size_a=plan.voxel_size_a)
    return series


def _make_faket(
    plan: RunPlan,
    index: int,
    series: dict[str, torch.Tensor],
    style: torch.Tensor,
    suffix: str,
    *,
    ablation: bool = False,
) -> torch.Tensor:
    """Style NOISY of one noise model into its FAKET with ``style`` (the reference), written.

    With ``ablation`` the backbone is the random one (`load_backbone`'s fixed seed 0, so
    the same files on every run) and the file ``faket_random<suffix>.mrc``.
    """
    from faket._runtime import heap_trimmer
    from faket.style import StyleSettings
    from faket.style.series import stylize_tilt_series

    s = plan.config.style
    folder = plan.specimens[index].folder
    if ablation:
        backbone = load_style_backbone("random", None, plan.device)
    else:
        weights = None if s.weights_path is None else str(s.weights_path)
        backbone = load_style_backbone(s.backbone, weights, plan.device)
    noisy, content = f"noisy{suffix}", f"content{suffix}"
    faket = stylize_tilt_series(
        backbone,
        series[noisy],
        series[content],
        style,
        StyleSettings(iterations=s.iterations, step_size=s.step_size),
        precision=plan.precision,
        tile=s.tile,
        memory_budget_bytes=s.memory_bytes,
        working_size=s.working_size,
        # As faket style: heap reuse must not grow memory from tomogram to tomogram.
        progress=heap_trimmer(s.memory_bytes),
        names=(
            str(folder / f"{noisy}.mrc"),
            str(folder / f"{content}.mrc"),
            str(_style_path(plan, index)),
        ),
    )
    name = f"{RANDOM_FAKET if ablation else 'faket'}{suffix}"
    write_mrc(faket, folder / f"{name}.mrc", voxel_size_a=plan.voxel_size_a)
    return faket


def make_tomogram(plan: RunPlan, index: int) -> dict[str, float]:
    """Phase 3 for tomogram ``index``: modalities, FAKET, reconstructions, provenance.

    Skipped when its ``provenance.json`` holds the current resume key. Returns the
    seconds per stage of the whole tomogram (phase 1 included; empty when skipped).
    """
    config, spec = plan.config, plan.specimens[index]
    if is_done(spec.folder / "provenance.json", spec.resume_key):
        return {}
    set_threads(config)
    timer = StageTimer()
    noiseless = torch.from_numpy(read_mrc(spec.folder / "noiseless.mrc", ndim=3).data)
    series = {"noiseless": noiseless.to(torch.device(plan.device))}
    stats = read_noise_stats(plan.output / "noise_stats.json")
    style = style_reference(plan, index).to(torch.device(plan.device))  # read once
    for model in config.noise.models:
        suffix = model_suffix(model, config.noise.model)
        with timer(f"modalities{suffix}"):
            series.update(_make_modalities(plan, index, series["noiseless"], stats, model))
        with timer(f"style{suffix}"):
            series[f"faket{suffix}"] = _make_faket(plan, index, series, style, suffix)
        if model in config.style.ablation_models:
            with timer(f"style_random{suffix}"):
                series[f"{RANDOM_FAKET}{suffix}"] = _make_faket(
                    plan, index, series, style, suffix, ablation=True
                )
    if plan.microscope is not None:
        reference = read_mrc(spec.folder / "reference.mrc", ndim=3).data
        series["reference"] = torch.from_numpy(reference)
    with timer("reconstruct"):
        for name in reconstructed_names(config.noise.models, tuple(config.style.ablation_models)):
            if name in series:
                tomogram, size = reconstruct_series(
                    plan, series[name], plan.tilt_angles_deg, plan.voxel_size_a
                )
                write_mrc(tomogram, spec.folder / f"tomogram_{name}.mrc", voxel_size_a=size)
    phase1 = read_json_object(spec.folder / "specimen.json") or {}
    timings = {**phase1.get("timings_s", {}), **timer.seconds}
    write_provenance(spec.folder / "provenance.json", _provenance(plan, index, timings))
    return timings


def _provenance(plan: RunPlan, index: int, timings: dict[str, float]) -> dict[str, object]:
    config, spec = plan.config, plan.specimens[index]
    return {
        "resume_key": spec.resume_key,
        "config_sha256": config.content_hash(),
        "inputs_sha256": plan.inputs_sha256,
        "config": config.model_dump(mode="json"),
        "index": index,
        "seed": spec.seed,
        "noise_seed": spec.seed + NOISE_SEED_OFFSET,
        "style_reference": spec.style_source,
        "device": plan.device,
        "precision": plan.precision,
        "tilt_angles_deg": list(plan.tilt_angles_deg),
        "voxel_size_a": plan.voxel_size_a,
        "tomogram_voxel_size_a": plan.tomogram_voxel_size_a,
        "timings_s": timings,
    }
