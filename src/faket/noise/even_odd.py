"""Noise statistics of a reference from its even/odd half-sets: the noise measured, not fitted.

Warp, RELION 5 and AreTomo write, next to each tilt-series, two half-sets made of its
even and odd movie frames (for denoising). Both see the same specimen; their shot noise is
independent. So, per tilt, with the full tilt ``R ~ a (E + O)`` (``a = 1`` when the halves
are sums of frames, ``1/2`` when they are averages; fitted by least squares):

- the noise of ``R`` is ``a (n_E + n_O)``, and ``a (E - O) = a (n_E - n_O)`` has the same
  variance and, for halves of equal dose, the same power spectrum, whatever its colour
  (a counting detector's noise transfer, gain references, binning filters);
- ``sigma = sqrt(var(a (E - O)) / var(R))``: the noise's share of the tilt's std;
- ``N(k)``: the ring power of ``a (E - O)`` on the paired estimator's rings (its taper,
  FFT and smoothing), in units of the standardised tilt;
- ``T(k) = sign(CTF) sqrt((P - N) / P_C)`` and ``r = sum T P_C / sqrt(sum P_C sum P)``:
  as :func:`faket.noise.estimate_tilt_spectra_unlabelled` computes them, with the known
  ``N`` in place of a fitted background and a CTF fit of ``R``'s spectrum for the sign.
  ``r`` is the correlation the paired estimator would measure against a noiseless
  projection of spectrum ``P_C`` (see :mod:`faket.noise.ctf_fit`).

What it cannot know: signal that differs between the halves (drift between frames,
damage) is counted as noise; signal that does not follow the noiseless projection (ice,
misalignment) is counted as signal.
"""

from __future__ import annotations

import torch

from faket.conventions import TiltAngles
from faket.errors import FaketInputError
from faket.noise.stats import TiltStats, _as_angles, _check_tilt_series, _constant_tilts

__all__ = ["estimate_tilt_stats_even_odd"]

_IDENTICAL = 1e-6
"""Halves whose difference has a std below this fraction of theirs are the same image
(up to an offset and rounding): they hold no noise to measure."""

_MIN_CORRELATION = 0.5
"""A reference whose tilt correlates less than this with ``even + odd`` is refused: it is
not (a multiple of) their sum."""


def estimate_tilt_stats_even_odd(
    reference: torch.Tensor | None,
    even: torch.Tensor,
    odd: torch.Tensor,
    *,
    pixel_size_a: float,
    tilt_angles_deg: TiltAngles | None = None,
    spectra: bool = False,
    noiseless_power: tuple[torch.Tensor, torch.Tensor] | None = None,
    voltage_kv: float = 300.0,
    spherical_aberration_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    defocus_range_um: tuple[float, float] = (0.5, 8.0),
    tilt_defocus_spread_um: float | None = 0.5,
    tile: int = 512,
) -> TiltStats:
    """Measure per-tilt ``r``, ``sigma``, mean and std with the noise known from half-sets.

    See the module docstring for the estimator.

    Parameters
    ----------
    reference : torch.Tensor or None
        ``(n_tilts, ny, nx)`` floating full tilt-series, tilt axis Y, in its own grey
        units; None: ``even + odd`` is the reference.
    even, odd : torch.Tensor
        ``(n_tilts, ny, nx)`` floating half-sets of the same tilts (same shape and tilt
        order as ``reference``), sums or averages of the even and odd frames.
    pixel_size_a : float
        Pixel size in Å.
    tilt_angles_deg : torch.Tensor or sequence of float, optional
        ``(n_tilts,)`` tilt angles in degrees, stored with the result.
    spectra : bool, default False
        Attach the spectral model (:class:`faket.noise.TiltSpectra` on the paired
        estimator's rings: ``N`` measured, ``T`` from the fit).
    noiseless_power : tuple of torch.Tensor, optional
        ``(frequency, power)`` of :func:`faket.noise.noiseless_power_spectrum` for
        similar specimens; default ``1/k^2`` (see
        :func:`faket.noise.estimate_tilt_spectra_unlabelled`).
    voltage_kv, spherical_aberration_mm, amplitude_contrast : float
        Optics of the CTF model: kV, mm, fraction in ``[0, 1)``.
    defocus_range_um, tilt_defocus_spread_um, tile
        The defocus search, as in :func:`faket.noise.estimate_tilt_spectra_unlabelled`
        (the defocus only gives ``T`` its sign).

    Returns
    -------
    TiltStats
        ``method="even-odd"``, float64 on the halves' device; ``mean`` and ``std`` of the
        reference tilts (population std).

    Raises
    ------
    faket.errors.FaketInputError
        If a tensor is not a finite floating ``(n_tilts, ny, nx)`` tilt-series, the shapes
        differ, a reference tilt is constant, the halves of a tilt are identical (no noise
        to measure) or its reference is not a positive multiple of their sum, or the tilt
        angles or ``noiseless_power`` do not match. Tilts are named by index.
    ValueError
        If an optical or search parameter is out of range.
    """
    from faket.noise._ctf_search import fit_settings
    from faket.noise.ctf_fit import check_noiseless, check_reference, fit_model

    full = _check_halves(reference, even, odd)
    check_reference(full)
    settings = fit_settings(
        pixel_size_a,
        voltage_kv,
        spherical_aberration_mm,
        amplitude_contrast,
        defocus_range_um,
        None,
        None,
        tile,
        tilt_defocus_spread_um,
    )
    angles = _as_angles(tilt_angles_deg, full.shape[0], full.device)
    noiseless = check_noiseless(noiseless_power, full.shape[0])
    noise = _scale(full, even, odd)[:, None, None] * (even - odd).to(torch.float64)
    noise = noise - noise.mean(dim=(-2, -1), keepdim=True)
    fit = fit_model(full, settings, angles=angles, noiseless=noiseless, noise_image=noise)
    variance = full.to(torch.float64).var(dim=(-2, -1), correction=0)
    sigma = (noise.square().mean(dim=(-2, -1)) / variance).clamp(0.0, 1.0).sqrt()
    return TiltStats(
        r=fit.r,
        sigma=sigma,
        mean=fit.mean,
        std=fit.std,
        tilt_angles_deg=angles,
        method="even-odd",
        spectra=fit.tilt_spectra() if spectra else None,
    )


