"""The report's figures and page: axis limits, grey ranges, scale bars, legends, links."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.colors import to_hex, to_rgba

from faket.io import write_classes_json, write_mrc, write_particle_locations
from faket.io.particles import Particle
from faket.pipeline.report import central_slab, read_labels
from faket.report import (
    Labels,
    Row,
    Section,
    Swatch,
    contrast_limits,
    plot_likeness,
    plot_power_spectra,
    plot_projections,
    plot_thumbnails,
    plot_tomogram_slices,
    render_report,
    scale_bar_nm,
    scale_bar_pixels,
)
from faket.report._panels import SCALE_BAR_GID, class_colour


def _spectrum(n_bins: int = 46) -> tuple[np.ndarray, np.ndarray]:
    """Bins k / 64 up to the grid's corner (0.71 cycles/pixel), as radial_power_spectrum."""
    freqs = np.arange(n_bins) / 64.0
    return freqs, 1.0 / (1.0 + 100.0 * freqs**2)


def _scale_bars(ax) -> list:
    return [p for p in ax.patches if p.get_gid() == SCALE_BAR_GID]


def _labels(shape=(24, 32, 32), voxel_size_a=20.0) -> Labels:
    mask = np.zeros(shape, dtype=np.int32)
    mask[12, 2:6, 2:6] = 1
    mask[12, 20:24, 20:26] = 2
    return Labels(
        class_mask=mask,
        voxel_size_a=voxel_size_a,
        names={1: "ribosome", 2: "ring", 3: "rod"},
        points_zyx=np.array([[12.0, 4.0, 4.0], [12.0, 22.0, 23.0], [0.0, 10.0, 10.0]]),
        point_names=["ribosome", "ring", "ribosome"],
    )


@pytest.mark.parametrize("pixel_size_a", [4.0, 10.0, 27.5])
def test_spectrum_stops_at_nyquist_in_inverse_angstrom(tmp_path, pixel_size_a):
    freqs, power = _spectrum()
    fig = plot_power_spectra({"a": (freqs, power)}, tmp_path / "s.png", pixel_size_a=pixel_size_a)
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((0.0, 0.5 / pixel_size_a))
    x = ax.lines[0].get_xdata()
    assert x.max() == pytest.approx(0.5 / pixel_size_a)  # the corner bins are left out
    assert np.allclose(x, freqs[freqs <= 0.5] / pixel_size_a)
    assert "1/Å" in ax.get_xlabel()
    top = [a for a in ax.child_axes if a.get_xlabel() == "resolution (Å)"]
    assert len(top) == 1
    ticks = top[0].get_xticks()
    labels = [t.get_text() for t in top[0].get_xticklabels()]
    assert [float(t) for t in labels] == pytest.approx(1.0 / ticks, rel=1e-2)
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_spectrum_without_a_pixel_size_is_in_cycles_per_pixel_to_half(tmp_path):
    freqs, power = _spectrum()
    fig = plot_power_spectra({"a": (freqs, power)}, tmp_path / "s.png")
    assert fig.axes[0].get_xlim() == pytest.approx((0.0, 0.5))
    assert fig.axes[0].lines[0].get_xdata().max() == pytest.approx(0.5)


def test_likeness_spectrum_panel_stops_at_nyquist(tmp_path):
    freqs = np.arange(1, 33) / 64.0
    pair = {"spectrum_log_distance": 0.2, "grey_w1": 0.1, "domain_auc": 0.6}
    record = {
        "modalities": {"faket": {**pair, "pairs": [pair]}},
        "floor": {**pair, "pairs": [pair]},
        "freqs_cycles_per_px": list(freqs),
        "zero_tilt_log10_power": {"faket": list(-freqs), "reference": list(-2 * freqs)},
    }
    fig = plot_likeness(record, tmp_path / "l.png", pixel_size_a=8.0)
    assert fig.axes[3].get_xlim() == pytest.approx((0.0, 0.5 / 8.0))
    assert max(line.get_xdata().max() for line in fig.axes[3].lines) == pytest.approx(0.5 / 8)


