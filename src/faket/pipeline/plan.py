"""The run plan: every derived value of a run, resolved once, after every input is checked.

:func:`plan_run` is the pre-flight of ``faket simulate``. It reads and checks every file
the configuration names (angles, structures, reference tilt-series, their angles and
noiseless pairs, the stats file, the backbone weights), every cross-field limit, the
device, the output folder, and the disk and memory the dataset needs; only then does the
run write its first byte. What it resolves (tilt angles, seeds, folders, the style
pairing, pixel sizes, the tomogram thickness, the microscope settings, the resume keys)
goes into one frozen, picklable :class:`RunPlan` that every task reads: no stage derives
any of it again.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faket.config import FaketConfig
from faket.errors import FaketInputError
from faket.pipeline.inputs import input_files, inputs_digest, read_hash_cache
from faket.pipeline.layout import (
    n_specimens,
    specimen_dir,
    specimen_seed,
    style_source,
    written_by_faket,
    written_files,
)
from faket.pipeline.references import ReferenceFile, check_reference
from faket.pipeline.resources import ResourceEstimate, check_resources, estimate_resources

if TYPE_CHECKING:
    from faket.style.series import MemoryBudgetError


@dataclass(frozen=True)
class SpecimenPlan:
    """One specimen of the run: a tomogram, or an extra reference specimen.

    Attributes
    ----------
    index : int
        0-based; tomograms first.
    folder : Path
        ``model_<i>`` (a tomogram) or ``reference_<i>``.
    seed : int
        Its seed, derived from ``run.seed``.
    resume_key : str
        What its markers must hold to be skipped on a re-run.
    style_source : int
        Which reference styles it (tomograms; never its own content), else -1.
    """

    index: int
    folder: Path
    seed: int
    resume_key: str
    style_source: int


@dataclass(frozen=True)
class RunPlan:
    """Everything a run's tasks need, resolved once (see the module docstring).

    Attributes
    ----------
    config : FaketConfig
        The validated configuration.
    output : Path
        Absolute dataset folder.
    tilt_angles_deg : tuple of float
        The run's tilt angles, degrees, in projection order.
    voxel_size_a, tomogram_voxel_size_a : float
        Specimen voxel size and the tomograms' (times the binning), Angstrom.
    thickness : int
        Tomogram depth in binned voxels.
    specimens : tuple of SpecimenPlan
        Tomograms first, then any extra reference specimen.
    references : tuple of ReferenceFile
        The user's references (source: files), else empty.
    microscope : MicroscopeSettings or None
        The reference microscope (source: microscope).
    device : str
        The torch device the tasks use.
    precision : str
        The style transfer's precision, ``run.precision`` resolved for the device.
    inputs_sha256 : str
        Digest of the contents of every input file (part of each resume key).
    resources : ResourceEstimate
        Disk and memory the run needs.
    file_hashes : dict
        The per-file hash cache computed while planning (stored in the dataset).
    """

    config: FaketConfig
    output: Path
    tilt_angles_deg: tuple[float, ...]
    voxel_size_a: float
    tomogram_voxel_size_a: float
    thickness: int
    specimens: tuple[SpecimenPlan, ...]
    references: tuple[ReferenceFile, ...]
    microscope: Any
    device: str
    precision: str
    inputs_sha256: str
    resources: ResourceEstimate
    file_hashes: dict[str, dict[str, object]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def n_tomograms(self) -> int:
        """Number of tomograms (the specimens that are not extra references)."""
        return self.config.run.n_tomograms

    @property
    def tilt_angles(self) -> np.ndarray:
        """The tilt angles as a float64 array, degrees."""
        return np.asarray(self.tilt_angles_deg, dtype=np.float64)


def plan_run(config: FaketConfig, *, check_resources_fit: bool = True) -> RunPlan:
    """Check every input and limit of ``config`` and resolve the run; write nothing.

    Parameters
    ----------
    config : FaketConfig
        A validated configuration.
    check_resources_fit : bool
        Refuse a run whose disk or memory estimate exceeds this machine's.

    Returns
    -------
    RunPlan

    Raises
    ------
    FaketInputError
        One line naming the field or file and the problem, for the first problem found.
    """
    from faket._precision import resolve_precision
    from faket.pipeline.stages import resolve_device

    torch_device = resolve_device(config.run.device)
    device, precision = str(torch_device), resolve_precision(config.run.precision, torch_device)
    output = Path(config.run.output).absolute()
    _check_output_folder(output)
    files = input_files(config)
    _check_inputs_exist(files, output)
    angles = resolve_tilt_angles(config)
    _check_structures(config)
    references = _check_references(config, angles)
    _check_stats_file(config, angles)
    style_bytes = _check_style(config, precision, device, [r.run_shape for r in references])
    cache = read_hash_cache(output)
    digest = inputs_digest(files, cache)
    thickness = config.tomogram_thickness()
    resources = estimate_resources(
        config,
        len(angles),
        thickness,
        style_bytes,
        [(len(angles), *r.run_shape) for r in references],
        [r.shape for r in references],
    )
    if check_resources_fit:
        check_resources(resources, output, already_written_bytes=_written_bytes(output))
    # The resolved device type and precision change the last bits of the outputs.
    base = f"{config.content_hash()}:{digest}:{torch_device_type(device)}:{precision}"
    seeds = [specimen_seed(config, j) for j in range(n_specimens(config))]
    specimens = tuple(
        SpecimenPlan(
            index=j,
            folder=specimen_dir(config, j).absolute(),
            seed=seed,
            resume_key=f"{base}:{seed}",
            style_source=style_source(config, j) if j < config.run.n_tomograms else -1,
        )
        for j, seed in enumerate(seeds)
    )
    v = config.phantom.voxel_size_a
    return RunPlan(
        config=config,
        output=output,
        tilt_angles_deg=tuple(float(a) for a in angles),
        voxel_size_a=v,
        tomogram_voxel_size_a=v * config.reconstruction.binning,
        thickness=thickness,
        specimens=specimens,
        references=references,
        microscope=config.microscope_settings()
        if config.reference.source == "microscope"
        else None,
        device=device,
        precision=precision,
        inputs_sha256=digest,
        resources=resources,
        file_hashes=cache,
    )


def torch_device_type(device: str) -> str:
    """Return ``cpu`` or ``cuda`` for a device name such as ``cuda:1``."""
    return device.split(":")[0]


def resolve_tilt_angles(config: FaketConfig) -> np.ndarray:
    """Return the run's tilt angles in degrees, in projection order.

    The angles file; the first reference's angles, ascending (``projection.angles_from:
    reference``); else min to max in steps.
    """
    p = config.projection
    from faket.io import read_tilt_angles

    if p.angles_file is not None:
        return read_tilt_angles(p.angles_file)
    if p.angles_from == "reference":
        from faket.pipeline.references import reference_angles

        return np.sort(reference_angles(config, 0))
    n = int(np.floor((p.tilt_max_deg - p.tilt_min_deg) / p.tilt_step_deg + 1e-6)) + 1
    return p.tilt_min_deg + p.tilt_step_deg * np.arange(n, dtype=np.float64)


def _check_output_folder(output: Path) -> None:
    """Refuse an output that is a file, or a folder that cannot be created or written."""
    import os

    if output.exists() and not output.is_dir():
        raise FaketInputError("run.output: a file of that name exists, not a folder", output)
    existing = output
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FaketInputError(f"run.output: {existing} is a file, not a folder", output)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FaketInputError(f"run.output: cannot write in {existing} (permission)", output)


def _check_inputs_exist(files: list[tuple[str, Path]], output: Path) -> None:
    """Every named file exists, and none lies where the run writes."""
    for field, path in files:
        if not Path(path).is_file():
            raise FaketInputError(f"{field}: no such file", path)
        if written_by_faket(Path(path), output):
            raise FaketInputError(
                f"{field}: this input lies where faket writes its dataset "
                "(run.output); move it out of the dataset folder",
                path,
            )


def _check_structures(config: FaketConfig) -> None:
    """Load every structure (cached) and check that each class fits the box and slab."""
    from faket.phantom import check_particles_fit
    from faket.pipeline.stages import particle_classes

    p = config.phantom
    check_particles_fit(
        particle_classes(config),
        p.shape_zyx,
        p.voxel_size_a,
        slab_voxels=p.slab_voxels,
        n_vesicles=p.vesicles,
        vesicle_radius_a=(10 * p.vesicle_radius_nm[0], 10 * p.vesicle_radius_nm[1]),
    )


def _check_references(config: FaketConfig, angles: np.ndarray) -> tuple[ReferenceFile, ...]:
    """Read each user reference once and check it, its companions and its tilts' angles."""
    if config.reference.source != "files":
        return ()
    return tuple(
        check_reference(config, k, angles) for k in range(len(config.reference.tilt_series))
    )


