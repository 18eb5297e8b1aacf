"""A user's own microscope as the reference: another pixel size, tilt scheme and detector.

The stand-in for real data is the built-in microscope (counting detector) imaging another
specimen at 0.73 x the run's pixel size, on a non-square detector, 31 tilts over -45..45
degrees written in acquisition (dose-symmetric) order, with even/odd half-sets. The run
(11 tilts over -60..60 of its own) adopts the reference's scheme.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from faket.errors import FaketInputError
from faket.io import read_mrc, read_noise_stats, write_mrc, write_tilt_angles
from faket.pipeline import plan_run, simulate_dataset
from faket.pipeline.references import match_tilts, rescale_series, rescaled_shape
from pipeline_data import SHAPE
from pipeline_data import files_config as tiny_files_config

VOXEL_A = 10.0  # the run's: a microscope's CTF rings lie below Nyquist at 7.3-10 A
REF_PIXEL_A = 7.3
REF_SHAPE = (88, 120)  # non-square
# Dose-symmetric file order: 0, 3, -3, 6, -6, ..., 45, -45.
FILE_ANGLES = np.array([0.0] + [s * a for a in range(3, 46, 3) for s in (1, -1)])


def files_config(output, files, **sections):
    """The shared tiny files-source config at 10 A (no vesicles: they would not fit)."""
    phantom = {"voxel_size_a": VOXEL_A, "vesicles": 0, **sections.pop("phantom", {})}
    return tiny_files_config(output, files, phantom=phantom, **sections)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    from faket.microscope import MicroscopeSettings, simulate_tilt_series

    folder = tmp_path_factory.mktemp("microscope")
    volume = torch.zeros(24, *REF_SHAPE)
    g = torch.Generator().manual_seed(0)
    zz, yy, xx = torch.meshgrid(*(torch.arange(n) for n in volume.shape), indexing="ij")
    for _ in range(12):
        c = torch.rand(3, generator=g) * torch.tensor(volume.shape)
        volume[(zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < 16] = 3.0
    # No misalignment: the paired estimate the unlabelled ones are compared with is then
    # not lowered by shifts that a reference alone cannot see.
    settings = MicroscopeSettings(slab_nm=24 * REF_PIXEL_A / 10, shift_std_a=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # coarse pixels alias the CTF: irrelevant here
        result = simulate_tilt_series(
            volume, FILE_ANGLES, REF_PIXEL_A, settings, seed=1, half_sets=True
        )
    files = {
        "reference": folder / "ts.st",
        "angles": folder / "ts.rawtlt",
        "noiseless": folder / "ts_noiseless.mrc",
        "even": folder / "ts_even.mrc",
        "odd": folder / "ts_odd.mrc",
    }
    for name, data in (
        ("reference", result.counts),
        ("noiseless", result.noiseless),
        ("even", result.even),
        ("odd", result.odd),
    ):
        write_mrc(data.numpy(), files[name], voxel_size_a=REF_PIXEL_A)
    write_tilt_angles(FILE_ANGLES, files["angles"])
    return files


def test_a_reference_in_another_scheme_and_pixel_size_styles_the_run(tmp_path, stand_in):
    config = files_config(tmp_path / "ds", stand_in, projection={"angles_from": "reference"})
    simulate_dataset(config, report=False)
    index = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    # The run adopted the reference's 31 angles, ascending.
    np.testing.assert_array_equal(index["tilt_angles_deg"], np.sort(FILE_ANGLES))
    assert read_mrc(tmp_path / "ds" / "model_0" / "faket.mrc").data.shape == (31, *SHAPE[1:])
    prepared = read_mrc(tmp_path / "ds" / "references" / "reference_0.mrc")
    shape = rescaled_shape(*REF_SHAPE, REF_PIXEL_A, VOXEL_A)
    assert prepared.data.shape == (31, *shape) == (31, 64, 88)
    assert prepared.voxel_size_a == pytest.approx(VOXEL_A, rel=0.01)  # whole pixels: 0.5 %
    # Image i of the prepared reference is the file's image at the run's angle i.
    counts = torch.from_numpy(read_mrc(stand_in["reference"]).data)
    for i, angle in enumerate(np.sort(FILE_ANGLES)):
        j = int(np.flatnonzero(FILE_ANGLES == angle)[0])
        direct = rescale_series(counts[j : j + 1], REF_PIXEL_A, VOXEL_A)[0][0]
        np.testing.assert_allclose(prepared.data[i], direct.numpy(), rtol=0, atol=1e-4)
    # The statistics keep each image at its own angle (file order).
    (stats,) = read_noise_stats(tmp_path / "ds" / "noise_stats.json")
    np.testing.assert_array_equal(stats.tilt_angles_deg.numpy(), FILE_ANGLES)
    assert stats.method == "paired"


@pytest.mark.parametrize("method", ["unlabelled", "even-odd"])
def test_without_noiseless_twins_the_statistics_come_close_to_the_paired_ones(
    tmp_path, stand_in, method
):
    halves = {"even": [str(stand_in["even"])], "odd": [str(stand_in["odd"])]}
    config = files_config(
        tmp_path / "ds",
        stand_in,
        projection={"angles_from": "reference"},
        reference=halves if method == "even-odd" else {},
        noise={"noiseless": [], "extra_models": []},
        report={"likeness": False},
    )
    assert config.noise_method() == method
    simulate_dataset(config, report=False)
    (stats,) = read_noise_stats(tmp_path / "ds" / "noise_stats.json")
    assert stats.method == method
    np.testing.assert_array_equal(stats.tilt_angles_deg.numpy(), FILE_ANGLES)
    from faket.noise import estimate_tilt_stats

    grid = [
        rescale_series(torch.from_numpy(read_mrc(stand_in[k]).data), REF_PIXEL_A, VOXEL_A)[0]
        for k in ("reference", "noiseless")
    ]
    paired = estimate_tilt_stats(*grid)
    # sigma is the noise's share of each tilt's std; the truth is counts - expected counts.
    share = ((grid[0] - grid[1]).var(dim=(1, 2)) / grid[0].var(dim=(1, 2))).sqrt()
    # Measured here: even-odd max 0.036 (median 0.008), unlabelled 0.080 (0.013).
    bound = {"even-odd": 0.05, "unlabelled": 0.12}[method]
    assert float((stats.sigma - share).abs().max()) < bound
    # r against the paired correlation: measured max 0.16, median 0.09 for both; these
    # 64 x 88 px images of a sparse specimen (r 0.09-0.17) give few Welch tiles and a weak
    # CTF signal, so the bound is looser than the 0.05 that benchmarks/reference_estimators.py
    # measures at 256 px (0.053 worst case).
    error = (stats.r - paired.r).abs()
    assert float(error.median()) < 0.12 and float(error.max()) < 0.2


@pytest.mark.parametrize("given", ["ts.st", "ts.st.mdoc"])
def test_a_serialem_stack_with_its_mdoc_and_no_angles_setting(tmp_path, stand_in, given):
    # SerialEM's layout: ts.st and ts.st.mdoc (sections in acquisition order), the
    # pixel size only in the mdoc; reference.angles empty: the mdoc is found by name.
    from mdocfile.data_models import Mdoc, MdocGlobalData, MdocSectionData

    folder = tmp_path / "serialem"
    folder.mkdir()
    write_mrc(read_mrc(stand_in["reference"]).data, folder / "ts.st")  # no header size
    sections = [
        MdocSectionData(ZValue=z, TiltAngle=float(a), ExposureDose=3.0, PriorRecordDose=3.0 * z)
        for z, a in enumerate(FILE_ANGLES)  # the file is in acquisition order
    ]
    mdoc = Mdoc(
        titles=["[T = SerialEM: test]"],
        global_data=MdocGlobalData(PixelSpacing=REF_PIXEL_A, ImageFile="ts.st"),
        section_data=sections,
    )
    (folder / "ts.st.mdoc").write_text(mdoc.to_string())
    files = {**stand_in, "reference": folder / given}  # the stack, or the mdoc naming it
    config = files_config(
        tmp_path / "ds",
        files,
        reference={"angles": []},
        projection={"tilt_min_deg": -42, "tilt_max_deg": 42, "tilt_step_deg": 6},
    )
    simulate_dataset(config, report=False)
    # The run may adopt the mdoc's angles too (no angles file named in the config).
    adopted = files_config(
        tmp_path / "adopted",
        files,
        reference={"angles": []},
        projection={"angles_from": "reference"},
    )
    np.testing.assert_array_equal(plan_run(adopted).tilt_angles, np.sort(FILE_ANGLES))
    index = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    (record,) = index["user_references"]
    assert record["metadata"] == str(folder / "ts.st.mdoc")
    assert record["pixel_size_a"] == pytest.approx(REF_PIXEL_A)
    assert record["acquisition_order"] == list(range(31))
    assert "ts.st.mdoc" in record["acquisition_order_source"]
    run = np.arange(-42.0, 43.0, 6.0)
    paired = [FILE_ANGLES[j] for j in record["images_paired_with_run_tilts"]]
    np.testing.assert_array_equal(paired, run)


def test_rescaling_samples_a_band_limited_image_at_the_new_pixel_size():
    # Oracle: a periodic band-limited image, sampled afresh on the coarser grid. Fourier
    # cropping keeps the centre pixel (n // 2) in place, the grid spacing is n / n_out.
    n, k = 120, (3, 5)
    y, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")

    def wave(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.cos(2 * np.pi * (k[0] * y + k[1] * x) / n) + 0.5 * np.sin(2 * np.pi * 7 * x / n)

    image = wave(y, x)
    out, size = rescale_series(torch.from_numpy(image)[None], 7.3, 10.0)
    m = rescaled_shape(n, n, 7.3, 10.0)[0]
    assert out.shape == (1, m, m) == (1, 88, 88)
    assert size == pytest.approx(7.3 * n / m)
    pos = n // 2 + (np.arange(m) - m // 2) * (n / m)
    yy, xx = np.meshgrid(pos, pos, indexing="ij")
    expected = wave(yy, xx)
    # float32 output of a float64 transform: 1e-5.
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=0, atol=1e-5)


def test_tilts_are_matched_by_angle_not_position(tmp_path):
    run = np.arange(-6.0, 7.0, 3.0)
    assert match_tilts(run, FILE_ANGLES, 0.5, reference=tmp_path, run_source="x") == (
        4,
        2,
        0,
        1,
        3,
    )
    near = FILE_ANGLES + 0.3
    assert match_tilts(run, near, 0.5, reference=tmp_path, run_source="x")[2] == 0
    with pytest.raises(FaketInputError, match="no tilt within 0.1 deg of the run's -6 deg"):
        match_tilts(run, near, 0.1, reference=tmp_path / "r.mrc", run_source="run.tlt")
    with pytest.raises(FaketInputError, match="pair with one image"):
        match_tilts(np.array([0.0, 0.2]), FILE_ANGLES, 0.5, reference=tmp_path, run_source="x")


def test_images_the_aligner_dropped_are_never_paired_nor_measured(tmp_path):
    # An AreTomo .aln with a dark frame at image 3 (-24 deg): a run at every other angle
    # pairs image for image; a run that asks for -24 deg is refused.
    from alnfile.data_model import AlnData, DarkFrameInfo, TiltImageAlignmentParameters

    from faket.pipeline.references import check_reference
    from pipeline_data import user_reference_files

    files = user_reference_files(tmp_path)
    angles = np.linspace(-60.0, 60.0, 11)
    rows = [
        TiltImageAlignmentParameters(sec=i, rot=0.0, tx=0.0, ty=0.0, tilt=float(a))
        for i, a in enumerate(angles)
        if i != 3
    ]
    dark = [DarkFrameInfo(section_idx=3, val2=3, angle=float(angles[3]))]
    aln = AlnData(RawSize=(64, 64, 11), NumPatches=0, DarkFrames=dark, GlobalAlignments=rows)
    (tmp_path / "ref.aln").write_text(str(aln))
    config = files_config(tmp_path / "ds", files, reference={"angles": [str(tmp_path / "ref.aln")]})
    kept = [i for i in range(11) if i != 3]
    checked = check_reference(config, 0, angles[kept])
    assert checked.used == tuple(kept) and checked.run_tilts == tuple(kept)
    with pytest.raises(FaketInputError, match="no tilt within 0.5 deg of the run's -24 deg"):
        check_reference(config, 0, angles)
