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
1. ``P(k)`` per tilt: Welch average of Hann-windowed square tiles (the estimator of
   :func:`faket.noise.radial_power_spectrum`), rings ``b / t`` cycles/pixel to the tile's
   corner, with the number of Fourier samples per ring.
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
4. Background and envelope given the defocus (:mod:`faket.noise._ctf_split`): a local
   weighted regression of ``P`` on ``[1, CTF^2]`` (Gaussian window, 0.02 cycles/pixel)
   reads ``B`` where the rings make signal and noise separable; an even polynomial of
   degree 6 in ``k`` is fitted to those values weighted by their precision, and held
   constant below the first informative ring and in the grid's corners (partial rings).
   ``S`` is the local least-squares scale of CTF^2 in ``P - B`` (pointwise
   ``(P - B) / CTF^2`` below the first CTF maximum, where ``S`` changes fast), shrunk
   towards 0 where it is within the noise (positive-part James-Stein), at least 0.

From the fit to the spectral model
----------------------------------
Generation makes ``P_gen(k) = T(k)^2 P_C(k) + N(k)`` from a noiseless standardised
projection of radial power ``P_C``. Without a noiseless twin ``P_C`` is unknown, so it is
an input: ``noiseless_power`` (e.g. the mean radial spectrum of the pipeline's own
noiseless projections), by default the power law ``P_C ~ 1/k^2`` scaled to unit variance.
Then ``N = B`` and ``T = CTF * sqrt(S / P_C)``: a noiseless projection with that spectrum
is given the reference's spectrum. The scalar equivalents of the published model are
``sigma = sqrt(sum N / sum P)`` over the Fourier samples and ``r = sqrt(1 - sigma^2)``.

Limits
------
- Astigmatism is not fitted (rotational averages); it blurs the rings, as does the defocus
  gradient across a tilted image: ``defocus_um`` is the mean over the image.
