"""The pipeline's entry point for the noise statistics of a reference without a noiseless twin.

A user's own tilt-series is the noise and style reference; the paired estimator
(:func:`faket.noise.estimate_tilt_stats`) needs its noiseless counterpart, which real data
lack. :func:`estimate_reference_stats` gives the numbers that estimator would measure,
from the reference alone (``method="unlabelled"``: a CTF fit of its own spectrum,
:func:`faket.noise.estimate_tilt_spectra_unlabelled`) or with its even/odd half-sets
(``method="even-odd"``: the noise measured exactly,
:func:`faket.noise.estimate_tilt_stats_even_odd`).

Both need the radial spectrum ``P_C`` of the noiseless projections that the pipeline will
turn into noisy ones; :func:`noiseless_power_spectrum` measures it from the pipeline's
own noiseless projections of similar specimens (same pixel size and tilt angles), in the
conventions the estimators expect.
"""

from __future__ import annotations

from typing import Literal

import torch

from faket.conventions import TiltAngles
from faket.errors import FaketInputError
from faket.noise._ctf_split import ring_power
from faket.noise.stats import TiltStats, _check_tilt_series, _constant_tilts, _standardise64

__all__ = ["REFERENCE_METHODS", "estimate_reference_stats", "noiseless_power_spectrum"]

REFERENCE_METHODS = ("unlabelled", "even-odd")
"""The ways :func:`estimate_reference_stats` measures a reference without a noiseless twin."""


