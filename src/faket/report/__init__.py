"""Human reports: PNG figures and one HTML page per run."""

from faket.report.figures import (
    nearest_tilts,
    plot_noise_stats,
    plot_particle_gallery,
    plot_power_spectra,
    plot_projections,
    plot_tomogram_slices,
)
from faket.report.html import Section, render_report, write_report

__all__ = [
    "Section",
    "nearest_tilts",
    "plot_particle_gallery",
    "plot_noise_stats",
    "plot_power_spectra",
    "plot_projections",
    "plot_tomogram_slices",
    "render_report",
    "write_report",
]
