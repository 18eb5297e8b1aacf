"""Likeness measures (spectrum, grey values, domain classifier) and `dataset_likeness`.

Oracles: an exact analytic filter ratio for the spectrum, scikit-learn's ROC AUC, the
Mann-Whitney null distribution of the AUC, and a synthetic "microscope" (a CTF-like
filter plus coloured noise) whose two references must be close while the unfiltered
noise-free content (NOISELESS) is far.
"""

from __future__ import annotations

import json
import math
import warnings

import mrcfile
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from faket.errors import FaketInputError
from faket.evaluation import (
    dataset_likeness,
    domain_auc,
    find_modalities,
    grey_value_distance,
    roc_auc,
    spectrum_log_distance,
    write_likeness_csv,
)
from faket.evaluation.likeness import standardise_tilts
from faket.io import write_mrc

# ------------------------------------------------------------------ synthetic data


def _radius(n: int) -> np.ndarray:
    """``(n, n)`` Fourier radius in cycles/pixel, FFT order."""
    f = np.fft.fftfreq(n)
    return np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)


def _filter(images: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Multiply each image's spectrum by ``response`` (periodic, exact)."""
    spectrum = np.fft.fft2(images, axes=(-2, -1)) * response
    return np.fft.ifft2(spectrum, axes=(-2, -1)).real


def specimen(rng: np.random.Generator, n_tilts: int, size: int, n_blobs: int = 12) -> np.ndarray:
    """Noise-free content: dark Gaussian blobs (radius 1.5-4 px), new ones in every tilt."""
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n_tilts, size, size))
    for t in range(n_tilts):
        for _ in range(n_blobs):
            cy, cx = rng.uniform(0, size, 2)
            r = rng.uniform(1.5, 4.0)
            dy = (yy - cy + size / 2) % size - size / 2
            dx = (xx - cx + size / 2) % size - size / 2
            out[t] -= np.exp(-(dy**2 + dx**2) / (2 * r * r))
    return out


def microscope(rng: np.random.Generator, content: np.ndarray) -> np.ndarray:
    """The test's microscope: a CTF-like oscillating filter plus coloured noise, SNR 1."""
    k = _radius(content.shape[-1])
    ctf = -np.sin(np.pi * (k / 0.18) ** 2 + 0.3) * np.exp(-((k / 0.35) ** 2))
    noise_shape = 0.4 + 0.6 * np.exp(-((k / 0.2) ** 2))
    signal = _filter(content, ctf)
    noise = _filter(rng.normal(size=content.shape), noise_shape)
    return signal / signal.std() + noise / noise.std()


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    """Two references of one microscope (different contents) and a NOISELESS series."""
    rng = np.random.default_rng(7)
    n_tilts, size = 20, 64
    return {
        "reference_1": microscope(rng, specimen(rng, n_tilts, size)),
        "reference_2": microscope(rng, specimen(rng, n_tilts, size)),
        "noiseless": specimen(rng, n_tilts, size),
    }


# ---------------------------------------------------------------------------- spectrum


def test_spectrum_distance_to_itself_is_zero_and_symmetric(rng):
    a = rng.normal(size=(3, 40, 48))
    b = _filter(rng.normal(size=(3, 40, 40)), np.exp(-((_radius(40) / 0.2) ** 2)))
    assert spectrum_log_distance(a, a).distance == 0.0
    ab, ba = spectrum_log_distance(a, b), spectrum_log_distance(b, a)
    assert ab.distance == ba.distance > 0.1
    np.testing.assert_array_equal(ab.per_tilt, ba.per_tilt)
    assert ab.per_tilt.shape == (3,)
    # one grid for both: DC left out, up to Nyquist, k / tile with tile = 20 (40 px // 2)
    np.testing.assert_allclose(ab.freqs, np.arange(1, 11) / 20, atol=1e-15)


