"""Electron-optical formulas of the reference microscope, over torch tensors.

Constants are CODATA 2018 (``scipy.constants``). Frequencies are in cycles/Å unless
the name says ``_px`` (cycles/pixel).

- Wavelength (relativistic): ``lambda = h / sqrt(2 m0 e U (1 + e U / (2 m0 c^2)))``.
- Interaction constant (relativistic, Kirkland 2020 eq. 5.6):
  ``sigma = 2 pi m e lambda / h^2 = (2 pi / (lambda U)) (m0 c^2 + e U) / (2 m0 c^2 + e U)``
  in rad / (V Å) (0.000653 at 300 kV); the exit wave's phase is ``sigma`` times the
  projected potential in V Å.
- Wave aberration: torch-ctf's ``exp(-i chi)`` with ``-chi = pi lambda df k^2 -
  pi/2 Cs lambda^3 k^4`` (underfocus ``df`` positive). Propagating the exit wave
  ``exp((i - a) sigma Vp)`` through it gives, to first order in ``sigma Vp``, the image
  contrast ``-2 sigma Vp_hat(k) sin(-chi + w) / cos(w)``, ``w = asin(Q)``: exactly
  torch-ctf's real CTF (up to ``-2 sigma / cos(w)``), negative at low frequency, so in
  underfocus dense matter is dark.
- Envelopes (Frank 1973; Wade 1992): spatial
  ``exp(-(pi alpha)^2 (df k - Cs lambda^2 k^3)^2)``, temporal
  ``exp(-(pi lambda delta k^2)^2 / 2)`` with focus spread ``delta = Cc dE / U``
  (lens-current instability neglected). Both multiply the scattered wave.
- Damage (Grant & Grigorieff 2015, eLife 4:e06980): critical exposure
  ``Nc(k) = 0.245 k^-1.665 + 2.81`` e-/Å^2 at 300 kV (times 0.8 at 200 kV, linear in
  between and clipped to [0.5, 1.2] outside); the specimen's amplitude at frequency ``k``
  after exposure ``N`` is ``exp(-N / (2 Nc(k)))``, averaged over each tilt's exposure.
"""

from __future__ import annotations

import math

import torch
from scipy import constants

_H = constants.Planck
_C = constants.speed_of_light
_M0 = constants.electron_mass
_E = constants.elementary_charge
_REST_ENERGY_EV = _M0 * _C**2 / _E  # 510998.95 eV

_NC_A = 0.245
_NC_B = -1.665
_NC_C = 2.81

INELASTIC_MFP_300KV_NM = 395.0
"""Inelastic mean free path of vitreous ice at 300 kV, nm (Rice et al. 2018)."""


def electron_wavelength_a(voltage_kv: float) -> float:
    """Return the relativistic electron wavelength in Å (0.019687 Å at 300 kV)."""
    u = voltage_kv * 1e3
    return 1e10 * _H / math.sqrt(2 * _M0 * _E * u * (1 + u / (2 * _REST_ENERGY_EV)))


def interaction_constant(voltage_kv: float) -> float:
    """Return the relativistic interaction constant sigma in rad / (V Å).

    ``sigma = (2 pi / (lambda U)) (m0 c^2 + e U) / (2 m0 c^2 + e U)`` with ``lambda`` in Å
    and ``U`` in V (Kirkland, Advanced Computing in Electron Microscopy, 2020).
    """
    u = voltage_kv * 1e3
    ratio = (_REST_ENERGY_EV + u) / (2 * _REST_ENERGY_EV + u)
    return 2 * math.pi / (electron_wavelength_a(voltage_kv) * u) * ratio


def relativistic_beta_squared(voltage_kv: float) -> float:
    """Return ``(v / c)^2`` of an electron accelerated through ``voltage_kv``."""
    gamma = 1 + voltage_kv * 1e3 / _REST_ENERGY_EV
    return 1 - 1 / gamma**2


def default_inelastic_mfp_nm(voltage_kv: float) -> float:
    """Return 395 nm at 300 kV scaled by ``beta^2`` to ``voltage_kv`` (ice, zero-loss)."""
    return (
        INELASTIC_MFP_300KV_NM
        * relativistic_beta_squared(voltage_kv)
        / (relativistic_beta_squared(300.0))
    )