def _check_halves(
    reference: torch.Tensor | None, even: torch.Tensor, odd: torch.Tensor
) -> torch.Tensor:
    """Check the inputs (FaketInputError naming the problem); return the full tilt-series."""
    _check_tilt_series(even, "even")
    _check_tilt_series(odd, "odd")
    if even.shape != odd.shape:
        raise FaketInputError(
            f"even shape {tuple(even.shape)} differs from odd shape {tuple(odd.shape)}; "
            "they must be the two half-sets of the same tilts"
        )
    odd = odd.to(even.device)
    e64, o64 = even.to(torch.float64), odd.to(torch.float64)
    spread = (e64 - o64).std(dim=(-2, -1), correction=0)
    scale = e64.std(dim=(-2, -1), correction=0) + o64.std(dim=(-2, -1), correction=0)
    same = _constant_tilts(e64 - o64) | (spread <= _IDENTICAL * scale)
    if bool(same.any()):
        bad = torch.nonzero(same).flatten().tolist()
        raise FaketInputError(
            f"even and odd tilt(s) {bad[:10]} are identical (up to an offset): there is no "
            "noise to measure; are they really the even and odd frame halves?"
        )
    if reference is None:
        return even + odd
    _check_tilt_series(reference, "reference")
    if reference.shape != even.shape:
        raise FaketInputError(
            f"reference shape {tuple(reference.shape)} differs from the halves' shape "
            f"{tuple(even.shape)}"
        )
    return reference.to(even.device)


def _scale(full: torch.Tensor, even: torch.Tensor, odd: torch.Tensor) -> torch.Tensor:
    """Return the ``(n_tilts,)`` least-squares ``a`` of ``full ~ a (even + odd) + b``."""
    total = even.to(torch.float64) + odd.to(torch.float64)
    x = total - total.mean(dim=(-2, -1), keepdim=True)
    y = full.to(torch.float64)
    y = y - y.mean(dim=(-2, -1), keepdim=True)
    xx, yy = x.square().sum(dim=(-2, -1)), y.square().sum(dim=(-2, -1))
    xy = (x * y).sum(dim=(-2, -1))
    a = xy / xx.clamp_min(1e-300)
    correlation = xy / (xx * yy).sqrt().clamp_min(1e-300)
    bad = (xx == 0) | (a <= 0) | (correlation < _MIN_CORRELATION)
    if bool(bad.any()):
        index = torch.nonzero(bad).flatten().tolist()
        raise FaketInputError(
            f"reference tilt(s) {index[:10]} are not a positive multiple of even + odd "
            f"(correlation {float(correlation[index[0]]):.2f}); are these its half-sets?"
        )
    return a
