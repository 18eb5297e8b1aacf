"""The objective lens: exit wave to image intensity, with a defocus gradient across X."""

from __future__ import annotations

import math

import torch

from faket.microscope.physics import electron_wavelength_a, wave_transfer
from faket.microscope.settings import MicroscopeSettings

MAX_DEFOCUS_NODES = 64
"""Most defocus values one tilted image is propagated at (see `image_intensity`)."""


def defocus_node_count(span_um: float, pixel_size_a: float, voltage_kv: float) -> int:
    """Return how many defocus nodes sample a defocus span finely enough.

    Neighbouring nodes differ by at most ``p^2 / (2 lambda)`` (Å), so a column between
    two nodes is at most ``p^2 / (4 lambda)`` from one: a CTF phase error of at most
    ``pi lambda dz k_N^2 = pi / 16`` at Nyquist. Capped at `MAX_DEFOCUS_NODES`.
    Each column gets the intensity of its own defocus (interpolated); a particle's
    point spread is therefore computed with the defocus of the column it lands on, not
    of its own depth: a first-order model of the gradient.
    """
    if span_um <= 0:
        return 1
    step_um = pixel_size_a**2 / (2 * electron_wavelength_a(voltage_kv)) * 1e-4
    return min(MAX_DEFOCUS_NODES, math.ceil(span_um / step_um) + 1)


def image_intensity(
    wave: torch.Tensor,
    pixel_size_a: float,
    settings: MicroscopeSettings,
    *,
    defocus_um: float,
    slope_um_per_px: float = 0.0,
) -> torch.Tensor:
    """Return the image intensity ``|psi * h|^2`` of an exit wave.

    Parameters
    ----------
    wave : torch.Tensor
        ``(ny, nx)`` complex exit wave (1 for vacuum).
    pixel_size_a : float
        Pixel size in Å.
    settings : MicroscopeSettings
        Lens parameters (voltage, Cs, astigmatism, envelopes).
    defocus_um : float
        Defocus at the centre column ``nx // 2``, µm, underfocus positive.
    slope_um_per_px : float
        Change of the defocus per column along +X (a tilted specimen), µm per pixel.
        The wave is propagated at evenly spaced defocus nodes spanning the image
        (`defocus_node_count`) and each column's intensity is interpolated linearly
        between the two nodes around its own defocus.

    Returns
    -------
    torch.Tensor
        ``(ny, nx)`` real intensity, 1 for vacuum.
    """
    ny, nx = wave.shape
    real = wave.real
    spectrum = torch.fft.fft2(wave)
    offsets = (torch.arange(nx, dtype=torch.float64) - nx // 2) * slope_um_per_px
    low, high = float(offsets.min()), float(offsets.max())
    n_nodes = defocus_node_count(high - low, pixel_size_a, settings.voltage_kv)
    nodes = [low + (high - low) * j / max(n_nodes - 1, 1) for j in range(n_nodes)]
    images = []
    for offset in nodes:
        transfer = wave_transfer(
            (ny, nx),
            pixel_size_a,
            defocus_um=defocus_um + offset,
            astigmatism_um=settings.astigmatism_um,
            astigmatism_angle_deg=settings.astigmatism_angle_deg,
            voltage_kv=settings.voltage_kv,
            spherical_aberration_mm=settings.spherical_aberration_mm,
            illumination_semi_angle_mrad=settings.illumination_semi_angle_mrad,
            chromatic_aberration_mm=settings.chromatic_aberration_mm,
            energy_spread_ev=settings.energy_spread_ev,
            like=real,
        )
        images.append(torch.fft.ifft2(spectrum * transfer).abs().square())
    if n_nodes == 1:
        return images[0]
    # Column positions in node units, then linear interpolation between nodes.
    position = (offsets - low) / (high - low) * (n_nodes - 1)
    left = position.floor().clamp(max=n_nodes - 2).to(torch.int64)
    weight = (position - left).to(device=wave.device, dtype=real.dtype)
    stack = torch.stack(images)  # (n_nodes, ny, nx)
    columns = torch.arange(nx)
    left_img = stack[left.to(wave.device), :, columns.to(wave.device)].T
    right_img = stack[(left + 1).to(wave.device), :, columns.to(wave.device)].T
    return left_img * (1 - weight) + right_img * weight