def test_spectrum_of_scaled_white_noise_is_zero(rng):
    white = rng.normal(size=(4, 64, 64))
    # the same draw, scaled and shifted: standardisation makes it identical
    assert spectrum_log_distance(white, 3.7 * white + 5.0).distance < 1e-9
    # an independent draw of another variance: only the Welch estimate's scatter is left.
    # Each ring of 32 px tiles averages ~ 9 tiles x 2 pi k samples, so the relative error
    # of a bin is under ~0.25 and its log10 under ~0.1 decades; the mean |diff| ~ 0.04.
    other = 0.01 * rng.normal(size=(4, 64, 64))
    assert spectrum_log_distance(white, other).distance < 0.08


def test_spectrum_of_low_pass_matches_the_analytic_filter(rng):
    size, sigma = 256, 0.15
    k = _radius(size)
    response = np.exp(-(k**2) / (2 * sigma**2))
    white = rng.normal(size=(2, size, size))
    low = _filter(white, response)
    result = spectrum_log_distance(white, low, tile=64)
    # standardised white: P = 1; standardised filtered: P(k) = H(k)^2 / mean(H^2)
    expected = np.log10(np.exp(-(result.freqs**2) / sigma**2)) - np.log10(np.mean(response**2))
    measured = result.log_power_b - result.log_power_a
    # Welch scatter (~0.02 decades with 2 x 7 x 7 tiles of 64 px) and Hann leakage at the
    # steep end (H^2 = 1e-2.4 at Nyquist): 0.06 decades per bin, 3 % on the mean
    np.testing.assert_allclose(measured, np.broadcast_to(expected, measured.shape), atol=0.06)
    assert result.distance == pytest.approx(np.abs(expected).mean(), rel=0.03)


def test_spectrum_compares_images_of_different_sizes(rng):
    a = rng.normal(size=(2, 64, 64))
    b = rng.normal(size=(2, 48, 80))
    result = spectrum_log_distance(a, b)
    assert result.tile == 24 and result.distance < 0.1  # white vs white on one 24 px grid


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.zeros((2, 8, 8)), np.ones((2, 8, 8)), "constant"),
        (np.ones((2, 8)), np.ones((2, 8, 8)), "n_tilts, ny, nx"),
        (np.full((2, 8, 8), np.nan), np.ones((2, 8, 8)), "NaN"),
    ],
)
def test_bad_tilt_series_are_refused(rng, a, b, message):
    b = b + rng.normal(size=b.shape)
    with pytest.raises(ValueError, match=message):
        spectrum_log_distance(a, b)


def test_tilt_counts_must_agree(rng):
    a, b = rng.normal(size=(3, 8, 8)), rng.normal(size=(4, 8, 8))
    with pytest.raises(ValueError, match="3 tilts and b 4"):
        spectrum_log_distance(a, b)
    with pytest.raises(ValueError, match="3 tilts and b 4"):
        domain_auc(a, b)
    assert grey_value_distance(a, b) < 0.3  # pooled grey values: counts may differ


