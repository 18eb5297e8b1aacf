"""Human reports: PNG figures and one HTML page per run."""

from faket.report._panels import (
    Labels,
    contrast_limits,
    draw_scale_bar,
    scale_bar_nm,
    scale_bar_pixels,
)
from faket.report.figures import (
    nearest_tilts,
    plot_likeness,
    plot_noise_stats,
    plot_particle_gallery,
    plot_power_spectra,
    plot_projections,
    plot_thumbnails,
    plot_tomogram_slices,
    spectrum_axis,
)
from faket.report.html import Row, Section, Swatch, render_report, write_report

__all__ = [
    "Labels",
    "Row",
    "Section",
    "Swatch",
    "contrast_limits",
    "draw_scale_bar",
    "nearest_tilts",
    "plot_likeness",
    "plot_noise_stats",
    "plot_particle_gallery",
    "plot_power_spectra",
    "plot_projections",
    "plot_thumbnails",
    "plot_tomogram_slices",
    "render_report",
    "scale_bar_nm",
    "scale_bar_pixels",
    "spectrum_axis",
    "write_report",
]
