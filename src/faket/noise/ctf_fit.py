"""The spectral noise model of a reference tilt-series alone, from a CTF fit of its spectrum.

A user's own tilt-series has no noiseless twin, so the transfer ``T(k)`` and noise power
``N(k)`` of the spectral model (:mod:`faket.noise.spectral`) cannot be measured from
cross-spectra. Here they come from the reference's own radial power spectrum ``P(k)``
(standardised tilt, orthonormal FFT: white noise of variance ``v`` reads ``v``), modelled
as a Thon-ring signal over a smooth noise background::

    P(k) = S(k) CTF(k; df)^2 + B(k)

- ``CTF = sqrt(1 - A^2) sin(chi) + A cos(chi)``, ``chi = pi lambda df k^2 -
  pi/2 Cs lambda^3 k^4`` (torch-ctf; underfocus ``df`` positive). Its sign is positive at
  low frequency: faket's noiseless projections are negated line integrals (dense matter
  dark, :mod:`faket.conventions`), and an underfocused image shows dense matter dark too,
  so the transfer from one to the other starts positive and flips at every CTF zero.
- ``B`` (the noise, with the detector's fall-off) is smooth: an even polynomial in ``k``
  (spectra with more structure, e.g. rising again past Nyquist, are not representable).
- ``S`` (the signal envelope: the specimen's spectrum times the CTF envelopes, damage and
  detector MTF) is smooth and non-negative.

Method
------
1. ``P(k)`` per tilt for the defocus and the background: Welch average of Hann-windowed
   square tiles (the estimator of :func:`faket.noise.radial_power_spectrum`), rings
   ``b / t`` cycles/pixel to the tile's corner, with the number of Fourier samples per ring.
2. Defocus (:mod:`faket.noise._ctf_search`). In the fit band (by default 30 Å to 0.95 of
   Nyquist, as CTFFIND does: below 30 Å the specimen's own structure dominates) the ring
   contrast ``c = P / P_trend - 1`` is taken against the local quadratic trend of
   ``log P``; the model ``h`` is the same high-pass of the CTF^2 that a Welch spectrum
   shows (averaged over each ring's width and smeared by the window, so finely spaced
   rings lose contrast in the model as they do in the data). A defocus scores the
   generalised likelihood ratio of ``c = a(k) h(k) + noise``, with a smooth unknown ring
   amplitude ``a >= 0`` (fading rings cost nothing, anti-phase fits earn nothing) and
   noise of variance ``scale / samples in the ring``, ``scale`` measured robustly on what
   the best rings leave. Grid search (steps of at most pi/4 of CTF phase at the band's
   top), a fine grid of +-1.5 steps and a parabola.
3. The tilt-series: the mean spectrum of all tilts gives a first defocus. With
   ``tilt_defocus_spread_um`` each tilt is then fitted with a Gaussian prior of that width,
   centred on the median of the tilts' estimates (re-centred three times: the tilts' own
   defoci blur the mean spectrum's rings), and a tilt whose best defocus explains its
   spectrum by less than 12 log-likelihood units better than the centre (pure noise
   reaches 4-8) keeps the centre: ringless tilts get the series' defocus.
4. Background (:mod:`faket.noise._ctf_split`). Where the rings are resolved, a local
   weighted regression of ``P`` on ``[1, CTF^2]`` (Gaussian window, 0.02 cycles/pixel)
   reads ``B`` between them; an even polynomial of degree 6 in ``k`` is fitted to those
   values weighted by their precision, and held constant below the first informative ring
   and in the grid's corners (partial rings). Independently, ``B = c0 + c1 k^2`` is fitted
   to the lower side of the spectrum (rings far above the fit are signal, which only adds
   power). A tilt keeps the ring-read background (capped at the smooth one, which is at or
   above the noise) only if its fit score is one noise does not reach (0.5) and the
   background stays under the spectrum itself (a background cannot exceed it); otherwise,
   e.g. at low dose and large pixels, where the fitted defocus explains noise, it gets the
   smooth fit (``background_from_rings`` tells which).
5. Signal and transfer on the paired estimator's rings (Tukey taper, orthonormal FFT,
   rings ``1 / min(ny, nx)``, :func:`faket.noise.estimate_tilt_spectra`'s conventions):
   the reference's ring power ``P``, ``N = B`` interpolated there, the signal's power
   ``P - N`` (shrunk towards 0 within the ring noise, positive-part James-Stein) and
   ``T = sign(CTF) sqrt((P - N) / P_C)``.

From the fit to the published and spectral models
-------------------------------------------------
Generation makes ``P_gen(k) = T(k)^2 P_C(k) + N(k)`` from a noiseless standardised
projection of radial power ``P_C``. Without a noiseless twin ``P_C`` is unknown, so it is
an input: ``noiseless_power`` (e.g. :func:`faket.noise.noiseless_power_spectrum` of the
pipeline's own noiseless projections of similar specimens), by default the power law
``P_C ~ 1/k^2`` scaled to unit variance (on the built-in microscope's 7.3-10 Å specimens
that default reads ``r`` 0.04-0.07 high, up to 0.09: their projections' power falls
faster). Then
``T^2 P_C`` is the signal's power, so generation gives the reference's spectrum.

- ``sigma = sqrt(sum N / sum P)`` over the Fourier samples: the noise's share of the
  tilt's standard deviation.
- ``r = sum T P_C / sqrt(sum P_C sum P)`` over the Fourier samples: the correlation that
  the paired estimator (:func:`faket.noise.estimate_tilt_stats`) measures between the
  reference and a noiseless twin of spectrum ``P_C``. It is not ``sqrt(1 - sigma^2)``: a
  CTF decorrelates the signal from the noiseless projection (phase flips, and the power
  it moves between frequencies), so ``r^2 <= 1 - sigma^2``. ``r`` is dominated by the
  low frequencies, where ``P_C`` lies (on 10 Å tilts 85 % of it comes from below 0.1
  cycles/pixel), hence by the signal's power there and ``P_C``'s shape, hardly by the
  defocus.
- The published generator (:func:`faket.noise.apply_noise`) re-standardises
  ``r Cs + sigma n``, so it uses ``r / sigma``. The paired ``sigma`` is ``sqrt(1 - r^2)``
  (all that does not follow the projection), this one the noise alone: from these numbers
  it makes tilts whose correlation with the projection is ``r / sqrt(r^2 + sigma^2)``
  (0.46 for ``r = 0.42``, ``sigma = 0.8``) rather than ``r``.

Limits
------
- Astigmatism is not fitted (rotational averages); it blurs the rings, as does the defocus
  gradient across a tilted image: ``defocus_um`` is the mean over the image.
- The defocus is identifiable only where the spectrum shows Thon rings: at least one or
  two CTF zeros in the fit band with the signal above the noise there. At 10 Å pixels and
  1-2 µm defocus the first zero lies beyond Nyquist; on small or low-dose images the rings
  may drown in the noise (the built-in microscope's 256-pixel tilts at 120 e-/Å^2 over 41
  tilts are such a case: the fitted defocus is wrong by 1-3 µm there). ``fit_score`` tells.
  ``N``, ``r`` and ``sigma`` stay close without rings (``T``'s sign is then uncertain past
  the first zero, where a projection has little power).
- Where no ring is resolved, ``B`` below the frequencies where the signal fades is an
  extrapolation (``c0 + c1 k^2``); a noise spectrum of another shape is read with an error
  there.
- Signal that does not follow the noiseless projection (ice, structures the phantom
  lacks, misalignment) is counted as signal: ``r`` reads high by its share.
- At 10 Å pixels the default band starts at 0.4 of Nyquist (50 Å); fit at a smaller pixel
  size where possible.
- Structure in the specimen's spectrum (lattices, membranes) that looks like rings can
  pull the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from faket.conventions import TiltAngles
from faket.errors import FaketInputError
from faket.noise import _ctf_model as model
from faket.noise._ctf_search import (
    MIN_SIDE,
    Settings,
    defocus_grid,
    fit_defocus,
    fit_score,
    fit_settings,
    make_search,
)
from faket.noise._ctf_split import (
    background_fits_under,
    noise_share,
    paired_equivalent_r,
    power_law_spectrum,
    ring_background,
    ring_power,
    ring_samples,
    signal_power,
    smooth_background,
    transfer_from_signal,
)
from faket.noise._rings import interpolate_radial
from faket.noise.spectral import TiltSpectra
from faket.noise.stats import (
    TiltStats,
    _as_angles,
    _check_tilt_series,
    _constant_tilts,
    _standardise64,
)
from faket.noise.unlabelled import _radius_cycles_per_pixel, _tile_starts, _welch_periodogram

__all__ = ["CtfFit", "estimate_tilt_spectra_unlabelled"]

_SPLIT_SIGMA = 0.02
"""Width (cycles/pixel) of the local windows that read B between the rings."""

_HANN_SCALE = 4.0
"""``var(P) = scale P^2 / counts`` for the rings of one Hann-windowed tile (measured on
white noise: 3.8-4.0; its samples are correlated over about 2 x 2 bins, and conjugate
pairs repeat each other); half-overlapping tiles are nearly independent."""

_RINGS_SCORE = 0.5
"""Fit score from which the Thon rings count as resolved (pure noise reaches 0.2-0.4,
clear rings 0.6-0.95). Below it a ring-read background is not trusted: on the built-in
microscope's 160-px tilts at 24 e-/Å^2 a wrong defocus (scores 0.1-0.45) left one under
the spectrum but twice the noise at low frequency."""


@dataclass(frozen=True, eq=False)
class CtfFit:
    """Spectral noise model of a tilt-series fitted from its own power spectrum.

    Curves are float64 ``(n_tilts, n_bins)`` on the rings ``frequency``; the DC bin holds
    a copy of the first ring (as in :class:`faket.noise.TiltSpectra`).

    Attributes
    ----------
    frequency : torch.Tensor
        ``(n_bins,)`` ring centres in cycles/pixel, ``0, w, 2w, ...`` to the corner of
        the Fourier grid (past Nyquist, 0.5).
    defocus_um : torch.Tensor
        ``(n_tilts,)`` fitted mean defocus per tilt, µm, underfocus positive.
    transfer : torch.Tensor
        ``(n_tilts, n_bins)`` signed ``T(k) = sign(CTF(k)) sqrt(signal(k) / P_C(k))`` from
        the standardised noiseless tilt to the standardised reference tilt; positive at
        low frequency, flipping sign at every CTF zero.
    noise_power : torch.Tensor
        ``(n_tilts, n_bins)`` noise power ``N(k) >= 0`` per Fourier sample of an
        orthonormal FFT of the standardised tilt (the fitted background ``B``, or the
        given noise spectrum of :func:`faket.noise.estimate_tilt_stats_even_odd`).
    signal_power : torch.Tensor
        ``(n_tilts, n_bins)`` the signal's share of the spectrum, ``T^2 P_C``.
    power : torch.Tensor
        ``(n_tilts, n_bins)`` the measured radial power ``P(k)`` of the standardised tilt
        (the paired estimator's taper and rings).
    noiseless_power : torch.Tensor
        ``(n_tilts, n_bins)`` the noiseless spectrum ``P_C`` that ``transfer`` assumes,
        mean 1 over the tilt's Fourier samples.
    fit_score : torch.Tensor
        ``(n_tilts,)`` weighted correlation (weights: Fourier samples per ring) of the
        fitted CTF^2 ring pattern with the measured ring contrast in the fit band, in
        [-1, 1]. Clear rings give 0.6-0.9; pure noise gives 0.2-0.4 on a 256-pixel tile
        (the best of many defoci always fits some noise; less on larger tiles).
    background_from_rings : torch.Tensor
        ``(n_tilts,)`` bool: True where ``N`` was read between resolved Thon rings, False
        where it is the smooth fit to the spectrum's lower side (or was given).
    r : torch.Tensor
        ``(n_tilts,)`` the paired-equivalent correlation ``sum T P_C / sqrt(sum P_C sum
        P)`` over the Fourier samples (module docstring).
    sigma : torch.Tensor
        ``(n_tilts,)`` the noise's share of the tilt's std, ``sqrt(sum N / sum P)``.
    mean, std : torch.Tensor
        ``(n_tilts,)`` each tilt's mean and population std in the reference's grey units
        (with ``r`` and ``sigma``, a :class:`faket.noise.TiltStats`).
    defocus_series_um : float
        The tilt-series' defocus, µm: with ``tilt_defocus_spread_um``, the median of the
        tilts' defoci; without, the fit of the mean spectrum of all tilts.
    tilt_angles_deg : torch.Tensor or None
        ``(n_tilts,)`` tilt angles in degrees, when given.
    pixel_size_a, voltage_kv, spherical_aberration_mm, amplitude_contrast : float
        The optics the CTF was modelled with.
    """

    frequency: torch.Tensor
    defocus_um: torch.Tensor
    transfer: torch.Tensor
    noise_power: torch.Tensor
    signal_power: torch.Tensor
    power: torch.Tensor
    noiseless_power: torch.Tensor
    fit_score: torch.Tensor
    background_from_rings: torch.Tensor
    r: torch.Tensor
    sigma: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    defocus_series_um: float
    tilt_angles_deg: torch.Tensor | None
    pixel_size_a: float
    voltage_kv: float
    spherical_aberration_mm: float
    amplitude_contrast: float

    @property
    def n_tilts(self) -> int:
        """Number of tilts."""
        return int(self.defocus_um.shape[0])

    def tilt_spectra(self) -> TiltSpectra:
        """Return ``frequency``, ``transfer`` and ``noise_power`` as a :class:`TiltSpectra`."""
        return TiltSpectra(
            frequency=self.frequency, transfer=self.transfer, noise_power=self.noise_power
        )

    def tilt_stats(self, source: str = "", *, spectra: bool = False) -> TiltStats:
        """Return ``r``, ``sigma``, ``mean`` and ``std`` as a ``method="unlabelled"`` TiltStats.

        With ``spectra``, :meth:`tilt_spectra` is attached.
        """
        return TiltStats(
            r=self.r,
            sigma=self.sigma,
            mean=self.mean,
            std=self.std,
            tilt_angles_deg=self.tilt_angles_deg,
            method="unlabelled",
            source=source,
            spectra=self.tilt_spectra() if spectra else None,
        )


@dataclass(frozen=True)
class _Spectra:
    """Radial spectra of the standardised tilts on the tile's rings (to the corner)."""

    frequency: torch.Tensor  # (n_bins,) cycles/pixel
    power: torch.Tensor  # (n_tilts, n_bins)
    counts: torch.Tensor  # (n_bins,) Fourier samples per ring
    tile: int
    n_tiles: int  # tiles averaged per tilt


def _measure_spectra(reference: torch.Tensor, var: torch.Tensor, tile: int) -> _Spectra:
    """Return the Welch radial spectra of the tilts divided by their variances (float64)."""
    power2d = _welch_periodogram(reference, tile) / var[:, None, None]
    index = torch.round(_radius_cycles_per_pixel(tile, tile, reference.device) * tile)
    index = index.to(torch.int64).flatten()
    n_bins = int(index.max()) + 1
    counts = torch.bincount(index, minlength=n_bins).to(torch.float64)
    sums = torch.zeros((reference.shape[0], n_bins), dtype=torch.float64, device=reference.device)
    sums.index_add_(1, index, power2d.flatten(1))
    frequency = torch.arange(n_bins, dtype=torch.float64, device=reference.device) / tile
    ny, nx = reference.shape[-2:]
    n_tiles = len(_tile_starts(ny, tile)) * len(_tile_starts(nx, tile))
    return _Spectra(frequency, sums / counts.clamp_min(1.0), counts, tile, n_tiles)


def estimate_tilt_spectra_unlabelled(
    reference: torch.Tensor,
    *,
    pixel_size_a: float,
    voltage_kv: float = 300.0,
    spherical_aberration_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    defocus_range_um: tuple[float, float] = (0.5, 8.0),
    fit_band: tuple[float, float] | None = None,
    bin_width: float | None = None,
    tilt_angles_deg: TiltAngles | None = None,
    noiseless_power: tuple[torch.Tensor, torch.Tensor] | None = None,
    tile: int = 512,
    tilt_defocus_spread_um: float | None = 0.5,
) -> CtfFit:
    """Fit each tilt's defocus, signal transfer ``T(k)`` and noise power ``N(k)``.

    No noiseless twin is needed: the reference's own power spectrum is modelled as
    ``S(k) CTF(k)^2 + B(k)`` (see the module docstring for the method, the sign
    convention and the limits), then ``N = B`` and ``T = sign(CTF) sqrt((P - N) / P_C)``,
    so that generation, ``P_gen = T^2 P_C + N``, gives a noiseless projection of spectrum
    ``P_C`` the reference's spectrum; ``r`` is the correlation that the paired estimator
    would measure against such a projection and ``sigma`` the noise's share of the std.

    Parameters
    ----------
    reference : torch.Tensor
        ``(n_tilts, ny, nx)`` floating tilt-series (float32 or float64, any device), tilt
        axis Y, in its own grey units; each tilt is standardised.
    pixel_size_a : float
        Pixel size in Å.
    voltage_kv, spherical_aberration_mm, amplitude_contrast : float
        Acceleration voltage (kV), Cs (mm) and amplitude contrast fraction in ``[0, 1)``.
    defocus_range_um : tuple of float, default (0.5, 8.0)
        Defocus search range ``(low, high)`` in µm, underfocus positive, ``0 < low < high``.
    fit_band : tuple of float, optional
        ``(low, high)`` radii of the defocus fit band in fractions of Nyquist (0.5
        cycles/pixel), ``0 < low < high <= 1``. Default: from 30 Å resolution (clipped to
        0.1-0.4 of Nyquist) to 0.95 of Nyquist. Below about 30 Å the specimen's
        own structure (membranes, gold, the slab) dominates the spectrum and misleads the
        fit, as in CTFFIND's default.
    bin_width : float, optional
        Ring spacing of the returned curves, cycles/pixel, in ``(0, 0.25]``; default
        ``1 / min(ny, nx)``, the rings of :func:`faket.noise.estimate_tilt_spectra`
        (``r`` and ``sigma`` are always measured on those).
    tilt_angles_deg : torch.Tensor or sequence of float, optional
        ``(n_tilts,)`` tilt angles in degrees, stored with the result.
    noiseless_power : tuple of torch.Tensor, optional
        ``(frequency, power)``: the radial power spectrum ``P_C`` of a standardised
        noiseless projection (orthonormal FFT), ``frequency`` ``(m,)`` increasing in
        cycles/pixel and ``power`` ``(m,)`` or ``(n_tilts, m)``, interpolated linearly
        onto the rings and scaled to mean 1 over the tilt's Fourier samples; e.g.
        :func:`faket.noise.noiseless_power_spectrum` of noiseless projections of similar
        specimens at the same pixel size and angles. Default: ``1/k^2``.
    tile : int, default 512
        Side in pixels of the Welch tiles of the defocus and background fits, clipped to
        the image's shorter side (at least 32). Larger tiles resolve finer rings (high
        defocus, small pixels); smaller ones average more tiles.
    tilt_defocus_spread_um : float or None, default 0.5
        Width (µm) of the Gaussian prior that ties each tilt's defocus to the one fitted
        on the mean spectrum of all tilts; None fits every tilt on its own.

    Returns
    -------
    CtfFit
        float64 tensors on ``reference``'s device.

    Raises
    ------
    faket.errors.FaketInputError
        If ``reference`` is not a finite floating ``(n_tilts, ny, nx)`` tensor, is smaller
        than 32 x 32 pixels, has a constant tilt (named by index), or the tilt angles or
        ``noiseless_power`` do not match.
    ValueError
        If an optical parameter, the defocus range, the band, the tile or ``bin_width``
        is out of range.

    Notes
    -----
    Memory: a float64 copy of the stack (standardised), one float64 strip of tiles for
    the Welch spectra, then only radial curves.
    """
    check_reference(reference)
    settings = fit_settings(
        pixel_size_a,
        voltage_kv,
        spherical_aberration_mm,
        amplitude_contrast,
        defocus_range_um,
        fit_band,
        bin_width,
        tile,
        tilt_defocus_spread_um,
    )
    angles = _as_angles(tilt_angles_deg, reference.shape[0], reference.device)
    noiseless = check_noiseless(noiseless_power, reference.shape[0])
    return fit_model(reference, settings, angles=angles, noiseless=noiseless)


def fit_model(
    reference: torch.Tensor,
    settings: Settings,
    *,
    angles: torch.Tensor | None,
    noiseless: tuple[torch.Tensor, torch.Tensor] | None,
    noise_image: torch.Tensor | None = None,
) -> CtfFit:
    """Fit a checked ``reference`` with checked settings (see the public function).

    With ``noise_image`` ``(n_tilts, ny, nx)`` (the reference's noise in its grey units,
    e.g. scaled even-odd differences), ``N`` is its ring power instead of a background.
    """
    n_tilts, ny, nx = reference.shape
    standardised, mean, std = _standardise64(reference)
    frequency, power, counts = ring_power(standardised)
    del standardised
    welch = _measure_spectra(reference, std.square(), min(settings.tile, ny, nx))
    defocus, series, score = _fit_defoci(welch, settings)
    if noise_image is None:
        background, from_rings = _background(welch, defocus, score, settings)
        noise = interpolate_radial(background, welch.frequency, frequency)
        noise[:, 0] = noise[:, 1]
    else:
        noise = ring_power(noise_image / std[:, None, None])[1]
        from_rings = torch.zeros(n_tilts, dtype=torch.bool, device=reference.device)
    p_c = _noiseless_on(noiseless, frequency, counts, n_tilts)
    signal = signal_power(
        power, noise, ring_samples(counts), noise_measured=noise_image is not None
    )
    transfer = transfer_from_signal(
        signal, model.ctf_curve(frequency, defocus, settings.optics), p_c
    )
    out = _output_grid(frequency, settings.bin_width)
    o = settings.optics

    def on_output(curves: torch.Tensor) -> torch.Tensor:
        return curves if out is frequency else interpolate_radial(curves, frequency, out)

    return CtfFit(
        frequency=out,
        defocus_um=defocus,
        transfer=on_output(transfer),
        noise_power=on_output(noise),
        signal_power=on_output(transfer.square() * p_c),
        power=on_output(power),
        noiseless_power=on_output(p_c),
        fit_score=score,
        background_from_rings=from_rings,
        r=paired_equivalent_r(transfer, p_c, power, counts),
        sigma=noise_share(noise, power, counts),
        mean=mean,
        std=std,
        defocus_series_um=series,
        tilt_angles_deg=angles,
        pixel_size_a=o.pixel_size_a,
        voltage_kv=o.voltage_kv,
        spherical_aberration_mm=o.spherical_aberration_mm,
        amplitude_contrast=o.amplitude_contrast,
    )


def _background(
    welch: _Spectra, defocus_um: torch.Tensor, score: torch.Tensor, settings: Settings
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``B`` on the Welch rings and whether it was read between rings (per tilt).

    Between the rings only where they are resolved (a fit score that noise does not
    reach, a background that stays under the spectrum), and nowhere above the smooth fit
    to the spectrum's lower side: that one is at or above the noise (the signal only adds
    power), while a ring-read background of a wrong defocus can be anything.
    """
    sigma_bins = _SPLIT_SIGMA * welch.tile
    ctf2 = model.measured_ctf2(welch.power.shape[-1], welch.tile, defocus_um, settings.optics)
    between_rings = ring_background(welch.power, welch.counts, ctf2, sigma_bins)
    full = welch.counts >= 0.5 * welch.counts.max()
    band = (welch.frequency >= 0.5 * settings.fit_band[0]) & full
    ok = background_fits_under(between_rings, welch.power, band, sigma_bins)
    ok &= score >= _RINGS_SCORE
    scale = _HANN_SCALE / welch.n_tiles
    smooth = smooth_background(welch.frequency, welch.power, welch.counts, scale)
    return torch.where(ok[:, None], torch.minimum(between_rings, smooth), smooth), ok


def _noiseless_on(
    noiseless: tuple[torch.Tensor, torch.Tensor] | None,
    frequency: torch.Tensor,
    counts: torch.Tensor,
    n_tilts: int,
) -> torch.Tensor:
    """Return ``P_C`` ``(n_tilts, n)`` on the rings, mean 1 over their Fourier samples."""
    if noiseless is None:
        curve = power_law_spectrum(frequency, frequency, counts)
        return curve.expand(n_tilts, -1).clone()
    freq, power = (v.to(frequency.device) for v in noiseless)
    p_c = interpolate_radial(power.expand(n_tilts, -1), freq, frequency)
    total = (counts[1:] * p_c[:, 1:]).sum(-1, keepdim=True) / counts[1:].sum()
    if not bool((total > 0).all()):
        raise FaketInputError("noiseless_power is zero at every frequency of the reference")
    return p_c / total


def _output_grid(frequency: torch.Tensor, bin_width: float | None) -> torch.Tensor:
    """Return the output rings: ``frequency`` itself, or ``0, w, 2w, ...`` to its corner."""
    if bin_width is None:
        return frequency
    n = round(float(frequency[-1]) / bin_width) + 1
    return torch.arange(n, dtype=torch.float64, device=frequency.device) * bin_width


def _fit_defoci(spectra: _Spectra, settings: Settings) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Return each tilt's defocus ``(n_tilts,)``, the series' defocus and the fit scores."""
    fit_band, optics, spread_um = settings.fit_band, settings.optics, settings.spread_um
    nyquist_fraction = spectra.frequency / 0.5
    band = (nyquist_fraction >= fit_band[0]) & (nyquist_fraction <= fit_band[1])
    if int(band.sum()) < 8:
        raise ValueError(
            f"the fit band {fit_band} holds {int(band.sum())} rings of a {spectra.tile}-pixel "
            "tile; widen it or use larger tiles (at least 8 rings)"
        )
    grid = defocus_grid(settings.defocus_range_um, optics, fit_band[1] * 0.5, spectra.power.device)
    mean_spectrum = spectra.power.mean(0, keepdim=True)
    pooled = make_search(mean_spectrum, spectra.counts, spectra.tile, band, grid, optics)
    series, _ = fit_defocus(pooled, None, None)
    search = make_search(spectra.power, spectra.counts, spectra.tile, band, grid, optics)
    n_tilts = spectra.power.shape[0]
    centre = series.expand(n_tilts) if spread_um is not None else None
    defocus, centre = fit_defocus(search, centre, spread_um)
    if centre is not None:
        series = defocus.quantile(0.5)[None]
    return defocus, float(series[0]), fit_score(search, defocus)


def check_reference(reference: torch.Tensor) -> None:
    """Raise FaketInputError for a tilt-series the fit cannot use."""
    _check_tilt_series(reference, "reference")
    if min(reference.shape[-2:]) < MIN_SIDE:
        raise FaketInputError(
            f"reference tilts are {tuple(reference.shape[-2:])} pixels; the CTF fit needs "
            f"at least {MIN_SIDE} x {MIN_SIDE}"
        )
    constant = _constant_tilts(reference)
    if bool(constant.any()):
        bad = torch.nonzero(constant).flatten().tolist()
        raise FaketInputError(
            f"reference tilt(s) {bad[:10]} are constant images (std 0); "
            "their power spectrum is undefined"
        )


def check_noiseless(
    noiseless_power: tuple[torch.Tensor, torch.Tensor] | None, n_tilts: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Return ``(frequency (m,), power (1 or n_tilts, m))`` as float64, or raise."""
    if noiseless_power is None:
        return None
    try:
        freq, power = (torch.as_tensor(v, dtype=torch.float64) for v in noiseless_power)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise FaketInputError(
            "noiseless_power must be a pair (frequency, power) of arrays"
        ) from exc
    power = power[None] if power.ndim == 1 else power
    if freq.ndim != 1 or freq.shape[0] < 2 or not bool((freq.diff() > 0).all()):
        raise FaketInputError(
            "noiseless_power frequency must be 1-D and strictly increasing (cycles/pixel)"
        )
    if power.ndim != 2 or power.shape[1] != freq.shape[0] or power.shape[0] not in (1, n_tilts):
        raise FaketInputError(
            f"noiseless_power power must have shape ({freq.shape[0]},) or ({n_tilts}, "
            f"{freq.shape[0]}), got {tuple(power.shape)}"
        )
    if not bool(torch.isfinite(power).all()) or bool((power < 0).any()):
        raise FaketInputError("noiseless_power power must be finite and non-negative")
    return freq, power