def test_standardise_keeps_dtype_and_device(rng, device):
    x = torch.from_numpy(rng.normal(2.0, 3.0, size=(3, 8, 8)).astype(np.float32)).to(device)
    z = standardise_tilts(x)
    assert z.dtype == torch.float32 and z.device == x.device
    torch.testing.assert_close(z.mean(dim=(1, 2)), torch.zeros(3, device=device), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_standardise_matches_numpy_per_tilt_and_names_a_constant_tilt(rng, dtype):
    x = rng.normal(5.0, [[[1.0]], [[30.0]], [[1e-3]]], size=(3, 40, 24)).astype(dtype)
    wide = x.astype(np.float64)
    oracle = (wide - wide.mean(axis=(1, 2), keepdims=True)) / wide.std(axis=(1, 2), keepdims=True)
    z = standardise_tilts(x)
    assert z.dtype == torch.from_numpy(x).dtype
    # float64 statistics either way. float32: its rounding of values up to ~4 (6e-7).
    # float64: summation order times the cancellation of tilt 2 (mean 5, std 1e-3):
    # eps * |mean| / std = 2.2e-16 * 5e3 ~ 1e-12, a few of them.
    tol = 1e-6 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(z.numpy(), oracle, rtol=0, atol=tol)
    x[2] = 7.0
    with pytest.raises(ValueError, match="tilt 2 is constant"):
        standardise_tilts(x)


# -------------------------------------------------------------------------- grey values


def test_grey_value_distance_oracles(rng):
    gauss = rng.normal(size=(4, 64, 64))
    assert grey_value_distance(gauss, 2.0 * gauss - 1.0) < 1e-6
    # W1(standard normal, standardised exponential) = E|Z - (E - 1)| under the quantile
    # coupling: 0.2415 by quadrature; the subsample's scatter is ~0.005
    expo = rng.exponential(size=(4, 64, 64))
    u = (np.arange(200_000) + 0.5) / 200_000
    from scipy.stats import expon, norm

    exact = np.mean(np.abs(norm.ppf(u) - (expon.ppf(u) - 1.0)))
    assert grey_value_distance(gauss, expo, max_samples=10_000) == pytest.approx(exact, abs=0.02)
    small = grey_value_distance(gauss, expo, max_samples=5_000, seed=3)
    assert small == grey_value_distance(expo, gauss, max_samples=5_000, seed=3)  # symmetric


# -------------------------------------------------------------------------------- AUC


def test_roc_auc_matches_sklearn_with_ties(rng):
    for n in (2, 7, 200, 1001):
        labels = rng.integers(0, 2, n)
        labels[:2] = (0, 1)
        scores = np.round(rng.normal(size=n) + 0.7 * labels, 1)  # many ties
        assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert roc_auc(np.array([1.0, 1.0, 1.0]), np.array([0, 1, 1])) == 0.5
    assert roc_auc(torch.tensor([0.1, 0.9]), torch.tensor([False, True])) == 1.0
    with pytest.raises(ValueError, match="both positives and negatives"):
        roc_auc(np.ones(3), np.ones(3))


# ---------------------------------------------------------- likeness of a microscope


def test_references_of_one_microscope_are_close_noiseless_is_far(scene):
    r1, r2, noiseless = scene["reference_1"], scene["reference_2"], scene["noiseless"]
    floor = spectrum_log_distance(r1, r2).distance
    assert floor < 0.12  # estimation scatter only (measured 0.07)
    assert spectrum_log_distance(noiseless, r1).distance > 10 * floor  # measured 45x
    w1_floor = grey_value_distance(r1, r2)
    assert w1_floor < 0.04  # measured 0.01
    assert grey_value_distance(noiseless, r1) > 10 * w1_floor  # measured 50x


def test_domain_auc_is_chance_for_one_process_and_one_for_noiseless(scene):
    r1, r2, noiseless = scene["reference_1"], scene["reference_2"], scene["noiseless"]
    null = domain_auc(r1, r2, steps=100, seed=0)
    # held-out: 10 odd tilts x (64 / 16)^2 non-overlapping patches = 160 independent
    # patches per series (the grid's half-overlapping ones add correlated copies); under
    # the null the AUC's standard error is sqrt((n1 + n2 + 1) / (12 n1 n2)) = 0.032.
    n = 10 * (64 // 16) ** 2
    standard_error = math.sqrt((2 * n + 1) / (12 * n * n))
    assert null.n_test_a == null.n_test_b == 10 * 7 * 7
    assert abs(null.auc - 0.5) < 3 * standard_error
    assert domain_auc(noiseless, r1, steps=100, seed=0).auc > 0.95


def test_domain_auc_is_deterministic(scene):
    a, b = scene["reference_1"][:6], scene["noiseless"][:6]
    first = domain_auc(a, b, steps=15, seed=3)
    assert domain_auc(torch.from_numpy(a), torch.from_numpy(b), steps=15, seed=3) == first
    assert first.patch == 16 and first.steps == 15
    with pytest.raises(ValueError, match="patch must be"):
        domain_auc(a, b, patch=128)
    with pytest.raises(ValueError, match="at least 2 tilts"):
        domain_auc(a[:1], b[:1])


# ------------------------------------------------------------------ dataset_likeness


TINY_TILTS, TINY_SIZE = 6, 48


def write_tiny_dataset(root, *, n_tomograms=3, seed=0, source="microscope"):
    """A dataset folder by hand: model_<i>/ with modalities, references and dataset.json.

    Per tomogram i: reference = the test's microscope; noiseless; noisy = a copy of its
    OWN reference (so pairing it with its own content would give distance 0);
    faket = a copy of the reference of tomogram (i + 1) mod n (its style reference:
    distance 0 when paired right); content and noisy_spectral; labels and a
    reconstruction that must be ignored.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    shape = (TINY_TILTS, TINY_SIZE, TINY_SIZE)
    refs = [microscope(rng, specimen(rng, *shape[:2], n_blobs=6)) for _ in range(n_tomograms)]
    angles = list(np.linspace(-30.0, 30.0, TINY_TILTS))
    reference_files = []
    if source == "files":
        for i, ref in enumerate(refs):
            path = root.parent / f"user_ref_{i}.mrc"
            write_mrc(ref.astype(np.float32), path, voxel_size_a=10.0)
            reference_files.append(str(path))
    tomograms = []
    for i in range(n_tomograms):
        folder = root / f"model_{i}"
        folder.mkdir()
        series = {
            "noiseless": specimen(rng, *shape[:2], n_blobs=6),
            "noisy": refs[i],
            "faket": refs[(i + 1) % n_tomograms],
            "content": rng.normal(size=shape),
            "noisy_spectral": rng.normal(size=shape),
        }
        if source == "microscope":
            series["reference"] = refs[i]
        for name, data in series.items():
            write_mrc(data.astype(np.float32), folder / f"{name}.mrc", voxel_size_a=10.0)
        label = np.zeros((8, TINY_SIZE, TINY_SIZE), np.float32)
        write_mrc(label, folder / "grandmodel.mrc", voxel_size_a=10.0)
        write_mrc(label, folder / "tomogram_noisy.mrc", voxel_size_a=10.0)
        tomograms.append(
            {
                "index": i,
                "folder": folder.name,
                "seed": i,
                "style_reference": (i + 1) % n_tomograms,
                "files": [],
            }
        )
    index = {
        "faket_dataset": 1,
        "n_tomograms": n_tomograms,
        "tilt_angles_deg": angles,
        "reference_source": source,
        "reference_specimens": [f"model_{i}" for i in range(n_tomograms)]
        if source == "microscope"
        else reference_files,
        "tomograms": tomograms,
    }
    (root / "dataset.json").write_text(json.dumps(index), encoding="utf-8")
    return root


def test_modalities_are_found_by_file_name(tmp_path):
    root = write_tiny_dataset(tmp_path / "data", n_tomograms=2)
    assert find_modalities(root / "model_0") == ["noiseless", "noisy", "noisy_spectral", "faket"]


def test_dataset_likeness_pairs_with_another_tomogram(tmp_path):
    root = write_tiny_dataset(tmp_path / "data")
    calls = []
    result = dataset_likeness(
        root, steps=5, seed=1, progress=lambda done, total: calls.append((done, total))
    )
    assert list(result.modalities) == ["noiseless", "noisy", "noisy_spectral", "faket"]
    assert calls == [(k, 15) for k in range(16)]  # 3 x 4 modalities + 3 floor pairs
    for m in result.modalities.values():
        assert [(p.tomogram, p.a, p.b) for p in m.pairs] == [
            (i, f"model_{i}/{m.name}.mrc", f"model_{(i + 1) % 3}/reference.mrc") for i in range(3)
        ]
    # faket_i is a copy of reference (i + 1): paired right, it is identical to it
    assert result.modalities["faket"].spectrum_log_distance == 0.0
    assert result.modalities["faket"].grey_w1 == 0.0
    # noisy_i is a copy of its OWN reference, which it must never be compared with
    assert min(p.spectrum_log_distance for p in result.modalities["noisy"].pairs) > 0.0
    floor = result.floor.pairs
    assert [(p.tomogram, p.a, p.b) for p in floor] == [
        (None, f"model_{k}/reference.mrc", f"model_{(k + 1) % 3}/reference.mrc") for k in range(3)
    ]
    assert min(p.spectrum_log_distance for p in floor) > 0.0
    assert result.ratio("faket", "spectrum_log_distance") == 0.0
    assert result.ratio("noiseless", "spectrum_log_distance") > 5.0
    assert len(result.freqs) == 12  # tile 24: k / 24, k = 1 .. 12
    assert set(result.zero_tilt_log_power) == {*result.modalities, "reference"}
    assert result.zero_tilt == 2  # angles -30, -18, -6, 6, 18, 30: the first nearest 0
    assert result.settings["patch"] == 16 and result.settings["steps"] == 5
    record = json.loads(json.dumps(result.to_dict()))
    assert record["table"][-1]["modality"] == "floor"
    assert record["modalities"]["faket"]["ratio_to_floor"]["grey_w1"] == 0.0


def test_dataset_likeness_follows_style_reference_and_user_files(tmp_path):
    root = write_tiny_dataset(tmp_path / "data", source="files")
    index = json.loads((root / "dataset.json").read_text())
    index["tomograms"][0]["style_reference"] = 2
    (root / "dataset.json").write_text(json.dumps(index))
    result = dataset_likeness(root, modalities=["content", "faket"], tilts=[0, 1, 2, 3], steps=2)
    assert list(result.modalities) == ["content", "faket"]
    refs = index["reference_specimens"]
    assert [p.b for p in result.modalities["faket"].pairs] == [refs[2], refs[2], refs[0]]
    assert [(p.a, p.b) for p in result.floor.pairs] == [
        (refs[k], refs[(k + 1) % 3]) for k in range(3)
    ]
    assert result.tilts == (0, 1, 2, 3)
    assert len(result.floor.pairs[0].spectrum_per_tilt) == 4
    write_likeness_csv(result, tmp_path / "likeness.csv")
    lines = (tmp_path / "likeness.csv").read_text().splitlines()
    assert lines[0].startswith("modality,n_pairs,spectrum_log_distance,grey_w1,domain_auc,")
    assert [line.split(",")[0] for line in lines[1:]] == ["content", "faket", "floor"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no_index", "no dataset.json"),
        ("one_tomogram", "floor needs references of two different tomograms"),
        ("tilts", "5 tilts, but the dataset has 6"),
        ("missing", "missing tilt-series"),
        ("constant", "cannot compare it with model_0/reference.mrc: tilt 2 is constant"),
        ("patch", "patch must be from 8 to the smallest image side"),
        ("nan", "model_1/noisy.mrc: 1 of 13824 values are NaN or Inf"),
    ],
)
def test_dataset_likeness_bad_input_is_one_line(tmp_path, change, message):
    root = write_tiny_dataset(tmp_path / "data", n_tomograms=1 if change == "one_tomogram" else 2)
    if change == "no_index":
        (root / "dataset.json").unlink()
    elif change == "tilts":
        write_mrc(np.ones((5, 48, 48), np.float32), root / "model_1" / "noisy.mrc")
    elif change == "missing":
        (root / "model_1" / "reference.mrc").unlink()
    elif change == "constant":
        data = np.random.default_rng(0).normal(size=(6, 48, 48)).astype(np.float32)
        data[2] = 1.0
        write_mrc(data, root / "model_1" / "noiseless.mrc")
    elif change == "nan":  # written by mrcfile: faket's writer refuses NaN
        data = np.random.default_rng(0).normal(size=(6, 48, 48)).astype(np.float32)
        data[3, 4, 5] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.new(root / "model_1" / "noisy.mrc", overwrite=True) as mrc:
                mrc.set_data(data)
    with pytest.raises(FaketInputError, match=message) as err:
        dataset_likeness(root, steps=2, patch=64 if change == "patch" else None)
    assert "\n" not in str(err.value)


def test_dataset_likeness_reads_the_tilts_asked_for(tmp_path):
    """Only the picked tilts are read (runs of consecutive tilts at a time), as read_mrc."""
    from faket.evaluation.likeness_dataset import _read_tilts

    data = np.random.default_rng(1).normal(size=(7, 9, 10)).astype(np.float32)
    path = tmp_path / "s.mrc"
    write_mrc(data, path)
    for tilts in ([0, 1, 3, 5, 6], [2], list(range(7))):
        np.testing.assert_array_equal(_read_tilts(path, tilts).numpy(), data[tilts])
