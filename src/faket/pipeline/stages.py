"""The pipeline's three phases; each task is a top-level, picklable ``fn(config, index)``.

- Phase 1, :func:`prepare_specimen` (parallel over specimens): phantom -> noiseless
  projections -> (microscope source) the microscope's reference tilt-series of the same
  specimen. Marker: ``specimen.json``.
- Phase 2, :func:`estimate_noise` (serial, cheap): per-tilt noise statistics of every
  reference, from (reference, noiseless) pairs or the user's stats JSON, written to
  ``noise_stats.json``. They are aggregated across references by each modality's
  polynomial fit (REFERENCE.md section 2), which is why this phase sits between the two
  parallel ones.
- Phase 3, :func:`make_tomogram` (parallel over tomograms): BASELINE, NOISY, CONTENT ->
  FAKET (styled with the reference of ANOTHER specimen, `style_source`) -> reconstructions.
  ``provenance.json`` is written last: it marks the tomogram complete.

The stages are wired, not reimplemented: every numeric step is a call into the stage
packages.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faket.config import FaketConfig
from faket.errors import FaketInputError
from faket.io import (
    read_json_object,
    read_mrc,
    read_noise_stats,
    read_tilt_angles,
    write_json,
    write_mrc,
    write_noise_stats,
    write_tilt_angles,
)
from faket.io.provenance import write_provenance
from faket.pipeline.layout import (
    MODALITY_FILES,
    n_specimens,
    resume_key,
    specimen_dir,
    specimen_seed,
    style_source,
    tilt_angles,
)


def resolve_device(name: str) -> torch.device:
    """Return the torch device of ``run.device``; a clear error when it is not there."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise FaketInputError(f"run.device: unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FaketInputError(f"run.device: {name!r} asked for, but CUDA is not available here")
    return device