def test_contrast_limits_are_the_numpy_percentiles(rng):
    image = rng.standard_normal((40, 50)) ** 3
    assert contrast_limits(image) == pytest.approx(tuple(np.percentile(image, [1, 99])))
    assert contrast_limits(image, (5, 95)) == pytest.approx(tuple(np.percentile(image, [5, 95])))
    image[0, 0] = np.nan
    finite = image[np.isfinite(image)]
    assert contrast_limits(image) == pytest.approx(tuple(np.percentile(finite, [1, 99])))
    assert contrast_limits(np.full((4, 4), 3.0)) == (3.0, 4.0)  # flat: a unit range


def test_every_projection_panel_is_stretched_to_its_own_percentiles(tmp_path, rng):
    stacks = {
        "dim": 0.01 * rng.standard_normal((3, 16, 20)),
        "bright": 100.0 + 50.0 * rng.standard_normal((3, 16, 20)),
    }
    angles = [-40.0, 0.0, 40.0]
    fig = plot_projections(stacks, angles, tmp_path / "p.png", wanted_deg=angles)
    for k, (_, stack) in enumerate(stacks.items()):
        for t in range(3):
            clim = fig.axes[3 * k + t].images[0].get_clim()
            assert clim == pytest.approx(tuple(np.percentile(stack[t], [1, 99])))


@pytest.mark.parametrize(
    ("field_nm", "bar_nm"), [(256.0, 50.0), (2450.0, 500.0), (100.0, 20.0), (30.0, 5.0)]
)
def test_scale_bar_is_a_round_length_within_a_quarter_of_the_field(field_nm, bar_nm):
    assert scale_bar_nm(field_nm) == pytest.approx(bar_nm)


def test_scale_bar_length_in_pixels_for_the_pixel_size(tmp_path, rng):
    # 64 px at 40 A is 256 nm: a 50 nm bar, 500 A / 40 A = 12.5 pixels
    assert scale_bar_pixels(50.0, 40.0) == pytest.approx(12.5)
    stack = rng.standard_normal((1, 64, 64))
    fig = plot_projections({"a": stack}, [0.0], tmp_path / "p.png", pixel_size_a=40.0)
    (bar,) = _scale_bars(fig.axes[0])
    assert bar.get_width() == pytest.approx(12.5)
    assert any(t.get_text() == "50 nm" for t in fig.axes[0].texts)
    fig = plot_projections({"a": stack}, [0.0], tmp_path / "p.png")
    assert _scale_bars(fig.axes[0]) == []


