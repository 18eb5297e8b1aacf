"""The pipeline's three phases; each task is a top-level, picklable ``fn(plan, index)``.

- Phase 1, :func:`prepare_specimen` (parallel over specimens): phantom -> noiseless
  projections -> (microscope source) the microscope's reference tilt-series of the same
  specimen. Marker: ``specimen.json``.
- Phase 2, :func:`estimate_noise` (serial, cheap): per-tilt noise statistics of every
  reference by ``noise.method`` (paired, unlabelled, even-odd, or the user's stats
  JSON), written to ``noise_stats.json``; a user's references are first put on the
  run's grid (:mod:`faket.pipeline.references`). They are aggregated across references
  by each modality's polynomial fit (REFERENCE.md section 2), which is why this phase
  sits between the two parallel ones.
- Phase 3, `faket.pipeline.tomogram.make_tomogram` (parallel over tomograms).

Every derived value (angles, seeds, folders, pairing, thickness, microscope settings,
resume keys) comes from the :class:`faket.pipeline.plan.RunPlan`; the stages are wired,
not reimplemented: every numeric step is a call into the stage packages.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from faket.config import FaketConfig
from faket.conventions import TiltStack
from faket.errors import FaketInputError
from faket.io import (
    read_json_object,
    read_mrc,
    write_json,
    write_mrc,
    write_noise_stats,
    write_tilt_angles,
)

if TYPE_CHECKING:
    from faket.pipeline.plan import RunPlan


NOISE_SEED_OFFSET = 10
"""BASELINE, NOISY and CONTENT draw their Gaussian field from the tomogram's seed + 10."""


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


class StageTimer:
    """Wall-clock seconds and peak resident memory (GiB, Linux only) per named stage.

    The peak of a stage is the process's, from the stage's start to its end: what was
    resident when it began counts, so the largest stage peak is the task's peak. Each
    stage starts by returning the heap's free pages to the system, so that where freed
    memory is kept for reuse (the ``faket`` command, :mod:`faket._runtime`) one stage's
    working memory is not carried, unused, into the next.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_gib: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as stage ``name`` and record its peak memory."""
        from faket._runtime import peak_resident_bytes, release_free_memory, reset_peak_resident

        release_free_memory()
        measured = reset_peak_resident()
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 4)
        if measured:
            self.peak_gib[name] = round(peak_resident_bytes() / 2**30, 3)


def set_threads(config: FaketConfig) -> None:
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
    for k, entry in enumerate(p.structures):
        if not entry.path.is_file():
            raise FaketInputError(f"phantom.structures[{k}].path: no such file", entry.path)
        density = load_structure(entry.path, p.voxel_size_a, cache=p.cache_dir)
        name = entry.path.name.split(".")[0] or "structure"
        classes.append(ParticleClass(name, density, entry.count, str(entry.path)))
    for kind, count in p.builtin.items():
        density = builtin_particle(kind, p.voxel_size_a)
        classes.append(ParticleClass(kind, density, count, f"builtin:{kind}"))
    return classes


def prepare_specimen(plan: RunPlan, index: int) -> dict[str, float]:
    """Phase 1 for specimen ``index``: labels, noiseless projections, microscope reference.

    Writes ``tilt_angles.tlt`` with an identity ``tilt_angles.xf`` (the simulated
    modalities are aligned by construction) and, with the microscope as reference,
    ``reference.mrc`` with what the microscope applied: ``reference.tlt``, ``.xf``,
    ``.aln``, ``.defocus`` and ``.tilts.json`` (:mod:`faket.io.alignments`).
    Skipped when its ``specimen.json`` holds the current resume key. Returns the
    seconds per stage (empty when skipped).
    """
    from faket._runtime import returning_freed_memory
    from faket.io.alignments import write_xf
    from faket.io.specimen_files import write_specimen
    from faket.io.tilt_stack import write_mrc_in_parts
    from faket.phantom.scene import build_scene
    from faket.pipeline.scene import scene_from_entries
    from faket.projection import project_tilt_series

    config, spec = plan.config, plan.specimens[index]
    marker = spec.folder / "specimen.json"
    if is_done(marker, spec.resume_key):
        return {}
    set_threads(config)
    p, v = config.phantom, plan.voxel_size_a
    timer = StageTimer()
    # Phase 1 gains nothing from kept freed memory and its stages' temporaries differ in
    # size, so kept blocks would only raise their peaks (faket._runtime.returning_freed_memory).
    with timer("phantom"), returning_freed_memory():
        scene = scene_from_entries(
            p.membranes,
            p.membrane_proteins,
            p.filaments,
            p.volume_fraction,
            v,
            cache_dir=p.cache_dir,
        )
        specimen = build_scene(
            particle_classes(config),
            p.shape_zyx,
            v,
            scene,
            slab_voxels=p.slab_voxels,
            n_vesicles=p.vesicles,
            vesicle_radius_a=(10 * p.vesicle_radius_nm[0], 10 * p.vesicle_radius_nm[1]),
            n_fiducials=p.fiducials,
            seed=spec.seed,
        )
        write_specimen(specimen, spec.folder, tomo_name=spec.folder.name)
    volume = torch.from_numpy(specimen.grandmodel).to(torch.device(plan.device))
    n_particles = len(specimen.particles)
    del specimen  # its masks are written; projection and microscope need the volume only
    with timer("project"), returning_freed_memory():
        noiseless = project_tilt_series(volume, plan.tilt_angles)
        write_tilt_angles(plan.tilt_angles, spec.folder / "tilt_angles.tlt")
        # The simulated modalities are aligned by construction: an identity .xf for tools
        # that ask for one (its angles are the sibling tilt_angles.tlt).
        write_xf([(0.0, 0.0)] * len(plan.tilt_angles), spec.folder / "tilt_angles.xf")
        write_mrc_in_parts(noiseless, spec.folder / "noiseless.mrc", voxel_size_a=v)
        del noiseless
    if plan.microscope is not None:
        with timer("microscope"), returning_freed_memory():
            _image_reference(plan, volume, spec.folder / "reference.mrc", seed=spec.seed + 1)
    write_json(
        {
            "resume_key": spec.resume_key,
            "seed": spec.seed,
            "n_particles": n_particles,
            "timings_s": timer.seconds,
            "peak_memory_gib": timer.peak_gib,
        },
        marker,
    )
    return timer.seconds


