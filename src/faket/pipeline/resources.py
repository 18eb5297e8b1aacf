"""Disk and memory a dataset will need, estimated before anything is written.

The estimates are sums of the arrays each stage holds and writes (float32 volumes and
tilt-series, the 1-byte class mask, the sparse projection and back-projection operators,
the style transfer's working budget), so they scale with the box, the tilt count, the
binning and the number of tomograms exactly as the run does. They were checked against
measured runs (the README's "Datasets" section gives the figures); the memory estimate is
an upper bound within a factor of about 1.5.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from faket.config import FaketConfig
from faket.errors import FaketInputError

_F32 = 4
_MRC_HEADER = 1024
_SMALL_FILES_BYTES = 64 * 1024  # angles, particle lists, classes, markers, provenance
_TILT_METADATA_BYTES = 1024  # per tilt: .tilts.json, .aln, .xf (2), .defocus, .tlt (2)
_PARTICLE_LINE_BYTES = 200  # one particle in particle_locations.txt, particles.star
_PARTICLE_FILES = 3  # and objects.xml (DeepFinder)
_LABEL_BYTES = 1  # class_mask.mrc: int8 class ids (uint16 past 127 classes)
_REPORT_BYTES = 4 * 2**20
_OPERATOR_BYTES_PER_NONZERO = 8  # float32 weight + int32 column index
_NONZEROS_PER_RAY_VOXEL = 2  # bilinear weights along one detector coordinate
_PROCESS_BASE_BYTES = 600 * 2**20  # python, torch, libraries
_BACKBONE_BYTES = 100 * 2**20
_PROJECTION_CHUNK_BYTES = 256 * 2**20
_PHANTOM_VOLUMES = 6
"""Volumes the phantom stage holds at its peak: the potential, two int32 masks, their
written copies and the builder's working volumes. Measured (peak minus the process, in
volumes): 5.4 at 512 x 1024^2 with 4 vesicles, 4.7 at 32 x 3500^2 without."""
_RECONSTRUCT_HALF_SERIES = 3
"""Half-series of the binned series a reconstruction holds, with its filtering chunks."""
_RECONSTRUCT_TOMOGRAMS = 2
"""Tomograms a reconstruction holds: the back-projection and its flipped, cropped copy
(measured 5.1 GiB at 61 x 3500^2 with 32 x 3500^2 tomograms; 5.9 GiB at 512 x 1024^2
before the in-place filter)."""
_PART_BYTES = _F32 * 2**26  # a part of a tilt-series read or written (faket.io.tilt_stack)
_NOISE_PART_BYTES = _F32 * 2**24  # the noise formula's part (faket.noise.generate)
_NOISE_TEMPORARIES = 6  # its working copies of a part (the spectral model's FFTs)
_STYLE_BATCH_COPIES = 8  # initial, content, style, result, their resized and matched copies
_MICROSCOPE_TILT_COPIES = 32  # a group of 8 projections, one tilt's complex waves and images


@dataclass(frozen=True)
class ResourceEstimate:
    """What a run is expected to need.

    Attributes
    ----------
    disk_bytes : int
        Bytes of the files the whole dataset will hold.
    memory_bytes : int
        Peak resident memory of one task (one specimen or one tomogram), in bytes.
    workers : int
        Tasks that run at once on this machine.
    """

    disk_bytes: int
    memory_bytes: int
    workers: int

    def describe(self) -> str:
        """Return a one-line summary, e.g. ``about 1.2 GB on disk, 2.5 GiB per task``."""
        per_task = self.memory_bytes / 2**30
        return (
            f"about {self.disk_bytes / 1e9:.2f} GB on disk, {per_task:.1f} GiB of memory "
            f"per task x {self.workers} worker(s)"
        )


def estimate_resources(
    config: FaketConfig,
    n_tilts: int,
    thickness: int,
    style_bytes_per_tilt: int,
    reference_shapes: list[tuple[int, int, int]],
    reference_file_shapes: list[tuple[int, int, int]] | None = None,
) -> ResourceEstimate:
    """Estimate the disk and memory of a run.

    Parameters
    ----------
    config : FaketConfig
        The run.
    n_tilts : int
        Tilts per tilt-series.
    thickness : int
        Tomogram depth in binned voxels.
    style_bytes_per_tilt : int
        Working memory of the style transfer for one tilt (or tile) at the run's precision.
    reference_shapes : list of (int, int, int)
        Shapes of the user's reference tilt-series on the run's grid (source: files),
        else empty.
    reference_file_shapes : list of (int, int, int), optional
        Their shapes on disk: phase 2 holds one with its companions (noiseless twin or
        half-sets), each read and rescaled.
    """
    nz, ny, nx = config.phantom.shape_zyx
    b = config.reconstruction.binning
    volume = _F32 * nz * ny * nx
    series = _F32 * n_tilts * ny * nx
    tomogram = _F32 * thickness * (ny // b) * (nx // b)
    n_particles = sum(config.phantom.builtin.values()) + sum(
        s.count for s in config.phantom.structures
    )
    microscope = config.reference.source == "microscope"
    extra = len(config.noise.extra_models)
    ablation = len(config.style.ablation_models)  # FAKET_RANDOM: one series, one tomogram
    n_classes = len(config.phantom.builtin) + len(config.phantom.structures) + 2
    label_volume = (_LABEL_BYTES if n_classes <= 127 else 2) * nz * ny * nx
    per_tomogram = (
        2 * (volume + _MRC_HEADER)  # grandmodel, occupancy mask (float32)
        + label_volume
        + _MRC_HEADER
        + (6 if microscope else 5) * (series + _MRC_HEADER)
        + (5 if microscope else 4) * (tomogram + _MRC_HEADER)
        + extra * (3 * series + 2 * tomogram + 5 * _MRC_HEADER)
        + ablation * (series + tomogram + 2 * _MRC_HEADER)
        + _SMALL_FILES_BYTES
        + _TILT_METADATA_BYTES * n_tilts
        + _PARTICLE_FILES * _PARTICLE_LINE_BYTES * n_particles
    )
    n = config.run.n_tomograms
    disk = n * per_tomogram + _REPORT_BYTES
    if microscope and n == 1:  # the extra reference specimen
        disk += 2 * volume + label_volume + 2 * series
    for rn, ry, rx in reference_shapes:  # on the run's grid, and its reconstruction
        disk += _F32 * (rn * ry * rx + thickness * (ry // b) * (rx // b)) + 2 * _MRC_HEADER

    projector = _OPERATOR_BYTES_PER_NONZERO * _NONZEROS_PER_RAY_VOXEL * n_tilts * nz * nx
    # Phase 1 holds one step at a time: the phantom builder's volumes; the grandmodel and
    # its projections; the microscope's specimen (the grandmodel, ice displaced in place),
    # its ice slab and one tilt's images (each tilt is written as it is made).
    phase1 = max(_PHANTOM_VOLUMES * volume, volume + projector + _PROJECTION_CHUNK_BYTES + series)
    if microscope:
        from faket.microscope import MicroscopeSettings

        layers = MicroscopeSettings(**config.reference.microscope).ice_layers(
            config.phantom.voxel_size_a
        )
        ice = _F32 * layers * ny * nx
        imaging = volume + ice + _MICROSCOPE_TILT_COPIES * _F32 * ny * nx
        phase1 = max(phase1, imaging)
    back_projector = (
        _OPERATOR_BYTES_PER_NONZERO * _NONZEROS_PER_RAY_VOXEL * n_tilts * thickness * (nx // b)
    )
    style = max(style_bytes_per_tilt, config.style.memory_bytes)
    backbones = (2 if ablation else 1) * _BACKBONE_BYTES  # the random one is cached too
    # Phase 3 streams: no step holds a tilt-series (each is read from its file and written
    # a part at a time), so its peak is the largest of its steps, whatever the number of
    # modalities: a part of the noiseless series and of the modality with the noise
    # formula's temporaries; the style's budget with its batch; the binned series, the
    # operator and one tomogram.
    tilt = _F32 * ny * nx
    noise_part = max(tilt, _NOISE_PART_BYTES)  # parts are whole tilts
    modalities = (_NOISE_TEMPORARIES + 2) * noise_part
    styling = style + _STYLE_BATCH_COPIES * tilt  # a batch is one tilt where memory is short
    binned = series // b**2
    reconstruct = (
        _RECONSTRUCT_HALF_SERIES * binned // 2
        + back_projector
        + _RECONSTRUCT_TOMOGRAMS * tomogram
        + max(tilt, _PART_BYTES)
    )
    phase3 = max(modalities, styling, reconstruct) + backbones
    companions = 2 if config.reference.even else (1 if config.noise.noiseless else 0)
    phase2 = max(
        (2 * _F32 * (1 + companions) * n * y * x for n, y, x in reference_file_shapes or []),
        default=0,
    )
    memory = _PROCESS_BASE_BYTES + max(phase1, phase2, phase3)
    return ResourceEstimate(disk, memory, min(config.run.workers, n))


def physical_memory_bytes() -> int | None:
    """Return this machine's (or container's) memory in bytes; None when unknown."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    for cgroup in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(cgroup).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            limits.append(int(text))
    return min(limits) if limits else None


