"""A toy stand-in for a microscope, so the demo has reference data without user files.

This is NOT the reference microscope (``faket.microscope``, a later stage) and it does
not share FakET's noise model: it counts electrons. Per tilt ``t`` and pixel:

- expected counts ``dose * exp(-thickness / (cos(t) * mfp)) * exp(-k * line_integral)``:
  Beer-Lambert attenuation by the specimen plus an inelastic loss that grows with the
  path length through a slab of ice;
- a Gaussian blur of ``blur_px`` pixels as a crude envelope of the optics and detector;
- Poisson counting noise.

So the reference has a tilt-dependent mean, std and signal-to-noise ratio, like real
tilt-series, and its noise is not Gaussian.
"""

from __future__ import annotations

import math

import torch

from faket.conventions import TiltAngles


def _gaussian_blur(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Blur each ``(..., ny, nx)`` image with a periodic Gaussian in Fourier space."""
    if sigma_px <= 0:
        return images
    ny, nx = images.shape[-2:]
    fy = torch.fft.fftfreq(ny, dtype=images.dtype, device=images.device)[:, None]
    fx = torch.fft.rfftfreq(nx, dtype=images.dtype, device=images.device)[None, :]
    transfer = torch.exp(-2 * math.pi**2 * sigma_px**2 * (fy**2 + fx**2))
    return torch.fft.irfft2(torch.fft.rfft2(images) * transfer, s=(ny, nx))


def toy_reference_tilt_series(
    noiseless: torch.Tensor,
    tilt_angles_deg: TiltAngles,
    *,
    seed: int,
    dose_per_pixel: float = 40.0,
    contrast: float = 0.02,
    thickness_over_mfp: float = 0.5,
    blur_px: float = 0.8,
) -> torch.Tensor:
    """Return electron counts of a noiseless tilt-series, as a toy microscope would record.

    Parameters
    ----------
    noiseless : torch.Tensor
        ``(n_tilts, ny, nx)`` negated line integrals (``faket.projection`` output).
    tilt_angles_deg : sequence of float or torch.Tensor
        ``(n_tilts,)`` tilt angles in degrees.
    seed : int
        Seed of the Poisson noise.
    dose_per_pixel : float
        Electrons per pixel per tilt at zero tilt, before losses.
    contrast : float
        Attenuation per unit of line integral.
    thickness_over_mfp : float
        Slab thickness at zero tilt over the inelastic mean free path.
    blur_px : float
        Standard deviation of the Gaussian blur, in pixels.

    Returns
    -------
    torch.Tensor
        ``(n_tilts, ny, nx)`` counts, same dtype and device as ``noiseless``.
    """
    angles = torch.as_tensor(tilt_angles_deg, dtype=torch.float64).reshape(-1, 1, 1)
    if angles.shape[0] != noiseless.shape[0]:
        raise ValueError(f"{angles.shape[0]} tilt angles for {noiseless.shape[0]} images")
    path = thickness_over_mfp / torch.cos(torch.deg2rad(angles))
    expected = dose_per_pixel * torch.exp(-path).to(noiseless) * torch.exp(contrast * noiseless)
    expected = _gaussian_blur(expected, blur_px).clamp_min(0)
    generator = torch.Generator(device=noiseless.device).manual_seed(seed)
    return torch.poisson(expected, generator=generator)