def _check_stats_file(config: FaketConfig, angles: np.ndarray) -> None:
    if config.noise_method() != "file" or config.noise.stats_file is None:
        return
    from faket.io import read_noise_stats

    path = config.noise.stats_file
    for s in read_noise_stats(path):
        if s.tilt_angles_deg is None and s.n_tilts != len(angles):
            raise FaketInputError(
                f"noise.stats_file: statistics for {s.n_tilts} tilts without their angles, "
                f"the run projects {len(angles)}",
                path,
            )
        if "spectral" in config.noise.models and s.spectra is None:
            raise FaketInputError(
                "noise.stats_file: has no spectra, which the spectral noise model needs; "
                "estimate them (faket noise estimate --spectra) or give noise.noiseless pairs",
                path,
            )


def _check_style(
    config: FaketConfig, precision: str, device: str, style_shapes: list[tuple[int, int]]
) -> int:
    """Load the backbone (weights checked) and return one tilt's working bytes.

    Loaded on the run's device, so an in-process run reuses it (`load_style_backbone`
    caches it per process) instead of loading it a second time. ``style_shapes``: the
    references' images on the run's grid (the largest sets the style's memory).

    Raises
    ------
    FaketInputError
        Naming style.memory_gib (or style.tile) when not even the smallest tiles fit.
    """
    from faket.pipeline.stages import load_style_backbone
    from faket.style import StyleSettings
    from faket.style.backbones import VGG16_BLOCKS, VGG19_BLOCKS
    from faket.style.series import MemoryBudgetError, plan_bytes, transfer_plan
    from faket.style.series import working_shape as resized

    s = config.style
    load_style_backbone(s.backbone, None if s.weights_path is None else str(s.weights_path), device)
    _, ny, nx = config.phantom.shape_zyx
    sy, sx = max(style_shapes, key=lambda yx: yx[0] * yx[1], default=(ny, nx))
    if s.working_size is not None:
        ny, nx = resized(ny, nx, s.working_size)
        sy, sx = resized(sy, sx, s.working_size, enlarge=False)
    settings = StyleSettings(iterations=s.iterations, step_size=s.step_size)
    backbones = {s.backbone, *(["random"] if s.ablation_models else [])}
    needs = []
    for blocks in {VGG16_BLOCKS if b == "vgg16-hed" else VGG19_BLOCKS for b in backbones}:
        try:  # the planner itself refuses a budget nothing fits
            plan = transfer_plan(
                ny,
                nx,
                precision,
                tile=s.tile,
                memory_budget_bytes=s.memory_bytes,
                style_shape=(sy, sx),
                blocks=blocks,
                settings=settings,
            )
        except MemoryBudgetError as err:
            raise FaketInputError(_memory_advice(err, s.tile, (ny, nx), precision)) from None
        needs.append(
            plan_bytes(
                ny, nx, plan, precision, style_shape=(sy, sx), blocks=blocks, settings=settings
            )
        )
    return max(needs)


def _memory_advice(
    err: MemoryBudgetError, tile: int | None, shape: tuple[int, int], precision: str
) -> str:
    """One line: what the style transfer needs and the setting that would fit."""

    def gib(n: int) -> str:
        return f"{math.ceil(n / 2**30 * 10) / 10:g}"

    what = f"one {shape[0]} x {shape[1]} tilt" + ("" if tile is None else f" in tiles of {tile}")
    need = err.needed_bytes if err.least_bytes is None else err.least_bytes
    line = (
        f"style.memory_gib: {what} needs about {need / 2**30:.2f} GiB in {precision}, more "
        f"than {err.budget_bytes / 2**30:.2g} GiB; "
    )
    if err.fitting_tile is not None:
        return line + f"set style.tile to {err.fitting_tile} or null, or memory_gib to {gib(need)}"
    return line + f"set style.memory_gib to {gib(need)}"


def _written_bytes(output: Path) -> int:
    """Bytes of faket's files already in ``output`` (a resumed run replaces them)."""
    return sum(file.stat().st_size for file in written_files(output))
