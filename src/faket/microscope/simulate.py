"""The reference microscope: electron-counting tilt-series of a grandmodel.

Per tilt ``t`` (image order), exposed at rank ``j`` of the tilt scheme:

1. projected potential ``Vp`` (V Å): the grandmodel minus the ice its particles displace,
   projected with :func:`faket.projection.project_tilt_series` (un-negated, times the
   pixel size), plus the ice fluctuations projected through the periodic slab, plus the
   mean ice ``V_ice t_slab / cos t``;
2. radiation damage: ``Vp`` filtered by the exposure filter of Grant & Grigorieff for the
   exposure ``[j dN, (j + 1) dN]`` (``dN`` = total dose / number of tilts);
3. misalignment: ``Vp`` shifted by a random ``(dy, dx)`` (Fourier shift, periodic); the
   image content moves by ``+dy`` rows and ``+dx`` columns;
4. exit wave ``psi = exp((i - a) sigma (Vp - mean Vp))``, ``a = Q / sqrt(1 - Q^2)``;
5. objective lens: ``psi`` times the wave transfer function (defocus of this tilt,
   astigmatism, Cs, spatial and temporal envelopes), intensity ``|psi_img|^2``; with
   ``defocus_gradient`` the defocus changes across X as the tilted specimen's mid-plane
   does, ``df(u) = df + u tan(t)`` (``u`` in Å from the centre column; the beam travels
   along +Z, and points further along it lie further from the in-focus plane, which is
   above the specimen in underfocus), interpolated between defocus nodes;
6. zero-loss energy filter: intensity times ``exp(-t_slab / (mfp cos t))``;
7. expected counts: intensity times ``dN`` times the pixel area (Å^2);
8. detector: ``ideal`` counts ``Poisson(expected)``; ``counting`` filters as
   :func:`faket.microscope.physics.detector_transfer` says.

The noiseless output is the expected counts after the detector's MTF, i.e. exactly the
mean of the counts, so ``counts - noiseless`` is pure shot noise (white Poisson noise
of variance ``noiseless`` for the ideal detector, coloured by the NTF otherwise).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch

from faket.conventions import MAX_TILT_DEG, TiltAngles
from faket.microscope._lens import image_intensity
from faket.microscope.physics import (
    ctf_aliasing_frequency,
    default_inelastic_mfp_nm,
    detector_transfer,
    exposure_filter,
    frequency_grid,
    interaction_constant,
)
from faket.microscope.schemes import acquisition_order
from faket.microscope.settings import MicroscopeSettings, MicroscopeWarning
from faket.microscope.specimen import (
    displace_ice,
    ice_fluctuations,
    project_slab_columns,
)
from faket.projection import project_tilt_series

_TILTS_PER_PROJECTION = 8


@dataclass(frozen=True)
class TiltRecord:
    """What the microscope applied to one tilt (one row of the sidecar).

    Attributes
    ----------
    index : int
        Image index in the tilt-series (file order).
    angle_deg : float
        Tilt angle, degrees.
    acquisition_rank : int
        When this tilt was exposed (0 = first).
    prior_exposure_e_per_a2 : float
        Exposure before this tilt, e-/Å^2.
    exposure_e_per_a2 : float
        This tilt's exposure, e-/Å^2.
    defocus_um : float
        Applied mean defocus at the centre column ``nx // 2`` (the tilt axis), µm,
        underfocus positive.
    defocus_slope_um_per_px : float
        Change of the defocus per pixel along +X, µm (``tan(t)`` times the pixel size;
        0 without ``defocus_gradient``).
    shift_y_px, shift_x_px : float
        Applied misalignment shift in pixels: the content moved by ``+shift`` along Y/X.
    zero_loss_fraction : float
        ``exp(-t_slab / (mfp cos t))``, the fraction of electrons the filter keeps.
    """

    index: int
    angle_deg: float
    acquisition_rank: int
    prior_exposure_e_per_a2: float
    exposure_e_per_a2: float
    defocus_um: float
    defocus_slope_um_per_px: float
    shift_y_px: float
    shift_x_px: float
    zero_loss_fraction: float


@dataclass(frozen=True)
class MicroscopeResult:
    """A simulated tilt-series and what was applied.

    Attributes
    ----------
    counts : torch.Tensor
        ``(n_tilts, ny, nx)`` recorded electrons per pixel (float; integers for the ideal
        detector), the volume's dtype and device.
    noiseless : torch.Tensor
        ``(n_tilts, ny, nx)`` expected counts: the mean of ``counts``.
    tilts : list of TiltRecord
        One record per image.
    even, odd : torch.Tensor or None
        With ``half_sets``: the counts split in two independent halves, ``even + odd ==
        counts`` (as even and odd frames would give), else None.
    """

    counts: torch.Tensor
    noiseless: torch.Tensor
    tilts: list[TiltRecord]
    even: torch.Tensor | None = None
    odd: torch.Tensor | None = None

    def records(self) -> list[dict[str, float | int]]:
        """Return the tilt records as plain dictionaries (for JSON)."""
        return [asdict(t) for t in self.tilts]


def _check_inputs(volume: torch.Tensor, angles: np.ndarray, pixel_size_a: float) -> None:
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3-D (nz, ny, nx); got shape {tuple(volume.shape)}")
    if not volume.is_floating_point():
        raise ValueError(f"volume must be floating point; got {volume.dtype}")
    if angles.size == 0:
        raise ValueError("at least one tilt angle is needed")
    if not np.all(np.isfinite(angles)) or np.any(np.abs(angles) > MAX_TILT_DEG):
        raise ValueError(f"tilt angles must be finite and within ±{MAX_TILT_DEG:g} degrees")
    if not (math.isfinite(pixel_size_a) and pixel_size_a > 0):
        raise ValueError(f"pixel_size_a must be a positive number of Å, got {pixel_size_a}")


def _warn_if_aliased(
    shape: tuple[int, int], pixel_size_a: float, s: MicroscopeSettings, max_tan: float
) -> None:
    worst_defocus = s.defocus_um + 3 * s.defocus_spread_um + s.astigmatism_um
    if s.defocus_gradient:  # the far edge of the most tilted image
        worst_defocus += max_tan * (shape[1] // 2) * pixel_size_a * 1e-4
    k = ctf_aliasing_frequency(
        min(shape),
        pixel_size_a,
        defocus_um=worst_defocus,
        voltage_kv=s.voltage_kv,
        spherical_aberration_mm=s.spherical_aberration_mm,
    )
    if k is not None:
        warnings.warn(
            MicroscopeWarning(
                f"the CTF aliases above {k:.4f} 1/A ({1 / k:.1f} A; Nyquist "
                f"{0.5 / pixel_size_a:.4f} 1/A): {min(shape)} pixels of {pixel_size_a:g} A "
                f"are too few for {worst_defocus:g} µm defocus; use a larger image or "
                "pixel size, or less defocus"
            ),
            stacklevel=3,
        )


def _fourier_shift(
    shape: tuple[int, int], dy: float, dx: float, like: torch.Tensor
) -> torch.Tensor:
    """Return the phase ramp that moves an image's content by ``(+dy, +dx)`` pixels."""
    fy, fx = frequency_grid(shape, 1.0, like=like)
    phase = -2 * math.pi * (fy.to(torch.float64) * dy + fx.to(torch.float64) * dx)
    return torch.polar(torch.ones_like(phase), phase).to(_complex_dtype(like.dtype))


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def simulate_tilt_series(
    volume_v: torch.Tensor,
    tilt_angles_deg: TiltAngles,
    pixel_size_a: float,
    settings: MicroscopeSettings | None = None,
    *,
    seed: int,
    progress: Callable[[int], None] | None = None,
    half_sets: bool = False,
) -> MicroscopeResult:
    """Simulate the electron-counting tilt-series a microscope records of a grandmodel.

    Parameters
    ----------
    volume_v : torch.Tensor
        ``(nz, ny, nx)`` grandmodel: voxel-averaged electrostatic potential in V (as
        :mod:`faket.phantom` makes it), any device; 0 outside the particles.
    tilt_angles_deg : sequence of float
        ``(n_tilts,)`` tilt angles in degrees, in image order; the exposure order comes
        from ``settings.scheme``.
    pixel_size_a : float
        Voxel and pixel size in Å.
    settings : MicroscopeSettings, optional
        The physics; default ``MicroscopeSettings()``.
    seed : int
        Seed of the ice, the per-tilt defocus and shifts and the shot noise: the same
        seed gives bit-identical results on the same machine and device.
    progress : callable, optional
        Called with 1 after each tilt.
    half_sets : bool, default False
        Also return even and odd half-sets: each detected electron goes to one half with
        probability 1/2 (binomial thinning of the hits before the detector's noise
        transfer, so the halves are independent Poisson images of half the dose). Drawn
        from their own generator: ``counts`` do not change.

    Returns
    -------
    MicroscopeResult
        Counts and noiseless expected counts ``(n_tilts, ny, nx)`` in electrons per
        pixel, volume's dtype and device, and one `TiltRecord` per tilt.

    Raises
    ------
    ValueError
        For a volume that is not 3-D floating point, no or non-finite angles, angles
        beyond ±89°, or a non-positive pixel size.

    Warns
    -----
    MicroscopeWarning
        When the image's Fourier grid cannot sample the CTF up to Nyquist.
    """
    tilts = simulate_tilts(
        volume_v, tilt_angles_deg, pixel_size_a, settings, seed=seed, half_sets=half_sets
    )  # the inputs are checked here
    shape = (len(_angles(tilt_angles_deg)), *volume_v.shape[1:])
    counts, noiseless = volume_v.new_empty(shape), volume_v.new_empty(shape)
    even = volume_v.new_empty(shape) if half_sets else None
    records = []
    for tilt in tilts:
        i = tilt.record.index
        counts[i], noiseless[i] = tilt.counts, tilt.noiseless
        if even is not None and tilt.even is not None:
            even[i] = tilt.even
        records.append(tilt.record)
        if progress is not None:
            progress(1)
    odd = None if even is None else counts - even
    return MicroscopeResult(counts=counts, noiseless=noiseless, tilts=records, even=even, odd=odd)


