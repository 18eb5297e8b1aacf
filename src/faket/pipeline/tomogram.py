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

Memory: no stage of a tomogram holds a tilt-series: each reads its inputs from their
files a few tilts at a time (:class:`faket.io.tilt_stack.MrcTilts`) and writes its
output as it is made, so a tomogram holds a part of a series and a stage's working
memory, not the half-dozen series of the run (each 3 GB at 61 x 3500^2).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from faket._runtime import release_free_memory, returning_freed_memory
from faket.io import read_json_object, read_noise_stats, write_mrc
from faket.io.provenance import write_provenance
from faket.io.tilt_stack import MrcTilts, MrcTiltWriter
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


def style_reference(plan: RunPlan, index: int) -> MrcTilts:
    """Return the reference tilt-series that styles tomogram ``index`` (another content).

    Its tilts are read from the file when indexed, so a detector-sized series is never
    held whole.
    """
    return MrcTilts(_style_path(plan, index))


def _style_path(plan: RunPlan, index: int) -> Path:
    """Return the file of the reference that styles tomogram ``index``."""
    j = plan.specimens[index].style_source
    if plan.config.reference.source == "files":
        return prepared_path(plan.output, j)  # on the run's grid, at the run's angles
    return plan.specimens[j].folder / "reference.mrc"


def _make_modalities(plan: RunPlan, index: int, stats: list[Any], model: str) -> list[str]:
    """Write NOISY and CONTENT of one noise model (and BASELINE with the primary).

    Each is made from ``noiseless.mrc`` read a part at a time and written as it is
    made (:func:`faket.noise.modality_parts`): the stage holds a part, never a series.
    Returns the names written.
    """
    from faket.noise import modality_parts

    spec = plan.specimens[index]
    primary = model == plan.config.noise.model
    suffix = model_suffix(model, plan.config.noise.model)
    noiseless = MrcTilts(spec.folder / "noiseless.mrc")
    shape = (int(noiseless.shape[0]), int(noiseless.shape[1]), int(noiseless.shape[2]))
    names = []
    for modality in ("baseline", "noisy", "content") if primary else ("noisy", "content"):
        name = f"{modality}{suffix}"
        parts = modality_parts(
            noiseless,
            stats,
            modality,
            seed=spec.seed + NOISE_SEED_OFFSET,
            name=str(spec.folder / "noiseless.mrc"),
            model="published" if modality == "baseline" else model,
            at=plan.tilt_angles,
            device=plan.device,
        )
        path = spec.folder / f"{name}.mrc"
        with MrcTiltWriter(path, shape, voxel_size_a=plan.voxel_size_a) as out:
            for start, tilts in parts:
                out.write(start, tilts)
        names.append(name)
    return names


def _make_faket(plan: RunPlan, index: int, suffix: str, *, ablation: bool = False) -> str:
    """Style NOISY of one noise model into its FAKET with the reference; return its name.

    NOISY, CONTENT and the reference are read from their files a batch of tilts at a
    time and each finished batch is written, so the stage holds one batch and the
    style's working memory, whatever the detector. With ``ablation`` the backbone is
    the random one (`load_backbone`'s fixed seed 0, so the same files on every run) and
    the file ``faket_random<suffix>.mrc``.
    """
    from faket._runtime import heap_trimmer
    from faket.style import StyleSettings
    from faket.style.series import stylized_batches

    s = plan.config.style
    folder = plan.specimens[index].folder
    if ablation:
        backbone = load_style_backbone("random", None, plan.device)
    else:
        weights = None if s.weights_path is None else str(s.weights_path)
        backbone = load_style_backbone(s.backbone, weights, plan.device)
    paths = (folder / f"noisy{suffix}.mrc", folder / f"content{suffix}.mrc")
    initial, content = (MrcTilts(path) for path in paths)
    style_path = _style_path(plan, index)
    batches = stylized_batches(
        backbone,
        initial,
        content,
        MrcTilts(style_path),
        StyleSettings(iterations=s.iterations, step_size=s.step_size),
        precision=plan.precision,
        tile=s.tile,
        memory_budget_bytes=s.memory_bytes,
        working_size=s.working_size,
        names=(str(paths[0]), str(paths[1]), str(style_path)),
    )
    # As faket style: heap reuse must not grow memory from tomogram to tomogram.
    trim = heap_trimmer(s.memory_bytes)
    name = f"{RANDOM_FAKET if ablation else 'faket'}{suffix}"
    shape = (int(initial.shape[0]), int(initial.shape[1]), int(initial.shape[2]))
    with MrcTiltWriter(folder / f"{name}.mrc", shape, voxel_size_a=plan.voxel_size_a) as out:
        for start, tilts in batches:
            out.write(start, tilts)
            trim(int(tilts.shape[0]))
    return name


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
    stats = read_noise_stats(plan.output / "noise_stats.json")
    made = ["noiseless"]
    for model in config.noise.models:
        suffix = model_suffix(model, config.noise.model)
        with timer(f"modalities{suffix}"), returning_freed_memory():
            made += _make_modalities(plan, index, stats, model)
        with timer(f"style{suffix}"):
            made.append(_make_faket(plan, index, suffix))
        if model in config.style.ablation_models:
            with timer(f"style_random{suffix}"):
                made.append(_make_faket(plan, index, suffix, ablation=True))
    if plan.microscope is not None:
        made.append("reference")
    # Kept freed memory made this stage's peak unpredictable (5.96 to 8.08 GiB at 61 x
    # 3500^2, run to run) for about 0.75x its time; returned: 5.08 GiB every run.
    with timer("reconstruct"), returning_freed_memory():
        for name in reconstructed_names(config.noise.models, tuple(config.style.ablation_models)):
            if name in made:
                series = MrcTilts(spec.folder / f"{name}.mrc")
                tomogram, size = reconstruct_series(
                    plan, series, plan.tilt_angles_deg, plan.voxel_size_a
                )
                write_mrc(tomogram, spec.folder / f"tomogram_{name}.mrc", voxel_size_a=size)
                del tomogram
                release_free_memory()  # the free pages inside the heap, which glibc keeps
    phase1 = read_json_object(spec.folder / "specimen.json") or {}
    timings = {**phase1.get("timings_s", {}), **timer.seconds}
    peaks = {**phase1.get("peak_memory_gib", {}), **timer.peak_gib}
    write_provenance(spec.folder / "provenance.json", _provenance(plan, index, timings, peaks))
    return timings


def _provenance(
    plan: RunPlan, index: int, timings: dict[str, float], peaks: dict[str, float]
) -> dict[str, object]:
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
        "peak_memory_gib": peaks,
    }
