"""Reconstruction: tilt-series to tomograms by filtered back-projection (REFERENCE.md section 4).

- :func:`bin_tilt_series`: downsample the projections (Fourier cropping or the reference's
  cubic spline), with the pixel size updated.
- Filters on the spectrum of each projection (:data:`FILTER_NAMES`): :func:`ramp_filter`
  (optionally with a Crowther plateau), :func:`approx_shrec_filter`,
  :func:`shepp_logan_filter`, :func:`cosine_filter`, :func:`hamming_filter`,
  :func:`hann_filter`, :func:`no_filter`, :func:`fourier_filter` by name, applied by
  :func:`filter_tilt_series`.
- :func:`backproject_tilt_series`: back-projection about Y in the geometry of
  :mod:`faket.projection`; :func:`reconstruct_tomogram` filters, then back-projects.
- :func:`reconstruct_with_imod`: IMOD's ``tilt`` as an optional back-end.
"""

from faket.reconstruction.backproject import (
    WEIGHTINGS,
    angle_weights,
    backproject_tilt_series,
    reconstruct_tomogram,
    z_range_to_slab,
)
from faket.reconstruction.binning import BINNING_METHODS, bin_tilt_series
from faket.reconstruction.filters import (
    DEFAULT_MAX_CHUNK_BYTES,
    FILTER_NAMES,
    approx_shrec_filter,
    cosine_filter,
    filter_tilt_series,
    fourier_filter,
    frequency_grid,
    hamming_filter,
    hann_filter,
    no_filter,
    padded_length,
    ramp_filter,
    shepp_logan_filter,
)
from faket.reconstruction.imod import imod_available, reconstruct_with_imod

__all__ = [
    "BINNING_METHODS",
    "DEFAULT_MAX_CHUNK_BYTES",
    "FILTER_NAMES",
    "WEIGHTINGS",
    "angle_weights",
    "approx_shrec_filter",
    "backproject_tilt_series",
    "bin_tilt_series",
    "cosine_filter",
    "filter_tilt_series",
    "fourier_filter",
    "frequency_grid",
    "hamming_filter",
    "hann_filter",
    "imod_available",
    "no_filter",
    "padded_length",
    "ramp_filter",
    "reconstruct_tomogram",
    "reconstruct_with_imod",
    "shepp_logan_filter",
    "z_range_to_slab",
]