def noiseless_power_spectrum(
    noiseless: torch.Tensor, *, per_tilt: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Measure the radial power spectrum ``P_C`` of noiseless projections, per tilt or pooled.

    Each tilt is standardised (zero mean, unit population std) and measured as the
    paired estimator measures its noiseless input (Tukey taper 0.1, orthonormal FFT,
    rings ``1 / min(ny, nx)`` cycles/pixel, ``[1, 2, 1] / 4`` ring smoothing), so the
    result is the ``noiseless_power`` argument of
    :func:`faket.noise.estimate_tilt_spectra_unlabelled`,
    :func:`faket.noise.estimate_tilt_stats_even_odd` and :func:`estimate_reference_stats`.

    Parameters
    ----------
    noiseless : torch.Tensor
        ``(n_tilts, ny, nx)`` floating noiseless tilt-series (e.g. faket's projections of
        a specimen like the reference's, at its pixel size and tilt angles), any device.
    per_tilt : bool, default True
        One curve per tilt (for a reference with the same tilts), or their mean over the
        tilts (for references with other tilts or tilt counts).

    Returns
    -------
    frequency : torch.Tensor
        ``(m,)`` float64 ring centres in cycles/pixel, from 0 (DC, which copies ring 1).
    power : torch.Tensor
        ``(n_tilts, m)`` or ``(m,)`` float64 mean power per Fourier sample of the
        standardised tilt (mean 1 over the Fourier samples).

    Raises
    ------
    faket.errors.FaketInputError
        If ``noiseless`` is not a finite floating ``(n_tilts, ny, nx)`` tensor or has a
        constant tilt (named by index).
    """
    _check_tilt_series(noiseless, "noiseless")
    constant = _constant_tilts(noiseless)
    if bool(constant.any()):
        bad = torch.nonzero(constant).flatten().tolist()
        raise FaketInputError(
            f"noiseless tilt(s) {bad[:10]} are constant images (std 0); is the volume empty?"
        )
    frequency, power, _ = ring_power(_standardise64(noiseless)[0])
    return frequency, power if per_tilt else power.mean(0)


def estimate_reference_stats(
    reference: torch.Tensor | None,
    *,
    method: Literal["unlabelled", "even-odd"],
    pixel_size_a: float,
    tilt_angles_deg: TiltAngles | None,
    even: torch.Tensor | None = None,
    odd: torch.Tensor | None = None,
    spectra: bool = True,
    noiseless_power: tuple[torch.Tensor, torch.Tensor] | None = None,
    voltage_kv: float = 300.0,
    spherical_aberration_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
) -> TiltStats:
    """Estimate what the paired estimator would measure on a reference without its twin.

    ``r`` is the correlation the paired estimator would find between the reference and a
    noiseless projection of spectrum ``P_C`` (``noiseless_power``), from the signal
    transfer of a CTF fit; ``sigma`` is the noise's share of each tilt's std; ``mean`` and
    ``std`` are measured; with ``spectra``, ``T(k)`` and ``N(k)`` of the spectral model on
    the paired estimator's rings. See :mod:`faket.noise.ctf_fit` for the model and its
    limits.

    Parameters
    ----------
    reference : torch.Tensor
        ``(n_tilts, ny, nx)`` floating tilt-series, tilt axis Y, in its own grey units.
        With ``method="even-odd"`` it may be None: the sum of the halves is then the
        reference.
    method : {"unlabelled", "even-odd"}
        ``"unlabelled"``: the reference alone; its noise background is fitted to its own
        spectrum. ``"even-odd"``: the noise is measured from the half-sets ``even`` and
        ``odd`` (exact, whatever its colour).
    pixel_size_a : float
        Pixel size in Å.
    tilt_angles_deg : torch.Tensor or sequence of float or None
        ``(n_tilts,)`` tilt angles in degrees, stored with the result.
    even, odd : torch.Tensor, optional
        ``(n_tilts, ny, nx)`` half-sets of the reference's frames (Warp, RELION 5 and
        AreTomo write them for denoising); required for, and only for, ``"even-odd"``.
    spectra : bool, default True
        Attach the spectral model (:class:`faket.noise.TiltSpectra`).
    noiseless_power : tuple of torch.Tensor, optional
        ``(frequency, power)`` of :func:`noiseless_power_spectrum`, measured on noiseless
        projections of similar specimens; default a ``1/k^2`` power law (``r`` then
        reads high where projections' power falls faster: by 0.04-0.07, up to 0.09, on
        the built-in microscope's 7.3-10 Å specimens).
    voltage_kv, spherical_aberration_mm, amplitude_contrast : float
        Optics of the CTF model: kV, mm, fraction in ``[0, 1)``.

    Returns
    -------
    TiltStats
        ``method`` as asked; float64 on ``reference``'s (or ``even``'s) device.

    Raises
    ------
    faket.errors.FaketInputError
        For an unknown method, halves given to (or missing from) the wrong method, and
        every input problem the two estimators refuse (shapes, NaN, constant tilts,
        identical halves, tilt angles).
    ValueError
        If an optical parameter is out of range.
    """
    if method not in REFERENCE_METHODS:
        raise FaketInputError(
            f"method must be one of {', '.join(REFERENCE_METHODS)}, got {method!r}"
        )
    if method == "even-odd":
        if even is None or odd is None:
            raise FaketInputError("method 'even-odd' needs both half-sets, even and odd")
        from faket.noise.even_odd import estimate_tilt_stats_even_odd

        return estimate_tilt_stats_even_odd(
            reference,
            even,
            odd,
            pixel_size_a=pixel_size_a,
            tilt_angles_deg=tilt_angles_deg,
            spectra=spectra,
            noiseless_power=noiseless_power,
            voltage_kv=voltage_kv,
            spherical_aberration_mm=spherical_aberration_mm,
            amplitude_contrast=amplitude_contrast,
        )
    if even is not None or odd is not None:
        raise FaketInputError(
            "even/odd half-sets were given but method is 'unlabelled'; use method 'even-odd'"
        )
    if reference is None:
        raise FaketInputError("method 'unlabelled' needs the reference tilt-series")
    from faket.noise.ctf_fit import estimate_tilt_spectra_unlabelled

    fit = estimate_tilt_spectra_unlabelled(
        reference,
        pixel_size_a=pixel_size_a,
        tilt_angles_deg=tilt_angles_deg,
        noiseless_power=noiseless_power,
        voltage_kv=voltage_kv,
        spherical_aberration_mm=spherical_aberration_mm,
        amplitude_contrast=amplitude_contrast,
    )
    return fit.tilt_stats(spectra=spectra)
