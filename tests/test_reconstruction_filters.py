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


# --- approx-SHREC against the authors' approxShrec -------------------------------------
# The oracle is a plain numpy transcription of the authors' function (paloha/faket,
# faket/filter.py: approxShrec with its helpers ramp1d, gauss2d, circular2d), built the way
# they build it: every factor centred at index n // 2 of an array, then np.fft.fftshift;
# the result is applied as np.real(ifft2(fft2(projection) * filter)).


def authors_ramp(size: int, crowther: int) -> np.ndarray:
    radius = np.abs(np.arange(size) - size // 2)
    ramp = np.minimum(radius / crowther, 1.0)
    return np.fft.fftshift(ramp)


def authors_disc(size: int, cutoff: int) -> np.ndarray:
    index = np.indices((size, size)) - size // 2
    radius = np.sqrt(index[0] ** 2 + index[1] ** 2)
    disc = np.where(radius >= cutoff + 1, 0.0, 1.0)
    return np.fft.fftshift(disc)


def authors_gauss(size: int, sigma_x: int, sigma_y: int) -> np.ndarray:
    y, x = np.mgrid[-size // 2 + 1 : size // 2 + 1, -size // 2 + 1 : size // 2 + 1]
    g = np.exp(-(x**2.0 / (2.0 * sigma_x**2.0) + y**2.0 / (2.0 * sigma_y**2.0)))
    return np.fft.fftshift(g)


def authors_approx_shrec(size_x: int, size_y: int) -> np.ndarray:
    """approxShrec(sizeX, sizeY): sizeX rows (the tilt axis), sizeY columns."""
    size = max(size_x, size_y)
    nyquist = size // 2
    g = authors_gauss(size, int(0.34 * size), int(0.20 * size)) + 0.33
    f = np.broadcast_to(authors_ramp(size, int(0.61 * nyquist)), (size, size))
    c = authors_disc(size, nyquist)
    out = f * g * c
    out = out / out.max()
    xs, ys = (size - size_x) // 2, (size - size_y) // 2
    return out[xs : xs + size_x, ys : ys + size_y]


def even_part(h: np.ndarray) -> np.ndarray:
    """(h(k) + h(-k)) / 2, k modulo the grid: what Re(ifft2(fft2(p) h)) applies to real p."""
    return 0.5 * (h + np.roll(h[::-1, ::-1], 1, axis=(0, 1)))


def authors_filtering(images: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.real(np.fft.ifft2(np.fft.fft2(images) * h))


@pytest.mark.parametrize("size", [64, 512, 1024])
def test_approx_shrec_is_the_authors_filter_on_even_square_grids(size):
    ours = approx_shrec_filter((size, size)).numpy()
    theirs = authors_approx_shrec(size, size)
    # The same closed forms on the same integer grid: rounding only.
    np.testing.assert_allclose(ours, even_part(theirs), rtol=0, atol=1e-15)
    # Their array itself is not even (the Gaussian peaks at k = (-1, -1)); the odd part
    # it carries is what the real part of the inverse FFT discards. Its size:
    odd = np.abs(theirs - ours).max()
    assert odd == pytest.approx({64: 0.0516, 512: 0.0063, 1024: 0.0032}[size], abs=1e-4)
    # Normalised before that symmetrisation, the even part peaks a little below 1.
    assert ours.max() == pytest.approx({64: 0.9698, 512: 0.9965, 1024: 0.9983}[size], abs=1e-4)


@pytest.mark.parametrize("shape", [(64, 64), (512, 512)])
def test_filtering_real_projections_is_the_authors_ifft2_real_part(rng, shape):
    tilts = rng.standard_normal((2, *shape))
    ours = filter_tilt_series(torch.from_numpy(tilts), "approx-shrec", pad=False).numpy()
    theirs = authors_filtering(tilts, authors_approx_shrec(*shape))
    # rfft2 with the even filter against fft2 with theirs: float64 FFT rounding only.
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("size", [63, 65])
def test_approx_shrec_on_odd_grids_is_the_authors_filter_centred_on_zero(size):
    ours = approx_shrec_filter((size, size)).numpy()
    theirs = authors_approx_shrec(size, size)
    # For odd sizes np.fft.fftshift moves index n // 2 to n - 1, not 0: the authors' whole
    # filter is centred on k = (-1, -1), so the zero frequency passes (1/c of the peak,
    # c = int(0.61 * (n // 2)) = 18 or 19 samples). Moved back by one sample, it is ours.
    np.testing.assert_allclose(ours, even_part(np.roll(theirs, 1, axis=(0, 1))), atol=1e-15)
    assert theirs[0, 0] > 0.05 and np.all(ours[:, 0] == 0)
    assert np.abs(theirs - ours).max() > 0.6  # the shifted disc edge and ramp


@pytest.mark.parametrize("shape", [(32, 64), (64, 32), (21, 63), (128, 256)])
def test_approx_shrec_on_non_square_grids_samples_the_square_filter(shape):
    ny, nx = shape
    size = max(shape)
    square = authors_approx_shrec(size, size)
    if size % 2:
        square = np.roll(square, 1, axis=(0, 1))  # centred on zero, as above
    ours = approx_shrec_filter(shape).numpy()
    # Each axis keeps its own frequencies, k = fftfreq(n) * size: an axis of size / m
    # pixels sees every m-th sample of the square grid (same cycles per pixel), and the
    # normalisation is the square grid's.
    expected = even_part(square)[:: size // ny, :: size // nx]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-15)


def test_the_authors_non_square_filter_drops_the_low_frequencies():
    # The authors cut the middle block out of the fft-ordered square array, i.e. the
    # highest frequencies of the shorter axis: for 64 x 32 the image's f_x = 0 column
    # gets the square filter's k_x = 16, so the mean of each row passes. Not reproduced.
    theirs = authors_approx_shrec(64, 32)
    ours = approx_shrec_filter((64, 32)).numpy()
    assert theirs[0, 0] > 0.5 and np.all(ours[:, 0] == 0)


@pytest.mark.parametrize(("size", "inside"), [(64, 4.5e-2), (512, 2.5e-3)])
def test_continuous_variant_differs_on_the_outer_ring_and_by_rounding(size, inside):
    reference = approx_shrec_filter((size, size)).numpy()
    continuous = approx_shrec_filter((size, size), variant="continuous").numpy()
    assert continuous.max() == 1.0 and np.allclose(continuous, even_part(continuous))
    k = np.fft.fftfreq(size) * size
    radius = np.hypot(k[:, None], k[None, :])
    ring = radius > size / 2
    # The reference keeps the samples with size/2 < |k| < size/2 + 1 (up to 0.67, the
    # filter near Nyquist); the continuous variant stops at Nyquist.
    assert np.all(continuous[ring] == 0)
    assert reference[ring].max() == pytest.approx(0.67, abs=0.03)
    assert np.count_nonzero(reference[ring]) >= 3 * size - 50
    # Inside the disc, rescaled to the same peak, only the rounding of the sigmas and the
    # ramp's end to whole samples (and the half-sample Gaussian offset) remain; measured
    # 4.3e-2 for 64, 2.5e-3 for 512 (and 1024).
    scaled = continuous * reference.max()
    assert np.abs(reference - scaled)[~ring].max() <= inside


def test_approx_shrec_variants_give_the_same_reconstruction():
    from faket.projection import project_tilt_series
    from faket.reconstruction import backproject_tilt_series

    z, y, x = np.mgrid[:32, :64, :64]
    phantom = np.zeros((32, 64, 64))
    for cz, cy, cx, r, value in [(16, 20, 20, 6, 1.0), (15, 40, 44, 4, 2.0), (17, 30, 50, 3, 1.5)]:
        phantom[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r] += value
    angles = np.arange(-60.0, 61.0, 3.0)
    projections = project_tilt_series(torch.from_numpy(phantom), angles)

    def reconstruct(h: np.ndarray) -> np.ndarray:
        filtered = torch.from_numpy(authors_filtering(projections.numpy(), h))
        return -backproject_tilt_series(filtered, angles, thickness=32).numpy()

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    theirs = reconstruct(authors_approx_shrec(64, 64))
    ours = reconstruct(approx_shrec_filter((64, 64)).numpy())
    continuous = reconstruct(approx_shrec_filter((64, 64), variant="continuous").numpy())
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12 * np.abs(theirs).max())
    # The ring and the rounding barely change a reconstruction (measured: correlation
    # 0.99986 between the two; with the phantom 0.8038 continuous, 0.8035 reference).
    assert corr(continuous, theirs) > 0.9995
    assert abs(corr(continuous, phantom) - corr(theirs, phantom)) < 2e-3


def test_approx_shrec_refuses_bad_variants_and_tiny_grids():
    with pytest.raises(ValueError, match="unknown approx-SHREC variant 'exact'"):
        approx_shrec_filter((8, 8), variant="exact")
    with pytest.raises(ValueError, match="at least 5 pixels"):
        approx_shrec_filter((4, 3))
    assert approx_shrec_filter((1, 5)).shape == (1, 5)


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
