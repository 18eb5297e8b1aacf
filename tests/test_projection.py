"""Noiseless projection against scikit-image's radon, analytic phantoms and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.transform import radon

from faket.phantom import ball
from faket.projection import detector_length, project_tilt_series

SHREC_ANGLES = np.arange(-60.0, 60.0 + 1e-9, 2.0)


def skimage_projection(volume: np.ndarray, angles: np.ndarray, width: int) -> np.ndarray:
    """The reference approach written plainly: radon per Y-slice, centred crop, negation."""
    nz, ny, nx = volume.shape
    length = detector_length(nz, nx)
    start = length // 2 - width // 2
    out = np.empty((len(angles), ny, width), dtype=np.float64)
    for y in range(ny):
        sinogram = radon(volume[:, y, :].astype(np.float64), theta=angles, circle=False)
        out[:, y, :] = -sinogram[start : start + width].T
    return out


@pytest.mark.parametrize(
    ("shape", "angles", "width"),
    [
        ((16, 3, 16), SHREC_ANGLES, None),  # even, the published angle set
        ((15, 4, 17), np.array([-57.3, -3.0, 0.0, 11.1, 45.0, 60.0]), None),  # odd, nz != nx
        ((21, 2, 12), np.array([-90.0, -30.0, 30.0, 90.0]), 15),  # deep slab, wider crop
        ((12, 2, 19), np.array([0.0, 7.5, 123.0, -170.0]), 8),  # narrow crop, large angles
    ],
)
def test_matches_skimage_radon_on_random_volumes(shape, angles, width, rng):
    volume = rng.random(shape).astype(np.float64)
    expected = skimage_projection(volume, angles, width or shape[2])
    ours = project_tilt_series(torch.from_numpy(volume), angles, width=width).numpy()
    assert ours.shape == expected.shape
    # The same bilinear weights summed in another order: float64 rounding only.
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9 * np.abs(expected).max())


def test_float32_matches_skimage_within_rounding(rng):
    volume = rng.random((24, 2, 24)).astype(np.float32)
    expected = skimage_projection(volume, SHREC_ANGLES, 24)
    ours = project_tilt_series(torch.from_numpy(volume), SHREC_ANGLES).numpy()
    assert ours.dtype == np.float32
    # float32 weights and sums of ~34 terms: a few ulp of the projection's range.
    assert np.abs(ours - expected).max() <= 1e-5 * np.abs(expected).max()


def test_ball_projects_to_chord_lengths():
    n, radius = 48, 12.0
    centre = n // 2
    volume = ball((n, 3, n), (centre, 1, centre), radius, supersample=6, dtype=torch.float64)
    # The central Y-slice cuts the ball through its centre: chord 2 sqrt(R^2 - u^2).
    angles = [-60.0, -25.0, 0.0, 33.0, 60.0]
    tilts = project_tilt_series(volume, angles)[:, 1, :]
    u = np.arange(n) - n // 2
    chord = 2 * np.sqrt(np.clip(radius**2 - u**2, 0, None))
    for tilt in tilts.numpy():
        # Partial-volume voxels (boundary quantised to 1/6 voxel at each of the chord's
        # two ends) and bilinear sampling: inside the ball the chord is right to 0.25
        # voxel (0.35 % of the box), and the area (pi R^2 of the ball's slice) to 0.5 %.
        core = np.abs(u) < radius - 2
        np.testing.assert_allclose(-tilt[core], chord[core], atol=0.25)
        assert -tilt.sum() == pytest.approx(math.pi * radius**2, rel=5e-3)


@pytest.mark.parametrize("angle", [-60.0, -20.0, 0.0, 35.0, 60.0])
def test_off_centre_point_moves_as_documented(angle):
    nz, ny, nx = 31, 3, 40
    dz, dx = 7, -5  # above the centre slice and left of the centre
    volume = torch.zeros((nz, ny, nx), dtype=torch.float64)
    volume[nz // 2 + dz, 1, nx // 2 + dx] = 1.0
    width = 36
    profile = -project_tilt_series(volume, [angle], width=width)[0]
    assert profile[0].abs().max() == 0 and profile[2].abs().max() == 0  # Y is the tilt axis
    row = profile[1].numpy()
    centroid = (row * np.arange(width)).sum() / row.sum()
    t = math.radians(angle)
    expected = width // 2 + dx * math.cos(t) - dz * math.sin(t)
    # Bilinear sampling of a delta keeps its centre of mass to a few hundredths of a pixel.
    assert centroid == pytest.approx(expected, abs=0.05)


def test_zero_tilt_is_the_negated_sum_along_z(rng):
    volume = torch.from_numpy(rng.random((9, 5, 14)))
    out = project_tilt_series(volume, [0.0])
    torch.testing.assert_close(out[0], -volume.sum(0), rtol=0, atol=1e-12)


def test_chunking_does_not_change_the_result(rng):
    volume = torch.from_numpy(rng.random((10, 7, 12)).astype(np.float32))
    whole = project_tilt_series(volume, SHREC_ANGLES[::10])
    calls: list[int] = []
    chunked = project_tilt_series(
        volume, SHREC_ANGLES[::10], max_chunk_bytes=1, progress=calls.append
    )
    assert calls == [1] * 7  # one Y-slice per chunk, each reported
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keeps_dtype_and_device(dtype, device):
    volume = torch.rand((8, 3, 8), dtype=dtype, device=device)
    out = project_tilt_series(volume, [-30.0, 0.0, 30.0], width=6)
    assert out.dtype == dtype and out.device == volume.device
    assert out.shape == (3, 3, 6)
    expected = project_tilt_series(volume.cpu().double(), [-30.0, 0.0, 30.0], width=6)
    torch.testing.assert_close(out.cpu().double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("volume", "angles", "width", "message"),
    [
        (torch.zeros(4, 4), [0.0], None, "must be 3-D"),
        (torch.zeros(4, 4, 4, dtype=torch.int32), [0.0], None, "floating point"),
        (torch.zeros(4, 4, 4), [], None, "at least one tilt angle"),
        (torch.zeros(4, 4, 4), [float("nan")], None, "finite"),
        (torch.zeros(4, 4, 4), [0.0], 7, "between 1 and 6"),
        (torch.zeros(4, 4, 4), [0.0], 0, "between 1 and 6"),
    ],
)
def test_bad_input_is_refused_with_a_sentence(volume, angles, width, message):
    with pytest.raises(ValueError, match=message):
        project_tilt_series(volume, angles, width=width)


def test_matches_skimage_radon_on_an_analytic_ball():
    volume = ball((33, 2, 30), (17.3, 0.5, 12.8), 9.5, supersample=3, dtype=torch.float64)
    expected = skimage_projection(volume.numpy(), SHREC_ANGLES[::6], 30)
    ours = project_tilt_series(volume, SHREC_ANGLES[::6]).numpy()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
