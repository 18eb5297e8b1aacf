"""Noise statistics from a reference alone (faket.noise.unlabelled)."""

from __future__ import annotations

import math

import pytest
import torch

from faket.errors import FaketInputError
from faket.noise import estimate_tilt_stats, estimate_tilt_stats_unlabelled, radial_power_spectrum


def lowpass(x: torch.Tensor, width: float) -> torch.Tensor:
    """Filter the last two axes with a Gaussian of std ``width`` cycles/pixel in Fourier space."""
    fy = torch.fft.fftfreq(x.shape[-2], dtype=torch.float64)
    fx = torch.fft.fftfreq(x.shape[-1], dtype=torch.float64)
    gauss = torch.exp(-(fy[:, None] ** 2 + fx[None, :] ** 2) / (2 * width**2))
    return torch.fft.ifft2(torch.fft.fft2(x) * gauss).real


def standardise(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean((-2, -1), keepdim=True)) / x.std((-2, -1), correction=0, keepdim=True)


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def smooth_field(n_tilts: int, n: int, seed: int) -> torch.Tensor:
    """Standardised smooth random images whose spectrum is ~0 above 0.25 cycles/pixel."""
    return standardise(lowpass(randn(n_tilts, n, n, seed=seed), 0.04))


R_TRUE = torch.tensor([0.3, 0.6, 0.9], dtype=torch.float64)
SIGMA_TRUE = torch.sqrt(1 - R_TRUE**2)
MEAN_TRUE = torch.tensor([5.0, -2.0, 100.0], dtype=torch.float64)
STD_TRUE = torch.tensor([2.0, 0.5, 20.0], dtype=torch.float64)


def per_tilt(v: torch.Tensor) -> torch.Tensor:
    return v[:, None, None]


