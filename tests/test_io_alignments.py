"""Alignment files (IMOD .xf/.tlt/.defocus, AreTomo .aln, JSON) against their own readers.

Oracles: each format's own reader (``alnfile`` for ``.aln`` and its ``df_to_xf``
conversion to IMOD; IMOD's documented text layout parsed with numpy), faket's
:func:`faket.io.read_tilt_series_info`, and the SIGN checked by aligning images the way
IMOD and AreTomo document it, with scipy written here independently of faket:

- IMOD (``newstack``, ``xf2rotmagstr`` man pages): a raw position ``x`` goes to
  ``x' = A (x - c) + d + c`` in the aligned image, so ``aligned(x') = raw(A^-1 (x' - c -
  d) + c)``: ``scipy.ndimage.affine_transform`` with that matrix and offset.
- AreTomo: ``(TX, TY)`` is the shift found in the raw image and removed, ``aligned(x) =
  raw(x + (TX, TY))`` for ``ROT = 0``: ``scipy.ndimage.shift`` by ``-(TY, TX)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import alnfile
import numpy as np
import pytest
import torch
from scipy import ndimage

from faket.errors import FaketInputError
from faket.io import (
    read_mrc,
    read_tilt_angles,
    read_tilt_metadata,
    read_tilt_series_info,
    write_aln,
    write_microscope_alignment,
    write_xf,
)
from faket.io.alignments import MICROSCOPE_UNITS, alignment_paths
from faket.microscope import MicroscopeSettings, simulate_tilt_series
from faket.microscope.simulate import _fourier_shift

ANGLES = [-30.0, -15.0, 0.0, 15.0, 30.0]
APPLIED = np.array([[2.7, -4.3], [-1.25, 0.5], [0.0, 0.0], [3.125, 1.875], [-0.4, -2.2]])
DEFOCUS_UM = [3.012, 2.95, 3.1, 3.0005, 2.8]
SHAPE = (48, 64)
# The text files keep IMOD's and alnfile's own decimals: shifts 0.001 px, the .aln tilt
# and the .defocus angles 0.01 degree, defocus 0.01 nm. Rounding is half a last digit.
SHIFT_ATOL = 5e-4
ANGLE_ATOL = 5e-3
DEFOCUS_ATOL_UM = 5e-6


def _records(applied=APPLIED, angles=ANGLES, defocus=DEFOCUS_UM) -> list[dict]:
    return [
        {
            "index": i,
            "angle_deg": float(a),
            "acquisition_rank": i,
            "defocus_um": float(df),
            "shift_y_px": float(dy),
            "shift_x_px": float(dx),
        }
        for i, (a, df, (dy, dx)) in enumerate(zip(angles, defocus, applied, strict=True))
    ]


@pytest.fixture
def written(tmp_path: Path) -> dict[str, Path]:
    """The five files of a 5-tilt record set next to ``ts.mrc``."""
    records = _records()
    paths = write_microscope_alignment(
        records, tmp_path / "ts.mrc", image_shape=SHAPE, pixel_size_a=10.0, settings={"a": 1}
    )
    assert [p.name for p in paths] == [
        "ts.tlt",
        "ts.xf",
        "ts.aln",
        "ts.defocus",
        "ts.tilts.json",
    ]
    return {p.name.split(".", 1)[1]: p for p in paths}


# --- (a) round trips through each format's own reader --------------------------------


def test_xf_parsed_as_imod_documents_it_and_read_back_by_faket(written):
    rows = np.loadtxt(written["xf"], ndmin=2)
    assert rows.shape == (5, 6)
    np.testing.assert_array_equal(rows[:, :4], np.tile([1.0, 0.0, 0.0, 1.0], (5, 1)))
    # DX, DY undo the applied shift: minus the content's displacement.
    np.testing.assert_allclose(rows[:, 4], -APPLIED[:, 1], atol=SHIFT_ATOL)
    np.testing.assert_allclose(rows[:, 5], -APPLIED[:, 0], atol=SHIFT_ATOL)
    info = read_tilt_series_info(written["xf"], n_images=5)
    np.testing.assert_array_equal(info.angles_deg, ANGLES)  # from the sibling ts.tlt
    np.testing.assert_allclose(info.shifts_px, -APPLIED, atol=SHIFT_ATOL)
    np.testing.assert_array_equal(info.in_plane_rotation_deg, 0.0)


def test_aln_read_by_alnfile_and_by_faket_gives_the_same_alignment_as_the_xf(written):
    frame = alnfile.read(written["aln"])
    assert frame["sec"].tolist() == [0, 1, 2, 3, 4]  # AreTomo 1/2 numbering (0-based)
    np.testing.assert_allclose(frame["tilt"], ANGLES, atol=ANGLE_ATOL)
    np.testing.assert_array_equal(frame["rot"], 0.0)
    np.testing.assert_array_equal(frame["gmag"], 1.0)
    np.testing.assert_allclose(frame["tx"], APPLIED[:, 1], atol=SHIFT_ATOL)
    np.testing.assert_allclose(frame["ty"], APPLIED[:, 0], atol=SHIFT_ATOL)
    # alnfile's own AreTomo -> IMOD conversion gives the .xf that was written.
    xf = alnfile.df_to_xf(frame)
    rows = np.loadtxt(written["xf"], ndmin=2)
    np.testing.assert_allclose(xf[:, :, :2].reshape(5, 4), rows[:, :4], atol=1e-12)
    np.testing.assert_allclose(xf[:, :, 2], rows[:, 4:], atol=2 * SHIFT_ATOL)
    header = written["aln"].read_text().splitlines()
    assert "# RawSize = 64 48 5" in header and "# NumPatches = 0" in header
    info = read_tilt_series_info(written["aln"], n_images=5)
    np.testing.assert_allclose(info.angles_deg, ANGLES, atol=ANGLE_ATOL)
    np.testing.assert_allclose(info.shifts_px, -APPLIED, atol=SHIFT_ATOL)
    assert not info.excluded.any()


def test_defocus_file_has_imods_version_2_layout(written):
    lines = [line.split() for line in written["defocus"].read_text().splitlines()]
    assert len(lines) == 5 and len(lines[0]) == 6 and lines[0][5] == "2"
    assert all(len(line) == 5 for line in lines[1:])
    table = np.array([[float(v) for v in line[:5]] for line in lines])
    np.testing.assert_array_equal(table[:, 0], np.arange(1, 6))  # views from 1
    np.testing.assert_array_equal(table[:, 1], np.arange(1, 6))
    np.testing.assert_allclose(table[:, 2], ANGLES, atol=ANGLE_ATOL)
    np.testing.assert_allclose(table[:, 3], ANGLES, atol=ANGLE_ATOL)
    np.testing.assert_allclose(table[:, 4] / 1000, DEFOCUS_UM, atol=DEFOCUS_ATOL_UM)  # nm


def test_tlt_and_json_keep_the_records_exactly(written):
    assert read_tilt_angles(written["tlt"]).tolist() == ANGLES
    sidecar = read_tilt_metadata(written["tilts.json"])
    assert sidecar["tilts"] == _records()
    assert sidecar["pixel_size_a"] == 10.0 and sidecar["settings"] == {"a": 1}
    assert sidecar["units"] == MICROSCOPE_UNITS


def test_identity_xf_reads_back_as_zero_shifts(tmp_path):
    write_xf([(0.0, 0.0)] * 3, tmp_path / "tilt_angles.xf")
    (tmp_path / "tilt_angles.tlt").write_text("-10\n0\n10\n")
    info = read_tilt_series_info(tmp_path / "tilt_angles.xf")
    np.testing.assert_array_equal(info.shifts_px, 0.0)
    np.testing.assert_array_equal(info.angles_deg, [-10, 0, 10])


def test_paths_follow_the_stack_stem(tmp_path):
    paths = alignment_paths(tmp_path / "TS_01.st")
    assert paths[".xf"] == tmp_path / "TS_01.xf"
    assert paths[".tilts.json"] == tmp_path / "TS_01.tilts.json"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: write_xf([(0.0, np.nan)], p), "NaN"),
        (lambda p: write_xf([0.0, 1.0], p), r"\(n, 2\)"),
        (lambda p: write_aln([0.0, 10.0], [(0.0, 0.0)], p, image_shape=(4, 4)), "1 shifts"),
        (lambda p: write_aln([0.0], [(0.0, 0.0)], p, image_shape=(0, 4)), "image_shape"),
        (lambda p: write_aln([95.0], [(0.0, 0.0)], p, image_shape=(4, 4)), "within"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_file(tmp_path, call, message):
    target = tmp_path / "out.xf"
    with pytest.raises(FaketInputError, match=message) as caught:
        call(target)
    assert str(target) in str(caught.value) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_record_without_shifts_is_named(tmp_path):
    records = [{"angle_deg": 0.0, "defocus_um": 3.0}]
    with pytest.raises(FaketInputError, match="shift_y_px"):
        write_microscope_alignment(records, tmp_path / "ts.mrc", image_shape=SHAPE, pixel_size_a=1)
    assert list(tmp_path.iterdir()) == []


# --- (b) the sign: aligning with the written files undoes the microscope's shift -----


def _blobs(shape: tuple[int, int]) -> np.ndarray:
    """A smooth, asymmetric image (Gaussians of 2.5-3.5 px: cubic splines interpolate it)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    image = np.zeros(shape)
    for cy, cx, sigma, amplitude in [(20, 25, 3.0, 1.0), (30, 40, 2.5, -0.7), (12, 48, 3.5, 0.5)]:
        image += amplitude * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    return image