@dataclass(frozen=True)
class SimulatedTilt:
    """One image of `simulate_tilts`: counts, expected counts, even half, record."""

    counts: torch.Tensor
    noiseless: torch.Tensor
    record: TiltRecord
    even: torch.Tensor | None = None


def _angles(tilt_angles_deg: TiltAngles) -> np.ndarray:
    return np.asarray(
        tilt_angles_deg.detach().cpu()
        if isinstance(tilt_angles_deg, torch.Tensor)
        else tilt_angles_deg,
        dtype=np.float64,
    ).reshape(-1)


def simulate_tilts(
    volume_v: torch.Tensor,
    tilt_angles_deg: TiltAngles,
    pixel_size_a: float,
    settings: MicroscopeSettings | None = None,
    *,
    seed: int,
    half_sets: bool = False,
    overwrite: bool = False,
) -> Iterator[SimulatedTilt]:
    """Yield the images of `simulate_tilt_series` one at a time, in image order.

    The same images as `simulate_tilt_series` with the same arguments (bit for bit),
    without holding the series: a caller writes each tilt as it comes, so memory does
    not grow with the number of tilts. The inputs are checked (and the aliasing warned
    of) when it is called, before the first image is asked for.

    Parameters
    ----------
    volume_v, tilt_angles_deg, pixel_size_a, settings, seed, half_sets
        As `simulate_tilt_series`.
    overwrite : bool, default False
        Displace the ice in ``volume_v`` itself (`displace_ice` with ``out=volume_v``):
        one volume less in memory, and ``volume_v`` is changed. For a caller that is
        done with the grandmodel.
    """
    s = MicroscopeSettings() if settings is None else settings
    angles = _angles(tilt_angles_deg)
    _check_inputs(volume_v, angles, pixel_size_a)
    shape = (int(volume_v.shape[1]), int(volume_v.shape[2]))
    _warn_if_aliased(shape, pixel_size_a, s, float(np.abs(np.tan(np.radians(angles))).max()))
    return _images(volume_v, angles, pixel_size_a, s, seed, half_sets, overwrite)


