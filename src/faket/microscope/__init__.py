"""The reference microscope: a physics simulator of electron-counting tilt-series.

Deliberately more expensive than FakET and independent of its noise model: the
grandmodel's potential in a slab of amorphous ice, phase-object exit waves, the
objective lens' wave transfer function, inelastic loss through a zero-loss filter,
radiation damage, Poisson electron counting and a detector model. See
:mod:`faket.microscope.simulate` for the steps and :mod:`faket.microscope.physics` for
the formulas, constants and sign conventions.
"""

from faket.microscope.physics import (
    critical_exposure,
    ctf_aliasing_frequency,
    default_inelastic_mfp_nm,
    detector_transfer,
    electron_wavelength_a,
    exposure_filter,
    interaction_constant,
    wave_transfer,
)
from faket.microscope.schemes import acquisition_order, tilt_range
from faket.microscope.settings import DETECTORS, SCHEMES, MicroscopeSettings, MicroscopeWarning
from faket.microscope.simulate import (
    MicroscopeResult,
    SimulatedTilt,
    TiltRecord,
    simulate_tilt_series,
    simulate_tilts,
)
from faket.microscope.specimen import displace_ice, ice_fluctuations, project_periodic_slab

__all__ = [
    "DETECTORS",
    "SCHEMES",
    "MicroscopeResult",
    "MicroscopeSettings",
    "MicroscopeWarning",
    "SimulatedTilt",
    "TiltRecord",
    "acquisition_order",
    "critical_exposure",
    "ctf_aliasing_frequency",
    "default_inelastic_mfp_nm",
    "detector_transfer",
    "displace_ice",
    "electron_wavelength_a",
    "exposure_filter",
    "ice_fluctuations",
    "interaction_constant",
    "project_periodic_slab",
    "simulate_tilt_series",
    "simulate_tilts",
    "tilt_range",
    "wave_transfer",
]