def _imod_newstack(raw: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Apply one ``.xf`` row as IMOD documents it, about the image centre (periodic)."""
    a = np.array([[row[0], row[1]], [row[2], row[3]]])  # acts on (x, y)
    d = np.array([row[4], row[5]])
    swap = np.array([[0, 1], [1, 0]])  # (x, y) <-> (row, column)
    a_rc, d_rc = swap @ a @ swap, swap @ d
    centre = (np.array(raw.shape, dtype=np.float64) - 1) / 2
    inverse = np.linalg.inv(a_rc)  # output pixel x' samples raw at A^-1 (x' - c - d) + c
    offset = centre - inverse @ (centre + d_rc)
    return ndimage.affine_transform(raw, inverse, offset=offset, order=3, mode="grid-wrap")


def _aretomo_align(raw: np.ndarray, tx: float, ty: float) -> np.ndarray:
    """Remove AreTomo's ``(TX, TY)`` from a raw image (``ROT = 0``): raw(x + t)."""
    return ndimage.shift(raw, (-ty, -tx), order=3, mode="grid-wrap")


def test_xf_and_aln_undo_the_microscopes_fourier_shift(tmp_path):
    image = _blobs(SHAPE)
    tensor = torch.from_numpy(image)
    write_microscope_alignment(
        _records(), tmp_path / "ts.mrc", image_shape=SHAPE, pixel_size_a=10.0
    )
    rows = np.loadtxt(tmp_path / "ts.xf", ndmin=2)
    frame = alnfile.read(tmp_path / "ts.aln")
    scale = np.ptp(image)
    for i, (dy, dx) in enumerate(APPLIED):
        ramp = _fourier_shift(SHAPE, float(dy), float(dx), like=tensor)  # the microscope's
        raw = torch.fft.ifft2(torch.fft.fft2(tensor) * ramp).real.numpy()
        # Cubic-spline interpolation of 2.5 px Gaussians errs by ~1e-4 of the range; a
        # wrong sign leaves the content ~2|shift| px away (errors of ~0.5 of the range).
        aligned = _imod_newstack(raw, rows[i])
        assert np.abs(aligned - image).max() < 2e-3 * scale, i
        aligned = _aretomo_align(raw, frame["tx"][i], frame["ty"][i])
        assert np.abs(aligned - image).max() < 2e-3 * scale, i
        if np.any(APPLIED[i] != 0):
            wrong = _imod_newstack(raw, rows[i] * [1, 1, 1, 1, -1, -1])
            assert np.abs(wrong - image).max() > 0.1 * scale, i


def _smooth_volume() -> torch.Tensor:
    """Two Gaussian blobs (2-2.5 voxels): no power near Nyquist to lose in a subpixel shift."""
    z, y, x = np.mgrid[0:16, 0:32, 0:32].astype(np.float64)
    volume = np.zeros((16, 32, 32))
    for (cz, cy, cx), sigma in [((8, 12, 18), 2.0), ((6, 22, 10), 2.5)]:
        volume += 8.05 * np.exp(-((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
    return torch.from_numpy(volume.astype(np.float32))


def test_aligning_the_microscopes_image_gives_its_image_without_misalignment(tmp_path):
    # Same seed with and without shifts: the same defocus, ice and dose. Without
    # ice fluctuations and the defocus gradient every other step is shift-invariant, so
    # the shifted noiseless image is the unshifted one moved (periodically).
    still = MicroscopeSettings(shift_std_a=0.0, defocus_gradient=False, ice_structure_factor=0)
    moved = dataclasses.replace(still, shift_std_a=25.0)  # 2.5 px at 10 A
    volume, angles = _smooth_volume(), [-30.0, 0.0, 30.0]
    reference = simulate_tilt_series(volume, angles, 10.0, still, seed=4).noiseless
    result = simulate_tilt_series(volume, angles, 10.0, moved, seed=4)
    write_microscope_alignment(
        result.records(), tmp_path / "ts.mrc", image_shape=(32, 32), pixel_size_a=10.0
    )
    rows = np.loadtxt(tmp_path / "ts.xf", ndmin=2)
    frame = alnfile.read(tmp_path / "ts.aln")
    assert np.abs(rows[:, 4:]).max() > 1.0  # shifts worth testing
    for i in range(len(angles)):
        raw = np.fft.fft2(result.noiseless[i].double().numpy())
        target = reference[i].double().numpy()
        # Exact Fourier shifts (periodic, as the microscope's): the residual is float32
        # round-off (~3e-5 of the range) plus the .xf's 0.001 px rounding.
        imod = np.fft.ifft2(ndimage.fourier_shift(raw, (rows[i, 5], rows[i, 4]))).real
        assert np.abs(imod - target).max() < 1e-3 * np.ptp(target), i
        aretomo = np.fft.ifft2(ndimage.fourier_shift(raw, (-frame["ty"][i], -frame["tx"][i])))
        assert np.abs(aretomo.real - target).max() < 1e-3 * np.ptp(target), i


# --- (c) faket simulate and faket microscope write them, equal to the records --------


def _check_against_records(stack: Path, records: list[dict], shape: tuple[int, int]) -> None:
    """The files next to ``stack`` agree with the microscope's records."""
    paths = alignment_paths(stack)
    assert read_tilt_metadata(paths[".tilts.json"])["tilts"] == records
    applied = np.array([[r["shift_y_px"], r["shift_x_px"]] for r in records])
    angles = [r["angle_deg"] for r in records]
    for suffix in (".xf", ".aln"):
        info = read_tilt_series_info(paths[suffix], n_images=len(records))
        assert info.shifts_px is not None
        np.testing.assert_allclose(info.angles_deg, angles, atol=ANGLE_ATOL)
        np.testing.assert_allclose(info.shifts_px, -applied, atol=SHIFT_ATOL)
    raw_size = f"# RawSize = {shape[1]} {shape[0]} {len(records)}"
    assert raw_size in paths[".aln"].read_text().splitlines()
    table = np.loadtxt(paths[".defocus"], usecols=range(5), ndmin=2)
    np.testing.assert_allclose(
        table[:, 4] / 1000, [r["defocus_um"] for r in records], atol=DEFOCUS_ATOL_UM
    )


def test_prepare_specimen_writes_the_microscopes_alignment(tmp_path, monkeypatch):
    import faket.microscope
    from faket.pipeline import plan_run
    from faket.pipeline.layout import remove_written_files, written_by_faket
    from faket.pipeline.stages import prepare_specimen
    from pipeline_data import ANGLES as RUN_ANGLES
    from pipeline_data import SHAPE as RUN_SHAPE
    from pipeline_data import tiny_config

    tilts = []
    simulate = faket.microscope.simulate_tilts

    def keep(*args, **kwargs):
        for tilt in simulate(*args, **kwargs):
            tilts.append(tilt)
            yield tilt

    monkeypatch.setattr(faket.microscope, "simulate_tilts", keep)
    threads = torch.get_num_threads()
    try:
        plan = plan_run(tiny_config(tmp_path / "ds"))
        prepare_specimen(plan, 0)
    finally:
        torch.set_num_threads(threads)
    folder = plan.specimens[0].folder
    assert [t.record.index for t in tilts] == list(range(len(RUN_ANGLES)))
    # The stage writes each tilt as the microscope yields it: the file holds them all.
    written = read_mrc(folder / "reference.mrc").data
    np.testing.assert_array_equal(written, torch.stack([t.counts for t in tilts]).numpy())
    records = [dataclasses.asdict(t.record) for t in tilts]
    _check_against_records(folder / "reference.mrc", records, RUN_SHAPE[1:])
    assert read_tilt_angles(folder / "reference.tlt").tolist() == RUN_ANGLES.tolist()
    identity = read_tilt_series_info(folder / "tilt_angles.xf", n_images=len(RUN_ANGLES))
    np.testing.assert_array_equal(identity.shifts_px, 0.0)
    names = ["tilt_angles.xf", *(f"reference{s}" for s in (".tlt", ".xf", ".aln", ".defocus"))]
    names.append("reference.tilts.json")
    assert all(written_by_faket(folder / n, plan.output) for n in names)
    remove_written_files(plan.output)  # what --force does
    assert not folder.exists() or not any((folder / n).exists() for n in names)


def test_microscope_command_writes_xf_aln_and_defocus(run_cli, tmp_path):
    from faket.io import write_mrc
    from faket.phantom import ball

    grandmodel = tmp_path / "grandmodel.mrc"
    write_mrc(ball((16, 32, 32), (8, 16, 16), 5).numpy() * 8.05, grandmodel, voxel_size_a=10.0)
    out = tmp_path / "ts.mrc"
    code, _, stderr = run_cli(
        "microscope", grandmodel, "--tilt-range", -30, 30, 30, "--seed", 2, "-o", out
    )
    assert code == 0, stderr
    records = read_tilt_metadata(tmp_path / "ts.tilts.json")["tilts"]
    assert len(records) == 3
    _check_against_records(out, records, (32, 32))