def _images(
    volume_v: torch.Tensor,
    angles: np.ndarray,
    pixel_size_a: float,
    s: MicroscopeSettings,
    seed: int,
    half_sets: bool,
    overwrite: bool,
) -> Iterator[SimulatedTilt]:
    """Yield the images of `simulate_tilts`, whose inputs are checked."""
    nz, ny, nx = volume_v.shape
    shape = (ny, nx)
    n_tilts = angles.size
    dtype, device = volume_v.dtype, volume_v.device

    draws = np.random.default_rng(seed)
    defocus = s.defocus_um + s.defocus_spread_um * draws.standard_normal(n_tilts)
    defocus = np.maximum(defocus, 1e-3)  # a random draw never crosses focus
    shifts = (s.shift_std_a / pixel_size_a) * draws.standard_normal((n_tilts, 2))
    generator = torch.Generator(device=device).manual_seed(seed)

    slab_a = s.slab_nm * 10.0
    mfp_a = 10.0 * (
        default_inelastic_mfp_nm(s.voltage_kv) if s.inelastic_mfp_nm is None else s.inelastic_mfp_nm
    )
    sigma = interaction_constant(s.voltage_kv)
    absorption = s.amplitude_contrast / math.sqrt(1 - s.amplitude_contrast**2)
    rank = acquisition_order(angles, s.scheme, s.group_size)
    dose_per_tilt = s.dose_total_e_per_a2 / n_tilts

    specimen = displace_ice(
        volume_v, s.ice_potential_v, s.particle_potential_v, out=volume_v if overwrite else None
    )
    columns = None
    n_slab = s.ice_layers(pixel_size_a)
    if n_slab:
        # The field is drawn with its lateral axes swapped, (n_slab, nx, ny): its low-pass
        # is isotropic, so this is the same random field, transposed, and its rows are
        # already the columns `project_slab_columns` takes (no second copy of the slab).
        columns = ice_fluctuations(
            (n_slab, nx, ny),
            pixel_size_a,
            ice_potential_v=s.ice_potential_v,
            structure_factor=s.ice_structure_factor,
            correlation_a=s.ice_correlation_a,
            generator=generator,
            dtype=dtype,
        ).reshape(n_slab * nx, ny)
        slab_shape = (n_slab, ny, nx)
    if s.detector == "counting":
        mtf, ntf = detector_transfer(shape, s.detector_blur_px, like=volume_v)
    halves = torch.Generator(device=device).manual_seed(seed + 1)
    projected = torch.empty(0)
    for i, angle in enumerate(angles.tolist()):
        if i % _TILTS_PER_PROJECTION == 0:  # one pass over the volume per group of tilts
            group = angles[i : i + _TILTS_PER_PROJECTION].tolist()
            projected = project_tilt_series(specimen, group)
        cos_t = math.cos(math.radians(angle))
        vp = -projected[i % _TILTS_PER_PROJECTION] * pixel_size_a
        if columns is not None:
            vp += project_slab_columns(columns, slab_shape, angle) * pixel_size_a
        vp += s.ice_potential_v * slab_a / cos_t
        spectrum = torch.fft.fft2(vp) * _fourier_shift(
            shape, float(shifts[i, 0]), float(shifts[i, 1]), like=vp
        )
        prior = float(rank[i]) * dose_per_tilt
        if s.dose_weighting:
            spectrum *= exposure_filter(
                shape,
                pixel_size_a,
                prior_exposure_e_per_a2=prior,
                exposure_e_per_a2=dose_per_tilt,
                voltage_kv=s.voltage_kv,
                like=vp,
            )
        vp = torch.fft.ifft2(spectrum).real
        phase = sigma * (vp - vp.mean())
        wave = torch.exp(torch.complex(-absorption * phase, phase))
        slope = math.tan(math.radians(angle)) * pixel_size_a * 1e-4 if s.defocus_gradient else 0.0
        image = image_intensity(
            wave, pixel_size_a, s, defocus_um=float(defocus[i]), slope_um_per_px=slope
        )
        zero_loss = math.exp(-slab_a / (mfp_a * cos_t))
        expected = image * (zero_loss * dose_per_tilt * pixel_size_a**2)
        if s.detector == "counting":
            spectrum = torch.fft.fft2(expected)
            pre = torch.fft.ifft2(spectrum * (mtf / ntf)).real.clamp_min(0)
            hits = torch.poisson(pre, generator=generator)
            counts = torch.fft.ifft2(torch.fft.fft2(hits) * ntf).real
            noiseless = torch.fft.ifft2(spectrum * mtf).real
            even = None
            if half_sets:
                half = _thin(hits, halves)
                even = torch.fft.ifft2(torch.fft.fft2(half) * ntf).real
        else:
            counts = torch.poisson(expected, generator=generator)
            noiseless = expected
            even = _thin(counts, halves) if half_sets else None
        record = TiltRecord(
            index=i,
            angle_deg=float(angle),
            acquisition_rank=int(rank[i]),
            prior_exposure_e_per_a2=prior,
            exposure_e_per_a2=dose_per_tilt,
            defocus_um=float(defocus[i]),
            defocus_slope_um_per_px=slope,
            shift_y_px=float(shifts[i, 0]),
            shift_x_px=float(shifts[i, 1]),
            zero_loss_fraction=zero_loss,
        )
        yield SimulatedTilt(counts=counts, noiseless=noiseless, record=record, even=even)


def _thin(hits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Return a binomial half of integer counts: each count kept with probability 1/2."""
    half = torch.full_like(hits, 0.5)
    return torch.binomial(hits.to(torch.float64), half.to(torch.float64), generator=generator).to(
        hits.dtype
    )
