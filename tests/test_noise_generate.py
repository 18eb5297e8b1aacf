"""Noisy, content and baseline modalities (faket.noise.generate)."""

from __future__ import annotations

import math
import warnings

import mrcfile
import pytest
import torch

from faket.errors import FaketInputError
from faket.noise import (
    MODALITIES,
    TiltStats,
    aggregate_tilt_stats,
    apply_noise,
    estimate_tilt_stats,
    make_modality,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

N_TILTS, N = 5, 64


def smooth_field(n_tilts: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    white = torch.randn(n_tilts, n, n, generator=g, dtype=torch.float64)
    f = torch.fft.fftfreq(n, dtype=torch.float64)
    gauss = torch.exp(-(f[:, None] ** 2 + f[None, :] ** 2) / (2 * 0.04**2))
    return torch.fft.ifft2(torch.fft.fft2(white) * gauss).real


def target_stats(n_tilts: int = N_TILTS) -> TiltStats:
    r = torch.linspace(0.3, 0.7, n_tilts, dtype=torch.float64)
    return TiltStats(
        r=r,
        sigma=torch.sqrt(1 - r**2),
        mean=torch.linspace(-5.0, 40.0, n_tilts, dtype=torch.float64),
        std=torch.linspace(0.5, 8.0, n_tilts, dtype=torch.float64),
    )


def measured_stats(seed: int) -> list[TiltStats]:
    """Two 'reference tomograms' with slightly different, tilt-dependent statistics."""
    out = []
    for k in range(2):
        g = torch.Generator().manual_seed(seed + k)
        jitter = 0.02 * torch.randn(N_TILTS, generator=g, dtype=torch.float64)
        s = target_stats()
        sigma = s.sigma + jitter
        out.append(TiltStats(r=torch.sqrt(1 - sigma**2), sigma=sigma, mean=s.mean, std=s.std))
    return out


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a.double() - a.double().mean((-2, -1), keepdim=True)
    b = b.double() - b.double().mean((-2, -1), keepdim=True)
    return (a * b).mean((-2, -1)) / (a.std((-2, -1), correction=0) * b.std((-2, -1), correction=0))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_has_target_mean_and_std_and_keeps_dtype_device(device, dtype):
    noiseless = (smooth_field(N_TILTS, N, seed=0) * 3 - 7).to(device=device, dtype=dtype)
    stats = target_stats()
    out = apply_noise(noiseless, stats, seed=1)
    assert out.dtype == dtype and out.device == noiseless.device and out.shape == noiseless.shape
    assert bool(torch.isfinite(out).all())
    out64 = out.double().cpu()
    # float32: rounding of 4096-pixel sums of values up to ~60 leaves ~1e-6 relative to
    # the std; 1e-5 keeps a margin. float64: 1e-12.
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    mean_err = (out64.mean((-2, -1)) - stats.mean) / stats.std
    std_err = out64.std((-2, -1), correction=0) / stats.std - 1
    assert mean_err.abs().max() < tol and std_err.abs().max() < tol


def test_half_precision_is_computed_in_float32_and_returned_as_is():
    noiseless = smooth_field(N_TILTS, 32, seed=2).to(torch.bfloat16)
    out = apply_noise(noiseless, target_stats(), seed=3)
    assert out.dtype == torch.bfloat16 and bool(torch.isfinite(out).all())


def test_same_seed_identical_different_seed_different():
    noiseless = smooth_field(N_TILTS, N, seed=4).float()
    a = apply_noise(noiseless, target_stats(), seed=5)
    b = apply_noise(noiseless, target_stats(), seed=5)
    c = apply_noise(noiseless, target_stats(), seed=6)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # Different noise, not just a few bits: the two realisations are far apart.
    assert (a - c).abs().mean() > 0.1 * target_stats().std.min()


@pytest.mark.parametrize("part_values", [1, 2 * N * N, 2**24])  # 1, 2 (and 1 left), all tilts
def test_output_is_the_formula_written_plainly_whatever_the_parts(monkeypatch, part_values):
    """The parted evaluation (bounded memory) against the method's formula on the whole stack."""
    import faket.noise.generate as generate

    monkeypatch.setattr(generate, "_PART_VALUES", part_values)
    noiseless = smooth_field(N_TILTS, N, seed=4) * 3 - 7
    stats = target_stats()
    out = apply_noise(noiseless, stats, sigma_scale=0.5, seed=21)
    white = torch.randn(
        noiseless.shape, generator=torch.Generator().manual_seed(21), dtype=torch.float64
    )

    def standardise(x: torch.Tensor) -> torch.Tensor:
        mean = x.mean((-2, -1), keepdim=True)
        return (x - mean) / x.std((-2, -1), correction=0, keepdim=True)

    x = stats.r[:, None, None] * standardise(noiseless) + 0.5 * stats.sigma[:, None, None] * white
    expected = standardise(x) * stats.std[:, None, None] + stats.mean[:, None, None]
    # float64 arithmetic on O(40) values: ~1e-14; 1e-11 leaves room for summation order.
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-11)


def test_re_estimating_recovers_r_and_sigma():
    noiseless = smooth_field(N_TILTS, 128, seed=7).float()
    stats = target_stats()
    out = apply_noise(noiseless, stats, seed=8)
    again = estimate_tilt_stats(out, noiseless)
    # Sampling error of the noise draw: ~sigma / sqrt(n_pixels) = 0.008; 5 sd.
    tol = 5 / math.sqrt(128 * 128)
    assert (again.r - stats.r).abs().max() < tol
    assert (again.sigma - stats.sigma).abs().max() < tol
    torch.testing.assert_close(again.mean, stats.mean, rtol=0, atol=1e-5 * 8)
    torch.testing.assert_close(again.std, stats.std, rtol=1e-5, atol=0)


def test_content_is_closer_to_noiseless_than_noisy():
    noiseless = smooth_field(N_TILTS, N, seed=9).float()
    measured = measured_stats(seed=10)
    noisy = make_modality(noiseless, measured, "noisy", seed=11)
    content = make_modality(noiseless, measured, "content", seed=11)
    # r in 0.3..0.7: noisy correlates ~r, content ~r / sqrt(r^2 + sigma^2 / 16) >= 0.78.
    assert bool((pearson(content, noiseless) > pearson(noisy, noiseless) + 0.2).all())
    assert bool((pearson(content, noiseless) > 0.75).all())


def test_make_modality_uses_the_modality_order():
    noiseless = smooth_field(N_TILTS, N, seed=12).float()
    measured = measured_stats(seed=13)
    baseline = make_modality(noiseless, measured, "baseline", seed=14)
    global_std = torch.stack([m.std for m in measured]).mean()
    # Order 0: every tilt gets the one global std (float32 tolerance as above).
    std = baseline.double().std((-2, -1), correction=0)
    torch.testing.assert_close(std, global_std.expand(N_TILTS), rtol=1e-5, atol=0)
    noisy = make_modality(noiseless, measured, "noisy", seed=14)
    expected = apply_noise(noiseless, aggregate_tilt_stats(measured, 2), seed=14)
    assert torch.equal(noisy, expected)


def test_modalities_table():
    assert set(MODALITIES) == {"noisy", "content", "baseline"}
    assert (MODALITIES["noisy"].order, MODALITIES["noisy"].sigma_scale) == (2, 1.0)
    assert (MODALITIES["content"].order, MODALITIES["content"].sigma_scale) == (2, 0.25)
    assert (MODALITIES["baseline"].order, MODALITIES["baseline"].sigma_scale) == (0, 1.0)


def test_constant_tilt_is_refused_naming_the_tilts():
    noiseless = smooth_field(N_TILTS, N, seed=15).float()
    noiseless[0] = 0.0
    noiseless[4] = 0.1  # a float32 std of this may be a tiny non-zero rounding residue
    stats = target_stats()
    with pytest.raises(FaketInputError, match=r"^noiseless tilts 0, 4 are constant images"):
        apply_noise(noiseless, stats, seed=16)
    with pytest.raises(FaketInputError, match=r"^clean\.mrc: tilts 0, 4 are constant") as info:
        make_modality(noiseless, measured_stats(0), "noisy", seed=16, name="clean.mrc")
    assert info.value.path == "clean.mrc"


def test_generate_errors():
    noiseless = smooth_field(N_TILTS, 16, seed=17).float()
    with pytest.raises(FaketInputError, match="describe 4 tilts but the noiseless .* has 5"):
        apply_noise(noiseless, target_stats(4), seed=0)
    with pytest.raises(ValueError, match="unknown modality 'fancy'; valid modalities are noisy"):
        make_modality(noiseless, measured_stats(0), "fancy", seed=0)
    with pytest.raises(ValueError, match="sigma_scale"):
        apply_noise(noiseless, target_stats(), sigma_scale=-1.0, seed=0)
    with pytest.raises(ValueError, match="seed must be an integer"):
        apply_noise(noiseless, target_stats(), seed=True)
    bad = target_stats()
    bad = TiltStats(r=bad.r, sigma=bad.sigma, mean=bad.mean, std=bad.std * 0)
    with pytest.raises(ValueError, match="std must be positive"):
        apply_noise(noiseless, bad, seed=0)
    with pytest.raises(ValueError, match="different numbers of tilts"):
        make_modality(noiseless, [target_stats(5), target_stats(6)], "noisy", seed=0)


def plain_modality(noiseless: torch.Tensor, stats: TiltStats, white: torch.Tensor, scale: float):
    """The method's formula on the whole stack, in float64, with a given white field."""

    def standardise(x: torch.Tensor) -> torch.Tensor:
        mean = x.mean((-2, -1), keepdim=True)
        return (x - mean) / x.std((-2, -1), correction=0, keepdim=True)

    x = stats.r[:, None, None] * standardise(noiseless.double())
    x = x + scale * stats.sigma[:, None, None] * white
    return standardise(x) * stats.std[:, None, None] + stats.mean[:, None, None]


def test_modality_parts_stream_a_file_with_the_field_drawn_a_part_at_a_time(tmp_path, monkeypatch):
    """A series read from its file a part at a time, against the formula on the whole stack.

    33 x 31 pixels (not a multiple of 16) and parts of 2 tilts: the white field of the
    definition is the generator's draws part after part, which here differs from one
    whole draw, so the test sees whether the parts are drawn in order and placed right.
    """
    import faket.noise.generate as generate
    from faket.io import write_mrc
    from faket.io.tilt_stack import MrcTilts

    monkeypatch.setattr(generate, "_PART_VALUES", 2 * 33 * 31)
    noiseless = (smooth_field(N_TILTS, 64, seed=30)[:, :33, :31] * 3 - 7).float()
    write_mrc(noiseless.numpy(), tmp_path / "noiseless.mrc", voxel_size_a=10.0)
    measured = measured_stats(seed=31)
    parts = generate.modality_parts(
        MrcTilts(tmp_path / "noiseless.mrc"), measured, "content", seed=32
    )
    got = list(parts)
    assert [start for start, _ in got] == [0, 2, 4]
    streamed = torch.cat([tilts for _, tilts in got])
    g = torch.Generator().manual_seed(32)
    white = torch.cat([torch.randn(k, 33, 31, generator=g) for k in (2, 2, 1)]).double()
    whole = torch.randn(N_TILTS, 33, 31, generator=torch.Generator().manual_seed(32))
    assert not torch.equal(white.float(), whole)  # the test would not see a whole draw
    expected = plain_modality(noiseless, aggregate_tilt_stats(measured, 2), white, 0.25)
    # float32 arithmetic on values of O(40) (std up to 8): ~1e-5 absolute; 1e-4 is 10x that.
    torch.testing.assert_close(streamed.double(), expected, rtol=0, atol=1e-4)
    assert streamed.dtype == torch.float32
    in_memory = make_modality(noiseless, measured, "content", seed=32)
    assert torch.equal(streamed, in_memory)  # one definition, whatever holds the input


def test_modality_parts_check_settings_at_the_call_and_values_part_by_part(tmp_path, monkeypatch):
    import faket.noise.generate as generate
    from faket.io import write_mrc
    from faket.io.tilt_stack import MrcTilts

    monkeypatch.setattr(generate, "_PART_VALUES", 2 * 16 * 16)
    noiseless = smooth_field(N_TILTS, 16, seed=33).float()
    noiseless[3, 2, 5] = float("nan")
    with warnings.catch_warnings(), mrcfile.new(tmp_path / "bad.mrc") as mrc:
        warnings.simplefilter("ignore", RuntimeWarning)  # write_mrc refuses NaN; mrcfile warns
        mrc.set_data(noiseless.numpy())
    stack = MrcTilts(tmp_path / "bad.mrc")
    with pytest.raises(ValueError, match="unknown modality 'fancy'"):
        generate.modality_parts(stack, measured_stats(0), "fancy", seed=0)  # not iterated
    with pytest.raises(FaketInputError, match="describe 4 tilts but the noiseless"):
        generate.modality_parts(stack, [target_stats(4)], "noisy", seed=0)
    parts = generate.modality_parts(stack, measured_stats(0), "noisy", seed=0, name="bad.mrc")
    assert next(parts)[0] == 0  # tilts 0 and 1 are fine
    with pytest.raises(FaketInputError, match=r"^bad\.mrc: .*NaN or infinite .* tilt\(s\) \[3\]"):
        next(parts)
    noiseless[3, 2, 5] = 0.0
    noiseless[4] = 2.5
    write_mrc(noiseless.numpy(), tmp_path / "flat.mrc")
    parts = generate.modality_parts(
        MrcTilts(tmp_path / "flat.mrc"), measured_stats(0), "noisy", seed=0, name="flat.mrc"
    )
    with pytest.raises(FaketInputError, match=r"^flat\.mrc: tilt 4 is a constant image"):
        list(parts)  # the last part's tilt, named by its index in the series