class _Timer:
    """Wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 4)


def _set_threads(config: FaketConfig) -> None:
    """Apply ``run.threads`` (CPU threads per task) in whatever process runs the task.

    The thread count changes the order of floating-point sums, hence the last bits of
    the results; so it is a setting of the run (part of the resume key), not something a
    worker picks: the same config gives the same files in-process, in worker processes
    and on dask.
    """
    if config.run.threads is not None and torch.get_num_threads() != config.run.threads:
        torch.set_num_threads(config.run.threads)


def is_done(path: Path, key: str) -> bool:
    """Return whether the marker JSON at ``path`` exists and holds ``key``."""
    data = read_json_object(path)
    return data is not None and data.get("resume_key") == key


def particle_classes(config: FaketConfig) -> list[Any]:
    """Return the :class:`faket.phantom.ParticleClass` list of the config (files, built-ins)."""
    from faket.phantom import ParticleClass, builtin_particle, load_structure

    p = config.phantom
    classes = []
    for entry in p.structures:
        if not entry.path.is_file():
            raise FaketInputError("phantom.structures: no such file", entry.path)
        density = load_structure(entry.path, p.voxel_size_a, cache=p.cache_dir)
        name = entry.path.name.split(".")[0] or "structure"
        classes.append(ParticleClass(name, density, entry.count, str(entry.path)))
    for kind, count in p.builtin.items():
        density = builtin_particle(kind, p.voxel_size_a)
        classes.append(ParticleClass(kind, density, count, f"builtin:{kind}"))
    return classes


def prepare_specimen(config: FaketConfig, index: int) -> dict[str, float]:
    """Phase 1 for specimen ``index``: labels, noiseless projections, microscope reference.

    Skipped when its ``specimen.json`` holds the current resume key. Returns the
    seconds per stage (empty when skipped).
    """
    from faket.io.specimen_files import write_specimen
    from faket.microscope import MicroscopeSettings, simulate_tilt_series
    from faket.phantom import build_specimen
    from faket.projection import project_tilt_series

    folder = specimen_dir(config, index)
    key = resume_key(config, index)
    marker = folder / "specimen.json"
    if is_done(marker, key):
        return {}
    _set_threads(config)
    device = resolve_device(config.run.device)
    p = config.phantom
    seed = specimen_seed(config, index)
    angles = tilt_angles(config)
    timer = _Timer()
    folder.mkdir(parents=True, exist_ok=True)
    with timer("phantom"):
        specimen = build_specimen(
            particle_classes(config),
            p.shape_zyx,
            p.voxel_size_a,
            slab_voxels=p.slab_voxels,
            n_vesicles=p.vesicles,
            vesicle_radius_a=(10 * p.vesicle_radius_nm[0], 10 * p.vesicle_radius_nm[1]),
            n_fiducials=p.fiducials,
            seed=seed,
        )
        v = p.voxel_size_a
        write_specimen(specimen, folder)
    volume = torch.from_numpy(specimen.grandmodel).to(device)
    with timer("project"):
        noiseless = project_tilt_series(volume, angles)
        write_tilt_angles(angles, folder / "tilt_angles.tlt")
        write_mrc(noiseless, folder / "noiseless.mrc", voxel_size_a=v)
    if config.reference.source == "microscope":
        with timer("microscope"):
            slab = (p.slab_voxels or p.shape_zyx[0]) * v / 10
            settings = MicroscopeSettings(**{"slab_nm": slab, **config.reference.microscope})
            result = simulate_tilt_series(volume, angles, v, settings, seed=seed + 1)
            write_mrc(result.counts, folder / "reference.mrc", voxel_size_a=v)
    write_json(
        {
            "resume_key": key,
            "seed": seed,
            "n_particles": len(specimen.particles),
            "timings_s": timer.seconds,
        },
        marker,
    )
    return timer.seconds


def _stats_from_files(config: FaketConfig, n_tilts: int) -> list[Any]:
    from faket.noise import estimate_tilt_stats

    ref = config.reference
    if config.noise.stats_file is not None:
        if not config.noise.stats_file.is_file():
            raise FaketInputError("noise.stats_file: no such file", config.noise.stats_file)
        stats = read_noise_stats(config.noise.stats_file)
    else:
        stats = []
        for path, clean, angles_file in zip(
            ref.tilt_series, config.noise.noiseless, ref.angles, strict=True
        ):
            reference = read_reference(path, angles_file, n_tilts)
            noiseless = torch.from_numpy(read_mrc(clean, ndim=3).data)
            if noiseless.shape != reference.shape:
                raise FaketInputError(
                    f"noiseless shape {tuple(noiseless.shape)} differs from its reference "
                    f"{path} {tuple(reference.shape)}",
                    clean,
                )
            measured = estimate_tilt_stats(
                reference, noiseless, tilt_angles_deg=read_tilt_angles(angles_file)
            )
            stats.append(dataclasses.replace(measured, source=str(path)))
    for s in stats:
        if len(s.r) != n_tilts:
            raise FaketInputError(
                f"noise statistics have {len(s.r)} tilts, the projections {n_tilts}",
                config.noise.stats_file or "noise",
            )
    return stats


def read_reference(path: Path, angles_file: Path, n_tilts: int) -> torch.Tensor:
    """Read a user's reference tilt-series and check its tilt count against the run's."""
    for file in (path, angles_file):
        if not Path(file).is_file():
            raise FaketInputError("reference: no such file", file)
    data = torch.from_numpy(read_mrc(path, ndim=3).data)
    n_angles = len(read_tilt_angles(angles_file))
    if data.shape[0] != n_angles or n_angles != n_tilts:
        raise FaketInputError(
            f"{data.shape[0]} images and {n_angles} angles in {angles_file}, "
            f"but the run projects {n_tilts} tilts",
            path,
        )
    return data


def estimate_noise(config: FaketConfig) -> list[Any]:
    """Phase 2: the noise statistics of every reference, written to ``noise_stats.json``.

    Microscope source: paired estimates from each reference specimen's (counts,
    noiseless projection) pair, as the paper did with SHREC. Files source: the stats
    JSON, or paired estimates from the user's noiseless files.
    """
    from faket.noise import estimate_tilt_stats

    angles = tilt_angles(config)
    if config.reference.source == "files":
        stats = _stats_from_files(config, len(angles))
        _reconstruct_user_references(config)
    else:
        stats = []
        for j in range(n_specimens(config)):
            folder = specimen_dir(config, j)
            reference = torch.from_numpy(read_mrc(folder / "reference.mrc", ndim=3).data)
            noiseless = torch.from_numpy(read_mrc(folder / "noiseless.mrc", ndim=3).data)
            measured = estimate_tilt_stats(reference, noiseless, tilt_angles_deg=angles)
            stats.append(dataclasses.replace(measured, source=folder.name))
    write_noise_stats(stats, config.run.output / "noise_stats.json")
    return stats


def _reconstruct_user_references(config: FaketConfig) -> None:
    """Reconstruct each user reference once into ``references/tomogram_reference_<k>.mrc``."""
    from faket.reconstruction import bin_tilt_series, reconstruct_tomogram

    r = config.reconstruction
    folder = config.run.output / "references"
    n_tilts = len(tilt_angles(config))
    for k, (path, angles_file) in enumerate(
        zip(config.reference.tilt_series, config.reference.angles, strict=True)
    ):
        target = folder / f"tomogram_reference_{k}.mrc"
        if target.is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        reference = read_reference(path, angles_file, n_tilts)
        binned, size = bin_tilt_series(
            reference, r.binning, method=r.binning_method, pixel_size_a=read_mrc(path).voxel_size_a
        )
        thickness = r.thickness or max(1, config.phantom.shape_zyx[0] // r.binning)
        tomogram = reconstruct_tomogram(
            binned,
            read_tilt_angles(angles_file),
            filter_name=r.filter_name,
            pad=r.filter_name == "ramp",
            thickness=min(thickness, binned.shape[-1]),
        )
        write_mrc(tomogram, target, voxel_size_a=size)


@lru_cache(maxsize=2)
def _backbone(name: str, weights: str | None, device: str) -> Any:
    from faket.style import load_backbone

    return load_backbone(name, weights_path=weights).to(torch.device(device))


def style_reference(config: FaketConfig, index: int) -> torch.Tensor:
    """Return the reference tilt-series that styles tomogram ``index`` (another content)."""
    j = style_source(config, index)
    if config.reference.source == "files":
        ref = config.reference
        return read_reference(ref.tilt_series[j], ref.angles[j], len(tilt_angles(config)))
    return torch.from_numpy(read_mrc(specimen_dir(config, j) / "reference.mrc", ndim=3).data)


def make_tomogram(config: FaketConfig, index: int) -> dict[str, float]:
    """Phase 3 for tomogram ``index``: modalities, FAKET, reconstructions, provenance.

    Skipped when its ``provenance.json`` holds the current resume key. Returns the
    seconds per stage of the whole tomogram (phase 1 included; empty when skipped).
    """
    from faket._runtime import heap_trimmer
    from faket.noise import make_modality
    from faket.reconstruction import bin_tilt_series, reconstruct_tomogram
    from faket.style import StyleSettings
    from faket.style.series import DEFAULT_MEMORY_BUDGET_BYTES, stylize_tilt_series

    folder = specimen_dir(config, index)
    key = resume_key(config, index)
    if is_done(folder / "provenance.json", key):
        return {}
    _set_threads(config)
    device = resolve_device(config.run.device)
    seed = specimen_seed(config, index)
    angles = tilt_angles(config)
    v = config.phantom.voxel_size_a
    timer = _Timer()
    stats = read_noise_stats(config.run.output / "noise_stats.json")
    noiseless = torch.from_numpy(read_mrc(folder / "noiseless.mrc", ndim=3).data).to(device)
    series: dict[str, torch.Tensor] = {"noiseless": noiseless}
    with timer("modalities"):
        for k, name in enumerate(MODALITY_FILES[:-1]):
            series[name] = make_modality(noiseless, stats, name, seed=seed + 10 + k)
            write_mrc(series[name], folder / f"{name}.mrc", voxel_size_a=v)
    with timer("style"):
        s = config.style
        model = _backbone(
            s.backbone, None if s.weights_path is None else str(s.weights_path), str(device)
        )
        series["faket"] = stylize_tilt_series(
            model,
            series["noisy"],
            series["content"],
            style_reference(config, index).to(device),
            StyleSettings(iterations=s.iterations, step_size=s.step_size),
            precision=config.run.precision,
            tile=s.tile,
            # As faket style: heap reuse must not grow memory from tomogram to tomogram.
            progress=heap_trimmer(DEFAULT_MEMORY_BUDGET_BYTES),
        )
        write_mrc(series["faket"], folder / "faket.mrc", voxel_size_a=v)
    if config.reference.source == "microscope":
        series["reference"] = torch.from_numpy(read_mrc(folder / "reference.mrc", ndim=3).data)
    with timer("reconstruct"):
        r = config.reconstruction
        thickness = r.thickness or max(1, config.phantom.shape_zyx[0] // r.binning)
        for name in ("noiseless", "baseline", "noisy", "faket", "reference"):
            if name not in series:
                continue
            binned, size = bin_tilt_series(
                series[name].to(device), r.binning, method=r.binning_method, pixel_size_a=v
            )
            tomogram = reconstruct_tomogram(
                binned,
                angles,
                filter_name=r.filter_name,
                pad=r.filter_name == "ramp",
                thickness=thickness,
            )
            write_mrc(tomogram, folder / f"tomogram_{name}.mrc", voxel_size_a=size)
    phase1 = read_json_object(folder / "specimen.json") or {}
    timings = {**phase1.get("timings_s", {}), **timer.seconds}
    write_provenance(
        folder / "provenance.json",
        {
            "resume_key": key,
            "config_sha256": config.content_hash(),
            "config": config.model_dump(mode="json"),
            "index": index,
            "seed": seed,
            "style_reference": style_source(config, index),
            "device": str(device),
            "tilt_angles_deg": np.asarray(angles).tolist(),
            "voxel_size_a": v,
            "timings_s": timings,
        },
    )
    return timings
