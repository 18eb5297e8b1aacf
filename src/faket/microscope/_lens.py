"""The objective lens: exit wave to image intensity, with a defocus gradient across X."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from faket.microscope.physics import (
    electron_wavelength_a,
    frequency_grid,
    spatial_envelope,
    wave_transfer,
)
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
    if n_nodes == 1:
        transfer = _wave_transfer(
            settings,
            (ny, nx),
            pixel_size_a,
            defocus_um,
            like=real,
            illumination_semi_angle_mrad=settings.illumination_semi_angle_mrad,
        )
        return torch.fft.ifft2(spectrum * transfer).abs().square()
    nodes = [low + (high - low) * j / (n_nodes - 1) for j in range(n_nodes)]
    # Column positions in node units; node j weighs a column by the hat max(0, 1 - |p - j|),
    # i.e. linear interpolation between the two nodes around the column's defocus.
    position = ((offsets - low) / (high - low) * (n_nodes - 1)).to(wave.device)
    out = torch.zeros_like(real)
    for j, transfer in enumerate(
        _node_transfers(settings, (ny, nx), pixel_size_a, defocus_um, nodes, real)
    ):
        weight = (1 - (position - j).abs()).clamp_min(0).to(real.dtype)
        used = torch.nonzero(weight).flatten()
        lo, hi = int(used.min()), int(used.max()) + 1
        image = torch.fft.ifft2(spectrum * transfer).abs().square()
        out[:, lo:hi] += image[:, lo:hi] * weight[lo:hi]
    return out


def _wave_transfer(
    s: MicroscopeSettings,
    shape: tuple[int, int],
    pixel_size_a: float,
    defocus_um: float,
    *,
    like: torch.Tensor,
    illumination_semi_angle_mrad: float,
) -> torch.Tensor:
    """Return `wave_transfer` of the settings' lens at one defocus and illumination."""
    return wave_transfer(
        shape,
        pixel_size_a,
        defocus_um=defocus_um,
        astigmatism_um=s.astigmatism_um,
        astigmatism_angle_deg=s.astigmatism_angle_deg,
        voltage_kv=s.voltage_kv,
        spherical_aberration_mm=s.spherical_aberration_mm,
        illumination_semi_angle_mrad=illumination_semi_angle_mrad,
        chromatic_aberration_mm=s.chromatic_aberration_mm,
        energy_spread_ev=s.energy_spread_ev,
        like=like,
    )


def _node_transfers(
    s: MicroscopeSettings,
    shape: tuple[int, int],
    pixel_size_a: float,
    defocus_um: float,
    offsets_um: list[float],
    like: torch.Tensor,
) -> Iterator[torch.Tensor]:
    """Yield `wave_transfer` at ``defocus_um + offset`` for each offset, cheaply.

    The full aberration (astigmatism, Cs) and the temporal envelope are computed once,
    at ``defocus_um``; a defocus change ``d`` (Å) only multiplies the aberration by
    ``exp(i pi lambda d k^2)`` (torch-ctf's ``exp(-i chi)``, ``-chi = pi lambda df k^2 -
    ...``) and changes the spatial envelope, which is recomputed per node.
    """
    base = _wave_transfer(
        s, shape, pixel_size_a, defocus_um, like=like, illumination_semi_angle_mrad=0.0
    )
    ky, kx = frequency_grid(shape, pixel_size_a, like=like)
    k2 = ky.square() + kx.square()
    k = k2.sqrt()
    wavelength = electron_wavelength_a(s.voltage_kv)
    for offset in offsets_um:
        envelope = spatial_envelope(
            k,
            defocus_um=defocus_um + offset,
            voltage_kv=s.voltage_kv,
            spherical_aberration_mm=s.spherical_aberration_mm,
            illumination_semi_angle_mrad=s.illumination_semi_angle_mrad,
        )
        yield base * torch.polar(envelope, (math.pi * wavelength * offset * 1e4) * k2)
