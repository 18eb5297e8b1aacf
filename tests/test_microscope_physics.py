"""The reference microscope's physics: CTF zeros, counting statistics, attenuation, damage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from faket.microscope import (
    MicroscopeSettings,
    MicroscopeWarning,
    default_inelastic_mfp_nm,
    electron_wavelength_a,
    interaction_constant,
    simulate_tilt_series,
)
from faket.noise import radial_power_spectrum
from faket.phantom import ball

# Plain settings for controlled experiments: no random defocus, no shifts, no blur.
PLAIN = {
    "defocus_spread_um": 0.0,
    "astigmatism_um": 0.0,
    "shift_std_a": 0.0,
    "detector": "ideal",
    "dose_weighting": False,
}


def textbook_wavelength_a(voltage_v: float) -> float:
    """lambda = 12.2643 / sqrt(U (1 + 0.978476e-6 U)) Å (Williams & Carter)."""
    return 12.2643 / math.sqrt(voltage_v * (1 + 0.978476e-6 * voltage_v))


def test_constants_match_textbook_values():
    assert electron_wavelength_a(300) == pytest.approx(textbook_wavelength_a(300e3), rel=1e-4)
    assert electron_wavelength_a(200) == pytest.approx(0.025079, rel=1e-4)
    # sigma at 300 kV: 0.6526 mrad / (V Å) (Kirkland, table of interaction parameters).
    assert interaction_constant(300) == pytest.approx(6.526e-4, rel=1e-3)
    assert default_inelastic_mfp_nm(300) == pytest.approx(395.0)


def theoretical_zeros_per_a(
    defocus_um: float, voltage_kv: float, cs_mm: float, q: float, n: int
) -> list[float]:
    """The first n zeros of sin(gamma) + a cos(gamma), gamma = pi l df k^2 - pi/2 Cs l^3 k^4."""
    lam = textbook_wavelength_a(voltage_kv * 1e3)
    df, cs = defocus_um * 1e4, cs_mm * 1e7
    zeros = []
    for m in range(1, n + 1):
        target = m * math.pi - math.atan(q / math.sqrt(1 - q * q))
        # Solve -pi/2 Cs l^3 u^2 + pi l df u - target = 0 for u = k^2 (smaller root).
        roots = np.roots([-math.pi / 2 * cs * lam**3, math.pi * lam * df, -target])
        u = min(r.real for r in roots if r.real > 0)
        zeros.append(math.sqrt(u))
    return zeros


def test_ice_power_spectrum_has_ctf_zeros_where_theory_puts_them():
    # 128^2 pixels of 2 Å, white ice fluctuations, 2 µm underfocus, 300 kV, Cs 2.7 mm.
    pixel, defocus = 2.0, 2.0
    settings = MicroscopeSettings(
        **PLAIN, defocus_um=defocus, slab_nm=60.0, ice_correlation_a=0.0, particle_potential_v=None
    )
    volume = torch.zeros(4, 128, 128)
    # Every tilt images the same ice, so the spectrum of one slab keeps its realisation's
    # speckle: a spurious minimum below the first zero in about 1 of 8 slabs (measured on
    # 40 seeds). The mean over four independent slabs had none in 20 trials.
    spectra = []
    for seed in range(3, 7):
        result = simulate_tilt_series(volume, [-20, -10, 0, 10, 20], pixel, settings, seed=seed)
        freqs, power = radial_power_spectrum(result.noiseless.double(), tile=None)
        spectra.append(power.mean(0))
    power = torch.stack(spectra).mean(0).numpy()
    freqs = freqs.numpy()
    minima = [
        i
        for i in range(1, len(power) - 1)
        if 0.03 < freqs[i] < 0.5 and power[i] < power[i - 1] and power[i] < power[i + 1]
    ][:5]
    expected = [k * pixel for k in theoretical_zeros_per_a(defocus, 300, 2.7, 0.07, 5)]
    bin_width = 1 / 128
    # Tolerance: the first 5 zeros each within 1 frequency bin (1/128 cycles/pixel); a
    # 10 % defocus error moves the 4th and 5th zeros by about 2 bins.
    assert len(minima) == 5
    for index, zero in zip(minima, expected, strict=True):
        assert abs(freqs[index] - zero) <= bin_width, (freqs[minima], expected)


def test_underfocus_shows_dense_matter_dark():
    volume = ball((32, 64, 64), (16, 32, 32), 8) * 8.05  # protein-dense ball in V
    settings = MicroscopeSettings(**PLAIN)
    image = simulate_tilt_series(volume, [0.0], 10.0, settings, seed=1).noiseless[0]
    assert image[28:36, 28:36].mean() < 0.97 * image[:12, :12].mean()


def test_counts_have_poisson_mean_and_variance_at_the_set_dose():
    # Flat specimen (no particles, no ice fluctuations), ideal detector.
    pixel, dose, slab_nm, mfp_nm = 2.0, 20.0, 150.0, 395.0
    settings = MicroscopeSettings(
        **PLAIN,
        dose_total_e_per_a2=dose,
        slab_nm=slab_nm,
        ice_structure_factor=0.0,
        defocus_um=1.0,
    )
    result = simulate_tilt_series(torch.zeros(4, 128, 128), [0.0, 0.0], pixel, settings, seed=5)
    mean = dose / 2 * pixel**2 * math.exp(-slab_nm / mfp_nm)  # 27.4 electrons per pixel
    torch.testing.assert_close(result.noiseless, torch.full_like(result.noiseless, mean))
    counts = result.counts.double()
    assert torch.equal(counts, counts.round())
    n = counts.numel()
    # 4 standard errors: sqrt(mu / n) for the mean, sqrt((mu + 2 mu^2) / n) for the variance.
    assert abs(counts.mean().item() - mean) < 4 * math.sqrt(mean / n)
    assert abs(counts.var().item() - mean) < 4 * math.sqrt((mean + 2 * mean**2) / n)


def test_counting_detector_keeps_the_mean_and_lowers_the_noise_power():
    settings = MicroscopeSettings(**{**PLAIN, "detector": "counting"}, ice_structure_factor=0.0)
    result = simulate_tilt_series(torch.zeros(4, 128, 128), [0.0], 4.0, settings, seed=2)
    noise = result.counts - result.noiseless
    mean = result.noiseless.mean().item()
    assert abs(noise.mean().item()) < 4 * math.sqrt(mean / noise.numel())
    # Noise passes the sinc^2 NTF: variance = mean * mean(sinc^2(fy) sinc^2(fx)) ~ 0.6 mean.
    f = np.fft.fftfreq(128)
    ntf2 = (np.sinc(f)[:, None] * np.sinc(f)[None, :]) ** 2
    assert noise.var().item() == pytest.approx(mean * ntf2.mean(), rel=0.05)


@pytest.mark.parametrize("detector", ["ideal", "counting"])
def test_half_sets_are_independent_halves_of_the_counts(detector):
    settings = MicroscopeSettings(**{**PLAIN, "detector": detector}, ice_structure_factor=0.0)
    volume = torch.zeros(4, 128, 128)
    plain = simulate_tilt_series(volume, [0.0], 4.0, settings, seed=2)
    result = simulate_tilt_series(volume, [0.0], 4.0, settings, seed=2, half_sets=True)
    assert torch.equal(result.counts, plain.counts)  # the halves have their own generator
    assert result.even is not None and result.odd is not None
    torch.testing.assert_close(result.even + result.odd, result.counts)
    mean = result.noiseless.mean().item()
    n = result.counts.numel()
    assert abs(result.even.mean().item() - mean / 2) < 4 * math.sqrt(mean / 2 / n)
    # Independent Poisson halves: even - odd has the variance of the counts' own noise
    # (Poisson variance, both through the same NTF); 5 % is ~7 standard errors at 16k px.
    difference = (result.even - result.odd).var().item()
    assert difference == pytest.approx((result.counts - result.noiseless).var().item(), rel=0.05)
    if detector == "ideal":
        assert torch.equal(result.even, result.even.round())


@pytest.mark.parametrize("mfp_nm", [None, 250.0])
def test_attenuation_grows_with_the_path_through_the_slab(mfp_nm):
    pixel, dose, slab_nm = 8.0, 40.0, 200.0
    angles = [0.0, 30.0, 45.0, 60.0]
    settings = MicroscopeSettings(
        **PLAIN, dose_total_e_per_a2=dose, slab_nm=slab_nm, inelastic_mfp_nm=mfp_nm
    )
    result = simulate_tilt_series(torch.zeros(8, 64, 64), angles, pixel, settings, seed=1)
    mfp = 395.0 if mfp_nm is None else mfp_nm
    per_pixel = dose / len(angles) * pixel**2
    expected = [per_pixel * math.exp(-slab_nm / (mfp * math.cos(math.radians(a)))) for a in angles]
    measured = result.noiseless.double().mean((1, 2)).tolist()
    # 1 %: the ice fluctuations change the mean intensity only to second order.
    assert measured == pytest.approx(expected, rel=1e-2)
    fractions = [t.zero_loss_fraction * per_pixel for t in result.tilts]
    assert fractions == pytest.approx(expected, rel=1e-12)


def test_dose_weighting_damps_high_frequencies_in_later_tilts():
    pixel = 4.0
    angles = [0.0, 0.0, 0.0, 0.0]  # the same view four times: only the damage differs
    common = {**PLAIN, "scheme": "sequential", "ice_correlation_a": 0.0, "slab_nm": 80.0}
    volume = torch.zeros(4, 128, 128)
    damaged = simulate_tilt_series(
        volume, angles, pixel, MicroscopeSettings(**{**common, "dose_weighting": True}), seed=4
    )
    intact = simulate_tilt_series(volume, angles, pixel, MicroscopeSettings(**common), seed=4)
    assert [t.acquisition_rank for t in damaged.tilts] == [0, 1, 2, 3]
    freqs, power = radial_power_spectrum(damaged.noiseless.double(), tile=None)
    _, power_intact = radial_power_spectrum(intact.noiseless.double(), tile=None)
    assert torch.allclose(power_intact, power_intact[:1].expand_as(power_intact))
    high = (freqs > 0.3) & (freqs < 0.5)
    low = (freqs > 0.02) & (freqs < 0.05)
    ratio_high = (power[:, high] / power_intact[:, high]).mean(1)
    ratio_low = (power[:, low] / power_intact[:, low]).mean(1)
    assert torch.all(ratio_high[1:] < ratio_high[:-1])  # strictly more damage later
    assert ratio_high[-1] < 0.5 * ratio_high[0]
    # Low frequencies survive (Nc grows as k -> 0): exp(-70 / (2 * 362))^2 = 0.82 at worst.
    assert torch.all(ratio_low > 0.75)


def test_shifts_are_applied_and_recorded():
    volume = ball((16, 64, 64), (8, 32, 28), 6) * 8.05 + ball((16, 64, 64), (8, 20, 40), 4) * 8.05
    common = {k: v for k, v in PLAIN.items() if k != "shift_std_a"}
    common["ice_structure_factor"] = 0.0
    angles = [-30.0, 0.0, 30.0]
    shifted = simulate_tilt_series(
        volume, angles, 10.0, MicroscopeSettings(**common, shift_std_a=30.0), seed=7
    )
    still = simulate_tilt_series(
        volume, angles, 10.0, MicroscopeSettings(**common, shift_std_a=0.0), seed=7
    )
    assert any(abs(t.shift_x_px) > 0.5 or abs(t.shift_y_px) > 0.5 for t in shifted.tilts)
    for i, record in enumerate(shifted.tilts):
        a = shifted.noiseless[i].double() - shifted.noiseless[i].double().mean()
        b = still.noiseless[i].double() - still.noiseless[i].double().mean()
        xcorr = torch.fft.ifft2(torch.fft.fft2(a) * torch.fft.fft2(b).conj()).real
        peak_y, peak_x = divmod(int(xcorr.argmax()), 64)
        peak_y = (peak_y + 32) % 64 - 32
        peak_x = (peak_x + 32) % 64 - 32
        # The integer peak is the recorded shift rounded: within half a pixel (+ slack).
        assert abs(peak_y - record.shift_y_px) <= 0.51
        assert abs(peak_x - record.shift_x_px) <= 0.51


def test_same_seed_same_output_bit_identical():
    volume = ball((16, 48, 48), (8, 24, 24), 5) * 8.05
    settings = MicroscopeSettings()  # every random part on: ice, defocus, shifts, counts
    first = simulate_tilt_series(volume, [-20.0, 0.0, 20.0], 10.0, settings, seed=11)
    again = simulate_tilt_series(volume, [-20.0, 0.0, 20.0], 10.0, settings, seed=11)
    other = simulate_tilt_series(volume, [-20.0, 0.0, 20.0], 10.0, settings, seed=12)
    assert torch.equal(first.counts, again.counts)
    assert torch.equal(first.noiseless, again.noiseless)
    assert first.records() == again.records()
    assert not torch.equal(first.counts, other.counts)


def test_output_follows_the_input_dtype_and_device(device):
    volume = torch.zeros(8, 32, 32, dtype=torch.float64, device=device)
    result = simulate_tilt_series(volume, [0.0, 10.0], 10.0, seed=0)
    assert result.counts.dtype == torch.float64 and result.counts.device.type == device.type
    assert result.counts.shape == (2, 32, 32) and result.noiseless.shape == (2, 32, 32)


def test_an_aliased_ctf_warns_with_the_frequency():
    with pytest.warns(MicroscopeWarning, match=r"the CTF aliases above 0\.\d+ 1/A"):
        simulate_tilt_series(torch.zeros(4, 64, 64), [0.0], 1.0, seed=0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("defocus_um", -3.0, "underfocus is positive"),
        ("dose_total_e_per_a2", -1.0, "positive exposure"),
        ("amplitude_contrast", 1.0, r"\[0, 1\)"),
        ("slab_nm", 0.0, "slab_nm must be positive"),
        ("astigmatism_um", -0.1, "astigmatism_um must not be negative"),
        ("scheme", "random", "unknown scheme"),
    ],
)
def test_impossible_settings_are_refused_with_a_sentence(field, value, message):
    with pytest.raises(ValueError, match=message):
        MicroscopeSettings(**{field: value})


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="3-D"):
        simulate_tilt_series(torch.zeros(8, 8), [0.0], 10.0, seed=0)
    with pytest.raises(ValueError, match="pixel_size_a"):
        simulate_tilt_series(torch.zeros(2, 8, 8), [0.0], 0.0, seed=0)
    with pytest.raises(ValueError, match="89"):
        simulate_tilt_series(torch.zeros(2, 8, 8), [90.0], 10.0, seed=0)


def test_tilted_images_change_defocus_across_x_as_the_specimen_plane_does():
    # A ball in the specimen's mid-plane 50 px left of the tilt axis lands 25 px left of
    # the centre column at 60 degrees, where the mid-plane's defocus is
    # df + u tan(60) = df - 25 * 2 A * 1.732 (-0.0087 µm).
    pixel, tilt, df = 2.0, 60.0, 1.0
    volume = ball((16, 64, 128), (8, 32, 14), 4) * 8.05
    base = {**PLAIN, "ice_structure_factor": 0.0, "particle_potential_v": None}
    u = round((14 - 64) * math.cos(math.radians(tilt)))
    offset = u * pixel * math.tan(math.radians(tilt)) * 1e-4

    def image(gradient: bool, defocus: float) -> torch.Tensor:
        settings = MicroscopeSettings(**base, defocus_um=defocus, defocus_gradient=gradient)
        result = simulate_tilt_series(volume, [tilt], pixel, settings, seed=0)
        return result.noiseless[0, :, 64 + u - 12 : 64 + u + 13].double()

    tilted = image(True, df)
    local = image(False, df + offset)  # one defocus: the local one
    axis = image(False, df)  # one defocus: the axis' one
    mirrored = image(False, df - offset)  # the opposite slope
    error = (tilted - local).norm()
    # Measured: 0.51 vs 2.10 (axis) and 4.08 (mirrored); the columns of the patch each
    # have their own defocus, so the single-defocus image matches only approximately.
    assert error < 0.3 * (tilted - axis).norm()
    assert error < 0.15 * (tilted - mirrored).norm()


@pytest.mark.parametrize("tilt", [30.0, -60.0])
def test_defocus_gradient_intensity_matches_one_full_transfer_per_node(tilt):
    # Oracle: the wave propagated in float64 through `wave_transfer` at every defocus
    # node (each its own full CTF and envelopes), each column interpolated linearly in a
    # plain loop between the two nodes around its own defocus. `image_intensity` builds
    # the nodes' transfers from one CTF and a phase ramp; it works in complex64, so it
    # agrees to float32 rounding (measured 7e-6 of intensities about 1 at 256^2; 1e-4).
    from faket.microscope._lens import defocus_node_count, image_intensity
    from faket.microscope.physics import wave_transfer

    n, pixel, defocus = 96, 2.0, 3.0
    settings = MicroscopeSettings(astigmatism_um=0.2, astigmatism_angle_deg=30.0)
    phase = 0.3 * torch.randn(n, n, generator=torch.Generator().manual_seed(0))
    wave = torch.exp(torch.complex(-0.07 * phase, phase))
    slope = math.tan(math.radians(tilt)) * pixel * 1e-4
    ours = image_intensity(wave, pixel, settings, defocus_um=defocus, slope_um_per_px=slope)

    offsets = [(c - n // 2) * slope for c in range(n)]
    lo, hi = min(offsets), max(offsets)
    m = defocus_node_count(hi - lo, pixel, settings.voltage_kv)
    assert m > 2  # the case under test: several nodes
    spectrum = torch.fft.fft2(wave.to(torch.complex128))
    images = []
    for j in range(m):
        h = wave_transfer(
            (n, n),
            pixel,
            defocus_um=defocus + lo + (hi - lo) * j / (m - 1),
            astigmatism_um=settings.astigmatism_um,
            astigmatism_angle_deg=settings.astigmatism_angle_deg,
            voltage_kv=settings.voltage_kv,
            spherical_aberration_mm=settings.spherical_aberration_mm,
            illumination_semi_angle_mrad=settings.illumination_semi_angle_mrad,
            chromatic_aberration_mm=settings.chromatic_aberration_mm,
            energy_spread_ev=settings.energy_spread_ev,
            like=torch.zeros(1, dtype=torch.float64),
        )
        images.append(torch.fft.ifft2(spectrum * h).abs().square())
    expected = torch.empty(n, n, dtype=torch.float64)
    for c in range(n):
        q = (offsets[c] - lo) / (hi - lo) * (m - 1)
        left = min(math.floor(q), m - 2)
        w = q - left
        expected[:, c] = images[left][:, c] * (1 - w) + images[left + 1][:, c] * w
    assert expected.std() > 0.1  # the lens makes contrast of the phase
    assert (ours.double() - expected).abs().max() < 1e-4


def test_simulating_in_place_changes_the_volume_not_the_images():
    # `overwrite` displaces the ice in the caller's volume (one volume less in memory):
    # the images are bit-identical to those of an untouched volume.
    from faket.microscope import simulate_tilts

    volume = ball((16, 48, 48), (8, 24, 24), 6) * 8.05
    kept = volume.clone()
    plain = simulate_tilt_series(volume, [-30.0, 0.0, 30.0], 5.0, seed=2)
    torch.testing.assert_close(volume, kept, rtol=0, atol=0)
    tilts = list(simulate_tilts(volume, [-30.0, 0.0, 30.0], 5.0, seed=2, overwrite=True))
    assert not torch.equal(volume, kept)  # its particles displaced the ice
    torch.testing.assert_close(torch.stack([t.counts for t in tilts]), plain.counts, rtol=0, atol=0)
    assert [t.record for t in tilts] == plain.tilts
