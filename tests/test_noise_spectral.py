"""The spectral noise model (faket.noise.spectral*): estimate, aggregate, generate.

Oracles are written here with numpy: synthetic pairs built with numpy FFTs, ring means
over numpy's Fourier grid, np.interp for radial curves, np.polyfit for the fits.

Statistical tolerances: a ring mean over ``m`` samples of the full Fourier grid averages
``m / 2`` independent complex samples (a real image's spectrum is Hermitian). With noise
power ``N`` and signal power ``S`` in the ring,
- the transfer estimate ``T = <Re(R C*)> / <|C|^2>`` has standard error
  ``sqrt(N / (m S))``;
- a noise power estimate has standard error ``N sqrt(2 / m)`` (``|n|^2`` is exponential,
  std = mean) and a bias of about ``-2 N / m`` (one parameter fitted per ring).
Tests allow 5 standard errors per ring (the data are seeded; 5 sigma makes a false alarm
over a few hundred rings improbable for any seed).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from faket.noise import (
    TiltSpectra,
    TiltStats,
    aggregate_tilt_spectra,
    aggregate_tilt_stats,
    apply_noise,
    apply_spectral_noise,
    common_frequency_grid,
    estimate_tilt_spectra,
    estimate_tilt_stats,
    make_modality,
    radial_filter,
)

N_TILTS, N = 4, 96
DEFOCI = (10.0, 12.0, 14.0, 16.0)  # per tilt, in the units of ctf() below


def radius(ny: int, nx: int) -> np.ndarray:
    """Full-grid Fourier radius in cycles/pixel (numpy's FFT order)."""
    return np.hypot(np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :])


def ctf(k: np.ndarray, defocus: float) -> np.ndarray:
    """A CTF-like transfer: sign flips at radii sqrt((m - 0.3 / pi) / defocus)."""
    return -np.sin(np.pi * defocus * k**2 + 0.3) * np.exp(-((k / 0.6) ** 2))


def noise_power(k: np.ndarray) -> np.ndarray:
    """A coloured noise power spectrum: low-pass (Lorentzian) plus a white floor."""
    return 0.3 / (1.0 + (k / 0.15) ** 2) + 0.05


def default_grid(n: int) -> np.ndarray:
    """The estimator's default rings for an n x n image: k / n up to the grid's corner."""
    return np.arange(0, round(0.5 * np.sqrt(2) * n) + 1) / n


def filtered_white(rng: np.random.Generator, shape: tuple, gain: np.ndarray) -> np.ndarray:
    return np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * gain).real


def standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean((-2, -1), keepdims=True)) / x.std((-2, -1), keepdims=True)


def broadband(rng: np.random.Generator, n_tilts: int = N_TILTS, n: int = N) -> np.ndarray:
    """Standardised smooth images with power ~ 1 / (1 + (k / 0.1)^2): broadband."""
    k = radius(n, n)
    return standardise(filtered_white(rng, (n_tilts, n, n), 1.0 / np.sqrt(1 + (k / 0.1) ** 2)))


