"""A user's reference tilt-series (``reference.source: files``), checked and put on the run's grid.

A real reference differs from the simulation in three ways that this module settles once,
before anything is written:

- **Tilt scheme.** Its images may be in acquisition order (``0, 3, -3, 6, ...``), cover
  another range or step, or hold more tilts than the run. Tilts are paired with the run's
  by angle, never by position (:func:`match_tilts`): every run angle needs a reference
  image within ``reference.angle_tolerance_deg``, else the error names both the reference
  and where the run's angles come from. The statistics are measured on every image at its
  own angle and fitted over the angle (:mod:`faket.noise.aggregate`).
- **Pixel size.** From ``reference.pixel_size_a`` or the MRC header, checked for a
  plausible value; the images are Fourier-rescaled (``torch-fourier-rescale``: the DFT is
  cropped or padded, any factor) to the phantom's voxel size. A rescaled image's side is
  rounded to whole pixels, so its pixel size can differ from the target by up to half a
  pixel over the image (0.1 % at 500 px); :attr:`ReferenceFile.run_pixel_size_a` holds it.
- **Detector.** Any size and aspect; only the images' pixel size changes.

Phase 2 writes ``references/reference_<k>.mrc``: the rescaled images at the run's angles,
in the run's order, which styles FAKET, is reconstructed and is the likeness' reference.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from faket.config import FaketConfig
from faket.errors import FaketInputError

if TYPE_CHECKING:
    from faket.noise import TiltStats
    from faket.pipeline.plan import RunPlan

MIN_PIXEL_SIZE_A = 0.3
MAX_PIXEL_SIZE_A = 50.0
"""Plausible pixel sizes of a cryo-ET tilt-series, Angstrom (others are header mistakes)."""


@dataclass(frozen=True)
class ReferenceFile:
    """A user's reference tilt-series, checked.

    Attributes
    ----------
    tilt_series, angles : Path
        The MRC stack and its metadata (an angles file, ``.mdoc``, ``.aln``, Warp
        ``.xml``, RELION ``.star``, or a CryoET Data Portal folder).
    noiseless, even, odd : Path or None
        Its noiseless twin (paired statistics) and half-sets (even-odd), when given.
    shape : tuple of int
        ``(n_images, ny, nx)`` on disk.
    tilt_angles_deg : tuple of float
        Its images' angles, file order.
    pixel_size_a : float
        Its own pixel size (setting or header), Angstrom.
    run_pixel_size_a : float
        Its pixel size once rescaled to the run's grid.
    run_shape : tuple of int
        ``(ny, nx)`` once rescaled.
    run_tilts : tuple of int
        For each run tilt, the index of the image paired with it.
    used : tuple of int
        The images measured and matched: all but those the metadata marks excluded.
    acquisition : str
        Where the acquisition order comes from (the metadata, or assumed dose-symmetric).
    acquisition_order : tuple of int
        Exposure rank of each image (0 = first), file order.
    """

    tilt_series: Path
    angles: Path
    noiseless: Path | None
    even: Path | None
    odd: Path | None
    shape: tuple[int, int, int]
    tilt_angles_deg: tuple[float, ...]
    pixel_size_a: float
    run_pixel_size_a: float
    run_shape: tuple[int, int]
    run_tilts: tuple[int, ...]
    used: tuple[int, ...] = ()
    acquisition: str = ""
    acquisition_order: tuple[int, ...] = ()

    @property
    def used_angles_deg(self) -> list[float]:
        """The angles of the images used, file order."""
        return [self.tilt_angles_deg[i] for i in self.used]


METADATA_SIBLINGS = (".mdoc", ".aln", ".xml", ".tlt", ".rawtlt")
"""Metadata looked for next to a stack ``ts.mrc`` when ``reference.angles`` is empty:
``ts.mrc.mdoc`` (SerialEM's name), then ``ts`` + each suffix, in this order."""

_FOLDER_METADATA_BYTES = 16 * 2**20
_METADATA_AS_SERIES = (".mdoc", ".star", ".aln", ".xml")
"""Metadata a tilt_series entry may be (with ``angles`` empty): the stack it names is read."""


def reference_sources(config: FaketConfig, k: int) -> tuple[Path, Path]:
    """Return reference ``k``'s stack and its metadata file or Data Portal folder.

    ``reference.angles[k]`` when given; else, for a Data Portal folder or a metadata
    file (``.mdoc``, ``.star``, ``.aln``, ``.xml``), the stack it names; else the first
    of :data:`METADATA_SIBLINGS` next to the stack.
    """
    from faket.io import read_tilt_series_info

    ref = config.reference
    stack = Path(ref.tilt_series[k])
    if ref.angles:
        return stack, Path(ref.angles[k])
    if not stack.exists():
        raise FaketInputError(f"reference.tilt_series[{k}]: no such file or folder", stack)
    if stack.is_dir() or stack.suffix.lower() in _METADATA_AS_SERIES:
        info = read_tilt_series_info(stack)
        found = info.tilt_series
        if found is None or not found.is_file():
            per_image = " (its images are separate files)" if info.images else ""
            raise FaketInputError(
                f"reference.tilt_series: this metadata names no tilt-series stack that "
                f"exists{per_image}; give the stack, with this as reference.angles",
                stack,
            )
        return found, stack
    candidates = [stack.with_name(stack.name + ".mdoc")]
    candidates += [stack.with_suffix(suffix) for suffix in METADATA_SIBLINGS]
    for candidate in candidates:
        if candidate.is_file():
            return stack, candidate
    raise FaketInputError(
        "reference.angles is empty and no .mdoc, .aln, .xml, .tlt or .rawtlt of this name "
        "lies next to it; set reference.angles",
        stack,
    )


def reference_angles(config: FaketConfig, k: int) -> np.ndarray:
    """Return the angles of reference ``k``'s images that are used (not excluded), file order."""
    from faket.io import read_tilt_series_info

    info = read_tilt_series_info(reference_sources(config, k)[1])
    kept = np.ones(info.n_images, bool) if info.excluded is None else ~info.excluded
    return np.asarray(info.angles_deg[kept], dtype=np.float64)


def metadata_files(metadata: Path) -> list[Path]:
    """Return the files a metadata input stands for (resume keys hash them).

    A file is itself (an ``.xf`` with its sibling angles); a Data Portal folder is every
    file under it of at most 16 MiB (its JSON and alignment files, not its images).
    """
    if metadata.is_dir():
        return sorted(
            f
            for f in metadata.rglob("*")
            if f.is_file() and f.stat().st_size <= _FOLDER_METADATA_BYTES
        )
    if metadata.suffix == ".xf":
        siblings = [metadata.with_suffix(s) for s in (".tlt", ".rawtlt")]
        return [metadata, *[f for f in siblings if f.is_file()][:1]]
    return [metadata]


def match_tilts(
    run_angles: np.ndarray,
    reference_angles: np.ndarray,
    tolerance_deg: float,
    *,
    reference: Path,
    run_source: str,
) -> tuple[int, ...]:
    """Return, for each run angle, the index of the reference image nearest in angle.

    Raises
    ------
    FaketInputError
        If a run angle has no reference image within ``tolerance_deg``, or two run angles
        would share one image; the message names the reference and ``run_source``.
    """
    ref = np.asarray(reference_angles, dtype=np.float64)
    chosen = []
    for angle in np.asarray(run_angles, dtype=np.float64):
        j = int(np.argmin(np.abs(ref - angle)))
        if abs(ref[j] - angle) > tolerance_deg:
            raise FaketInputError(
                f"no tilt within {tolerance_deg:g} deg of the run's {angle:g} deg (from "
                f"{run_source}; nearest here {ref[j]:g} deg); set projection.angles_from: "
                "reference, or angles within reference.angle_tolerance_deg",
                reference,
            )
        chosen.append(j)
    if len(set(chosen)) != len(chosen):
        raise FaketInputError(
            f"two of the run's angles (from {run_source}) pair with one image; its tilts are "
            "coarser than the run's: lower reference.angle_tolerance_deg or adopt its angles",
            reference,
        )
    return tuple(chosen)


def run_angle_source(config: FaketConfig) -> str:
    """Return where the run's angles come from, for messages."""
    p = config.projection
    if p.angles_from == "reference":
        return f"reference {config.reference.tilt_series[0]}"
    if p.angles_file is not None:
        return str(p.angles_file)
    return f"projection {p.tilt_min_deg:g}..{p.tilt_max_deg:g} step {p.tilt_step_deg:g}"


def reference_pixel_size(
    config: FaketConfig,
    k: int,
    header_a: float | None,
    metadata_a: float | None = None,
    metadata: Path | None = None,
) -> float:
    """Return reference ``k``'s pixel size: the setting, else its header's, else its metadata's.

    Header and metadata that disagree by more than 1 % are an error (one of them is
    wrong, and the rescaling would follow it silently); so is a missing or implausible
    size.
    """
    given = config.reference.pixel_size_a
    path = config.reference.tilt_series[k]
    if given:
        size, where = given[k if len(given) > 1 else 0], "reference.pixel_size_a"
    elif (
        header_a is not None
        and metadata_a is not None
        and not math.isclose(header_a, metadata_a, rel_tol=0.01)
    ):
        raise FaketInputError(
            f"the MRC header says {header_a:g} A per pixel, {metadata} {metadata_a:g} A; "
            "set reference.pixel_size_a",
            path,
        )
    elif header_a is not None:
        size, where = header_a, "the MRC header"
    elif metadata_a is not None:
        size, where = metadata_a, str(metadata)
    else:
        raise FaketInputError(
            "no pixel size in the MRC header or its metadata; set reference.pixel_size_a "
            "(Angstrom)",
            path,
        )
    if not MIN_PIXEL_SIZE_A <= size <= MAX_PIXEL_SIZE_A:
        raise FaketInputError(
            f"pixel size {size:g} A from {where} is not a tilt-series' "
            f"({MIN_PIXEL_SIZE_A:g}-{MAX_PIXEL_SIZE_A:g} A); set reference.pixel_size_a",
            path,
        )
    return float(size)


def rescaled_shape(ny: int, nx: int, pixel_size_a: float, target_a: float) -> tuple[int, int]:
    """Return the image size after Fourier rescaling from ``pixel_size_a`` to ``target_a``."""
    if math.isclose(pixel_size_a, target_a, rel_tol=1e-6):
        return ny, nx
    return max(1, round(ny * pixel_size_a / target_a)), max(1, round(nx * pixel_size_a / target_a))


def rescale_series(
    series: torch.Tensor, pixel_size_a: float, target_a: float
) -> tuple[torch.Tensor, float]:
    """Fourier-rescale each image of ``(n, ny, nx)`` to ``target_a``; one tilt at a time.

    Returns the rescaled float32 stack and its pixel size along X.
    """
    from torch_fourier_rescale import fourier_rescale_2d

    ny, nx = series.shape[-2:]
    shape = rescaled_shape(ny, nx, pixel_size_a, target_a)
    if shape == (ny, nx):
        return series, pixel_size_a
    out = torch.empty((series.shape[0], *shape), dtype=torch.float32, device=series.device)
    for i, image in enumerate(series):
        out[i] = fourier_rescale_2d(image.to(torch.float64), target_shape=shape)[0]
    return out, pixel_size_a * nx / shape[1]


def check_reference(config: FaketConfig, k: int, run_angles: np.ndarray) -> ReferenceFile:
    """Read reference ``k``, its metadata and companions once and check them against the run."""
    from faket.io import read_tilt_series_info
    from faket.pipeline.stages import read_reference

    ref, noise = config.reference, config.noise
    path, metadata = reference_sources(config, k)
    data, header_a = read_reference(path)
    shape = tuple(int(n) for n in data.shape)
    info = read_tilt_series_info(metadata, n_images=shape[0])
    used = tuple(i for i in range(shape[0]) if info.excluded is None or not info.excluded[i])
    chosen = match_tilts(
        run_angles,
        info.angles_deg[list(used)],
        ref.angle_tolerance_deg,
        reference=path,
        run_source=run_angle_source(config),
    )
    pixel_size = reference_pixel_size(config, k, header_a, info.pixel_size_a, metadata)
    run_shape = rescaled_shape(shape[1], shape[2], pixel_size, config.phantom.voxel_size_a)
    companions = {
        "noise.noiseless": noise.noiseless[k] if noise.noiseless else None,
        "reference.even": ref.even[k] if ref.even else None,
        "reference.odd": ref.odd[k] if ref.odd else None,
    }
    for field, other in companions.items():
        if other is not None:
            check_same_stack(field, other, path, shape)
    del data
    order, acquisition = _acquisition(info, metadata)
    return ReferenceFile(
        tilt_series=Path(path).absolute(),
        angles=Path(metadata).absolute(),
        noiseless=_absolute(companions["noise.noiseless"]),
        even=_absolute(companions["reference.even"]),
        odd=_absolute(companions["reference.odd"]),
        shape=shape,  # type: ignore[arg-type]
        tilt_angles_deg=tuple(float(a) for a in info.angles_deg),
        pixel_size_a=pixel_size,
        run_pixel_size_a=pixel_size * shape[2] / run_shape[1],
        run_shape=run_shape,
        run_tilts=tuple(used[j] for j in chosen),
        used=used,
        acquisition=acquisition,
        acquisition_order=order,
    )


def _acquisition(info: Any, metadata: Path) -> tuple[tuple[int, ...], str]:
    """Return the images' exposure ranks and where they come from."""
    from faket.io.tilt_series_files import assume_dose_symmetric_order

    if info.acquisition_order is not None:
        return tuple(int(i) for i in info.acquisition_order), f"from {metadata.name}"
    order = assume_dose_symmetric_order(info.angles_deg)
    return tuple(int(i) for i in order), "assumed dose-symmetric (the metadata gives no order)"


def _absolute(path: Path | None) -> Path | None:
    return None if path is None else Path(path).absolute()


def check_same_stack(field: str, path: Path, reference: Path, shape: tuple[int, ...]) -> None:
    """Check a companion of a reference (noiseless twin, half-set): same shape, no blank."""
    from faket.io import read_mrc
    from faket.pipeline.stages import first_constant_tilt

    data = read_mrc(path, ndim=3).data
    if data.shape != shape:
        raise FaketInputError(
            f"{field}: shape {data.shape} differs from its reference {reference} {shape}", path
        )
    constant = first_constant_tilt(torch.from_numpy(data))
    if constant is not None:
        raise FaketInputError(f"{field}: tilt {constant} is constant (an empty image)", path)


def prepared_path(output: Path, k: int) -> Path:
    """Return reference ``k`` on the run's grid: ``references/reference_<k>.mrc``."""
    return output / "references" / f"reference_{k}.mrc"


def _on_run_grid(path: Path, ref: ReferenceFile, voxel_size_a: float) -> torch.Tensor:
    """Read a stack of ``ref``'s shape and rescale it to the run's pixel size (file order)."""
    from faket.io import read_mrc

    data = torch.from_numpy(read_mrc(path, ndim=3).data)
    return rescale_series(data, ref.pixel_size_a, voxel_size_a)[0]


def prepare_references(plan: RunPlan) -> list[TiltStats]:
    """Phase 2 (files source): put every reference on the run's grid and measure it.

    Writes ``references/reference_<k>.mrc`` (the images paired with the run's angles, in
    the run's order, at the run's pixel size) and returns each reference's statistics,
    measured on all its images at their own angles by the run's noise method (``file``:
    the stats file's, as they are).
    """
    from faket.io import read_noise_stats, write_mrc

    method = plan.config.noise_method()
    power = None
    if method in ("unlabelled", "even-odd"):  # the same for every reference: read once
        power = noiseless_power(plan.specimens[0].folder / "noiseless.mrc")
    stats = []
    for k, ref in enumerate(plan.references):
        full = _on_run_grid(ref.tilt_series, ref, plan.voxel_size_a)  # file order
        target = prepared_path(plan.output, k)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_mrc(full[list(ref.run_tilts)], target, voxel_size_a=ref.run_pixel_size_a)
        if method != "file":
            stats.append(_measure(plan, ref, full, power))
    if method == "file":
        assert plan.config.noise.stats_file is not None  # the config requires it
        return read_noise_stats(plan.config.noise.stats_file)
    return stats


def _measure(
    plan: RunPlan,
    ref: ReferenceFile,
    full: torch.Tensor,
    power: tuple[torch.Tensor, torch.Tensor] | None,
) -> TiltStats:
    """Measure one reference by the run's method, every image at its own angle."""
    from faket.noise import estimate_tilt_stats

    method, v = plan.config.noise_method(), plan.voxel_size_a
    spectra = "spectral" in plan.config.noise.models
    angles, used = ref.used_angles_deg, list(ref.used)
    full = full[used]
    if method == "paired":
        assert ref.noiseless is not None  # the config requires it
        noiseless = _on_run_grid(ref.noiseless, ref, v)[used]
        stats = estimate_tilt_stats(full, noiseless, tilt_angles_deg=angles, spectra=spectra)
    else:
        even = odd = None
        if method == "even-odd":
            assert ref.even is not None and ref.odd is not None  # the config requires them
            even = _on_run_grid(ref.even, ref, v)[used]
            odd = _on_run_grid(ref.odd, ref, v)[used]
        r = plan.config.reference
        stats = estimate_unlabelled(
            plan,
            full,
            angles,
            method,
            optics=(r.voltage_kv, r.spherical_aberration_mm, r.amplitude_contrast),
            even=even,
            odd=odd,
            power_of_run=power,
        )
    return dataclasses.replace(stats, source=str(ref.tilt_series))


def noiseless_power(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the per-tilt noiseless power spectrum of a run's projections (one file)."""
    from faket.io import read_mrc
    from faket.noise import noiseless_power_spectrum

    noiseless = torch.from_numpy(read_mrc(path, ndim=3).data)
    return noiseless_power_spectrum(noiseless, per_tilt=True)


def estimate_unlabelled(
    plan: RunPlan,
    reference: torch.Tensor,
    angles: list[float],
    method: str,
    *,
    optics: tuple[float, float, float],
    exclude: int | None = None,
    even: torch.Tensor | None = None,
    odd: torch.Tensor | None = None,
    power_of_run: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> TiltStats:
    """Measure a reference without its noiseless twin (unlabelled or even-odd).

    The noiseless power spectrum the CTF fit needs is the run's own: the noiseless
    projections of a tomogram (not ``exclude``, the reference's own specimen, when the
    microscope is the source), each reference image taking the run tilt nearest in
    angle (the path through the slab, so the spectrum, changes with the angle);
    ``power_of_run`` when the caller has read it already (:func:`noiseless_power`).
    """
    from faket.noise import estimate_reference_stats

    if power_of_run is None:
        j = 0 if exclude is None else (exclude + 1) % len(plan.specimens)
        power_of_run = noiseless_power(plan.specimens[j].folder / "noiseless.mrc")
    frequency, power = power_of_run
    nearest = np.abs(np.subtract.outer(np.asarray(angles), plan.tilt_angles)).argmin(axis=1)
    voltage, cs, amplitude = optics
    return estimate_reference_stats(
        reference,
        method="even-odd" if method == "even-odd" else "unlabelled",
        pixel_size_a=plan.voxel_size_a,
        tilt_angles_deg=angles,
        even=even,
        odd=odd,
        spectra="spectral" in plan.config.noise.models,
        noiseless_power=(frequency, power[torch.from_numpy(nearest)]),
        voltage_kv=voltage,
        spherical_aberration_mm=cs,
        amplitude_contrast=amplitude,
    )
