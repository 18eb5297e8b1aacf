"""Pool per-tilt spectra over tomograms: a polynomial in the tilt angle per ring.

Like the scalar statistics (:mod:`faket.noise.aggregate`), each tomogram's curves are
fitted by least squares with a polynomial of the given order, separately for every ring
and for ``T`` and ``N``, and the fits are averaged over tomograms. Two differences:

- The variable is the tilt angle in degrees (the CTF's defocus gradient and the path
  length through the slab depend on the angle, not on the file order); the tilt index is
  used when some tomogram's angles are unknown.
- Tomograms may have different image sizes, hence different ring grids: every
  tomogram's curves are first interpolated linearly onto one common grid (the finest
  spacing among the inputs, up to the largest extent; ends held constant).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from faket.conventions import TiltAngles
from faket.noise.spectral import TiltSpectra, resample_spectra

__all__ = ["aggregate_tilt_spectra", "common_frequency_grid"]


def common_frequency_grid(spectra: Sequence[TiltSpectra]) -> torch.Tensor:
    """Return one ring grid for several spectra: the finest first spacing, widest extent.

    Parameters
    ----------
    spectra : sequence of TiltSpectra
        One or more spectra, e.g. of tomograms with different image sizes.

    Returns
    -------
    torch.Tensor
        ``(m,)`` float64 centres ``0, w, 2 w, ...`` up to (at least) the largest last
        centre, with ``w`` the smallest first spacing; on the first spectra's device.
        Equal uniform grids give that grid back.
    """
    width = min(float(s.frequency[1]) for s in spectra)
    top = max(float(s.frequency[-1]) for s in spectra)
    n = math.ceil(top / width - 1e-9) + 1
    device = spectra[0].frequency.device
    return torch.arange(n, dtype=torch.float64, device=device) * width


def _positions(
    spectra: Sequence[TiltSpectra], tilt_angles_deg: Sequence[TiltAngles | None] | None
) -> list[np.ndarray]:
    """Return each tomogram's fit variable: its angles if all are known, else the index."""
    if tilt_angles_deg is not None and len(tilt_angles_deg) != len(spectra):
        raise ValueError(
            f"got tilt angles for {len(tilt_angles_deg)} tomograms and spectra for {len(spectra)}"
        )
    if tilt_angles_deg is None or any(a is None for a in tilt_angles_deg):
        return [np.arange(s.n_tilts, dtype=np.float64) for s in spectra]
    out = []
    for i, (s, a) in enumerate(zip(spectra, tilt_angles_deg, strict=True)):
        x = np.asarray(
            a.detach().cpu() if isinstance(a, torch.Tensor) else a, dtype=np.float64
        ).reshape(-1)
        if x.shape[0] != s.n_tilts or not np.isfinite(x).all():
            raise ValueError(f"tomogram {i}: need {s.n_tilts} finite tilt angles, got {x.shape[0]}")
        out.append(x)
    return out


def fit_at(x: np.ndarray, curves: torch.Tensor, order: int, at: np.ndarray) -> np.ndarray:
    """Least-squares polynomial of ``order`` in ``x`` per column, evaluated at ``at``."""
    if np.unique(x).shape[0] <= order:
        raise ValueError(
            f"an order-{order} fit needs more than {order} distinct tilt positions, "
            f"got {np.unique(x).shape[0]}"
        )
    y = curves.detach().to("cpu", torch.float64).numpy()  # (n_tilts, n_bins)
    coef = np.polynomial.polynomial.polyfit(x, y, order)  # (order + 1, n_bins)
    return np.asarray(np.polynomial.polynomial.polyval(at, coef)).T  # (len(at), n_bins)


def aggregate_tilt_spectra(
    spectra: Sequence[TiltSpectra],
    order: int,
    *,
    tilt_angles_deg: Sequence[TiltAngles | None] | None = None,
    at: TiltAngles | None = None,
) -> TiltSpectra:
    """Fit each tomogram's spectra per ring over the tilt angle and average the fits.

    Parameters
    ----------
    spectra : sequence of TiltSpectra
        One per tomogram; ring grids may differ (see :func:`common_frequency_grid`).
    order : int
        Polynomial degree in the tilt angle, ``>= 0`` and below each tomogram's number of
        distinct tilt positions. 0 gives one spectrum: the mean over tilts and tomograms.
    tilt_angles_deg : sequence of (n_tilts,) angles or None, optional
        Each tomogram's tilt angles in degrees. None, or None for any tomogram, fits over
        the tilt index ``0 .. n_tilts - 1`` instead (for every tomogram alike).
    at : (n_out,) sequence of float, optional
        Where to evaluate the averaged fit: angles in degrees (tilt indices when fitting
        over the index). Default: per tilt, the mean position over tomograms (all
        tomograms must then have the same ``n_tilts``).

    Returns
    -------
    TiltSpectra
        ``(n_out, m)`` curves on the common grid, float64 on the first spectra's device;
        ``noise_power`` is clipped at 0 where a fit overshoots.

    Raises
    ------
    ValueError
        If ``spectra`` is empty or not TiltSpectra, the order is invalid, the angles do
        not match, or ``at`` is missing while tilt counts differ.
    """
    if isinstance(spectra, TiltSpectra) or len(spectra) == 0:
        raise ValueError("expected a non-empty sequence of TiltSpectra")
    for i, s in enumerate(spectra):
        if not isinstance(s, TiltSpectra):
            raise ValueError(f"item {i} is a {type(s).__name__}, not TiltSpectra")
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 0:
        raise ValueError(f"polynomial order must be an integer >= 0, got {order!r}")
    xs = _positions(spectra, tilt_angles_deg)
    if at is None:
        if len({x.shape[0] for x in xs}) != 1:
            raise ValueError("tomograms with different tilt counts need explicit `at` positions")
        at_np = np.mean(np.stack(xs), axis=0)
    else:
        at_np = np.asarray(
            at.detach().cpu() if isinstance(at, torch.Tensor) else at, dtype=np.float64
        ).reshape(-1)
    grid = common_frequency_grid(spectra)
    transfer = np.zeros((at_np.shape[0], grid.shape[0]))
    noise_power = np.zeros_like(transfer)
    for x, s in zip(xs, spectra, strict=True):
        on_grid = resample_spectra(s, grid)
        transfer += fit_at(x, on_grid.transfer, int(order), at_np) / len(spectra)
        noise_power += fit_at(x, on_grid.noise_power, int(order), at_np) / len(spectra)
    device = grid.device
    return TiltSpectra(
        frequency=grid,
        transfer=torch.from_numpy(transfer).to(device),
        noise_power=torch.from_numpy(noise_power).clamp_min(0.0).to(device),
    )