def free_disk_bytes(folder: Path) -> int:
    """Return the free bytes of the file system that holds ``folder`` (or its nearest parent)."""
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def check_resources(
    estimate: ResourceEstimate,
    output: Path,
    *,
    already_written_bytes: int = 0,
    memory_bytes: int | None = None,
    free_bytes: int | None = None,
) -> None:
    """Refuse a run that cannot fit this machine's disk or memory.

    Parameters
    ----------
    estimate : ResourceEstimate
        From `estimate_resources`.
    output : Path
        The dataset folder.
    already_written_bytes : int
        Bytes of the dataset's files already there (a resumed run needs less).
    memory_bytes, free_bytes : int, optional
        The machine's memory and free disk; default: measured.

    Raises
    ------
    FaketInputError
        Naming ``run.output`` or ``run.workers`` and the numbers.
    """
    free = free_disk_bytes(output) if free_bytes is None else free_bytes
    needed = estimate.disk_bytes - already_written_bytes
    if needed > free:
        raise FaketInputError(
            f"run.output: the dataset needs about {needed / 1e9:.3g} GB more disk, but only "
            f"{free / 1e9:.3g} GB are free there; lower run.n_tomograms or phantom.shape_zyx, "
            "or use another folder",
            output,
        )
    total = physical_memory_bytes() if memory_bytes is None else memory_bytes
    peak = estimate.memory_bytes * estimate.workers
    if total is not None and peak > total:
        raise FaketInputError(
            f"run.workers: {estimate.workers} task(s) at once need about {peak / 2**30:.3g} GiB "
            f"of memory ({estimate.memory_bytes / 2**30:.3g} GiB each), this machine has "
            f"{total / 2**30:.3g} GiB; lower run.workers, raise reconstruction.binning, set "
            "style.tile, or use a smaller phantom.shape_zyx"
        )