def ring_means(values: np.ndarray, freq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``(..., ny, nx)`` full-grid values per ring of ``freq`` (DC left out)."""
    ny, nx = values.shape[-2:]
    width = freq[1]
    # Half-way radii go to the outer ring (as the package documents).
    index = np.maximum(np.floor(radius(ny, nx) / width + 0.5 + 1e-9).astype(int), 1).ravel()
    index[0] = 0  # DC
    counts = np.bincount(index, minlength=freq.size).astype(float)
    flat = values.reshape(*values.shape[:-2], -1)
    sums = np.stack([np.bincount(index, weights=row, minlength=freq.size) for row in flat])
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts, counts


def synthetic_pair(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """R = T_i * C + coloured noise per tilt i, built with numpy FFTs (periodic)."""
    c = broadband(rng)
    k = radius(N, N)
    gain = np.stack([ctf(k, d) for d in DEFOCI])
    signal = np.fft.ifft2(np.fft.fft2(c) * gain).real
    reference = signal + filtered_white(rng, c.shape, np.sqrt(noise_power(k)))
    return {"noiseless": c, "reference": reference * 3.0 + 7.0}


# --- estimation -----------------------------------------------------------------------


def test_estimator_recovers_sign_flipping_transfer_and_coloured_noise(rng, device):
    pair = synthetic_pair(rng)
    ref, c = pair["reference"], pair["noiseless"]
    spectra = estimate_tilt_spectra(
        torch.from_numpy(ref).to(device),
        torch.from_numpy(c).to(device),
        taper=0.0,  # the construction is periodic: no window is the exact estimator
        smooth_bins=0,
    )
    assert spectra.transfer.device.type == device.type
    f = spectra.frequency.cpu().numpy()
    assert f[0] == 0.0 and np.allclose(np.diff(f), 1 / N)
    assert f[-1] >= 0.5 * np.sqrt(2) - 0.5 / N  # the grid reaches the corner
    # Truth in units of the standardised reference (C is standardised already).
    sd = (ref / 3.0).std((-2, -1))[:, None]
    t_true = np.stack([ctf(f, d) for d in DEFOCI]) / sd
    n_true = noise_power(f)[None] / sd**2
    s_cc, m = ring_means(np.abs(np.fft.fft2(c, norm="ortho")) ** 2, f)
    ring = slice(1, None)
    t_err = np.sqrt(n_true / (m * s_cc))
    got_t = spectra.transfer.cpu().numpy()
    assert np.all(np.abs(got_t - t_true)[:, ring] < 5 * t_err[:, ring])
    n_se = n_true * np.sqrt(2 / m) + 2 * n_true / m
    got_n = spectra.noise_power.cpu().numpy()
    assert np.all(np.abs(got_n - n_true)[:, ring] < 5 * n_se[:, ring])
    # The sign flips are resolved: T changes sign where the CTF does (away from zeros).
    clear = np.abs(t_true) > 5 * t_err
    assert np.array_equal(np.sign(got_t[clear]), np.sign(t_true[clear]))
    assert (t_true[clear] < 0).any() and (t_true[clear] > 0).any()
    # DC bin: a copy of the first ring.
    assert np.array_equal(got_t[:, 0], got_t[:, 1])


def test_default_settings_on_a_non_periodic_crop(rng):
    """Defaults (Tukey taper 0.1, [1, 2, 1] smoothing) on a crop of a larger image.

    The crop's content does not obey the periodic relation at its borders. Tolerance:
    5 standard errors per ring, where the smoothing averages three rings with weights
    [1, 2, 1] / 4 (variance x 6 / 16, i.e. ~2.7 times the samples). Measured over four
    seeds: the largest error is 3.9 standard errors (T) and 3.3 (N).
    """
    big, n, d = 2 * N, N, 12.0
    k = radius(big, big)
    c_big = filtered_white(rng, (N_TILTS, big, big), 1.0 / np.sqrt(1 + (k / 0.1) ** 2))
    signal = np.fft.ifft2(np.fft.fft2(c_big) * ctf(k, d)).real
    r_big = signal + filtered_white(rng, c_big.shape, np.sqrt(noise_power(k)))
    crop = (slice(None), slice(big // 4, big // 4 + n), slice(big // 4, big // 4 + n))
    c, ref = c_big[crop], r_big[crop]
    spectra = estimate_tilt_spectra(torch.from_numpy(ref), torch.from_numpy(c))
    f = spectra.frequency.numpy()
    sd_c, sd_r = c.std((-2, -1))[:, None], ref.std((-2, -1))[:, None]
    t_true = ctf(f, d)[None] * sd_c / sd_r  # in standardised units
    n_true = noise_power(f)[None] / sd_r**2
    s_cc, m = ring_means(np.abs(np.fft.fft2(standardise(c), norm="ortho")) ** 2, f)
    m_eff = 16 / 6 * m
    band = (f > 0.02) & (f < 0.5)
    t_se = np.sqrt(n_true / (m_eff * s_cc))
    assert np.all(np.abs(spectra.transfer.numpy() - t_true)[:, band] < 5 * t_se[:, band])
    n_se = n_true * np.sqrt(2 / m_eff) + 2 * n_true / m
    assert np.all(np.abs(spectra.noise_power.numpy() - n_true)[:, band] < 5 * n_se[:, band])


def test_white_noise_and_identity_transfer_match_the_published_scalars(rng):
    c = broadband(rng)
    ref = c + 0.8 * rng.standard_normal(c.shape)
    stats = estimate_tilt_stats(torch.from_numpy(ref), torch.from_numpy(c), spectra=True)
    plain = estimate_tilt_stats(torch.from_numpy(ref), torch.from_numpy(c))
    for field in ("r", "sigma", "mean", "std"):  # asking for spectra changes nothing else
        assert torch.equal(getattr(stats, field), getattr(plain, field)), field
    spectra = stats.spectra
    assert spectra is not None
    f = spectra.frequency.numpy()
    s_cc, m = ring_means(np.abs(np.fft.fft2(c, norm="ortho")) ** 2, f)
    r, sigma = plain.r.numpy()[:, None], plain.sigma.numpy()[:, None]
    # The default [1, 2, 1] / 4 smoothing: variance x 6 / 16 (see the test above).
    ring = slice(1, None)
    t_err = np.sqrt(sigma**2 / (16 / 6 * m * s_cc))
    assert np.all(np.abs(spectra.transfer.numpy() - r)[:, ring] < 5 * t_err[:, ring])
    n_se = sigma**2 * (np.sqrt(2 / (16 / 6 * m)) + 2 / m)
    assert np.all(np.abs(spectra.noise_power.numpy() - sigma**2)[:, ring] < 5 * n_se[:, ring])


def test_rings_reproduce_the_scalar_statistics_exactly(rng):
    """Parseval: with no window and no smoothing, r = sum T S_cc / n_px and var(R) = 1."""
    pair = synthetic_pair(rng)
    c = pair["noiseless"][:, :, :80]  # non-square: rings of the shorter side
    ref = pair["reference"][:, :, :80]
    stats = estimate_tilt_stats(torch.from_numpy(ref), torch.from_numpy(c))
    spectra = estimate_tilt_spectra(
        torch.from_numpy(ref), torch.from_numpy(c), taper=0.0, smooth_bins=0
    )
    f = spectra.frequency.numpy()
    s_cc, m = ring_means(np.abs(np.fft.fft2(standardise(c), norm="ortho")) ** 2, f)
    t, n_k = spectra.transfer.numpy(), spectra.noise_power.numpy()
    ring = slice(1, None)
    n_px = c.shape[-1] * c.shape[-2]
    r_rings = (t * s_cc * m)[:, ring].sum(1) / n_px
    np.testing.assert_allclose(r_rings, stats.r.numpy(), rtol=0, atol=1e-12)
    var = ((t**2 * s_cc + n_k) * m)[:, ring].sum(1) / n_px
    np.testing.assert_allclose(var, 1.0, rtol=0, atol=1e-12)


def test_estimator_refuses_bad_inputs():
    good = torch.randn(2, 16, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match="bin_width"):
        estimate_tilt_spectra(good, good, bin_width=0.01)
    with pytest.raises(ValueError, match="taper"):
        estimate_tilt_spectra(good, good, taper=2.0)
    with pytest.raises(ValueError, match="smooth_bins"):
        estimate_tilt_spectra(good, good, smooth_bins=-1)
    flat = good.clone()
    flat[1] = 3.0
    with pytest.raises(ValueError, match=r"noiseless tilt\(s\) \[1\] are constant"):
        estimate_tilt_spectra(good, flat)


# --- the container --------------------------------------------------------------------


def test_tilt_spectra_validates_and_tilt_stats_keeps_old_calls():
    f = [0.0, 0.25, 0.5]
    ok = TiltSpectra(f, [[1.0, 0.5, -0.2]], [[0.1, 0.2, 0.0]])
    assert ok.n_tilts == 1 and ok.n_bins == 3 and ok.transfer.dtype == torch.float64
    for bad, match in (
        (dict(frequency=[0.1, 0.2, 0.3]), "start at 0"),
        (dict(frequency=[0.0, 0.3, 0.2]), "increase strictly"),
        (dict(noise_power=[[0.1, -0.2, 0.0]]), ">= 0"),
        (dict(transfer=[[1.0, float("nan"), 0.0]]), "NaN"),
        (dict(transfer=[[1.0, 0.0]]), "shape"),
    ):
        fields = dict(frequency=f, transfer=[[1.0, 0.5, -0.2]], noise_power=[[0.1, 0.2, 0.0]])
        with pytest.raises(ValueError, match=match):
            TiltSpectra(**{**fields, **bad})
    positional = TiltStats([0.5], [0.8], [1.0], [2.0], None, "paired", "x")
    assert positional.spectra is None
    with pytest.raises(ValueError, match="spectra describe 1 tilts"):
        TiltStats([0.5, 0.4], [0.8, 0.9], [1.0, 1.0], [2.0, 2.0], spectra=ok)


# --- generation -----------------------------------------------------------------------


def known_stats(f: np.ndarray, n_tilts: int = N_TILTS) -> TiltStats:
    spectra = TiltSpectra(
        frequency=f,
        transfer=np.stack([ctf(f, d) for d in DEFOCI[:n_tilts]]),
        noise_power=np.stack([noise_power(f)] * n_tilts),
    )
    return TiltStats(
        r=[0.5] * n_tilts,
        sigma=[0.8] * n_tilts,
        mean=np.linspace(-3.0, 5.0, n_tilts),
        std=np.linspace(0.5, 2.0, n_tilts),
        spectra=spectra,
    )


def numpy_generation(c: np.ndarray, stats: TiltStats, white: np.ndarray, scale: float):
    """The spectral model written plainly (periodic filters), pre-standardisation parts."""
    sp = stats.spectra
    f = sp.frequency.numpy()
    k = radius(*c.shape[-2:])
    gain_t = np.stack([np.interp(k, f, row) for row in sp.transfer.numpy()])
    gain_n = np.stack([np.interp(k, f, np.sqrt(row)) for row in sp.noise_power.numpy()])
    signal = np.fft.ifft2(np.fft.fft2(standardise(c)) * gain_t).real
    noise = scale * np.fft.ifft2(np.fft.fft2(white) * gain_n).real
    return signal, noise


@pytest.mark.parametrize("part_values", [1, 2**24])  # parts of one tilt; the whole stack
def test_generation_matches_a_plain_numpy_construction(rng, device, monkeypatch, part_values):
    import faket.noise.generate as generate

    monkeypatch.setattr(generate, "_PART_VALUES", part_values)
    c = broadband(rng)
    f = np.arange(0, 0.72, 1 / 40)  # a coarser grid than the image's: interpolation
    stats = known_stats(f)
    seed = 11
    generator = torch.Generator(device).manual_seed(seed)  # drawn as apply_noise draws it
    white = torch.randn(c.shape, generator=generator, device=device, dtype=torch.float64)
    out = apply_spectral_noise(torch.from_numpy(c).to(device), stats, seed=seed, pad=0.0)
    signal, noise = numpy_generation(c, stats, white.cpu().numpy(), 1.0)
    expected = standardise(signal + noise) * stats.std.numpy()[:, None, None]
    expected += stats.mean.numpy()[:, None, None]
    # float64 FFTs of O(1) values: agreement to ~1e-15; 1e-9 leaves room for cuFFT.
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=0, atol=1e-9)
    assert out.dtype == torch.float64 and out.device.type == device.type


def test_generation_reproduces_the_spectra(rng):
    """Re-estimate T and N from generated data; check the residual's power against N."""
    c = broadband(rng)
    f = default_grid(N)  # the estimator's grid
    stats = known_stats(f)
    out = apply_spectral_noise(torch.from_numpy(c), stats, seed=3, pad=0.0).numpy()
    z = (out - stats.mean.numpy()[:, None, None]) / stats.std.numpy()[:, None, None]
    # Expected levels: the output is x / std(x) with x = T-filtered signal + noise.
    k = radius(N, N)
    gain_t = np.stack([np.interp(k, f, ctf(f, d)) for d in DEFOCI])
    signal = np.fft.ifft2(np.fft.fft2(c) * gain_t).real  # c is standardised
    noise_var = noise_power(k).ravel()[1:].mean()  # expected, DC excluded
    # Residual power, directly: regress the signal out, rescale by the expected std(x).
    s_std = standardise(signal)
    a = (z * s_std).mean((-2, -1), keepdims=True)
    residual = z - a * s_std
    s_x = np.sqrt(noise_var / (1 - a**2))  # var(residual) = noise_var / var(x) = 1 - a^2
    p_res, m = ring_means(np.abs(np.fft.fft2(residual * s_x, norm="ortho")) ** 2, f)
    n_true = noise_power(f)[None]
    ring = slice(2, None)  # ring 1 has 4 samples: the regression removes a visible share
    # 5 sigma per ring, the one-parameter bias 2 N / m, and 3 % for the expected-vs-drawn
    # noise variance in s_x (the coloured field has few effective degrees of freedom).
    tol = 5 * n_true * np.sqrt(2 / m) + 2 * n_true / m + 0.03 * n_true
    assert np.all(np.abs(p_res - n_true)[:, ring] < tol[:, ring])
    # And the estimator (validated above) finds T / std(x) and N / var(x) again.
    est = estimate_tilt_spectra(
        torch.from_numpy(out), torch.from_numpy(c), taper=0.0, smooth_bins=0
    )
    sd_x = s_x[:, :, 0]
    s_cc, _ = ring_means(np.abs(np.fft.fft2(c, norm="ortho")) ** 2, f)
    t_true = np.stack([ctf(f, d) for d in DEFOCI]) / sd_x
    t_err = np.sqrt(n_true / sd_x**2 / (m * s_cc))
    assert np.all(
        np.abs(est.transfer.numpy() - t_true)[:, 1:]
        < 5 * t_err[:, 1:] + 0.03 * np.abs(t_true)[:, 1:]
    )
    n_est = est.noise_power.numpy() * sd_x**2
    assert np.all(np.abs(n_est - n_true)[:, ring] < tol[:, ring])


def residuals(out: torch.Tensor, clean: torch.Tensor) -> np.ndarray:
    """Output minus its best-scaled signal part (both standardised per tilt)."""
    z, s = standardise(out.double().numpy()), standardise(clean.double().numpy())
    return z - (z * s).mean((-2, -1), keepdims=True) * s


def correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (standardise(a) * standardise(b)).mean((-2, -1))


def test_noisy_and_content_share_their_noise_field_in_both_models(rng):
    c = torch.from_numpy(broadband(rng)).float()
    stats = known_stats(default_grid(N))
    signal_only = apply_spectral_noise(c, stats, sigma_scale=0.0, seed=5)
    noisy = apply_spectral_noise(c, stats, sigma_scale=1.0, seed=5)
    content = apply_spectral_noise(c, stats, sigma_scale=0.25, seed=5)
    # The residual after regressing out the (identical) signal part is the scaled field.
    assert np.all(
        correlation(residuals(noisy, signal_only), residuals(content, signal_only)) > 0.99
    )
    other = apply_spectral_noise(c, stats, sigma_scale=1.0, seed=6)
    assert np.all(
        np.abs(correlation(residuals(noisy, signal_only), residuals(other, signal_only))) < 0.1
    )
    # The published model: same seed, same field (its signal part is r * standardise(c)).
    noisy_p = apply_noise(c, stats, sigma_scale=1.0, seed=5)
    content_p = apply_noise(c, stats, sigma_scale=0.25, seed=5)
    assert np.all(correlation(residuals(noisy_p, c), residuals(content_p, c)) > 0.99)


def test_flat_spectra_reproduce_the_published_model(rng):
    c = torch.from_numpy(broadband(rng)).float()
    r = torch.tensor([0.3, 0.5, 0.7, 0.9], dtype=torch.float64)
    sigma = torch.sqrt(1 - r**2)
    f = torch.arange(0, 0.75, 0.05, dtype=torch.float64)
    flat = TiltSpectra(
        f, r[:, None].expand(-1, f.numel()), (sigma**2)[:, None].expand(-1, f.numel())
    )
    stats = TiltStats(r=r, sigma=sigma, mean=[1.0, 2.0, 3.0, 4.0], std=[1.0] * 4, spectra=flat)
    for scale in (1.0, 0.25):
        published = apply_noise(c, stats, sigma_scale=scale, seed=9)
        spectral = apply_spectral_noise(c, stats, sigma_scale=scale, seed=9)  # padded
        # float32 FFT round trips: ~1e-6 of the unit std
        torch.testing.assert_close(spectral, published, rtol=0, atol=2e-5)


def test_radial_filter_padding_keeps_flat_gains_exact_and_reduces_wrap_error(rng):
    big, n = 4 * 64, 64
    k = radius(big, big)
    steep = 1.0 / (1 + (k / 0.02) ** 2)  # amplitude ~ k^-2 (power ~ k^-4), like projections
    c_big = filtered_white(rng, (3, big, big), steep)
    centre = slice(big // 2 - n // 2, big // 2 + n // 2)
    sl = (slice(None), centre, centre)
    truth = np.fft.ifft2(np.fft.fft2(c_big) * ctf(k, 12.0)).real[sl]
    c = torch.from_numpy(c_big[sl].copy())
    f = torch.linspace(0, 0.75, 301, dtype=torch.float64)
    gain = torch.from_numpy(ctf(f.numpy(), 12.0))[None].expand(3, -1)
    border = np.zeros((n, n), bool)
    border[:6], border[-6:], border[:, :6], border[:, -6:] = True, True, True, True

    def border_error(pad: float) -> float:
        err = radial_filter(c, gain, f, pad=pad).numpy() - truth
        return float(np.sqrt((err[:, border] ** 2).mean()))

    # Smooth content (power ~ k^-4, like projections): measured over three seeds, the
    # rms error in the 6-pixel border is 0.43-0.54 of the signal's std with wrap-around
    # and 0.15-0.18 with reflect padding (what lies outside the crop is unknowable).
    assert border_error(0.25) < 0.5 * border_error(0.0)
    ones = torch.ones(3, f.numel(), dtype=torch.float64)
    torch.testing.assert_close(radial_filter(c, ones, f, pad=0.25), c, rtol=0, atol=1e-12)


def test_apply_spectral_noise_refuses_bad_inputs():
    c = torch.randn(N_TILTS, 16, 16)
    stats = known_stats(np.arange(0, 0.72, 1 / 16))
    with pytest.raises(ValueError, match="no spectra"):
        apply_spectral_noise(c, dataclasses.replace(stats, spectra=None), seed=0)
    with pytest.raises(ValueError, match="sigma_scale"):
        apply_spectral_noise(c, stats, seed=0, sigma_scale=-1.0)
    with pytest.raises(ValueError, match="pad"):
        apply_spectral_noise(c, stats, seed=0, pad=0.9)
    with pytest.raises(ValueError, match="tilts"):
        apply_spectral_noise(c[:2], stats, seed=0)


# --- aggregation ----------------------------------------------------------------------


def quadratic_spectra(n: int, coef: np.ndarray, angles: np.ndarray) -> TiltSpectra:
    """Curves (c0 + c1 a + c2 a^2) * (1 + 2 f) on the default ring grid of an n x n image."""
    f = default_grid(n)
    poly = coef[0] + coef[1] * angles + coef[2] * angles**2
    t = poly[:, None] * (1 + 2 * f)[None]
    return TiltSpectra(f, t, np.abs(t) + 0.1)


def test_aggregation_recovers_a_quadratic_in_angle_on_a_common_grid():
    a64 = np.linspace(-60.0, 60.0, 7)
    a96 = a64 + 1.0  # slightly different angles; evaluated at their mean
    c64, c96 = np.array([0.5, 1e-3, -5e-5]), np.array([0.3, -2e-3, 1e-4])
    sp = [quadratic_spectra(64, c64, a64), quadratic_spectra(96, c96, a96)]
    grid = common_frequency_grid(sp).numpy()
    assert np.allclose(np.diff(grid), 1 / 96) and grid[-1] >= sp[0].frequency[-1].item()
    out = aggregate_tilt_spectra(sp, 2, tilt_angles_deg=[a64, a96])
    at = (a64 + a96) / 2
    # Oracle: each tomogram's exact quadratic at the mean angles, its frequency profile
    # linearly interpolated (np.interp, ends held) onto the common grid; then the mean.
    expected = np.zeros((at.size, grid.size))
    for s, coef in zip(sp, (c64, c96), strict=True):
        poly = coef[0] + coef[1] * at + coef[2] * at**2
        profile = np.interp(grid, s.frequency.numpy(), (1 + 2 * s.frequency.numpy()))
        expected += poly[:, None] * profile[None] / 2
    np.testing.assert_allclose(out.transfer.numpy(), expected, rtol=0, atol=1e-10)
    assert out.frequency.shape == (grid.size,) and out.n_tilts == at.size
    # Order 0: one spectrum, the mean over tilts and tomograms.
    flat = aggregate_tilt_spectra(sp, 0, tilt_angles_deg=[a64, a96])
    mean = np.mean(
        [np.interp(grid, s.frequency.numpy(), row) for s in sp for row in s.transfer.numpy()],
        axis=0,
    )
    np.testing.assert_allclose(
        flat.transfer.numpy(), np.broadcast_to(mean, flat.transfer.shape), atol=1e-12
    )


def test_aggregation_fits_over_the_angle_not_the_index():
    """Unevenly spaced angles: a quadratic in angle is not one in the index."""
    angles = np.array([-60.0, -30.0, -10.0, 0.0, 5.0, 20.0, 60.0])
    coef = np.array([0.2, 0.01, 2e-4])
    sp = quadratic_spectra(32, coef, angles)
    base = dict(r=[0.5] * 7, sigma=[0.8] * 7, mean=[0.0] * 7, std=[1.0] * 7)
    with_angles = TiltStats(**base, tilt_angles_deg=angles, spectra=sp)
    out = aggregate_tilt_stats([with_angles], 2).spectra
    np.testing.assert_allclose(out.transfer.numpy(), sp.transfer.numpy(), atol=1e-10)
    by_index = aggregate_tilt_stats([TiltStats(**base, spectra=sp)], 2).spectra
    assert not np.allclose(by_index.transfer.numpy(), sp.transfer.numpy(), atol=1e-3)
    # Spectra are carried only when every tomogram has them.
    assert aggregate_tilt_stats([with_angles, TiltStats(**base)], 2).spectra is None


def test_make_modality_with_the_spectral_model(rng):
    pair = synthetic_pair(rng)
    ref, c = torch.from_numpy(pair["reference"]), torch.from_numpy(pair["noiseless"])
    angles = [-30.0, -10.0, 10.0, 30.0]
    measured = [estimate_tilt_stats(ref, c, tilt_angles_deg=angles, spectra=True)]
    target = c.float()
    noisy = make_modality(target, measured, "noisy", seed=2, model="spectral")
    content = make_modality(target, measured, "content", seed=2, model="spectral")
    baseline = make_modality(target, measured, "baseline", seed=2, model="spectral")
    assert noisy.shape == target.shape and noisy.dtype == torch.float32
    expected = apply_spectral_noise(target, aggregate_tilt_stats(measured, 2), seed=2)
    torch.testing.assert_close(noisy, expected, rtol=0, atol=0)
    assert not torch.equal(noisy, baseline)
    clean = apply_spectral_noise(target, aggregate_tilt_stats(measured, 2), sigma_scale=0.0, seed=2)
    signal = make_modality(target, measured, "noisy", seed=2, model="published")
    torch.testing.assert_close(
        signal, make_modality(target, measured, "noisy", seed=2), rtol=0, atol=0
    )  # the default model is the published one
    assert np.all(correlation(residuals(noisy, clean), residuals(content, clean)) > 0.99)
    with pytest.raises(ValueError, match="needs spectra"):
        make_modality(
            target,
            [dataclasses.replace(measured[0], spectra=None)],
            "noisy",
            seed=2,
            model="spectral",
        )
    with pytest.raises(ValueError, match="unknown noise model"):
        make_modality(target, measured, "noisy", seed=2, model="fancy")


def test_spectral_modality_streamed_from_a_file_is_the_in_memory_one(rng, tmp_path, monkeypatch):
    """Read a part (2 tilts) at a time from its file, the spectral model gives the same bits.

    The in-memory generation is checked against numpy above; this checks the reading,
    the placing of the parts and the field drawn part after part from one generator.
    """
    import faket.noise.generate as generate
    from faket.io import write_mrc
    from faket.io.tilt_stack import MrcTilts

    pair = synthetic_pair(rng)
    ref, c = torch.from_numpy(pair["reference"]), torch.from_numpy(pair["noiseless"])
    measured = [estimate_tilt_stats(ref, c, tilt_angles_deg=[-30, -10, 10, 30], spectra=True)]
    monkeypatch.setattr(generate, "_PART_VALUES", 2 * N * N)
    write_mrc(c.float().numpy(), tmp_path / "noiseless.mrc")
    parts = generate.modality_parts(
        MrcTilts(tmp_path / "noiseless.mrc"), measured, "noisy", seed=5, model="spectral"
    )
    got = list(parts)
    assert [start for start, _ in got] == [0, 2]
    in_memory = make_modality(c.float(), measured, "noisy", seed=5, model="spectral")
    assert torch.equal(torch.cat([tilts for _, tilts in got]), in_memory)
