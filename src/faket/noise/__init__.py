"""Noise stage: measure per-tilt noise statistics and make noisy tilt-series.

- :func:`estimate_tilt_stats`: ``r``, ``sigma``, mean and std per tilt of a reference
  tilt-series against its noiseless counterpart (training pairs).
- :func:`estimate_tilt_stats_unlabelled`: the same from a reference alone, from the
  high-frequency plateau of its power spectrum; :func:`radial_power_spectrum`.
- :func:`aggregate_tilt_stats`: polynomial fits over the tilt index, averaged over tomograms.
- :func:`apply_noise` and :func:`make_modality` (:func:`modality_parts` for a series in a
  file, a part at a time): the noisy, content and baseline modalities
  (:data:`MODALITIES`), with the published or the spectral model (:data:`NOISE_MODELS`).
- The spectral model: :class:`TiltSpectra` (radial transfer ``T(k)`` and noise power
  ``N(k)`` per tilt), :func:`estimate_tilt_spectra`, :func:`aggregate_tilt_spectra`,
  :func:`apply_spectral_noise`; for a reference without a noiseless pair,
  :func:`estimate_tilt_spectra_unlabelled` (a CTF fit to its own power spectrum).
- A reference without a noiseless twin (the pipeline's entry point):
  :func:`estimate_reference_stats` (unlabelled, or :func:`estimate_tilt_stats_even_odd`
  with its even/odd half-sets), with :func:`noiseless_power_spectrum` of similar noiseless
  projections.
"""

from faket.noise.aggregate import (
    aggregate_tilt_stats,
    evaluate_polynomial,
    fit_polynomial_coefficients,
    fit_tilt_stats,
)
from faket.noise.ctf_fit import CtfFit, estimate_tilt_spectra_unlabelled
from faket.noise.even_odd import estimate_tilt_stats_even_odd
from faket.noise.generate import (
    MODALITIES,
    NOISE_MODELS,
    ModalitySpec,
    apply_noise,
    make_modality,
    modality_parts,
)
from faket.noise.reference_stats import (
    REFERENCE_METHODS,
    estimate_reference_stats,
    noiseless_power_spectrum,
)
from faket.noise.spectral import TiltSpectra, resample_spectra
from faket.noise.spectral_aggregate import aggregate_tilt_spectra, common_frequency_grid
from faket.noise.spectral_estimate import estimate_tilt_spectra
from faket.noise.spectral_generate import apply_spectral_noise, radial_filter
from faket.noise.stats import METHODS, TiltStats, concatenate_tilt_stats, estimate_tilt_stats
from faket.noise.unlabelled import estimate_tilt_stats_unlabelled, radial_power_spectrum

__all__ = [
    "CtfFit",
    "METHODS",
    "MODALITIES",
    "NOISE_MODELS",
    "REFERENCE_METHODS",
    "ModalitySpec",
    "TiltSpectra",
    "TiltStats",
    "aggregate_tilt_spectra",
    "aggregate_tilt_stats",
    "apply_noise",
    "apply_spectral_noise",
    "common_frequency_grid",
    "estimate_reference_stats",
    "estimate_tilt_spectra",
    "estimate_tilt_spectra_unlabelled",
    "concatenate_tilt_stats",
    "estimate_tilt_stats",
    "estimate_tilt_stats_even_odd",
    "estimate_tilt_stats_unlabelled",
    "evaluate_polynomial",
    "fit_polynomial_coefficients",
    "fit_tilt_stats",
    "make_modality",
    "modality_parts",
    "noiseless_power_spectrum",
    "radial_filter",
    "radial_power_spectrum",
    "resample_spectra",
]