def _image_reference(plan: RunPlan, volume: torch.Tensor, path: Path, *, seed: int) -> None:
    """Image ``volume`` with the run's microscope into ``path``, a tilt at a time.

    Each tilt is written as it is made (the series is never held whole) and the heap's
    free pages are returned, then its alignment and metadata files are written next to
    it (:mod:`faket.io.alignments`). The microscope displaces the ice in ``volume``
    itself: the caller is done with it.
    """
    from faket._runtime import release_free_memory
    from faket.io.alignments import write_microscope_alignment
    from faket.io.tilt_stack import MrcTiltWriter
    from faket.microscope import simulate_tilts

    assert plan.microscope is not None
    _, ny, nx = volume.shape
    records = []
    shape = (len(plan.tilt_angles), int(ny), int(nx))
    with MrcTiltWriter(path, shape, voxel_size_a=plan.voxel_size_a) as out:
        tilts = simulate_tilts(
            volume, plan.tilt_angles, plan.voxel_size_a, plan.microscope, seed=seed, overwrite=True
        )
        for tilt in tilts:
            out.write(tilt.record.index, tilt.counts[None])
            records.append(dataclasses.asdict(tilt.record))
            release_free_memory()  # the free pages inside the heap, which glibc keeps
    write_microscope_alignment(
        records,
        path,
        image_shape=(int(ny), int(nx)),
        pixel_size_a=plan.voxel_size_a,
        settings=plan.microscope.as_dict(),
    )


def read_reference(path: Path) -> tuple[torch.Tensor, float | None]:
    """Read a user's reference tilt-series stack and check its images.

    Returns
    -------
    data : torch.Tensor
        ``(n_images, ny, nx)`` float32, file order.
    pixel_size_a : float or None
        From the MRC header.

    Raises
    ------
    FaketInputError
        Naming the file: missing, not a 3-D stack, NaN/Inf, tiny or constant images.
    """
    if not Path(path).is_file():
        raise FaketInputError("reference: no such file", path)
    mrc = read_mrc(path, ndim=3)
    data = torch.from_numpy(mrc.data)
    if min(data.shape[1:]) < 2:
        raise FaketInputError(f"images of {tuple(data.shape[1:])} pixels are too small", path)
    constant = first_constant_tilt(data)
    if constant is not None:
        raise FaketInputError(f"tilt {constant} is constant (an empty image)", path)
    return data, mrc.voxel_size_a


def first_constant_tilt(series: Any) -> int | None:
    """Return the index of the first constant image of a ``(n, ny, nx)`` stack, or None."""
    flat = torch.as_tensor(series).reshape(series.shape[0], -1)
    constant = torch.nonzero(flat.amax(1) <= flat.amin(1)).flatten()
    return int(constant[0]) if constant.numel() else None


def _needs_spectra(plan: RunPlan) -> bool:
    """Return whether a noise model of the run is spectral (the spectra are then measured)."""
    return "spectral" in plan.config.noise.models


def estimate_noise(plan: RunPlan) -> list[Any]:
    """Phase 2: the noise statistics of every reference, written to ``noise_stats.json``.

    Microscope source: each reference specimen's counts, against its noiseless
    projection (paired, as the paper did with SHREC) or alone (``noise.method:
    unlabelled``). Files source: each reference put on the run's grid and measured by
    ``noise.method`` (:func:`faket.pipeline.references.prepare_references`), then
    reconstructed.
    """
    from faket.pipeline.references import prepare_references

    if plan.config.reference.source == "files":
        stats = prepare_references(plan)
        _reconstruct_user_references(plan)
    else:
        stats = [_measure_specimen(plan, spec.index) for spec in plan.specimens]
    write_noise_stats(stats, plan.output / "noise_stats.json")
    return stats