def test_tomogram_slices_have_bars_legend_counts_and_class_colours(tmp_path, rng):
    labels = _labels()  # 20 A voxels; the tomograms are binned by 2: 40 A
    tomograms = {name: rng.standard_normal((16, 16, 16)) for name in ("faket", "noisy")}
    fig = plot_tomogram_slices(tomograms, tmp_path / "t.png", pixel_size_a=40.0, labels=labels)
    axes = fig.axes
    assert len(axes) == 2 * 3  # two tomograms and the labels row, XY and XZ each
    # 16 px at 40 A = 64 nm -> a 10 nm bar of 2.5 px; the class mask: 32 px at 20 A -> 5 px
    assert _scale_bars(axes[0])[0].get_width() == pytest.approx(2.5)
    assert _scale_bars(axes[4])[0].get_width() == pytest.approx(5.0)
    xy = tomograms["faket"][8]
    assert axes[0].images[0].get_clim() == pytest.approx(tuple(np.percentile(xy, [1, 99])))
    legend = axes[1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["ribosome (2)", "ring (1)", "rod (0)"]
    image = axes[4].images[0]
    rgba = image.to_rgba(image.get_array())
    assert tuple(rgba[3, 3]) == pytest.approx(class_colour(0))  # ribosome voxel
    assert tuple(rgba[21, 22]) == pytest.approx(class_colour(1))  # ring voxel
    assert tuple(rgba[0, 0]) == pytest.approx(to_rgba("black"))
    # the two particles at z = 12 (tomogram z = 8) are circled in their class colours
    circles = axes[0].collections[0]
    assert np.allclose(circles.get_edgecolors(), [class_colour(0), class_colour(1)])
    assert np.allclose(circles.get_offsets(), [[2.0, 2.0], [11.5, 11.0]])


def test_thumbnails_are_one_row_with_the_class_mask_last(tmp_path, rng):
    slices = {name: rng.standard_normal((16, 16)) for name in ("noisy", "faket", "reference")}
    fig = plot_thumbnails(slices, tmp_path / "t.png", pixel_size_a=40.0, labels=_labels())
    assert [ax.get_title() for ax in fig.axes] == ["noisy", "faket", "reference", "class mask"]
    for ax, image in zip(fig.axes, slices.values(), strict=False):
        assert ax.images[0].get_clim() == pytest.approx(tuple(np.percentile(image, [1, 99])))
        assert len(_scale_bars(ax)) == 1


def test_central_slab_is_the_mean_of_the_central_slices(rng):
    volume = rng.standard_normal((10, 4, 5))
    assert np.allclose(central_slab(volume, 4), volume[3:7].mean(axis=0))
    assert np.allclose(central_slab(volume, 1), volume[4])
    assert np.allclose(central_slab(volume, 99), volume.mean(axis=0))


def test_read_labels_counts_the_particles_of_each_class(tmp_path):
    mask = np.zeros((4, 8, 8), dtype=np.uint8)  # an integer class mask is cast
    mask[2, 1:3, 1:3] = 2
    write_mrc(mask.astype(np.float32), tmp_path / "class_mask.mrc", voxel_size_a=12.0)
    write_classes_json(
        [{"id": 1, "name": "ribosome"}, {"id": 2, "name": "ring"}], tmp_path / "classes.json"
    )
    particles = [Particle("ring", 2.0, 2.0, 2.0), Particle("ring", 5.0, 5.0, 1.0)]
    write_particle_locations(particles, tmp_path / "particle_locations.txt")
    labels = read_labels(tmp_path, voxel_size_a=99.0)
    assert labels.voxel_size_a == pytest.approx(12.0)
    assert labels.class_mask.dtype.kind == "i" and labels.class_mask[2, 1, 1] == 2
    assert labels.counts() == {"ribosome": 0, "ring": 2}
    assert np.allclose(labels.points_zyx, [[2.0, 2.0, 2.0], [1.0, 5.0, 5.0]])


def test_render_report_has_rows_links_swatches_and_a_contents_line():
    page = render_report(
        "t <1>",
        [
            Section("Run", text="a & b", links=[("config.yaml", "config.yaml")]),
            Section(
                "Tomograms at a glance",
                table=[["tomogram", Swatch("ring", "#1f77b4")], ["model_0", "3"]],
                rows=[
                    Row("model_0", "report/thumbnails_model_0.png", links=[("x", "model_0/x")]),
                    Row("model_1", "report/thumbnails_model_1.png"),
                ],
            ),
        ],
    )
    assert page.count('<div class="row">') == 2
    assert "t &lt;1&gt;" in page and "a &amp; b" in page
    assert '<a href="#tomograms-at-a-glance">' in page and 'id="tomograms-at-a-glance"' in page
    assert 'style="background:#1f77b4"' in page and '<a href="model_0/x">x</a>' in page
    assert to_hex(class_colour(0)) == "#1f77b4"
    with pytest.raises(ValueError, match="#rrggbb"):
        Swatch("ring", "red;}body{display:none")


def test_section_ids_are_unique_and_the_contents_line_links_them():
    page = render_report("t", [Section("A b"), Section("A b"), Section("!!")])
    assert re.findall(r'id="([^"]+)"', page) == ["a-b", "a-b-2", "section"]
    assert re.findall(r'href="#([^"]+)"', page) == ["a-b", "a-b-2", "section"]