- The defocus is identifiable only where the spectrum shows Thon rings: at least one or
  two CTF zeros in the fit band with the signal above the noise there. At 10 Å pixels and
  1-2 µm defocus the first zero lies beyond Nyquist; on small or low-dose images the rings
  may drown in the noise (the reference microscope's 256-1024 pixel tilts at 120 e-/Å^2
  over 21-41 tilts are such a case). ``fit_score`` tells; ``N`` and ``r``/``sigma`` stay
  close without rings (then ``T``'s sign is uncertain where the signal is weak).
- At 10 Å pixels the default band starts at 0.4 of Nyquist (50 Å); fit at a smaller pixel
  size where possible.
- Structure in the specimen's spectrum (lattices, membranes) that looks like rings can
  pull the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from faket.conventions import TiltAngles
from faket.errors import FaketInputError
from faket.noise import _ctf_model as model
from faket.noise._ctf_search import defocus_grid, fit_defocus, fit_score, make_search
from faket.noise._ctf_split import power_law_spectrum, split_spectrum
from faket.noise._rings import interpolate_radial
from faket.noise.spectral import TiltSpectra
from faket.noise.stats import TiltStats, _as_angles, _check_tilt_series, _constant_tilts
from faket.noise.unlabelled import _radius_cycles_per_pixel, _welch_periodogram

__all__ = ["CtfFit", "estimate_tilt_spectra_unlabelled"]

_SPLIT_SIGMA = 0.02
"""Width (cycles/pixel) of the local windows that split the spectrum into B and S."""

_LOW_RESOLUTION_A = 30.0
"""Default low-resolution end of the fit band, Å."""

_MIN_BAND, _MAX_LOW_BAND, _TOP_BAND = 0.1, 0.4, 0.95
"""Default band limits in fractions of Nyquist: the low end is 30 Å clipped to
``[0.1, 0.4]`` (pixels above 6 Å keep 0.4), the high end 0.95."""


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
        ``(n_tilts, n_bins)`` signed ``T(k) = CTF(k) sqrt(S(k) / P_C(k))`` from the
        standardised noiseless tilt to the standardised reference tilt; positive at low
        frequency, flipping sign at every CTF zero.
    noise_power : torch.Tensor
        ``(n_tilts, n_bins)`` noise power ``N(k) = B(k) >= 0`` per Fourier sample of an
        orthonormal FFT of the standardised tilt.
    signal_power : torch.Tensor
        ``(n_tilts, n_bins)`` the signal's share of the spectrum, ``T^2 P_C = S CTF^2``.
    power : torch.Tensor
        ``(n_tilts, n_bins)`` the measured radial power ``P(k)`` of the standardised tilt.
    noiseless_power : torch.Tensor
        ``(n_tilts, n_bins)`` the noiseless spectrum ``P_C`` that ``transfer`` assumes.
    fit_score : torch.Tensor
        ``(n_tilts,)`` weighted correlation (weights: Fourier samples per ring) of the
        fitted CTF^2 ring pattern with the measured ring contrast in the fit band, in
        [-1, 1]. Clear rings give 0.6-0.9; pure noise gives 0.2-0.4 on a 256-pixel tile
        (the best of many defoci always fits some noise; less on larger tiles).
    r, sigma : torch.Tensor
        ``(n_tilts,)`` the published model's equivalents: ``sigma**2`` is the noise's
        share of the tilt's variance, ``sum N / sum P`` over the Fourier samples, and
        ``r = sqrt(1 - sigma**2)``.
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

    def tilt_stats(self, source: str = "") -> TiltStats:
        """Return ``r``, ``sigma``, ``mean`` and ``std`` as a ``method="unlabelled"`` TiltStats."""
        return TiltStats(
            r=self.r,
            sigma=self.sigma,
            mean=self.mean,
            std=self.std,
            tilt_angles_deg=self.tilt_angles_deg,
            method="unlabelled",
            source=source,
        )


@dataclass(frozen=True)
class _Spectra:
    """Radial spectra of the standardised tilts on the tile's rings (to the corner)."""

    frequency: torch.Tensor  # (n_bins,) cycles/pixel
    power: torch.Tensor  # (n_tilts, n_bins)
    counts: torch.Tensor  # (n_bins,) Fourier samples per ring
    tile: int
    mean: torch.Tensor  # (n_tilts,) grey units
    std: torch.Tensor  # (n_tilts,) grey units


def _measure_spectra(reference: torch.Tensor, tile: int) -> _Spectra:
    """Return the Welch radial spectra of the standardised tilts (float64)."""
    power2d = _welch_periodogram(reference, tile)
    x64 = reference.to(torch.float64)
    mean, var = x64.mean(dim=(-2, -1)), x64.var(dim=(-2, -1), correction=0)
    del x64
    power2d = power2d / var[:, None, None]
    index = torch.round(_radius_cycles_per_pixel(tile, tile, reference.device) * tile)
    index = index.to(torch.int64).flatten()
    n_bins = int(index.max()) + 1
    counts = torch.bincount(index, minlength=n_bins).to(torch.float64)
    sums = torch.zeros((reference.shape[0], n_bins), dtype=torch.float64, device=reference.device)
    sums.index_add_(1, index, power2d.flatten(1))
    frequency = torch.arange(n_bins, dtype=torch.float64, device=reference.device) / tile
    return _Spectra(frequency, sums / counts.clamp_min(1.0), counts, tile, mean, var.sqrt())


def _first_peak_bin(defocus_um: torch.Tensor, optics: model.Optics, tile: int) -> torch.Tensor:
    """Return the ring (float bin) of the first CTF maximum, ``chi = pi/2 - asin(A)``.

    The Cs term is negligible there for any defocus worth fitting.
    """
    phase = math.pi / 2 - math.asin(optics.amplitude_contrast)
    k2_a = phase / (math.pi * optics.wavelength_a() * defocus_um * 1e4)
    return k2_a.sqrt() * optics.pixel_size_a * tile


def _noiseless_on(
    noiseless: tuple[torch.Tensor, torch.Tensor] | None,
    frequency: torch.Tensor,
    spectra: _Spectra,
    n_tilts: int,
) -> torch.Tensor:
    """Return ``P_C`` ``(n_tilts, n)`` on ``frequency``: given, or the default power law."""
    if noiseless is None:
        curve = power_law_spectrum(frequency, spectra.frequency, spectra.counts)
        return curve.expand(n_tilts, -1).clone()
    freq, power = (v.to(frequency.device) for v in noiseless)
    return interpolate_radial(power.expand(n_tilts, -1), freq, frequency)


def _output_grid(spectra: _Spectra, bin_width: float | None) -> torch.Tensor:
    """Return the output rings ``0, w, 2w, ...`` to the tile's corner (w = 1/t by default)."""
    if bin_width is None:
        return spectra.frequency
    corner = float(spectra.frequency[-1])
    n = round(corner / bin_width) + 1
    return torch.arange(n, dtype=torch.float64, device=spectra.frequency.device) * bin_width


def _variance_split(
    spectra: _Spectra, background: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(r, sigma)``: ``sigma^2 = sum N / sum P`` over the Fourier samples."""
    noise = (spectra.counts * background)[:, 1:].sum(-1)
    total = (spectra.counts * spectra.power)[:, 1:].sum(-1)
    sigma = (noise / total).clamp(0.0, 1.0).sqrt()
    return (1.0 - sigma.square()).clamp_min(0.0).sqrt(), sigma


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
    convention and the limits), then ``N = B`` and ``T = CTF sqrt(S / P_C)``, so that
    generation, ``P_gen = T^2 P_C + N``, gives a noiseless projection of spectrum ``P_C``
    the reference's spectrum.

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
        ``1 / t`` with ``t`` the tile side (the fit's own rings).
    tilt_angles_deg : torch.Tensor or sequence of float, optional
        ``(n_tilts,)`` tilt angles in degrees, stored with the result.
    noiseless_power : tuple of torch.Tensor, optional
        ``(frequency, power)``: the radial power spectrum ``P_C`` of a standardised
        noiseless projection (orthonormal FFT, mean 1 over the Fourier samples),
        ``frequency`` ``(m,)`` increasing in cycles/pixel and ``power`` ``(m,)`` or
        ``(n_tilts, m)``, interpolated linearly onto the returned rings. Default: ``1/k^2``
        scaled to unit variance.
    tile : int, default 512
        Side in pixels of the Welch tiles, clipped to the image's shorter side (at least 32).
        Larger tiles resolve finer rings (high defocus, small pixels); smaller ones
        average more tiles.
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
    Memory: one float64 strip of tiles for the spectra, then only radial curves
    (``n_tilts x n_defocus x n_bins`` at most one tilt at a time).
    """
    _check_reference(reference)
    optics = _check_optics(pixel_size_a, voltage_kv, spherical_aberration_mm, amplitude_contrast)
    if fit_band is None:
        low = min(max(_MIN_BAND, 2.0 * optics.pixel_size_a / _LOW_RESOLUTION_A), _MAX_LOW_BAND)
        fit_band = (low, _TOP_BAND)
    _check_ranges(defocus_range_um, fit_band, tile, bin_width, tilt_defocus_spread_um)
    n_tilts, ny, nx = reference.shape
    angles = _as_angles(tilt_angles_deg, n_tilts, reference.device)
    noiseless = _check_noiseless(noiseless_power, n_tilts)
    spectra = _measure_spectra(reference, min(tile, ny, nx))
    defocus, series, score = _fit_defoci(
        spectra, fit_band, defocus_range_um, optics, tilt_defocus_spread_um
    )
    background, envelope = split_spectrum(
        spectra.power,
        spectra.counts,
        model.measured_ctf2(spectra.power.shape[-1], spectra.tile, defocus, optics),
        _first_peak_bin(defocus, optics, spectra.tile),
        _SPLIT_SIGMA * spectra.tile,
        spectra.frequency,
    )
    r, sigma = _variance_split(spectra, background)
    frequency = _output_grid(spectra, bin_width)
    p_c = _noiseless_on(noiseless, frequency, spectra, n_tilts)
    noise = interpolate_radial(background, spectra.frequency, frequency)
    transfer = _transfer(frequency, defocus, optics, spectra, envelope, p_c)
    noise[:, 0] = noise[:, 1]  # the DC bin holds a copy of the first ring
    return CtfFit(
        frequency=frequency,
        defocus_um=defocus,
        transfer=transfer,
        noise_power=noise,
        signal_power=transfer.square() * p_c,
        power=interpolate_radial(spectra.power, spectra.frequency, frequency),
        noiseless_power=p_c,
        fit_score=score,
        r=r,
        sigma=sigma,
        mean=spectra.mean,
        std=spectra.std,
        defocus_series_um=series,
        tilt_angles_deg=angles,
        pixel_size_a=optics.pixel_size_a,
        voltage_kv=optics.voltage_kv,
        spherical_aberration_mm=optics.spherical_aberration_mm,
        amplitude_contrast=optics.amplitude_contrast,
    )


def _fit_defoci(
    spectra: _Spectra,
    fit_band: tuple[float, float],
    defocus_range_um: tuple[float, float],
    optics: model.Optics,
    spread_um: float | None,
) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Return each tilt's defocus ``(n_tilts,)``, the series' defocus and the fit scores."""
    nyquist_fraction = spectra.frequency / 0.5
    band = (nyquist_fraction >= fit_band[0]) & (nyquist_fraction <= fit_band[1])
    if int(band.sum()) < 8:
        raise ValueError(
            f"the fit band {fit_band} holds {int(band.sum())} rings of a {spectra.tile}-pixel "
            "tile; widen it or use larger tiles (at least 8 rings)"
        )
    grid = defocus_grid(defocus_range_um, optics, fit_band[1] * 0.5, spectra.power.device)
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


def _transfer(
    frequency: torch.Tensor,
    defocus_um: torch.Tensor,
    optics: model.Optics,
    spectra: _Spectra,
    envelope: torch.Tensor,
    noiseless_power: torch.Tensor,
) -> torch.Tensor:
    """Return ``T = CTF sqrt(S / P_C)`` on ``frequency`` (0 where ``P_C`` is ~0)."""
    signal_envelope = interpolate_radial(envelope, spectra.frequency, frequency)
    defined = noiseless_power > _EMPTY_POWER
    gain = signal_envelope / noiseless_power.clamp_min(_EMPTY_POWER)
    gain = torch.where(defined, gain, torch.zeros_like(gain))
    transfer = model.ctf_curve(frequency, defocus_um, optics) * gain.sqrt()
    transfer[:, 0] = transfer[:, 1]  # the DC bin holds a copy of the first ring
    return transfer


_EMPTY_POWER = 1e-12
"""Rings where ``P_C`` is below this carry no signal: ``T = 0`` there."""

_MIN_SIDE = 32
"""Smallest tile side (and image side) in pixels that the fit accepts."""


def _check_reference(reference: torch.Tensor) -> None:
    """Raise FaketInputError for a tilt-series the fit cannot use."""
    _check_tilt_series(reference, "reference")
    if min(reference.shape[-2:]) < _MIN_SIDE:
        raise FaketInputError(
            f"reference tilts are {tuple(reference.shape[-2:])} pixels; the CTF fit needs "
            f"at least {_MIN_SIDE} x {_MIN_SIDE}"
        )
    constant = _constant_tilts(reference)
    if bool(constant.any()):
        bad = torch.nonzero(constant).flatten().tolist()
        raise FaketInputError(
            f"reference tilt(s) {bad[:10]} are constant images (std 0); "
            "their power spectrum is undefined"
        )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_optics(
    pixel_size_a: float, voltage_kv: float, cs_mm: float, amplitude_contrast: float
) -> model.Optics:
    """Return the optics, or raise ValueError naming the bad parameter."""
    for name, value, ok in (
        ("pixel_size_a", pixel_size_a, _finite(pixel_size_a) and pixel_size_a > 0),
        ("voltage_kv", voltage_kv, _finite(voltage_kv) and voltage_kv > 0),
        ("spherical_aberration_mm", cs_mm, _finite(cs_mm) and cs_mm >= 0),
        (
            "amplitude_contrast",
            amplitude_contrast,
            _finite(amplitude_contrast) and 0 <= amplitude_contrast < 1,
        ),
    ):
        if not ok:
            raise ValueError(f"{name} is out of range: got {value!r}")
    return model.Optics(
        float(pixel_size_a), float(voltage_kv), float(cs_mm), float(amplitude_contrast)
    )


def _check_ranges(
    defocus_range_um: tuple[float, float],
    fit_band: tuple[float, float],
    tile: int,
    bin_width: float | None,
    spread_um: float | None,
) -> None:
    """Raise ValueError for a search range, band, tile, ring width or prior out of range."""
    lo, hi = (float(v) for v in defocus_range_um)
    if not 0 < lo < hi <= 100:
        raise ValueError(
            f"defocus_range_um must satisfy 0 < low < high <= 100 (µm, underfocus "
            f"positive), got {defocus_range_um}"
        )
    low, high = (float(v) for v in fit_band)
    if not 0 < low < high <= 1:
        raise ValueError(
            f"fit_band must satisfy 0 < low < high <= 1 (fractions of Nyquist), got {fit_band}"
        )
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < _MIN_SIDE:
        raise ValueError(f"tile must be an integer of at least {_MIN_SIDE} pixels, got {tile!r}")
    if bin_width is not None and not (_finite(bin_width) and 0 < bin_width <= 0.25):
        raise ValueError(f"bin_width must lie in (0, 0.25] cycles/pixel, got {bin_width!r}")
    if spread_um is not None and not (_finite(spread_um) and spread_um > 0):
        raise ValueError(f"tilt_defocus_spread_um must be positive or None, got {spread_um!r}")


def _check_noiseless(
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
