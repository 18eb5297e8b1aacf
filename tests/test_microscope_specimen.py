"""The ice slab: fluctuations, displacement and the periodic slab projection."""

from __future__ import annotations

import math

import pytest
import torch

from faket.microscope import displace_ice, ice_fluctuations, project_periodic_slab
from faket.microscope.specimen import ICE_MOLECULES_PER_A3


def plain_periodic_projection(field: torch.Tensor, tilt_deg: float) -> torch.Tensor:
    """The documented geometry, written as loops over layers and detector pixels."""
    n, ny, nx = field.shape
    cos_t, tan_t = math.cos(math.radians(tilt_deg)), math.tan(math.radians(tilt_deg))
    out = torch.zeros(ny, nx, dtype=torch.float64)
    for k in range(n):
        for u in range(nx):
            x = nx // 2 + (u - nx // 2) / cos_t + (k - n // 2) * tan_t
            x0 = math.floor(x)
            frac = x - x0
            a, b = field[k, :, x0 % nx].double(), field[k, :, (x0 + 1) % nx].double()
            out[:, u] += a * (1 - frac) + b * frac
    return out / cos_t


@pytest.mark.parametrize("tilt", [0.0, 33.0, -60.0])
def test_periodic_slab_projection_matches_the_plain_loops(tilt):
    field = torch.randn(12, 5, 24, generator=torch.Generator().manual_seed(1))
    ours = project_periodic_slab(field, tilt).double()
    torch.testing.assert_close(ours, plain_periodic_projection(field, tilt), atol=1e-5, rtol=1e-5)
    if tilt == 0.0:
        torch.testing.assert_close(ours, field.sum(0).double(), atol=1e-5, rtol=1e-5)


def test_constant_slab_projects_to_thickness_over_cos():
    field = torch.ones(10, 4, 32)
    projection = project_periodic_slab(field, 60.0)
    torch.testing.assert_close(projection, torch.full_like(projection, 20.0))


def test_ice_fluctuations_have_the_molecule_count_variance():
    voxel = 5.0
    generator = torch.Generator().manual_seed(0)
    field = ice_fluctuations(
        (16, 64, 64),
        voxel,
        ice_potential_v=4.575,
        structure_factor=0.064,
        correlation_a=0.0,
        generator=generator,
    )
    expected = 4.575 * math.sqrt(0.064 / (ICE_MOLECULES_PER_A3 * voxel**3))
    assert field.std().item() == pytest.approx(expected, rel=0.02)
    assert abs(field.mean().item()) < 0.01 * expected


def test_particles_displace_ice_by_their_occupancy():
    volume = torch.tensor([0.0, 4.025, 8.05, 16.1]).reshape(1, 1, 4)
    out = displace_ice(volume, 4.575, 8.05)
    expected = volume - 4.575 * torch.tensor([0.0, 0.5, 1.0, 1.0]).reshape(1, 1, 4)
    torch.testing.assert_close(out, expected)
    assert displace_ice(volume, 4.575, None) is volume
    stacked = torch.stack([volume[0], 2 * volume[0], volume[0] / 4])  # several Z-slices
    plain = stacked - 4.575 * (stacked / 8.05).clamp(0, 1)  # the formula on the whole
    torch.testing.assert_close(displace_ice(stacked, 4.575, 8.05), plain)
    in_place = displace_ice(stacked, 4.575, 8.05, out=stacked)
    assert in_place is stacked
    torch.testing.assert_close(stacked, plain)


@pytest.mark.parametrize("shape", [(5, 33, 40), (1, 16, 17), (8, 64, 31)])
def test_the_ice_low_pass_in_blocks_equals_one_3d_fft(shape, monkeypatch):
    # Oracle: the periodic Gaussian filter as one 3-D real FFT (the crash-prone call
    # at detector scale); ours is separable, slice by slice and in blocks of rows.
    from faket.microscope import specimen

    monkeypatch.setattr(specimen, "_FFT_BLOCK_ELEMENTS", 100)  # several blocks along Y
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sigma = 1.7
    nz, ny, nx = shape
    fz = torch.fft.fftfreq(nz, dtype=x.dtype)[:, None, None]
    fy = torch.fft.fftfreq(ny, dtype=x.dtype)[None, :, None]
    fx = torch.fft.rfftfreq(nx, dtype=x.dtype)[None, None, :]
    gauss = torch.exp(-2 * math.pi**2 * sigma**2 * (fz**2 + fy**2 + fx**2))
    expected = torch.fft.irfftn(torch.fft.rfftn(x) * gauss, s=shape)
    ours = x.clone()
    specimen._gaussian_low_pass_periodic(ours, sigma)
    torch.testing.assert_close(ours, expected, atol=1e-12, rtol=0)  # float64 rounding
