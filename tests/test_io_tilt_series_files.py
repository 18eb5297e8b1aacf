"""Tests for faket.io.tilt_series_files: reference tilt-series metadata in every format.

Each fixture is written with the format's own library where it has a writer (mdocfile's
``Mdoc``, alnfile's ``AlnData``, warpxmlfile, starfile) and otherwise as text in the
format's documented layout (IMOD ``.xf``; the Data Portal's JSON files). The expected
values are the ones written, re-ordered by hand into image order.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import starfile
import warpxmlfile
from alnfile.data_model import AlnData, DarkFrameInfo, TiltImageAlignmentParameters
from mdocfile.data_models import Mdoc, MdocGlobalData, MdocSectionData

from faket.errors import FaketInputError
from faket.io import (
    TiltSeriesInfo,
    read_mrc,
    read_tilt_series_info,
    write_mrc,
    write_tilt_angles,
)
from faket.io.tilt_series_files import assume_dose_symmetric_order

TINY_STACK = np.zeros((3, 4, 4), dtype=np.float32)


def _check_error(error: pytest.ExceptionInfo[FaketInputError], path, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


# --- IMOD ----------------------------------------------------------------------------


def test_tlt_gives_angles_and_the_stack_next_to_it(tmp_path):
    write_tilt_angles([-3.0, 0.0, 3.0], tmp_path / "TS.tlt")
    write_mrc(TINY_STACK, tmp_path / "TS.st", voxel_size_a=2.0)
    info = read_tilt_series_info(tmp_path / "TS.tlt", n_images=3)
    assert isinstance(info, TiltSeriesInfo)
    np.testing.assert_array_equal(info.angles_deg, [-3.0, 0.0, 3.0])
    assert info.tilt_series == tmp_path / "TS.st"
    assert info.acquisition_order is None and info.shifts_px is None
    assert not info.angles_deg.flags.writeable


def test_read_mrc_accepts_imod_stack_names(tmp_path):
    for name in ("TS.st", "TS.ali"):
        write_mrc(TINY_STACK, tmp_path / name, voxel_size_a=2.0)
        assert read_mrc(tmp_path / name, ndim=3).data.shape == (3, 4, 4)


def test_xf_gives_shifts_and_rotation_with_the_sibling_tlt(tmp_path):
    c, s = math.cos(math.radians(30.0)), math.sin(math.radians(30.0))
    rows = [(1.0, 0.0, 0.0, 1.0, 1.5, -2.25), (c, -s, s, c, -0.5, 4.0), (0.0, -1.0, 1.0, 0.0, 0, 0)]
    (tmp_path / "TS.xf").write_text("".join(" ".join(map(repr, r)) + "\n" for r in rows))
    write_tilt_angles([-3.0, 0.0, 3.0], tmp_path / "TS.tlt")
    info = read_tilt_series_info(tmp_path / "TS.xf", n_images=3)
    np.testing.assert_array_equal(info.shifts_px, [[-2.25, 1.5], [4.0, -0.5], [0.0, 0.0]])
    np.testing.assert_allclose(info.in_plane_rotation_deg, [0.0, 30.0, 90.0], atol=1e-12)
    np.testing.assert_array_equal(info.angles_deg, [-3.0, 0.0, 3.0])


def test_xf_without_angles_or_with_a_bad_line_is_refused(tmp_path):
    (tmp_path / "TS.xf").write_text("1 0 0 1 0 0\n")
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path / "TS.xf")
    _check_error(error, tmp_path / "TS.xf", "TS.tlt")
    (tmp_path / "TS.xf").write_text("1 0 0 1 0\n")
    write_tilt_angles([0.0], tmp_path / "TS.tlt")
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path / "TS.xf")
    _check_error(error, tmp_path / "TS.xf", "line 1", "6 numbers")


# --- SerialEM ------------------------------------------------------------------------


def _write_mdoc(path, angles, *, z_values=None, dates=True, **extra) -> None:
    """Sections in acquisition order (as SerialEM appends them), ZValue = image index."""
    z_values = range(len(angles)) if z_values is None else z_values
    sections = [
        MdocSectionData(
            ZValue=z,
            TiltAngle=angle,
            ExposureDose=2.5 + 0.5 * k,
            PriorRecordDose=sum(2.5 + 0.5 * j for j in range(k)),
            DateTime=f"17-Feb-21  11:{47 + k:02d}:31" if dates else None,
            TargetDefocus=-3.5,
            **extra,
        )
        for k, (z, angle) in enumerate(zip(z_values, angles, strict=True))
    ]
    mdoc = Mdoc(
        titles=["[T = SerialEM: test]"],
        global_data=MdocGlobalData(PixelSpacing=2.125, ImageFile="TS.mrc"),
        section_data=sections,
    )
    path.write_text(mdoc.to_string())


def test_mdoc_gives_angles_pixel_size_order_dose_and_defocus_in_image_order(tmp_path):
    # Exposed 0, +3, -3, but listed with ZValues 1, 2, 0: image 0 is the -3 tilt.
    _write_mdoc(tmp_path / "TS.mrc.mdoc", [0.0, 3.0, -3.0], z_values=[1, 2, 0])
    write_mrc(TINY_STACK, tmp_path / "TS.mrc")
    info = read_tilt_series_info(tmp_path / "TS.mrc.mdoc", n_images=3)
    np.testing.assert_array_equal(info.angles_deg, [-3.0, 0.0, 3.0])
    assert info.pixel_size_a == 2.125
    np.testing.assert_array_equal(info.acquisition_order, [2, 0, 1])
    np.testing.assert_array_equal(info.dose_e_per_a2, [3.5, 2.5, 3.0])
    np.testing.assert_array_equal(info.prior_dose_e_per_a2, [5.5, 0.0, 2.5])
    np.testing.assert_array_equal(info.defocus_um, [3.5, 3.5, 3.5])
    assert info.tilt_series == tmp_path / "TS.mrc"
    assert "DateTime" in info.source


def test_mdoc_without_dates_orders_by_prior_dose(tmp_path):
    _write_mdoc(tmp_path / "TS.mdoc", [0.0, 3.0, -3.0], z_values=[1, 2, 0], dates=False)
    info = read_tilt_series_info(tmp_path / "TS.mdoc")
    np.testing.assert_array_equal(info.acquisition_order, [2, 0, 1])
    assert "PriorRecordDose" in info.source


def test_mdoc_with_a_nan_angle_or_no_zvalues_is_refused(tmp_path):
    _write_mdoc(tmp_path / "TS.mdoc", [0.0, float("nan"), -3.0])
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path / "TS.mdoc")
    _check_error(error, tmp_path / "TS.mdoc", "image 1", "NaN")
    (tmp_path / "frames.mdoc").write_text("PixelSpacing = 1\n\n[FrameSet = 0]\nTiltAngle = 0\n")
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path / "frames.mdoc")
    _check_error(error, tmp_path / "frames.mdoc", "ZValue")


# --- AreTomo -------------------------------------------------------------------------


def _write_aln(path, base: int) -> None:
    """Images 0, 1, 2, 3 at -6, -3, 0, 3 degrees; image 1 is a dark frame."""
    rows = [
        TiltImageAlignmentParameters(sec=0 + base, rot=0.0, tx=1.5, ty=-2.25, tilt=-6.0),
        TiltImageAlignmentParameters(sec=2 + base, rot=90.0, tx=4.0, ty=0.5, tilt=0.0),
        TiltImageAlignmentParameters(sec=3 + base, rot=0.0, tx=-1.0, ty=2.0, tilt=3.0),
    ]
    dark = [DarkFrameInfo(section_idx=1, val2=1 + base, angle=-3.0)]
    aln = AlnData(RawSize=(64, 64, 4), NumPatches=0, DarkFrames=dark, GlobalAlignments=rows)
    path.write_text(str(aln))


@pytest.mark.parametrize("base", [0, 1])
def test_aln_gives_angles_dark_frames_and_imod_shifts(tmp_path, base):
    _write_aln(tmp_path / "TS.aln", base)
    info = read_tilt_series_info(tmp_path / "TS.aln", n_images=4)
    np.testing.assert_array_equal(info.angles_deg, [-6.0, -3.0, 0.0, 3.0])
    np.testing.assert_array_equal(info.excluded, [False, True, False, False])
    # IMOD .xf of AreTomo's (ROT, TX, TY): d = -R(-ROT) (TX, TY); ROT 0: (dy, dx) =
    # (-TY, -TX); ROT 90: R(-90) (x, y) = (y, -x), so (dx, dy) = (-TY, TX).
    expected = [[2.25, -1.5], [np.nan, np.nan], [4.0, -0.5], [-2.0, 1.0]]
    np.testing.assert_allclose(info.shifts_px, expected, atol=1e-12)
    np.testing.assert_allclose(info.in_plane_rotation_deg, [0.0, np.nan, -90.0, 0.0])


def test_aln_whose_sections_do_not_fit_rawsize_or_is_garbage_is_refused(tmp_path):
    _write_aln(tmp_path / "TS.aln", 0)
    text = (tmp_path / "TS.aln").read_text().replace("RawSize = 64 64 4", "RawSize = 64 64 5")
    (tmp_path / "bad.aln").write_text(text)
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path / "bad.aln")
    _check_error(error, tmp_path / "bad.aln", "RawSize")
    (tmp_path / "junk.aln").write_text("# AreTomo Alignment\n# RawSize = 1 2\n")
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path / "junk.aln")
    _check_error(error, tmp_path / "junk.aln", "AreTomo .aln")


# --- Warp ----------------------------------------------------------------------------


def test_warp_xml_gives_angles_prior_dose_order_defocus_and_use_tilt(tmp_path):
    defocus = np.array([2.5, 3.0, 3.25], dtype=np.float32).reshape(3, 1, 1)
    series = warpxmlfile.WarpTiltSeries(
        angles=np.array([-3.0, 0.0, 3.0]),
        use_tilt=np.array([True, False, True]),
        axis_angle=np.zeros(3),
        axis_offset_x=np.zeros(3),
        axis_offset_y=np.zeros(3),
        dose=np.array([6.0, 0.0, 3.0]),
        ctf={"PixelSize": "1.5", "Defocus": "3"},
        grids={"GridCTF": warpxmlfile.Grid(values=defocus)},
    )
    warpxmlfile.write(series, tmp_path / "TS.xml")
    info = read_tilt_series_info(tmp_path / "TS.xml", n_images=3)
    np.testing.assert_array_equal(info.angles_deg, [-3.0, 0.0, 3.0])
    np.testing.assert_array_equal(info.prior_dose_e_per_a2, [6.0, 0.0, 3.0])
    np.testing.assert_array_equal(info.acquisition_order, [2, 0, 1])
    np.testing.assert_array_equal(info.defocus_um, [2.5, 3.0, 3.25])
    np.testing.assert_array_equal(info.excluded, [False, True, False])
    assert info.pixel_size_a == 1.5 and info.shifts_px is None


# --- RELION --------------------------------------------------------------------------


def _write_relion_project(root, names=("TS_01",)) -> None:
    """A project with tomograms.star in a job folder, paths relative to the project."""
    (root / "Tomo/job003/tilt_series").mkdir(parents=True)
    tilts = pd.DataFrame(
        {
            "rlnMicrographName": [f"MotionCorr/job002/TS_01_{i}.mrc" for i in range(3)],
            "rlnMicrographNameEven": [f"MotionCorr/job002/TS_01_{i}_EVN.mrc" for i in range(3)],
            "rlnMicrographNameOdd": [f"MotionCorr/job002/TS_01_{i}_ODD.mrc" for i in range(3)],
            "rlnTomoNominalStageTiltAngle": [-3.0, 0.0, 3.0],
            "rlnTomoYTilt": [-3.25, -0.25, 2.75],
            "rlnMicrographPreExposure": [6.0, 0.0, 3.0],
            "rlnDefocusU": [30000.0, 31000.0, 32000.0],
            "rlnDefocusV": [32000.0, 33000.0, 34000.0],
            "rlnTomoZRot": [0.0, 0.0, 90.0],
            "rlnTomoXShiftAngst": [3.0, -4.5, 8.0],
            "rlnTomoYShiftAngst": [-1.5, 0.0, 1.0],
        }
    )
    starfile.write({"TS_01": tilts}, root / "Tomo/job003/tilt_series/TS_01.star")
    table = pd.DataFrame(
        {
            "rlnTomoName": list(names),
            "rlnTomoTiltSeriesPixelSize": [2.0] * len(names),
            "rlnTomoTiltSeriesStarFile": ["Tomo/job003/tilt_series/TS_01.star"] * len(names),
        }
    )
    starfile.write({"global": table}, root / "Tomo/job003/tomograms.star")


def test_relion_tomograms_star_gives_the_tilt_series_in_its_star_file(tmp_path):
    _write_relion_project(tmp_path)
    info = read_tilt_series_info(tmp_path / "Tomo/job003/tomograms.star", n_images=3)
    np.testing.assert_array_equal(info.angles_deg, [-3.25, -0.25, 2.75])  # rlnTomoYTilt
    assert info.pixel_size_a == 2.0
    np.testing.assert_array_equal(info.prior_dose_e_per_a2, [6.0, 0.0, 3.0])
    np.testing.assert_array_equal(info.acquisition_order, [2, 0, 1])
    np.testing.assert_array_equal(info.defocus_um, [3.1, 3.2, 3.3])
    # AreTomo form (TX, TY) = shift / 2 A: (1.5, -0.75), (-2.25, 0), (4, 0.5) at ROT 0, 0, 90.
    expected = [[0.75, -1.5], [0.0, 2.25], [4.0, -0.5]]
    np.testing.assert_allclose(info.shifts_px, expected, atol=1e-12)
    assert info.images is not None and info.even_images is not None
    assert info.even_images[1] == tmp_path / "MotionCorr/job002/TS_01_1_EVN.mrc"
    assert info.odd_images is not None and info.odd_images[2].name == "TS_01_2_ODD.mrc"


def test_relion_tomograms_star_with_several_needs_a_known_name(tmp_path):
    _write_relion_project(tmp_path, names=("TS_01", "TS_02"))
    star = tmp_path / "Tomo/job003/tomograms.star"
    assert read_tilt_series_info(star, name="TS_02").n_images == 3
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(star)
    _check_error(error, star, "2 tilt-series", "TS_01, TS_02")
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(star, name="TS_09")
    _check_error(error, star, "'TS_09'")


def test_relion_tilt_series_star_read_directly_has_no_pixel_size(tmp_path):
    _write_relion_project(tmp_path)
    info = read_tilt_series_info(tmp_path / "Tomo/job003/tilt_series/TS_01.star")
    np.testing.assert_array_equal(info.angles_deg, [-3.25, -0.25, 2.75])
    assert info.pixel_size_a is None and info.shifts_px is None


# --- CryoET Data Portal and copick -----------------------------------------------------


def _write_portal_run(dataset, run_name="RUN1") -> None:
    """Layout 2 of the portal: TiltSeries/100, Alignments/100, Frames."""
    run = dataset / run_name
    (run / "TiltSeries/100").mkdir(parents=True)
    (run / "Alignments/100").mkdir(parents=True)
    (run / "Frames").mkdir(parents=True)
    write_mrc(TINY_STACK, run / f"TiltSeries/100/{run_name}.mrc", voxel_size_a=4.0)
    sections = [  # image i: angle, acquisition order (SerialEM ZValue), defocus (A)
        {"z_index": 2, "raw_angle": 3.0, "frame_acquisition_order": 1},
        {"z_index": 0, "raw_angle": -3.0, "frame_acquisition_order": 2},
        {"z_index": 1, "raw_angle": 0.0, "frame_acquisition_order": 0},
    ]
    for section, defocus in zip(sections, (30000.0, 40000.0, 20000.0), strict=True):
        section.update(major_defocus=defocus, minor_defocus=defocus + 2000.0)
    ts_meta = {
        "mrc_file": f"10000/{run_name}/TiltSeries/100/{run_name}.mrc",
        "pixel_spacing": 4.0,
        "size": {"z": 3, "y": 4, "x": 4},
        "per_section_parameter": sections,
    }
    (run / "TiltSeries/100/tiltseries_metadata.json").write_text(json.dumps(ts_meta))
    frames = [
        {"acquisition_order": k, "exposure_dose": 2.0 + k, "accumulated_dose": [0, 2, 5][k]}
        for k in range(3)
    ]
    (run / "Frames/frames_metadata.json").write_text(json.dumps({"frames": frames}))
    alignment = {
        "alignment_path": f"10000/{run_name}/Alignments/100/{run_name}.xf",
        "tiltseries_path": f"10000/{run_name}/TiltSeries/100/tiltseries_metadata.json",
        "per_section_alignment_parameters": [{"z_index": 0}, {"z_index": 2}],
    }
    (run / "Alignments/100/alignment_metadata.json").write_text(json.dumps(alignment))
    xf = "1 0 0 1 0.5 -1\n1 0 0 1 0 0\n1 0 0 1 -2 3\n"
    (run / f"Alignments/100/{run_name}.xf").write_text(xf)


def test_portal_run_folder_gives_stack_angles_order_dose_defocus_and_shifts(tmp_path):
    _write_portal_run(tmp_path)
    info = read_tilt_series_info(tmp_path / "RUN1", n_images=3)
    assert info.tilt_series == tmp_path / "RUN1/TiltSeries/100/RUN1.mrc"
    np.testing.assert_array_equal(info.angles_deg, [-3.0, 0.0, 3.0])
    assert info.pixel_size_a == 4.0
    np.testing.assert_array_equal(info.acquisition_order, [2, 0, 1])
    np.testing.assert_array_equal(info.dose_e_per_a2, [4.0, 2.0, 3.0])
    np.testing.assert_array_equal(info.prior_dose_e_per_a2, [5.0, 0.0, 2.0])
    np.testing.assert_array_equal(info.defocus_um, [4.1, 2.1, 3.1])
    np.testing.assert_array_equal(info.shifts_px, [[-1.0, 0.5], [0.0, 0.0], [3.0, -2.0]])
    np.testing.assert_array_equal(info.excluded, [False, True, False])


def test_portal_dataset_folder_selects_a_run_by_name(tmp_path):
    _write_portal_run(tmp_path, "RUN1")
    _write_portal_run(tmp_path, "RUN2")
    info = read_tilt_series_info(tmp_path, name="RUN2")
    assert info.tilt_series == tmp_path / "RUN2/TiltSeries/100/RUN2.mrc"
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path)
    _check_error(error, tmp_path, "2 runs", "RUN1, RUN2")


def test_portal_layout_1_reads_the_rawtlt_next_to_the_stack(tmp_path):
    folder = tmp_path / "RUN1/TiltSeries"
    folder.mkdir(parents=True)
    write_mrc(TINY_STACK, folder / "RUN1.mrc")
    write_tilt_angles([-3.0, 0.0, 3.0], folder / "RUN1.rawtlt")
    meta = {"mrc_files": ["RUN1.mrc"], "pixel_spacing": 4.0}
    (folder / "tiltseries_metadata.json").write_text(json.dumps(meta))
    info = read_tilt_series_info(tmp_path / "RUN1", n_images=3)
    np.testing.assert_array_equal(info.angles_deg, [-3.0, 0.0, 3.0])
    assert info.tilt_series == folder / "RUN1.mrc" and info.pixel_size_a == 4.0
    assert info.acquisition_order is None and info.shifts_px is None


def test_copick_and_other_folders_are_refused(tmp_path):
    (tmp_path / "copick/ExperimentRuns/TS_01/VoxelSpacing10.000").mkdir(parents=True)
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path / "copick")
    _check_error(error, tmp_path / "copick", "copick", "no tilt-series")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path / "empty")
    _check_error(error, tmp_path / "empty", "Data Portal")


# --- shared bad input and the dose-symmetric assumption -------------------------------


def test_missing_file_unknown_extension_and_wrong_count_are_refused(tmp_path):
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path / "TS.mdoc")
    _check_error(error, tmp_path / "TS.mdoc", "not found")
    (tmp_path / "TS.json").write_text("{}")
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path / "TS.json")
    _check_error(error, tmp_path / "TS.json", "'.json'")
    write_tilt_angles([-3.0, 0.0, 3.0], tmp_path / "TS.tlt")
    with pytest.raises(FaketInputError) as error:
        read_tilt_series_info(tmp_path / "TS.tlt", n_images=41)
    _check_error(error, tmp_path / "TS.tlt", "3 tilt images", "41")


def test_assume_dose_symmetric_order_alternates_single_tilts_from_zero():
    # Angles in image order -6, -3, 0, 3, 6 are exposed 0, +3, -3, +6, -6.
    order = assume_dose_symmetric_order([-6.0, -3.0, 0.0, 3.0, 6.0])
    np.testing.assert_array_equal(order, [4, 2, 0, 1, 3])
    with pytest.raises(ValueError):
        assume_dose_symmetric_order([0.0, float("nan")])
