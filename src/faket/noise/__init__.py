"""Noise stage: measure per-tilt noise statistics and make noisy tilt-series.

- :func:`estimate_tilt_stats`: ``r``, ``sigma``, mean and std per tilt of a reference
  tilt-series against its noiseless counterpart (training pairs).
- :func:`estimate_tilt_stats_unlabelled`: the same from a reference alone, from the
  high-frequency plateau of its power spectrum; :func:`radial_power_spectrum`.
- :func:`aggregate_tilt_stats`: polynomial fits over the tilt index, averaged over tomograms.
- :func:`apply_noise` and :func:`make_modality`: the noisy, content and baseline modalities
  (:data:`MODALITIES`).
"""

from faket.noise.aggregate import (
    aggregate_tilt_stats,
    evaluate_polynomial,
    fit_polynomial_coefficients,
    fit_tilt_stats,
)
from faket.noise.generate import MODALITIES, ModalitySpec, apply_noise, make_modality
from faket.noise.stats import METHODS, TiltStats, estimate_tilt_stats
from faket.noise.unlabelled import estimate_tilt_stats_unlabelled, radial_power_spectrum

__all__ = [
    "METHODS",
    "MODALITIES",
    "ModalitySpec",
    "TiltStats",
    "aggregate_tilt_stats",
    "apply_noise",
    "estimate_tilt_stats",
    "estimate_tilt_stats_unlabelled",
    "evaluate_polynomial",
    "fit_polynomial_coefficients",
    "fit_tilt_stats",
    "make_modality",
    "radial_power_spectrum",
]
