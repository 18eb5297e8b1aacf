"""Filtered back-projection against scikit-image's iradon, analytic phantoms and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.transform import iradon

from faket.phantom import ball
from faket.projection import project_tilt_series
from faket.reconstruction import (
    angle_weights,
    backproject_tilt_series,
    filter_tilt_series,
    reconstruct_tomogram,
    z_range_to_slab,
)

SHREC_ANGLES = np.arange(-60.0, 60.0 + 1e-9, 2.0)


def skimage_reconstruction(
    tilts: np.ndarray, angles: np.ndarray, filter_name: str | None, size: int | None
) -> np.ndarray:
    """The reference approach written plainly: iradon per Y-slice, (z, y, x) out."""
    slices = [
        iradon(tilts[:, y, :].T, theta=angles, filter_name=filter_name, circle=False,
               output_size=size)
        for y in range(tilts.shape[1])
    ]  # fmt: skip
    return np.stack(slices, axis=1)


@pytest.mark.parametrize(
    ("width", "angles"),
    [
        (32, SHREC_ANGLES),  # even detector, the published tilts
        (33, np.array([-57.3, -3.0, 0.0, 11.1, 45.0, 60.0])),  # odd, uneven tilts
        (20, np.array([-90.0, -30.0, 30.0, 90.0, 170.0])),  # large angles
    ],
)
@pytest.mark.parametrize("filter_name", ["ramp", "shepp-logan", "cosine", "none"])
def test_each_y_slice_equals_iradon(width, angles, filter_name, rng):
    tilts = rng.standard_normal((len(angles), 3, width))
    iradon_name = None if filter_name == "none" else filter_name
    expected = skimage_reconstruction(tilts, angles, iradon_name, width)
    ours = reconstruct_tomogram(torch.from_numpy(tilts), angles, filter_name=filter_name)
    assert ours.shape == (width, 3, width)
    # Same padding (power of two >= 2n, at least 64), same discrete ramp and windows, same
    # linear interpolation, centres and pi / (2 n) scale: float64 rounding only.
    scale = np.abs(expected).max()
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("width", [32, 45])
def test_iradon_default_output_is_our_centred_crop(width, rng):
    tilts = rng.standard_normal((len(SHREC_ANGLES), 2, width))
    expected = skimage_reconstruction(tilts, SHREC_ANGLES, "ramp", None)
    size = math.floor(width / math.sqrt(2))  # iradon's default for circle=False
    assert expected.shape == (size, 2, size)
    ours = reconstruct_tomogram(torch.from_numpy(tilts), SHREC_ANGLES).numpy()
    start = width // 2 - size // 2  # both centre pixel n // 2
    crop = ours[start : start + size, :, start : start + size]
    np.testing.assert_allclose(crop, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("filter_name", ["hamming", "hann"])
def test_hamming_and_hann_differ_from_iradon_only_by_its_window_length(filter_name, rng):
    tilts = rng.standard_normal((len(SHREC_ANGLES), 2, 32))
    expected = skimage_reconstruction(tilts, SHREC_ANGLES, filter_name, 32)
    ours = reconstruct_tomogram(torch.from_numpy(tilts), SHREC_ANGLES, filter_name=filter_name)
    # iradon's window is np.hamming(n)/np.hanning(n) of the padded length n = 64,
    # fft-shifted; ours the periodic window cos(2 pi f). They differ by O(1/n) of the
    # window, which on white-noise projections is 2.5 % (Hamming) and 3.0 % (Hann) of the
    # peak. A bound of 5 % tells the intended difference from a wrong window (Hann for
    # Hamming or back: 14-19 %; no window: about 200 %).
    error = np.abs(ours.numpy() - expected).max() / np.abs(expected).max()
    assert 1e-4 < error < 0.05


def fwhm(profile: np.ndarray) -> float:
    """Full width at half maximum of a single peak, with linear interpolation."""
    p = profile / profile.max()
    i = int(np.argmax(p))
    left = i
    while p[left - 1] > 0.5:
        left -= 1
    right = i
    while p[right + 1] > 0.5:
        right += 1
    lo = left - 1 + (0.5 - p[left - 1]) / (p[left] - p[left - 1])
    hi = right + (p[right] - 0.5) / (p[right] - p[right + 1])
    return hi - lo


def reconstruct_point(angles: np.ndarray, n: int = 64) -> tuple[np.ndarray, tuple[int, int]]:
    volume = torch.zeros((n, 3, n), dtype=torch.float64)
    where = (n // 2 + 5, n // 2 - 7)  # off-centre in Z and X
    volume[where[0], 1, where[1]] = 1.0
    tilts = project_tilt_series(volume, angles)
    return -reconstruct_tomogram(tilts, angles, thickness=n)[:, 1, :].numpy(), where


def test_point_comes_back_in_place_elongated_along_z_by_the_missing_wedge():
    limited, where = reconstruct_point(SHREC_ANGLES)
    assert np.unravel_index(np.argmax(limited), limited.shape) == where
    ratio_limited = fwhm(limited[:, where[1]]) / fwhm(limited[where[0], :])
    full, _ = reconstruct_point(np.arange(-90.0, 90.0, 2.0))
    ratio_full = fwhm(full[:, where[1]]) / fwhm(full[where[0], :])
    # Full 180 degrees: isotropic up to the pixel grid (measured 1.0). -60..60: the missing
    # wedge stretches the point along Z; Radermacher's factor for +-60 degrees is
    # sqrt((a + sin a cos a) / (a - sin a cos a)) = 1.55 for extended objects, and a
    # one-voxel point measures 2.0 here. Bounds between both with margin: a reconstruction
    # without the wedge (or with Z and X swapped) fails them.
    assert ratio_full == pytest.approx(1.0, abs=0.15)
    assert ratio_limited > 1.5
    # X stays sharp: about one voxel (linear interpolation twice, projection and back).
    assert fwhm(limited[where[0], :]) < 1.5


def test_ball_reconstructs_with_high_correlation_and_in_place():
    n = 48
    volume = ball((n, 4, n), (n // 2 + 3, 1.5, n // 2 - 4), 9.0, dtype=torch.float64)
    for angles, minimum in ((SHREC_ANGLES, 0.82), (np.arange(-90.0, 90.0, 2.0), 0.99)):
        tilts = project_tilt_series(volume, angles)
        rec = -reconstruct_tomogram(tilts, angles, thickness=n)
        corr = np.corrcoef(rec.numpy().ravel(), volume.numpy().ravel())[0, 1]
        # Full 180 degrees: only the discretisation errs (measured 0.996; unfiltered 0.89).
        # -60..60: the missing third of Fourier space smears the ball along Z and adds
        # negative lobes (measured 0.84; unfiltered 0.78, Z flipped 0.52).
        assert corr > minimum
        section = rec[:, 1, :].numpy()
        weights = np.where(section > 0.5 * section.max(), section, 0.0)
        zz, xx = np.indices(weights.shape)
        centroid = (zz * weights).sum() / weights.sum(), (xx * weights).sum() / weights.sum()
        # Above half maximum the blob is symmetric about the ball's centre (the streaks
        # the box cuts off unevenly are fainter): measured within 0.04 voxel.
        np.testing.assert_allclose(centroid, (n // 2 + 3, n // 2 - 4), atol=0.15)


def test_full_coverage_ramp_gives_the_density_amplitude():
    n, radius = 48, 12.0
    volume = ball((n, 3, n), (n // 2, 1, n // 2), radius, supersample=4, dtype=torch.float64)
    angles = np.arange(-90.0, 90.0, 1.0)
    rec = -reconstruct_tomogram(project_tilt_series(volume, angles), angles, thickness=n)
    # Filtered back-projection with pi / (2 n_tilts) and a ramp of 2|f| is the exact
    # inverse for 180 degrees: the ball's core comes back at density 1 within the
    # ringing of its sharp edge (about 2 %).
    core = rec[n // 2 - 4 : n // 2 + 5, 1, n // 2 - 4 : n // 2 + 5]
    np.testing.assert_allclose(core.numpy(), 1.0, atol=0.03)


@pytest.mark.parametrize("angle", [-60.0, -20.0, 0.0, 35.0, 60.0])
def test_geometry_is_the_documented_one_shared_with_the_projection(angle, rng):
    # One tilt back-projected: voxel (dz, dx) reads the detector at
    # width // 2 + dx cos t - dz sin t, linearly interpolated, zero off the detector.
    width, thickness, z_offset = 21, 12, 2
    profile = rng.standard_normal(width)
    tilts = torch.from_numpy(profile).reshape(1, 1, width)
    smear = backproject_tilt_series(tilts, [angle], thickness=thickness, z_offset=z_offset)
    t = math.radians(angle)
    dz = np.arange(thickness)[:, None] - thickness // 2 + z_offset
    dx = np.arange(width)[None, :] - width // 2
    u = width // 2 + dx * math.cos(t) - dz * math.sin(t)
    expected = np.interp(u, np.arange(width), profile, left=0, right=0) * math.pi / 2
    np.testing.assert_allclose(smear[:, 0, :].numpy(), expected, rtol=0, atol=1e-12)


def test_z_offset_thickness_and_flip_select_slabs_of_the_cube(rng):
    tilts = torch.from_numpy(rng.standard_normal((7, 2, 30)))
    angles = np.linspace(-60, 60, 7)
    cube = backproject_tilt_series(tilts, angles)
    assert cube.shape == (30, 2, 30)
    slab = backproject_tilt_series(tilts, angles, thickness=10, z_offset=-3)
    start = 30 // 2 - 3 - 10 // 2  # centre slice 10 // 2 sits at dz = -3
    torch.testing.assert_close(slab, cube[start : start + 10], rtol=0, atol=1e-12)
    flipped = backproject_tilt_series(tilts, angles, thickness=10, z_offset=-3, z_flip=True)
    torch.testing.assert_close(flipped, slab.flip(0), rtol=0, atol=1e-12)


def test_z_range_gives_the_shrec_slab():
    assert z_range_to_slab(512, (0.32226, 0.67382)) == (180, -1)  # slices 165..344
    thickness, offset = z_range_to_slab(512, (0.32226, 0.67382))
    assert 512 // 2 + offset - thickness // 2 == 165
    with pytest.raises(ValueError, match="0 <= lo < hi <= 1"):
        z_range_to_slab(100, (0.7, 0.3))


def test_angle_weights():
    np.testing.assert_allclose(angle_weights(SHREC_ANGLES).numpy(), math.pi / (2 * 61))
    spacing = angle_weights(SHREC_ANGLES, "spacing").numpy()
    np.testing.assert_allclose(spacing, math.radians(2.0) / 2)  # even steps: half the step
    uneven = angle_weights([0.0, 10.0, 40.0, 20.0], "spacing").numpy()
    # sorted 0, 10, 20, 40: intervals 10 (end: its one step), 10, 15, 20 (end) degrees
    np.testing.assert_allclose(uneven, np.radians([10.0, 10.0, 20.0, 15.0]) / 2)
    # Over 180 degrees both give the same total, pi / 2 (the FBP normalisation).
    full = np.arange(-90.0, 90.0, 2.0)
    assert angle_weights(full, "spacing").sum().item() == pytest.approx(math.pi / 2)
    with pytest.raises(ValueError, match="unknown weighting"):
        angle_weights(full, "cosine")


def test_chunking_reports_progress_and_does_not_change_the_result(rng):
    tilts = torch.from_numpy(rng.standard_normal((5, 7, 16)).astype(np.float32))
    angles = np.linspace(-40, 40, 5)
    whole = reconstruct_tomogram(tilts, angles)
    calls: list[int] = []
    chunked = reconstruct_tomogram(tilts, angles, max_chunk_bytes=1, progress=calls.append)
    assert calls == [1] * 7
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keeps_dtype_and_device(dtype, device):
    tilts = torch.rand((4, 3, 12), dtype=dtype, device=device)
    angles = [-45.0, -10.0, 20.0, 50.0]
    out = reconstruct_tomogram(tilts, angles, filter_name="approx-shrec", thickness=8)
    assert out.dtype == dtype and out.device == tilts.device and out.shape == (8, 3, 12)
    expected = reconstruct_tomogram(
        tilts.cpu().double(), angles, filter_name="approx-shrec", thickness=8
    )
    # float32 FFT and sums of 4 tilts: a few 1e-6 of the values' range.
    torch.testing.assert_close(out.cpu().double(), expected, rtol=1e-5, atol=1e-5)


def test_filter_then_backproject_is_reconstruct(rng):
    tilts = torch.from_numpy(rng.standard_normal((6, 2, 24)))
    angles = np.linspace(-50, 50, 6)
    filtered = filter_tilt_series(tilts, "cosine")
    torch.testing.assert_close(
        backproject_tilt_series(filtered, angles, weighting="spacing"),
        reconstruct_tomogram(tilts, angles, filter_name="cosine", weighting="spacing"),
    )


@pytest.mark.parametrize("filter_name", ["ramp", "approx-shrec"])
def test_filtering_in_place_gives_the_same_tomogram(filter_name, rng):
    # `overwrite` filters the caller's series in place, in chunks of tilts (one tilt a
    # chunk here): every chunk is read before it is written, so the tomogram is the same
    # bit for bit and the series holds the filtered images.
    tilts = torch.from_numpy(rng.standard_normal((5, 3, 20)))
    angles = np.linspace(-40, 40, 5)
    kept = tilts.clone()
    chunk = 8 * 3 * 64  # about one padded tilt's spectrum
    plain = reconstruct_tomogram(tilts, angles, filter_name=filter_name, max_chunk_bytes=chunk)
    torch.testing.assert_close(tilts, kept, rtol=0, atol=0)
    in_place = reconstruct_tomogram(
        tilts, angles, filter_name=filter_name, overwrite=True, max_chunk_bytes=chunk
    )
    torch.testing.assert_close(in_place, plain, rtol=0, atol=0)
    filtered = filter_tilt_series(kept, filter_name, max_chunk_bytes=chunk)
    torch.testing.assert_close(tilts, filtered, rtol=0, atol=0)
    with pytest.raises(ValueError, match="out must be"):
        filter_tilt_series(kept, filter_name, out=torch.empty(5, 3, 21, dtype=kept.dtype))


@pytest.mark.parametrize(
    ("tilts", "angles", "kwargs", "message"),
    [
        (torch.zeros(4, 4), [0.0], {}, "must be 3-D"),
        (torch.zeros(1, 4, 4, dtype=torch.int32), [0.0], {}, "floating point"),
        (torch.zeros(1, 4, 4), [], {}, "at least one tilt angle"),
        (torch.zeros(1, 4, 4), [float("inf")], {}, "finite"),
        (torch.zeros(2, 4, 4), [0.0], {}, "1 tilt angles were given for 2 projections"),
        (torch.zeros(1, 4, 6), [0.0], {"thickness": 7}, "larger than the detector width 6"),
        (torch.zeros(1, 4, 6), [0.0], {"thickness": 0}, "at least 1 voxel"),
        (torch.zeros(1, 4, 6), [0.0], {"weighting": "cos"}, "unknown weighting"),
    ],
)
def test_bad_input_is_refused_with_a_sentence(tilts, angles, kwargs, message):
    with pytest.raises(ValueError, match=message):
        reconstruct_tomogram(tilts, angles, **kwargs)
