"""Settings of the reference microscope, one documented field each."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

SCHEMES = ("dose-symmetric", "sequential")
"""Tilt schemes: the order in which the tilts are exposed."""

DETECTORS = ("counting", "ideal")
"""Detector models: ``counting`` (MTF and noise transfer, see `detector_transfer`) or
``ideal`` (every electron counted in its pixel, no blur)."""


class MicroscopeWarning(UserWarning):
    """A setting is physically possible but gives a questionable simulation (e.g. aliasing)."""


@dataclass(frozen=True)
class MicroscopeSettings:
    """Physics settings of the reference microscope (`simulate_tilt_series`).

    Every field has a default a cryo-ET user would recognise (a 300 kV Krios-like
    microscope with a counting detector and a zero-loss energy filter). Invalid values
    raise ``ValueError`` with a sentence naming the field.

    Attributes
    ----------
    voltage_kv : float
        Acceleration voltage in kV.
    spherical_aberration_mm : float
        Spherical aberration Cs in mm.
    amplitude_contrast : float
        Amplitude contrast fraction Q in [0, 1): the specimen potential's deviation from
        its image mean gets an absorptive part ``Q / sqrt(1 - Q^2)`` times the real one.
    defocus_um : float
        Mean defocus in µm; UNDERFOCUS IS POSITIVE (3 means 3 µm underfocus).
    defocus_spread_um : float
        Standard deviation of the random per-tilt defocus (autofocus error), µm.
    defocus_gradient : bool
        Let the defocus change across X as the tilted specimen does (``+u tan(t)``, see
        :mod:`faket.microscope.simulate`); False gives one defocus per image.
    astigmatism_um : float
        Astigmatism ``(defocus_u - defocus_v) / 2`` in µm, >= 0 (torch-ctf convention).
    astigmatism_angle_deg : float
        Angle of ``defocus_u`` from the Y axis, in degrees (torch-ctf convention).
    illumination_semi_angle_mrad : float
        Illumination semi-angle (spatial coherence envelope), mrad.
    chromatic_aberration_mm : float
        Chromatic aberration Cc in mm (temporal coherence envelope).
    energy_spread_ev : float
        Energy spread of the source in eV (temporal coherence envelope).
    dose_total_e_per_a2 : float
        Total exposure of the tilt-series in e-/Å^2, shared equally by the tilts.
    slab_nm : float
        Thickness of the amorphous-ice slab (the sample) at zero tilt, nm.
    ice_potential_v : float
        Mean inner potential of vitreous ice, V. Default 4.575 V: neutral-atom
        scattering factors (International Tables C 4.3.2.2, as `faket.phantom`) of
        low-density amorphous ice at 0.94 g/cm^3 (0.03142 molecules/Å^3).
    ice_structure_factor : float
        Static structure factor S(0) of the ice's density fluctuations (relative
        variance of the molecule count in a volume holding N molecules is S(0) / N).
        Default 0.064: water at 0 °C (``rho k T kappa_T``), whose structure
        vitrification freezes in.
    ice_correlation_a : float
        Length of the Gaussian low-pass on the ice fluctuations (structure below the
        O-O distance), Å; 0 leaves them white at the voxel scale.
    particle_potential_v : float or None
        Mean potential of densely packed particle matter (protein: 8.05 V with the same
        scattering factors). A voxel of the grandmodel with potential V displaces the
        fraction ``clip(V / particle_potential_v, 0, 1)`` of its ice. None: no
        displacement.
    inelastic_mfp_nm : float or None
        Inelastic mean free path in vitreous ice, nm; the zero-loss filter removes the
        inelastically scattered electrons. None: 395 nm at 300 kV (Rice et al. 2018,
        J. Struct. Biol. 204:38, measured on a Titan Krios with a zero-loss filter; other
        microscopes and objective apertures give about 300-400 nm) scaled by the
        relativistic ``beta^2`` to other voltages.
    scheme : str
        Tilt scheme, one of `SCHEMES`: ``dose-symmetric`` (Hagen et al. 2017: from the
        tilt nearest 0°, alternating sides in groups of ``group_size``) or
        ``sequential`` (from the most negative tilt to the most positive).
    group_size : int
        Tilts per group of the dose-symmetric scheme (after the first tilt).
    dose_weighting : bool
        Damage the specimen with the cumulative exposure (Grant & Grigorieff 2015).
    detector : str
        Detector model, one of `DETECTORS`.
    detector_blur_px : float
        Standard deviation of the counting detector's Gaussian point spread (event
        localisation error), pixels.
    shift_std_a : float
        Standard deviation of the random per-tilt misalignment shift along Y and X, Å.
    """

    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    defocus_um: float = 3.0
    defocus_spread_um: float = 0.1
    defocus_gradient: bool = True
    astigmatism_um: float = 0.02
    astigmatism_angle_deg: float = 0.0
    illumination_semi_angle_mrad: float = 0.02
    chromatic_aberration_mm: float = 2.7
    energy_spread_ev: float = 0.8
    dose_total_e_per_a2: float = 120.0
    slab_nm: float = 150.0
    ice_potential_v: float = 4.575
    ice_structure_factor: float = 0.064
    ice_correlation_a: float = 3.0
    particle_potential_v: float | None = 8.05
    inelastic_mfp_nm: float | None = None
    scheme: str = "dose-symmetric"
    group_size: int = 2
    dose_weighting: bool = True
    detector: str = "counting"
    detector_blur_px: float = 0.3
    shift_std_a: float = 10.0

    def __post_init__(self) -> None:
        """Check every field; raise ValueError with a sentence naming the bad one."""
        positive = ("voltage_kv", "slab_nm")
        non_negative = (
            "spherical_aberration_mm",
            "defocus_spread_um",
            "astigmatism_um",
            "illumination_semi_angle_mrad",
            "chromatic_aberration_mm",
            "energy_spread_ev",
            "ice_potential_v",
            "ice_structure_factor",
            "ice_correlation_a",
            "detector_blur_px",
            "shift_std_a",
        )
        for name in (*positive, *non_negative, "astigmatism_angle_deg", "defocus_um"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.defocus_um <= 0:
            raise ValueError(
                f"defocus_um must be positive: underfocus is positive in µm (e.g. 3 for "
                f"3 µm underfocus), got {self.defocus_um}"
            )
        if not math.isfinite(self.dose_total_e_per_a2) or self.dose_total_e_per_a2 <= 0:
            raise ValueError(
                f"dose_total_e_per_a2 must be a positive exposure in e-/A^2, "
                f"got {self.dose_total_e_per_a2}"
            )
        if not 0 <= self.amplitude_contrast < 1:
            raise ValueError(
                f"amplitude_contrast must be a fraction in [0, 1), got {self.amplitude_contrast}"
            )
        for name in ("particle_potential_v", "inelastic_mfp_nm"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive or None, got {value!r}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {self.scheme!r}; choose one of {', '.join(SCHEMES)}")
        if self.detector not in DETECTORS:
            raise ValueError(
                f"unknown detector {self.detector!r}; choose one of {', '.join(DETECTORS)}"
            )
        if not isinstance(self.group_size, int) or self.group_size < 1:
            raise ValueError(f"group_size must be a positive integer, got {self.group_size!r}")

    def ice_layers(self, pixel_size_a: float) -> int:
        """Return the voxel layers of the ice fluctuations' field (0: the ice is uniform)."""
        if self.ice_structure_factor <= 0 or self.ice_potential_v <= 0:
            return 0
        return max(1, round(self.slab_nm * 10.0 / pixel_size_a))

    def as_dict(self) -> dict[str, object]:
        """Return the settings as plain values, for provenance and the sidecar."""
        return asdict(self)