def _measure_specimen(plan: RunPlan, index: int) -> Any:
    """Measure the microscope's reference of specimen ``index``."""
    from faket.pipeline.references import estimate_unlabelled

    folder = plan.specimens[index].folder
    if plan.config.noise_method() == "unlabelled":
        reference = torch.from_numpy(read_mrc(folder / "reference.mrc", ndim=3).data)
        m = plan.microscope
        measured = estimate_unlabelled(
            plan,
            reference,
            list(plan.tilt_angles_deg),
            "unlabelled",
            optics=(m.voltage_kv, m.spherical_aberration_mm, m.amplitude_contrast),
            exclude=index,
        )
    else:
        measured = _measure_paired(plan, folder)
    return dataclasses.replace(measured, source=folder.name)


_MEASURE_PART_VALUES = 2**24
"""Pixels of one part of the paired measurement (it holds a few float64 copies)."""


def _measure_paired(plan: RunPlan, folder: Path) -> Any:
    """Measure a microscope reference against its noiseless twin, a part of the tilts at a time.

    Every tilt is measured on its own, so the parts join into the whole series' statistics
    while only a part's float64 copies are held.
    """
    from faket.conventions import tilt_parts
    from faket.io.tilt_stack import MrcTilts
    from faket.noise import concatenate_tilt_stats, estimate_tilt_stats

    reference = MrcTilts(folder / "reference.mrc")
    noiseless = MrcTilts(folder / "noiseless.mrc")
    angles = torch.as_tensor(plan.tilt_angles, dtype=torch.float64)
    if noiseless.shape != reference.shape:  # estimate_tilt_stats would name the part only
        raise FaketInputError(
            f"reference.mrc is {reference.shape} but noiseless.mrc {noiseless.shape}", folder
        )
    parts = [
        estimate_tilt_stats(
            reference[part],
            noiseless[part],
            tilt_angles_deg=angles[part],
            spectra=_needs_spectra(plan),
        )
        for part in tilt_parts(reference.shape, _MEASURE_PART_VALUES)
    ]
    return concatenate_tilt_stats(parts)


def _reconstruct_user_references(plan: RunPlan) -> None:
    """Reconstruct each user reference once into ``references/tomogram_reference_<k>.mrc``.

    From the reference on the run's grid (its images at the run's angles). Redone when
    the reference, its angles or the reconstruction settings change (the sidecar
    ``.json`` holds the run's resume key base).
    """
    from faket.io.tilt_stack import MrcTilts
    from faket.pipeline.references import prepared_path

    folder = plan.output / "references"
    key = f"{plan.config.content_hash()}:{plan.inputs_sha256}"
    for k, ref in enumerate(plan.references):
        target = folder / f"tomogram_reference_{k}.mrc"
        marker = folder / f"tomogram_reference_{k}.json"
        if target.is_file() and is_done(marker, key):
            continue
        reference = MrcTilts(prepared_path(plan.output, k))
        tomogram, size = reconstruct_series(
            plan, reference, plan.tilt_angles_deg, ref.run_pixel_size_a
        )
        write_mrc(tomogram, target, voxel_size_a=size)
        write_json({"resume_key": key, "source": str(ref.tilt_series)}, marker)


def reconstruct_series(
    plan: RunPlan, series: TiltStack, angles: tuple[float, ...], pixel_size_a: float | None
) -> tuple[torch.Tensor, float | None]:
    """Bin and back-project one tilt-series with the run's settings.

    ``series`` is a tensor or tilts read from a file on demand; it is binned a part of
    the tilts at a time (binning works per tilt) into one copy, which is then filtered
    in place, so only the binned series and the tomogram are held.
    """
    from faket.conventions import tilt_parts
    from faket.io.tilt_stack import PART_ELEMENTS
    from faket.reconstruction import bin_tilt_series, reconstruct_tomogram

    r = plan.config.reconstruction
    device = torch.device(plan.device)
    binned, size = None, pixel_size_a
    for part in tilt_parts(series.shape, PART_ELEMENTS):
        binned_part, size = bin_tilt_series(
            series[part].to(device),
            r.binning,
            method=r.binning_method,
            pixel_size_a=pixel_size_a,
        )
        if binned is None:  # our own copy: filtered in place below
            binned = binned_part.new_empty((series.shape[0], *binned_part.shape[1:]))
        binned[part] = binned_part
    assert binned is not None  # a series has at least one tilt
    tomogram = reconstruct_tomogram(
        binned,
        list(angles),
        filter_name=r.filter_name,
        pad=r.filter_name == "ramp",
        thickness=min(plan.thickness, binned.shape[-1]),
        overwrite=True,
    )
    return tomogram, size


@lru_cache(maxsize=2)
def load_style_backbone(name: str, weights: str | None, device: str) -> Any:
    """Return the style backbone on ``device``, loaded once per process."""
    from faket.style import load_backbone

    return load_backbone(name, weights_path=weights).to(torch.device(device))
