"""Reconstruction filters against their defining formulas, and filtering of tilt-series."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from faket.reconstruction import (
    FILTER_NAMES,
    approx_shrec_filter,
    cosine_filter,
    filter_tilt_series,
    fourier_filter,
    frequency_grid,
    hamming_filter,
    hann_filter,
    no_filter,
    padded_length,
    ramp_filter,
    shepp_logan_filter,
)


def index_of(frequency: float, n: int) -> int:
    """The fft-order index of ``frequency`` (cycles per pixel) on a grid of ``n``."""
    return round(frequency * n) % n


def test_frequency_grid_is_fftfreq_in_cycles_per_pixel():
    f_y, f_x = frequency_grid((6, 8))
    assert f_y.shape == (6, 1) and f_x.shape == (1, 8)
    np.testing.assert_array_equal(f_x[0].numpy(), np.fft.fftfreq(8))
    np.testing.assert_array_equal(f_y[:, 0].numpy(), np.fft.fftfreq(6))


def test_ramp_is_the_kak_slaney_ramp_close_to_two_abs_f():
    n = 256
    h = ramp_filter((3, n))
    assert h.shape == (3, n) and h.dtype == torch.float64
    assert torch.equal(h[0], h[2])  # constant along Y (1D filter along X)
    f = np.fft.fftfreq(n)
    # Kak & Slaney's discrete ramp equals 2|f| plus the aliased tail of the sampled
    # band-limited kernel: at most sum_{odd k > n/2} 4/(pi k)^2 ~ 4/(pi^2 n) ~ 1.6e-3.
    np.testing.assert_allclose(h[0].numpy(), 2 * np.abs(f), atol=4 / (math.pi**2 * n) + 1e-12)
    assert h[0, n // 2] == pytest.approx(1.0, abs=2e-3)  # 1 at Nyquist
    assert 0 < h[0, 0] < 4 / (math.pi**2 * n)  # small positive DC: no cupping


def test_ramp_is_exactly_the_fft_of_its_spatial_kernel():
    n = 64
    kernel = np.zeros(n)
    kernel[0] = 0.25
    for k in range(1, n):
        d = min(k, n - k)
        if d % 2:
            kernel[k] = -1 / (math.pi * d) ** 2
    expected = 2 * np.real(np.fft.fft(kernel))
    np.testing.assert_allclose(ramp_filter((1, n))[0].numpy(), expected, rtol=0, atol=1e-15)


def test_crowther_plateau_is_flat_above_the_crowther_frequency():
    n, fc = 128, 0.2
    h = ramp_filter((1, n), crowther_frequency=fc)[0].numpy()
    plain = ramp_filter((1, n))[0].numpy()
    f = np.abs(np.fft.fftfreq(n))
    above, below = f > fc + 2 / n, f < fc - 2 / n
    np.testing.assert_array_equal(h[above], 2 * fc)
    np.testing.assert_array_equal(h[below], plain[below])  # unchanged ramp below


@pytest.mark.parametrize(
    ("function", "window"),
    [
        (shepp_logan_filter, lambda f: np.sinc(f)),
        (cosine_filter, lambda f: np.cos(np.pi * f)),
        (hamming_filter, lambda f: 0.54 + 0.46 * np.cos(2 * np.pi * f)),
        (hann_filter, lambda f: 0.5 + 0.5 * np.cos(2 * np.pi * f)),
    ],
)
def test_windowed_ramps_are_ramp_times_window(function, window):
    shape = (4, 100)
    ramp = ramp_filter(shape)[0].numpy()
    for f in (0.0, 0.1, -0.23, 0.37, 0.5):
        i = index_of(f, shape[1])
        # float64 evaluation of the same closed forms: rounding only.
        assert function(shape)[2, i].item() == pytest.approx(ramp[i] * window(f), abs=1e-14)


def test_no_filter_is_one():
    assert torch.equal(no_filter((3, 5)), torch.ones(3, 5, dtype=torch.float64))


def approx_shrec_formula(fy: float, fx: float) -> float:
    gauss = math.exp(-(fx**2) / (2 * 0.34**2) - fy**2 / (2 * 0.20**2)) + 0.33
    ramp = min(abs(fx) / (0.61 * 0.5), 1.0)
    disc = 1.0 if fx**2 + fy**2 <= 0.25 else 0.0
    return gauss * ramp * disc


@pytest.mark.parametrize("shape", [(200, 200), (120, 200), (201, 77)])
def test_approx_shrec_equals_its_formula(shape):
    ny, nx = shape
    h = approx_shrec_filter(shape)
    assert h.shape == shape
    assert h.max().item() == 1.0  # divided by its maximum
    f_y, f_x = frequency_grid(shape)
    grid = np.array(
        [[approx_shrec_formula(fy, fx) for fx in f_x[0].tolist()] for fy in f_y[:, 0].tolist()]
    )
    peak = grid.max()
    for fy, fx in [(0.0, 0.1), (0.0, 0.3), (0.1, -0.4), (-0.2, 0.25), (0.45, 0.1), (0.3, 0.45)]:
        i, j = index_of(fy, ny), index_of(fx, nx)
        exact = approx_shrec_formula(f_y[i, 0].item(), f_x[0, j].item()) / peak
        assert h[i, j].item() == pytest.approx(exact, rel=1e-12, abs=1e-15)


def test_approx_shrec_zero_outside_the_disc_and_a_ramp_along_x():
    shape = (256, 256)
    h = approx_shrec_filter(shape).numpy()
    f_y, f_x = (g.numpy() for g in frequency_grid(shape))
    radius = np.sqrt(f_y**2 + f_x**2)
    assert np.all(h[radius > 0.5] == 0) and np.all(h[radius < 0.45] >= 0)
    assert np.all(h[:, 0] == 0)  # the ramp is 0 at f_x = 0, for every f_y

    # Along X (f_y = 0), below 0.61 Nyquist: linear ramp times the Gaussian's X profile,
    # compared as ratios so that the normalisation cancels.
    def along_x(fx: float) -> float:
        return (fx / 0.305) * (math.exp(-(fx**2) / (2 * 0.34**2)) + 0.33)

    j_ref = index_of(0.1, 256)
    for fx in (0.05, 0.2, 0.3):
        j = index_of(fx, 256)
        ratio = h[0, j] / h[0, j_ref]
        assert ratio == pytest.approx(along_x(f_x[0, j]) / along_x(f_x[0, j_ref]), rel=1e-12)
    # Above 0.61 Nyquist the ramp is flat: only the Gaussian decays.
    j1, j2 = index_of(0.35, 256), index_of(0.45, 256)
    gauss = [math.exp(-(f_x[0, j] ** 2) / (2 * 0.34**2)) + 0.33 for j in (j1, j2)]
    assert h[0, j2] / h[0, j1] == pytest.approx(gauss[1] / gauss[0], rel=1e-12)
    # Along Y (f_x fixed) it is not a ramp but the Gaussian decay: the tilt axis is Y.
    j = index_of(0.3, 256)
    assert h[index_of(0.2, 256), j] < h[0, j]
    # Maximum 1 on the f_y = 0 line at the ramp's end, where the Gaussian is largest.
    assert np.unravel_index(np.argmax(h), h.shape) == (0, index_of(0.305, 256))


def test_fourier_filter_by_name_and_bad_names():
    for name in FILTER_NAMES:
        h = fourier_filter(name, (8, 16))
        assert h.shape == (8, 16) and h.dtype == torch.float64
    with pytest.raises(ValueError, match="unknown filter 'ram-lak'"):
        fourier_filter("ram-lak", (8, 8))
    with pytest.raises(ValueError, match="ramp filter only"):
        fourier_filter("hann", (8, 8), crowther_frequency=0.2)
    with pytest.raises(ValueError, match="Crowther frequency"):
        ramp_filter((8, 8), crowther_frequency=0.7)


def test_padded_length_follows_iradon():
    assert [padded_length(n) for n in (1, 31, 32, 33, 256, 300)] == [64, 64, 64, 128, 512, 1024]


def test_filtering_rows_matches_a_plain_numpy_fft(rng):
    tilts = rng.standard_normal((3, 4, 50))
    out = filter_tilt_series(torch.from_numpy(tilts), "hann").numpy()
    n = padded_length(50)
    h = hann_filter((1, n))[0].numpy()
    expected = np.real(np.fft.ifft(np.fft.fft(tilts, n=n, axis=-1) * h, axis=-1))[..., :50]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_approx_shrec_filtering_is_2d_and_circular_without_padding(rng):
    tilts = rng.standard_normal((2, 24, 40))
    out = filter_tilt_series(torch.from_numpy(tilts), "approx-shrec", pad=False).numpy()
    h = approx_shrec_filter((24, 40)).numpy()
    expected = np.real(np.fft.ifft2(np.fft.fft2(tilts) * h))
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    padded = filter_tilt_series(torch.from_numpy(tilts), "approx-shrec").numpy()
    hp = approx_shrec_filter((padded_length(24), padded_length(40))).numpy()
    full = np.fft.ifft2(np.fft.fft2(tilts, s=hp.shape) * hp)
    np.testing.assert_allclose(padded, np.real(full)[:, :24, :40], rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_filtering_keeps_dtype_device_and_chunking_does_not_matter(dtype, device):
    tilts = torch.rand((5, 6, 20), dtype=dtype, device=device)
    whole = filter_tilt_series(tilts, "approx-shrec")
    chunked = filter_tilt_series(tilts, "approx-shrec", max_chunk_bytes=1)
    assert whole.dtype == dtype and whole.device == tilts.device and whole.shape == tilts.shape
    torch.testing.assert_close(chunked, whole)


def test_filtering_refuses_bad_input():
    with pytest.raises(ValueError, match="3-D"):
        filter_tilt_series(torch.zeros(4, 4), "ramp")
    with pytest.raises(ValueError, match="floating point"):
        filter_tilt_series(torch.zeros(2, 4, 4, dtype=torch.int64), "ramp")
    with pytest.raises(ValueError, match="unknown filter"):
        filter_tilt_series(torch.zeros(2, 4, 4), "sharpen")