def synthetic_reference(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(reference, signal): P = (r S + sigma N) * std + mean, with white N."""
    s = smooth_field(3, n, seed)
    p = per_tilt(R_TRUE) * s + per_tilt(SIGMA_TRUE) * randn(3, n, n, seed=seed + 1)
    return p * per_tilt(STD_TRUE) + per_tilt(MEAN_TRUE), s


# --- radial_power_spectrum -----------------------------------------------------------------


def test_white_noise_spectrum_is_flat_at_its_variance():
    x = 2.0 * randn(4, 128, 128, seed=0)
    freqs, power = radial_power_spectrum(x, tile=32)
    assert power.shape == (4, freqs.shape[0]) and power.dtype == torch.float64
    band = (freqs >= 0.1) & (freqs <= 0.5)
    # 4 images x 49 half-overlapping 32^2 tiles x ~400 independent samples per tile and
    # ring: the mean over the band has a relative sd of ~1 %; 4 % is four of them.
    assert abs(power[:, band].mean().item() / 4.0 - 1) < 0.04
    # Single rings hold 25 to 100 samples per tile: relative sd up to ~5 %; 25 % bound.
    assert (power[:, band].mean(0) / 4.0 - 1).abs().max() < 0.25


def test_frequencies_are_in_cycles_per_pixel():
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    freqs, power = radial_power_spectrum(torch.cos(2 * math.pi * 0.25 * xx), tile=None)
    assert freqs[power.argmax()] == 0.25
    diagonal = torch.cos(2 * math.pi * (0.125 * xx + 0.125 * yy))  # |f| = 0.177
    freqs, power = radial_power_spectrum(diagonal, tile=None)
    assert abs(freqs[power.argmax()] - 0.125 * math.sqrt(2)) <= 0.5 / 64  # half a bin
    assert freqs[0] == 0 and bool((freqs.diff() > 0).all())
    assert freqs[-1] <= 0.5 * math.sqrt(2) + 0.5 / 64


def test_spectrum_shapes_and_scaling():
    x = randn(2, 3, 40, 50, seed=1)
    freqs, power = radial_power_spectrum(x, tile=16)
    assert power.shape == (2, 3, freqs.shape[0])
    _, power9 = radial_power_spectrum(3.0 * x + 7.0, tile=16)  # power scales with amplitude^2
    torch.testing.assert_close(power9[..., 1:], 9.0 * power[..., 1:])
    f2, p2 = radial_power_spectrum(x[0, 0].float(), tile=16)
    assert p2.shape == f2.shape and p2.dtype == torch.float64


def test_smooth_field_spectrum_decays():
    freqs, power = radial_power_spectrum(smooth_field(2, 64, seed=2), tile=None)
    low = power[:, (freqs > 0) & (freqs < 0.05)].mean()
    high = power[:, (freqs > 0.35) & (freqs < 0.5)].mean()
    # Hann leakage and the Gaussian (exp(-f^2/0.0016) in power at 0.35) leave ~nothing.
    assert high < 1e-8 * low


# --- estimate_tilt_stats_unlabelled --------------------------------------------------------


def test_recovers_known_sigma_and_r():
    p, s = synthetic_reference(128, seed=3)
    stats = estimate_tilt_stats_unlabelled(p.float(), tile=64, tilt_angles_deg=[-3, 0, 3])
    assert stats.method == "unlabelled" and stats.tilt_angles_deg.tolist() == [-3.0, 0.0, 3.0]
    # The band (0.35-0.475 cycles/pixel) of 9 half-overlapping 64^2 Hann tiles holds ~1300
    # Fourier samples per tile, about 1700 effectively independent ones per tilt: the noise
    # variance has a relative sd of ~2.5 %, sigma ~1.3 %. Tolerance 0.04 (3 sd).
    assert (stats.sigma - SIGMA_TRUE).abs().max() < 0.04
    # r = sqrt(1 - sigma^2) magnifies the error by sigma / r (3.2 at r = 0.3): 0.04 * 3.2.
    assert ((stats.r - R_TRUE).abs() < 0.04 * SIGMA_TRUE / R_TRUE + 0.01).all()
    # mean and std are measured directly: sampling error only.
    torch.testing.assert_close(stats.mean, MEAN_TRUE, rtol=0, atol=0.05 * 20)
    torch.testing.assert_close(stats.std, STD_TRUE, rtol=0.05, atol=0)
    # The paired estimator on the same data is an order of magnitude more precise.
    paired = estimate_tilt_stats(p, s)
    assert (paired.sigma - SIGMA_TRUE).abs().max() < 5 / 128


def test_r_squared_plus_sigma_squared_is_one():
    p, _ = synthetic_reference(64, seed=4)
    stats = estimate_tilt_stats_unlabelled(p, tile=32)
    torch.testing.assert_close(stats.r**2 + stats.sigma**2, torch.ones(3, dtype=torch.float64))


def test_edge_discontinuities_do_not_leak_into_the_band():
    # A steep ramp is far from periodic: an unwindowed FFT sees a jump at the borders.
    p, _ = synthetic_reference(128, seed=5)
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    ramp = (xx + 0.5 * yy) / 128
    p = p + 50.0 * per_tilt(STD_TRUE) * ramp
    std = p.std((-2, -1), correction=0)
    truth = SIGMA_TRUE * STD_TRUE / std  # the noise level relative to the new std
    stats = estimate_tilt_stats_unlabelled(p, tile=64)
    assert (stats.sigma - truth).abs().max() < 0.04 * truth.max()  # relative, as above
    # Sanity of the test: without a window the same band reads at least twice too much.
    spectrum = torch.fft.fft2(p - p.mean((-2, -1), keepdim=True)).abs() ** 2 / 128**2
    f = torch.fft.fftfreq(128, dtype=torch.float64)
    nyq = torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2) / 0.5
    naive = spectrum[:, (nyq >= 0.7) & (nyq <= 0.95)].mean(1).sqrt() / std
    assert (naive > 2 * truth).all(), naive / truth


def test_pure_noise_and_pure_signal_limits():
    noise = randn(2, 64, 64, seed=6) * 3 + 1
    stats = estimate_tilt_stats_unlabelled(noise, tile=32)
    assert bool(((stats.sigma - 1).abs() < 0.05).all()) and bool((stats.sigma <= 1).all())
    assert bool(torch.isfinite(stats.r).all()) and bool((stats.r >= 0).all())
    signal = smooth_field(2, 64, seed=7) * 3 + 1
    stats = estimate_tilt_stats_unlabelled(signal, tile=32)
    assert bool((stats.sigma < 1e-3).all()) and bool((stats.r > 0.999).all())


def test_coloured_noise_biases_sigma_low():
    # The documented failure: noise damped at high frequency (a detector MTF) reads low.
    n = 64
    white_noise = randn(2, n, n, seed=8)
    damped = standardise(lowpass(white_noise, 0.3))  # power at 0.4 c/px down by e^-1.8
    sigma_white = estimate_tilt_stats_unlabelled(standardise(white_noise), tile=32).sigma
    sigma_damped = estimate_tilt_stats_unlabelled(damped, tile=32).sigma
    # After re-standardising, the band reads ~20 % low (0.77-0.80 here); bound at 10 %.
    assert bool((sigma_damped < 0.9 * sigma_white).all())


def test_unlabelled_errors():
    p, _ = synthetic_reference(32, seed=9)
    with pytest.raises(ValueError, match="0 < low < high <= 1"):
        estimate_tilt_stats_unlabelled(p, high_freq_band=(0.9, 0.5))
    with pytest.raises(ValueError, match="0 < low < high <= 1"):
        estimate_tilt_stats_unlabelled(p, high_freq_band=(0.5, 1.2))
    with pytest.raises(ValueError, match="tile must be an integer"):
        estimate_tilt_stats_unlabelled(p, tile=2)
    with pytest.raises(ValueError, match="no Fourier sample"):
        estimate_tilt_stats_unlabelled(p, tile=4, high_freq_band=(0.75, 0.95))
    q = p.clone()
    q[1] = 3.0
    with pytest.raises(FaketInputError, match=r"tilt\(s\) \[1\] are constant"):
        estimate_tilt_stats_unlabelled(q)
    with pytest.raises(FaketInputError, match="tilt-series of shape"):
        estimate_tilt_stats_unlabelled(p[0])
