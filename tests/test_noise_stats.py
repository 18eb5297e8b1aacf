"""Paired noise statistics (faket.noise.stats) and their aggregation (faket.noise.aggregate)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from faket.errors import FaketInputError
from faket.noise import (
    TiltStats,
    aggregate_tilt_stats,
    estimate_tilt_stats,
    evaluate_polynomial,
    fit_polynomial_coefficients,
    fit_tilt_stats,
)


def smooth_field(n_tilts: int, n: int, seed: int, width: float = 0.04) -> torch.Tensor:
    """Standardised smooth random images: white noise low-passed by a Gaussian in Fourier space.

    ``width`` is the Gaussian's std in cycles/pixel. float64 ``(n_tilts, n, n)``.
    """
    g = torch.Generator().manual_seed(seed)
    white = torch.randn(n_tilts, n, n, generator=g, dtype=torch.float64)
    f = torch.fft.fftfreq(n, dtype=torch.float64)
    gauss = torch.exp(-(f[:, None] ** 2 + f[None, :] ** 2) / (2 * width**2))
    s = torch.fft.ifft2(torch.fft.fft2(white) * gauss).real
    return (s - s.mean((-2, -1), keepdim=True)) / s.std((-2, -1), correction=0, keepdim=True)


def white(n_tilts: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_tilts, n, n, generator=g, dtype=torch.float64)


def standardise_np(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std()


R_TRUE = torch.tensor([0.2, 0.5, 0.8, 0.95], dtype=torch.float64)
SIGMA_TRUE = torch.sqrt(1 - R_TRUE**2)
MEAN_TRUE = torch.tensor([-3.0, 0.0, 10.0, 250.0], dtype=torch.float64)
STD_TRUE = torch.tensor([0.5, 1.0, 4.0, 30.0], dtype=torch.float64)


def per_tilt(v: torch.Tensor) -> torch.Tensor:
    return v[:, None, None]


# --- the paired estimator ----------------------------------------------------------------


def test_closed_form_r_equals_brute_force_minimiser():
    n = 48
    c = smooth_field(3, n, seed=1)
    p = per_tilt(torch.tensor([0.3, -0.6, 0.9])) * c + white(3, n, seed=2) * 0.7
    p = p * 5.0 + 2.0
    stats = estimate_tilt_stats(p, c)
    step = 1e-3
    grid = np.arange(-1.0, 1.0 + step / 2, step)
    for i in range(3):
        ps = standardise_np(p[i].numpy().ravel())
        cs = standardise_np(c[i].numpy().ravel())
        spread = (ps[None, :] - grid[:, None] * cs[None, :]).std(axis=1)
        best = grid[np.argmin(spread)]
        # The objective is a parabola in r, so its grid argmin lies within half a step of
        # the true minimiser (plus rounding).
        assert abs(stats.r[i].item() - best) <= step / 2 + 1e-12
        # Its minimum value is sigma; on the grid it is at most step**2/2 above it.
        assert stats.sigma[i].item() <= spread.min() + 1e-12
        assert spread.min() - stats.sigma[i].item() <= step**2


def test_exact_recovery_when_noise_is_orthogonal_to_signal():
    # With S and N standardised and exactly uncorrelated, P = r S + sigma N (r^2 +
    # sigma^2 = 1) has correlation r and residual std sigma with no sampling error.
    n = 64
    s = smooth_field(4, n, seed=3)
    noise = white(4, n, seed=4)
    noise = noise - noise.mean((-2, -1), keepdim=True)
    noise = noise - (noise * s).mean((-2, -1), keepdim=True) * s
    noise = noise / noise.std((-2, -1), correction=0, keepdim=True)
    p = per_tilt(R_TRUE) * s + per_tilt(SIGMA_TRUE) * noise
    p = p * per_tilt(STD_TRUE) + per_tilt(MEAN_TRUE)
    stats = estimate_tilt_stats(p, s * 7.0 - 1.0)  # the noiseless scale must not matter
    # float64 rounding over 4096 pixels of values up to ~350: far below 1e-10.
    torch.testing.assert_close(stats.r, R_TRUE, rtol=0, atol=1e-10)
    torch.testing.assert_close(stats.sigma, SIGMA_TRUE, rtol=0, atol=1e-10)
    torch.testing.assert_close(stats.mean, MEAN_TRUE, rtol=0, atol=1e-10)
    torch.testing.assert_close(stats.std, STD_TRUE, rtol=1e-10, atol=0)


def test_recovers_known_stats_within_sampling_error():
    n = 128
    s = smooth_field(4, n, seed=5)
    p = per_tilt(R_TRUE) * s + per_tilt(SIGMA_TRUE) * white(4, n, seed=6)
    p = (p * per_tilt(STD_TRUE) + per_tilt(MEAN_TRUE)).float()
    stats = estimate_tilt_stats(p, s.float())
    # Sampling error: r - r_true ~ sigma * mean(S N) with sd 1/sqrt(n_pixels) (S has unit
    # variance, N is white); the same order for sigma, for mean/std (relative to std) and
    # for float32 storage (1e-7). Five standard errors.
    tol = 5 / math.sqrt(n * n)
    assert (stats.r - R_TRUE).abs().max() < tol
    assert (stats.sigma - SIGMA_TRUE).abs().max() < tol
    assert ((stats.mean - MEAN_TRUE) / STD_TRUE).abs().max() < tol
    assert ((stats.std - STD_TRUE) / STD_TRUE).abs().max() < tol


def test_r_squared_plus_sigma_squared_is_one():
    c = smooth_field(3, 40, seed=7)
    p = c * 0.4 + white(3, 40, seed=8) + per_tilt(torch.tensor([0.0, 1.0, 2.0])) * c**2
    stats = estimate_tilt_stats(p.float(), c.float())
    # Analytic identity for the minimiser (see the docstring); float64 sums.
    torch.testing.assert_close(stats.r**2 + stats.sigma**2, torch.ones(3, dtype=torch.float64))


def test_result_types_and_angles():
    c = smooth_field(3, 16, seed=9).float()
    p = c + 0.5 * white(3, 16, seed=10).float()
    stats = estimate_tilt_stats(p, c, tilt_angles_deg=[-30, 0, 30])
    assert stats.method == "paired"
    assert stats.n_tilts == 3
    for t in (stats.r, stats.sigma, stats.mean, stats.std, stats.tilt_angles_deg):
        assert t.dtype == torch.float64 and t.shape == (3,)
    assert stats.tilt_angles_deg.tolist() == [-30.0, 0.0, 30.0]


@pytest.mark.parametrize(
    ("reference", "noiseless", "match"),
    [
        (torch.zeros(3, 8, 8), torch.zeros(3, 8, 9), "differs from noiseless shape"),
        (torch.zeros(8, 8), torch.zeros(8, 8), r"shape \(n_tilts, ny, nx\)"),
        (torch.zeros(3, 8, 8, dtype=torch.int32), torch.zeros(3, 8, 8), "floating-point"),
    ],
)
def test_bad_shapes_and_dtypes(reference, noiseless, match):
    with pytest.raises(FaketInputError, match=match):
        estimate_tilt_stats(reference, noiseless)


def test_constant_tilt_is_named():
    c = smooth_field(4, 16, seed=11).float()
    p = c + white(4, 16, seed=12).float()
    c[2] = 0.1  # float32 0.1: a std computed in floating point could come out non-zero
    with pytest.raises(FaketInputError, match=r"noiseless tilt\(s\) \[2\] are constant"):
        estimate_tilt_stats(p, c)
    with pytest.raises(FaketInputError, match=r"reference tilt\(s\) \[2\] are constant"):
        estimate_tilt_stats(c, p)


def test_non_finite_and_angle_mismatch():
    c = smooth_field(3, 16, seed=13)
    p = c.clone()
    p[1, 3, 3] = float("nan")
    with pytest.raises(FaketInputError, match=r"NaN or infinite values in tilt\(s\) \[1\]"):
        estimate_tilt_stats(p, c)
    with pytest.raises(FaketInputError, match="2 tilt angles for a tilt-series of 3"):
        estimate_tilt_stats(c + 1, c, tilt_angles_deg=[0.0, 1.0])


def test_tilt_stats_validation():
    s = TiltStats(r=[0.5, 0.6], sigma=[0.8, 0.7], mean=[1, 2], std=[3, 4], source="a.mrc")
    assert s.n_tilts == 2 and s.r.dtype == torch.float64 and s.method == "paired"
    with pytest.raises(ValueError, match="same length"):
        TiltStats(r=[0.5], sigma=[0.8, 0.7], mean=[1, 2], std=[3, 4])
    with pytest.raises(ValueError, match="same length"):
        TiltStats(r=[0.5], sigma=[0.8], mean=[1], std=[3], tilt_angles_deg=[0.0, 1.0])
    with pytest.raises(ValueError, match="method must be one of"):
        TiltStats(r=[0.5], sigma=[0.8], mean=[1], std=[3], method="guessed")
    with pytest.raises(ValueError, match="NaN or infinite"):
        TiltStats(r=[float("nan")], sigma=[0.8], mean=[1], std=[3])
    with pytest.raises(ValueError, match="1-D"):
        TiltStats(r=[[0.5]], sigma=[0.8], mean=[1], std=[3])


# --- aggregation ---------------------------------------------------------------------------


def quadratic(n: int, c0: float, c1: float, c2: float) -> torch.Tensor:
    i = torch.arange(n, dtype=torch.float64)
    return c0 + c1 * i + c2 * i**2


def quadratic_stats(n: int, k: float, angles=None) -> TiltStats:
    return TiltStats(
        r=quadratic(n, 0.2 * k, 0.01, -2e-4 * k),
        sigma=quadratic(n, 0.9, -0.002 * k, 3e-5),
        mean=quadratic(n, 10.0 * k, 0.5, -0.01),
        std=quadratic(n, 3.0 + k, -0.03, 6e-4 * k),
        tilt_angles_deg=angles,
        source=f"tomo{k}",
    )


FIELDS = ("r", "sigma", "mean", "std")


def test_order_two_fit_returns_exactly_quadratic_data():
    s = quadratic_stats(61, 1.0)
    agg = aggregate_tilt_stats([s], 2)
    assert agg.method == "aggregated" and agg.n_tilts == 61
    for f in FIELDS:
        # float64 least squares on indices 0..60 (i^2 <= 3600): relative error ~1e-12.
        torch.testing.assert_close(getattr(agg, f), getattr(s, f), rtol=1e-9, atol=1e-12)


def test_aggregate_averages_two_tomograms():
    a, b = quadratic_stats(21, 1.0), quadratic_stats(21, 2.0)
    agg = aggregate_tilt_stats([a, b], 2)
    for f in FIELDS:
        expected = (getattr(a, f) + getattr(b, f)) / 2
        torch.testing.assert_close(getattr(agg, f), expected, rtol=1e-9, atol=1e-12)


def test_aggregate_of_noisy_curves_is_mean_of_per_tomogram_fits():
    g = torch.Generator().manual_seed(0)
    tomos = [
        TiltStats(*(torch.rand(11, generator=g, dtype=torch.float64) + 0.1 for _ in FIELDS))
        for _ in range(3)
    ]
    agg = aggregate_tilt_stats(tomos, 2)
    fits = [fit_tilt_stats(t, 2) for t in tomos]
    for f in FIELDS:
        expected = torch.stack([getattr(x, f) for x in fits]).mean(0)
        torch.testing.assert_close(getattr(agg, f), expected, rtol=1e-12, atol=1e-12)
        # Oracle for one fit: an independent least-squares solve on the Vandermonde matrix.
        vander = np.vander(np.arange(11.0), 3, increasing=True)
        coef, *_ = np.linalg.lstsq(vander, getattr(tomos[0], f).numpy(), rcond=None)
        np.testing.assert_allclose(getattr(fits[0], f).numpy(), vander @ coef, rtol=1e-10)


def test_order_zero_is_global_mean():
    g = torch.Generator().manual_seed(1)
    tomos = [
        TiltStats(*(torch.rand(7, generator=g, dtype=torch.float64) + 0.1 for _ in FIELDS))
        for _ in range(2)
    ]
    agg = aggregate_tilt_stats(tomos, 0)
    for f in FIELDS:
        values = torch.stack([getattr(t, f) for t in tomos])
        torch.testing.assert_close(getattr(agg, f), values.mean().expand(7))


def test_fit_coefficients_batched_and_evaluated():
    values = torch.stack([quadratic(9, 1.0, 2.0, 3.0), quadratic(9, -1.0, 0.5, 0.0)])
    coef = fit_polynomial_coefficients(values, 2)
    assert coef.shape == (2, 3)
    torch.testing.assert_close(
        coef, torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], dtype=torch.float64)
    )
    torch.testing.assert_close(evaluate_polynomial(coef, 9), values)


def test_fitted_sigma_is_clipped_at_zero():
    # A line through sigma = [0, 0, 0, 0, 1] is -0.2 at tilt 0.
    s = TiltStats(r=[0.5] * 5, sigma=[0, 0, 0, 0, 1], mean=[0] * 5, std=[1] * 5)
    coef = fit_polynomial_coefficients(s.sigma, 1)
    torch.testing.assert_close(coef, torch.tensor([-0.2, 0.2], dtype=torch.float64))
    assert aggregate_tilt_stats([s], 1).sigma[0] == 0.0


def test_angles_kept_only_when_shared():
    angles = torch.linspace(-60, 60, 5, dtype=torch.float64)
    a, b = quadratic_stats(5, 1.0, angles), quadratic_stats(5, 2.0, angles)
    assert torch.equal(aggregate_tilt_stats([a, b], 1).tilt_angles_deg, angles)
    c = quadratic_stats(5, 3.0, angles + 1)
    assert aggregate_tilt_stats([a, c], 1).tilt_angles_deg is None


def _in_angle(angles: torch.Tensor, k: float) -> TiltStats:
    """Quadratic curves of the tilt angle (degrees), the truth of the angle fits below."""
    a = angles.to(torch.float64)
    return TiltStats(
        r=0.2 * k + 1e-3 * a - 2e-5 * a**2,
        sigma=0.9 - 2e-4 * k * a + 1e-6 * a**2,
        mean=10.0 * k + 0.05 * a,
        std=3.0 + k - 3e-3 * a + 5e-5 * a**2,
        tilt_angles_deg=a,
    )


def test_angle_fit_equals_the_authors_index_fit_for_even_ascending_schemes():
    # The authors fit over the tilt index; for -60..60 in steps of 3 that is the same fit.
    rng = np.random.default_rng(3)
    angles = torch.arange(-60.0, 61.0, 3.0, dtype=torch.float64)
    n = angles.numel()
    curves = {f: torch.from_numpy(rng.uniform(0.3, 0.7, n)) for f in FIELDS}
    s = TiltStats(**curves, tilt_angles_deg=angles)
    agg = aggregate_tilt_stats([s], 2)
    index = np.arange(n)
    for field in FIELDS:
        expected = np.polyval(np.polyfit(index, curves[field].numpy(), 2), index)
        np.testing.assert_allclose(getattr(agg, field).numpy(), expected, rtol=0, atol=1e-12)


def test_a_file_in_acquisition_order_gives_the_same_fit_as_the_sorted_file():
    angles = torch.arange(-60.0, 61.0, 3.0, dtype=torch.float64)
    order = torch.from_numpy(np.argsort(np.abs(angles.numpy()), kind="stable"))  # 0, -3, 3, ..
    rng = np.random.default_rng(4)
    noisy = {f: torch.from_numpy(rng.normal(1.0, 0.1, angles.numel())) for f in FIELDS}
    sorted_stats = TiltStats(**noisy, tilt_angles_deg=angles)
    shuffled = TiltStats(**{f: v[order] for f, v in noisy.items()}, tilt_angles_deg=angles[order])
    a = aggregate_tilt_stats([sorted_stats], 2)
    b = aggregate_tilt_stats([shuffled], 2, at=angles)
    for field in FIELDS:
        torch.testing.assert_close(getattr(b, field), getattr(a, field), rtol=0, atol=1e-12)
    assert torch.equal(b.tilt_angles_deg, angles)


def test_references_with_different_schemes_aggregate_on_angle():
    # Two references of the same quadratic truth, 41 tilts at -60..60 and 31 at -45..45 in
    # dose-symmetric order; an order-2 fit recovers the truth at the run's angles exactly.
    a = _in_angle(torch.arange(-60.0, 61.0, 3.0), 1.0)
    sym = torch.tensor([0.0] + [s * k for k in range(3, 46, 3) for s in (1, -1)])
    b = _in_angle(sym, 1.0)
    run = torch.linspace(-50, 50, 11, dtype=torch.float64)
    agg = aggregate_tilt_stats([a, b], 2, at=run)
    truth = _in_angle(run, 1.0)
    for field in FIELDS:
        torch.testing.assert_close(getattr(agg, field), getattr(truth, field), rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="need `at` angles"):
        aggregate_tilt_stats([a, b], 2)


def test_aggregate_errors():
    a, b = quadratic_stats(5, 1.0), quadratic_stats(6, 1.0)
    with pytest.raises(ValueError, match=r"different numbers of tilts.*\[5, 6\]"):
        aggregate_tilt_stats([a, b], 1)
    with pytest.raises(ValueError, match="0 <= order < n_tilts = 5"):
        aggregate_tilt_stats([a], 5)
    with pytest.raises(ValueError, match="0 <= order < n_tilts = 5"):
        aggregate_tilt_stats([a], -1)
    with pytest.raises(ValueError, match="at least one tomogram"):
        aggregate_tilt_stats([], 0)
    with pytest.raises(ValueError, match="single TiltStats"):
        aggregate_tilt_stats(a, 0)


def test_stats_measured_in_parts_join_into_the_whole_series_stats(tmp_path, monkeypatch):
    # Oracle: one call on the whole series. The pipeline measures a microscope reference
    # a part of its tilts at a time (parts of one tilt here) and joins them; every
    # statistic is per tilt, so the join equals the whole to float64 rounding.
    from types import SimpleNamespace

    import faket.pipeline.stages as stages
    from faket.io import write_mrc
    from faket.noise import concatenate_tilt_stats

    noiseless = smooth_field(5, 48, seed=1).float()
    reference = (0.7 * noiseless + 0.5 * smooth_field(5, 48, seed=2, width=0.3)).float()
    angles = [-40.0, -20.0, 0.0, 20.0, 40.0]
    whole = estimate_tilt_stats(reference, noiseless, tilt_angles_deg=angles, spectra=True)

    write_mrc(reference.numpy(), tmp_path / "reference.mrc")
    write_mrc(noiseless.numpy(), tmp_path / "noiseless.mrc")
    plan = SimpleNamespace(
        tilt_angles=tuple(angles),
        config=SimpleNamespace(noise=SimpleNamespace(models=("published", "spectral"))),
    )
    monkeypatch.setattr(stages, "_MEASURE_PART_VALUES", 48 * 48)  # one tilt a part
    joined = stages._measure_paired(plan, tmp_path)
    for name in ("r", "sigma", "mean", "std", "tilt_angles_deg"):
        torch.testing.assert_close(getattr(joined, name), getattr(whole, name), rtol=0, atol=1e-12)
    assert joined.spectra is not None and whole.spectra is not None
    # The spectra's FFTs of one tilt and of a batch round differently (measured 1.3e-9
    # relative); a wrong tilt order or a missing tilt would differ at order 1.
    for name in ("transfer", "noise_power"):
        got, want = getattr(joined.spectra, name), getattr(whole.spectra, name)
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-12)
    with pytest.raises(ValueError, match="at least one"):
        concatenate_tilt_stats([])
    plain = estimate_tilt_stats(reference[:2], noiseless[:2])
    with pytest.raises(ValueError, match="spectra"):
        concatenate_tilt_stats(
            [plain, estimate_tilt_stats(reference[2:], noiseless[2:], spectra=True)]
        )
