"""Binning of tilt-series: means, pixel sizes, sampling grids and the reference's spline."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from faket.reconstruction import bin_tilt_series


def smooth_images(shape: tuple[int, int, int]) -> torch.Tensor:
    """Band-limited images (a few low-frequency waves) with a non-zero mean."""
    n_tilts, ny, nx = shape
    y = np.arange(ny)[:, None]
    x = np.arange(nx)[None, :]
    images = [
        3.0 + t + np.cos(2 * np.pi * (2 * x / nx + y / ny)) + 0.5 * np.sin(2 * np.pi * 3 * y / ny)
        for t in range(n_tilts)
    ]
    return torch.from_numpy(np.stack(images))


@pytest.mark.parametrize("method", ["fourier", "spline"])
@pytest.mark.parametrize("factor", [2, 3])
def test_binning_keeps_the_mean_and_multiplies_the_pixel_size(method, factor, rng):
    images = smooth_images((3, 48, 60)) + 0.1 * torch.from_numpy(rng.standard_normal((3, 48, 60)))
    binned, pixel = bin_tilt_series(images, factor, method=method, pixel_size_a=2.5)
    assert binned.shape == (3, 48 // factor, 60 // factor)
    assert pixel == pytest.approx(2.5 * factor)
    means, new_means = images.mean(dim=(1, 2)), binned.mean(dim=(1, 2))
    if method == "fourier":
        # The zero-frequency coefficient is copied: exact up to float64 FFT rounding.
        torch.testing.assert_close(new_means, means, rtol=0, atol=1e-12)
    else:
        # Sampling without a low-pass filter: the smooth part's mean is kept, the white
        # noise (std 0.1) averages over (48 * 60) / factor^2 samples: std <= 0.1 / 16 =
        # 0.006, so 0.03 is five standard errors.
        torch.testing.assert_close(new_means, means, rtol=0, atol=0.03)


def test_fourier_binning_samples_band_limited_images_exactly():
    images = smooth_images((2, 32, 40))
    binned, _ = bin_tilt_series(images, 2)
    # Output pixel j sits at input pixel 2 j; the waves are far below the new Nyquist, so
    # Fourier cropping returns their exact samples (float64 FFT rounding).
    torch.testing.assert_close(binned, images[:, ::2, ::2], rtol=0, atol=1e-12)


def test_fourier_binning_removes_frequencies_above_the_new_nyquist():
    x = np.arange(64)
    fine = np.cos(2 * np.pi * 20 * x / 64)  # 20 cycles: above the new Nyquist (16)
    images = torch.from_numpy(np.broadcast_to(fine, (1, 8, 64)).copy())
    binned, _ = bin_tilt_series(images, 2)
    # Plain decimation would alias it to 12 cycles of amplitude 1; the low-pass removes it.
    assert binned.abs().max() < 1e-12


def test_spline_binning_is_the_reference_scipy_zoom_of_order_3(rng):
    images = rng.standard_normal((2, 48, 60))
    binned, _ = bin_tilt_series(torch.from_numpy(images), 2, method="spline")
    published = np.stack([scipy.ndimage.zoom(image, 0.5, order=3) for image in images])
    # The reference's call with scipy's default mode="constant" can put its last row or
    # column just outside the image by rounding (all zeros for 48 -> 24 with scipy 1.17);
    # everywhere else ours (mode "mirror") is the same computation, bit for bit.
    np.testing.assert_array_equal(binned.numpy()[:, :-1, :-1], published[:, :-1, :-1])
    assert np.all(binned.numpy()[:, -1, :] != 0) and np.all(binned.numpy()[:, :, -1] != 0)


def test_axes_are_cropped_centred_to_a_multiple_of_the_factor(rng):
    images = torch.from_numpy(rng.standard_normal((1, 13, 22)))
    binned, pixel = bin_tilt_series(images, 4, method="fourier", pixel_size_a=1.0)
    assert binned.shape == (1, 3, 5) and pixel == 4.0  # pixels stay square
    cropped = images[:, 13 // 2 - 6 : 13 // 2 + 6, 22 // 2 - 10 : 22 // 2 + 10]
    expected, _ = bin_tilt_series(cropped, 4, method="fourier")
    torch.testing.assert_close(binned, expected, rtol=0, atol=0)


def test_factor_one_is_the_identity_and_pixel_size_may_be_unset(rng):
    images = torch.from_numpy(rng.standard_normal((2, 5, 5)))
    same, pixel = bin_tilt_series(images, 1)
    assert same is images and pixel is None
    _, pixel = bin_tilt_series(images, 2)
    assert pixel is None


@pytest.mark.parametrize("method", ["fourier", "spline"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_binning_keeps_dtype_and_device(method, dtype, device):
    images = torch.rand((2, 16, 16), dtype=dtype, device=device)
    binned, _ = bin_tilt_series(images, 2, method=method)
    assert binned.dtype == dtype and binned.device == images.device


@pytest.mark.parametrize(
    ("factor", "method", "message"),
    [
        (0, "fourier", "whole number >= 1"),
        (1.5, "fourier", "whole number >= 1"),
        (2, "bilinear", "unknown binning method"),
        (9, "fourier", "fewer than 1 pixel"),
    ],
)
def test_bad_binning_is_refused_with_a_sentence(factor, method, message):
    with pytest.raises(ValueError, match=message):
        bin_tilt_series(torch.zeros(1, 8, 8), factor, method=method)