def frequency_grid(
    shape: tuple[int, int], pixel_size_a: float, *, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the full-FFT frequencies ``(ky, kx)`` in cycles/Å, each ``(ny, nx)``."""
    ny, nx = shape
    dtype = like.real.dtype if like.is_complex() else like.dtype
    ky = torch.fft.fftfreq(ny, d=pixel_size_a, dtype=dtype, device=like.device)
    kx = torch.fft.fftfreq(nx, d=pixel_size_a, dtype=dtype, device=like.device)
    return ky[:, None].expand(ny, nx), kx[None, :].expand(ny, nx)


def wave_transfer(
    shape: tuple[int, int],
    pixel_size_a: float,
    *,
    defocus_um: float,
    astigmatism_um: float,
    astigmatism_angle_deg: float,
    voltage_kv: float,
    spherical_aberration_mm: float,
    illumination_semi_angle_mrad: float,
    chromatic_aberration_mm: float,
    energy_spread_ev: float,
    like: torch.Tensor,
) -> torch.Tensor:
    """Return the objective lens' wave transfer function with its envelopes.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` image shape in pixels (full FFT layout, no shift).
    pixel_size_a : float
        Pixel size in Å.
    defocus_um, astigmatism_um, astigmatism_angle_deg : float
        Mean defocus (underfocus positive), half the defocus difference (>= 0) and the
        angle of ``defocus_u`` from Y (torch-ctf conventions).
    voltage_kv, spherical_aberration_mm : float
        Acceleration voltage (kV) and Cs (mm).
    illumination_semi_angle_mrad, chromatic_aberration_mm, energy_spread_ev : float
        Envelope parameters (see the module docstring).
    like : torch.Tensor
        A tensor whose device (and real dtype) the result follows.

    Returns
    -------
    torch.Tensor
        ``(ny, nx)`` complex: ``E_s(k) E_t(k) exp(-i chi(k))`` (1 at ``k = 0``).
    """
    import torch_ctf

    real_dtype = like.real.dtype if like.is_complex() else like.dtype
    aberration = torch_ctf.calculate_ctf_2d(
        defocus=torch.tensor(defocus_um, device=like.device),
        astigmatism=astigmatism_um,
        astigmatism_angle=astigmatism_angle_deg,
        voltage=voltage_kv,
        spherical_aberration=spherical_aberration_mm,
        amplitude_contrast=0.0,
        phase_shift=0.0,
        pixel_size=pixel_size_a,
        image_shape=shape,
        rfft=False,
        fftshift=False,
        return_complex_ctf=True,
    )
    ky, kx = frequency_grid(shape, pixel_size_a, like=like.real if like.is_complex() else like)
    k2 = (ky.square() + kx.square()).to(torch.float64)
    k = k2.sqrt()
    wavelength = electron_wavelength_a(voltage_kv)
    spatial = spatial_envelope(
        k,
        defocus_um=defocus_um,
        voltage_kv=voltage_kv,
        spherical_aberration_mm=spherical_aberration_mm,
        illumination_semi_angle_mrad=illumination_semi_angle_mrad,
    )
    focus_spread_a = chromatic_aberration_mm * 1e7 * energy_spread_ev / (voltage_kv * 1e3)
    temporal = torch.exp(-0.5 * (math.pi * wavelength * focus_spread_a * k2) ** 2)
    envelope = (spatial * temporal).to(real_dtype)
    complex_dtype = torch.complex128 if real_dtype == torch.float64 else torch.complex64
    return aberration.to(device=like.device, dtype=complex_dtype) * envelope


def spatial_envelope(
    k: torch.Tensor,
    *,
    defocus_um: float,
    voltage_kv: float,
    spherical_aberration_mm: float,
    illumination_semi_angle_mrad: float,
) -> torch.Tensor:
    """Return the spatial-coherence envelope ``exp(-(pi alpha)^2 (df k - Cs lambda^2 k^3)^2)``.

    Parameters
    ----------
    k : torch.Tensor
        Spatial frequencies in cycles/Å (any shape, real); the result has its dtype.
    defocus_um, voltage_kv, spherical_aberration_mm, illumination_semi_angle_mrad : float
        Defocus (underfocus positive), voltage, Cs and the illumination semi-angle.
    """
    wavelength = electron_wavelength_a(voltage_kv)
    cs_a = spherical_aberration_mm * 1e7
    alpha = illumination_semi_angle_mrad * 1e-3
    gradient = defocus_um * 1e4 * k - cs_a * wavelength**2 * k**3
    return torch.exp(-((math.pi * alpha) ** 2) * gradient.square())


def critical_exposure(k: torch.Tensor, voltage_kv: float) -> torch.Tensor:
    """Return Grant & Grigorieff's critical exposure ``Nc(k)`` in e-/Å^2.

    Parameters
    ----------
    k : torch.Tensor
        Spatial frequencies in cycles/Å (any shape; 0 gives infinity).
    voltage_kv : float
        Acceleration voltage; ``Nc`` scales by 0.8 at 200 kV (linear in the voltage).

    Returns
    -------
    torch.Tensor
        ``Nc(k) = scale (0.245 k^-1.665 + 2.81)``, same shape, dtype and device as ``k``.
    """
    scale = min(max(0.8 + 0.2 * (voltage_kv - 200.0) / 100.0, 0.5), 1.2)
    k_safe = k.clamp_min(torch.finfo(k.dtype).tiny ** 0.5)
    return scale * (_NC_A * k_safe.pow(_NC_B) + _NC_C)


def exposure_filter(
    shape: tuple[int, int],
    pixel_size_a: float,
    *,
    prior_exposure_e_per_a2: float,
    exposure_e_per_a2: float,
    voltage_kv: float,
    like: torch.Tensor,
) -> torch.Tensor:
    """Return the damage filter of one tilt: ``exp(-N / (2 Nc(k)))`` averaged over its exposure.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` image shape (full FFT layout).
    pixel_size_a : float
        Pixel size in Å.
    prior_exposure_e_per_a2 : float
        Exposure the specimen received before this tilt, e-/Å^2.
    exposure_e_per_a2 : float
        This tilt's exposure, e-/Å^2 (> 0).
    voltage_kv : float
        Acceleration voltage in kV.
    like : torch.Tensor
        Real tensor whose dtype and device the result follows.

    Returns
    -------
    torch.Tensor
        ``(ny, nx)`` real filter in (0, 1], 1 at ``k = 0``:
        ``(2 Nc / dN) (exp(-N0 / 2Nc) - exp(-(N0 + dN) / 2Nc))``.
    """
    ky, kx = frequency_grid(shape, pixel_size_a, like=like)
    k = (ky.to(torch.float64).square() + kx.to(torch.float64).square()).sqrt()
    two_nc = 2 * critical_exposure(k, voltage_kv)
    n0, dn = prior_exposure_e_per_a2, exposure_e_per_a2
    # (exp(-n0/a) - exp(-(n0+dn)/a)) * a / dn, written with expm1 for accuracy at large Nc.
    damped = torch.exp(-n0 / two_nc) * (-torch.expm1(-dn / two_nc)) * two_nc / dn
    return damped.to(like.dtype)


def detector_transfer(
    shape: tuple[int, int], blur_px: float, *, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the counting detector's signal (MTF) and noise (NTF) transfer functions.

    A simple documented model in the form of Vulović et al. 2013 (J. Struct. Biol.
    183:19): expected counts are filtered by ``MTF / NTF`` before Poisson counting and
    the counts by ``NTF`` after, so the signal sees the MTF, the shot noise the NTF and
    ``DQE(f) = MTF(f)^2 / NTF(f)^2``. Here ``NTF(f) = sinc(fy) sinc(fx)`` (the pixel
    aperture; f in cycles/pixel, ``sinc(0.5) = 0.637`` at Nyquist) and
    ``MTF = NTF exp(-2 pi^2 blur^2 f^2)`` (a Gaussian event-localisation error), so
    ``DQE(f) = exp(-4 pi^2 blur^2 f^2)``: 1 at f = 0, 0.41 at Nyquist for 0.3 px.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` image shape in pixels (full FFT layout).
    blur_px : float
        Standard deviation of the Gaussian point spread, pixels.
    like : torch.Tensor
        Real tensor whose dtype and device the results follow.

    Returns
    -------
    mtf, ntf : torch.Tensor
        ``(ny, nx)`` real transfer functions, 1 at f = 0.
    """
    fy, fx = frequency_grid(shape, 1.0, like=like)
    ntf = torch.sinc(fy) * torch.sinc(fx)
    mtf = ntf * torch.exp(-2 * math.pi**2 * blur_px**2 * (fy.square() + fx.square()))
    return mtf, ntf


def ctf_aliasing_frequency(
    n_pixels: int,
    pixel_size_a: float,
    *,
    defocus_um: float,
    voltage_kv: float,
    spherical_aberration_mm: float,
) -> float | None:
    """Return the lowest frequency (cycles/Å) where the image's Fourier grid aliases the CTF.

    The aberration phase ``chi(k)`` must change by less than pi between neighbouring
    Fourier samples (spacing ``1 / (n_pixels pixel_size_a)``); beyond that the point
    spread function is wider than the image and wraps around.

    Returns
    -------
    float or None
        The frequency in cycles/Å below Nyquist where ``|dchi/dk| / (n p) >= pi``;
        None when the CTF is sampled well up to Nyquist.
    """
    wavelength = electron_wavelength_a(voltage_kv)
    df_a = defocus_um * 1e4
    cs_a = spherical_aberration_mm * 1e7
    spacing = 1.0 / (n_pixels * pixel_size_a)
    k = torch.linspace(0.0, 0.5 / pixel_size_a, 4097, dtype=torch.float64)
    slope = 2 * math.pi * wavelength * (df_a * k - cs_a * wavelength**2 * k**3)
    bad = (slope.abs() * spacing >= math.pi).nonzero()
    return None if bad.numel() == 0 else float(k[bad[0, 0]])
