"""Membrane shapes: implicit midplane surfaces ``f(p) = 0`` and their random parameters.

Private to `faket.phantom.membranes` (see its docstring for the shapes and their sizes):
each field function returns ``f`` and ``grad f`` at points ``p`` ``(n, 3)`` = ``(x, y, z)``
in A in the shape's frame; `_draw_surface` draws a shape's parameters as a `_Surface`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

_FieldFn = Callable[[np.ndarray, dict[str, np.ndarray]], tuple[np.ndarray, np.ndarray]]


# --- shapes: f and grad f in the shape's frame, (x, y, z) in A -------------------------


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return ``a @ b`` for ``(n, k) @ (k, j)`` (einsum: faster than BLAS for tiny ``k``)."""
    return np.einsum("nk,kj->nj", a, b)


def _norm(v: np.ndarray) -> np.ndarray:
    return np.maximum(np.sqrt(np.einsum("nk,nk->n", v, v)), 1e-9)


def _sphere(p: np.ndarray, prm: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    r = _norm(p)
    return r - prm["radius_a"], p / r[:, None]


def _ellipsoid(p: np.ndarray, prm: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    a = prm["semi_axes_a"]
    q = np.maximum(np.sqrt(((p / a) ** 2).sum(1)), 1e-9)
    return q - 1.0, p / a**2 / q[:, None]


def _blob_height(u: np.ndarray, s: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``h(u) = u.S.u + C(u, u, u)`` on unit vectors ``(n, 3)`` and its gradient."""
    c9 = c.reshape(3, 9)
    uu = (u[:, :, None] * u[:, None, :]).reshape(-1, 9)
    us = _dot(u, s)
    return (us * u).sum(1) + (_dot(u, c9) * uu).sum(1), 2.0 * us + 3.0 * _dot(uu, c9.T)


def _blob(p: np.ndarray, prm: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    r = _norm(p)
    u = p / r[:, None]
    h, dh = _blob_height(u, prm["quadratic"], prm["cubic"])
    tangential = dh - (dh * u).sum(1)[:, None] * u
    radius = prm["radius_a"]
    return r - radius * (1.0 + h), u - radius * tangential / r[:, None]


def _torus(p: np.ndarray, prm: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    rho = np.maximum(np.hypot(p[:, 0], p[:, 1]), 1e-9)
    q = rho - prm["major_radius_a"]
    s = np.maximum(np.hypot(q, p[:, 2]), 1e-9)
    g = np.stack([q / s * p[:, 0] / rho, q / s * p[:, 1] / rho, p[:, 2] / s], axis=1)
    return s - prm["minor_radius_a"], g


def _tube(p: np.ndarray, prm: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    bend = float(prm["bend_radius_a"])  # the axis: local x, bending towards +y; 0 = straight
    if bend == 0.0:
        rho = np.maximum(np.hypot(p[:, 1], p[:, 2]), 1e-9)
        g = np.stack([np.zeros_like(rho), p[:, 1] / rho, p[:, 2] / rho], axis=1)
        return rho - prm["radius_a"], g
    ring = {"major_radius_a": prm["bend_radius_a"], "minor_radius_a": prm["radius_a"]}
    return _torus(p - np.array([0.0, bend, 0.0]), ring)


def _sheet(p: np.ndarray, prm: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    k, amp, phase = (
        prm[n].astype(p.dtype) for n in ("wavevectors_per_a", "amplitudes_a", "phases")
    )
    arg = _dot(p[:, :2], k.T) + phase
    h = np.cos(arg) @ amp
    grad = -_dot(np.sin(arg) * amp, k)  # (n, 2): dH/dx, dH/dy
    return p[:, 2] - h, np.concatenate([-grad, np.ones((len(p), 1))], axis=1)


_FIELDS: dict[str, _FieldFn] = {
    "sphere": _sphere,
    "ellipsoid": _ellipsoid,
    "blob": _blob,
    "torus": _torus,
    "tube": _tube,
    "sheet": _sheet,
}


@dataclass(frozen=True)
class _Surface:
    shape: str
    params: dict[str, np.ndarray]
    frame: np.ndarray  # (3, 3): columns = the shape's axes in box (x, y, z)
    bound_a: float | None  # bounding radius of a closed shape's midplane, None = open

    def field(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _FIELDS[self.shape](p, self.params)

    def local(self, zyx: np.ndarray, centre_zyx: np.ndarray, h: float) -> np.ndarray:
        """Box voxel coordinates -> the shape's frame (x, y, z) in A."""
        return _dot((zyx - centre_zyx)[:, ::-1] * h, self.frame)

    def distance(self, zyx: np.ndarray, centre_zyx: np.ndarray, h: float) -> np.ndarray:
        """Return ``f / |grad f|`` in A, computed in float32 (errors ~1e-3 A)."""
        q = ((zyx - centre_zyx)[:, ::-1] * h).astype(np.float32)
        f, g = self.field(_dot(q, self.frame.astype(np.float32)))
        return f / _norm(g)


def _fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i
    rho = np.sqrt(1.0 - z * z)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)


def _draw_surface(
    shape: str,
    size_a: float,
    rotation: Rotation,
    box_extent_a: np.ndarray,
    rng: np.random.Generator,
    leaflet_distance_a: float,
) -> _Surface:
    """Draw a shape's random parameters; refuse sizes whose leaflets would fold."""
    t = leaflet_distance_a
    prm: dict[str, np.ndarray] = {}
    bound: float | None = size_a
    small = ValueError(f"a {shape} membrane of size {size_a:.0f} A is too small for its bilayer")
    if shape == "sphere":
        if size_a <= t:
            raise small
        prm["radius_a"] = np.array(size_a)
    elif shape == "ellipsoid":
        if 0.36 * size_a <= t:  # the smallest radius of curvature can be 0.6^2 a
            raise small
        prm["semi_axes_a"] = size_a * np.array([1.0, *rng.uniform(0.6, 1.0, 2)])
    elif shape == "blob":
        if size_a * 0.8 <= 2 * t:
            raise small
        s = rng.normal(size=(3, 3))
        s = s + s.T
        s -= np.eye(3) * np.trace(s) / 3.0
        c = rng.normal(size=(3, 3, 3))
        c = np.mean([np.transpose(c, perm) for perm in itertools.permutations(range(3))], 0)
        scale = 0.2 / np.abs(_blob_height(_fibonacci_sphere(2000), s, c)[0]).max()
        prm.update(radius_a=np.array(size_a), quadratic=s * scale, cubic=c * scale)
        bound = 1.2 * size_a
    elif shape == "torus":
        if 0.3 * size_a <= t:  # the minor radius can be 0.3 R
            raise small
        minor = size_a * rng.uniform(0.3, 0.5)
        prm.update(major_radius_a=np.array(size_a), minor_radius_a=np.array(minor))
        bound = size_a + minor
    elif shape == "tube":
        if size_a <= t:
            raise small
        diagonal = float(np.linalg.norm(box_extent_a))
        curvature = rng.uniform(0.0, 1.0 / (2.0 * diagonal))
        bend = 1.0 / curvature if curvature > 1e-12 else 0.0
        prm.update(radius_a=np.array(size_a), bend_radius_a=np.array(bend))
        bound = None
    elif shape == "sheet":
        if size_a < 0:
            raise ValueError(f"a sheet's height must not be negative, got {size_a} A")
        width = float(box_extent_a[1:].max())
        wavelength = width * rng.uniform(0.5, 1.5, 3)
        angle = rng.uniform(0.0, 2 * math.pi, 3)
        k = (2 * math.pi / wavelength)[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
        amp = rng.uniform(0.2, 1.0, 3)
        prm.update(
            wavevectors_per_a=k,
            amplitudes_a=amp * size_a / amp.sum(),
            phases=rng.uniform(0.0, 2 * math.pi, 3),
        )
        bound = None
    else:
        raise ValueError(f"unknown membrane shape {shape!r}; choose one of {', '.join(_FIELDS)}")
    return _Surface(shape, prm, rotation.as_matrix(), bound)
