"""Membranes: bilayer profile, areas, normals and shapes against analytic oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.phantom.builtin import vesicle_map
from faket.phantom.membranes import (
    MembraneRequest,
    bilayer_half_width_a,
    make_membrane,
    place_membranes,
)

H = 10.0  # voxel size in A


def _box_array(body, shape):
    out = np.zeros(shape, np.float32)
    lab = np.zeros(shape, bool)
    c = body.corner_zyx
    win = tuple(slice(c[i], c[i] + body.label.shape[i]) for i in range(3))
    out[win] = body.potential
    lab[win] = body.label
    return out, lab


def _local(body, points_zyx):
    """Box voxel points -> the shape's frame (x, y, z) in A."""
    p = (points_zyx - np.asarray(body.centre_zyx))[:, ::-1] * H
    return p @ body.extra["frame_xyz"]


@pytest.fixture(scope="module")
def sphere():
    box = (80, 80, 80)
    body = make_membrane("sphere", 300.0, (40, 40, 40), box, H, np.random.default_rng(1))
    return body, box


def test_sphere_matches_vesicle_map(sphere):
    # vesicle_map is an independent rendering of the same bilayer formula; beyond the
    # membrane's reach (20 + 4 sigma = 54 A) its tails are below D exp(-8) ~ 2.5 mV.
    body, box = sphere
    pot, _ = _box_array(body, box)
    ves = vesicle_map(300.0, H)
    half = ves.shape[0] // 2
    ref = np.zeros(box, np.float32)
    ref[40 - half : 41 + half, 40 - half : 41 + half, 40 - half : 41 + half] = ves
    assert np.abs(pot - ref).max() < 3e-3


def test_leaflet_spacing_and_thickness(sphere):
    # Along a grid axis through the centre the voxels sample the radial profile exactly;
    # a log-parabola through each maximum and its neighbours locates a Gaussian's peak
    # exactly (the other leaflet's tail moves it by < 0.5 A): spacing 40 A within 1 A.
    body, box = sphere
    pot, lab = _box_array(body, box)
    line = pot[40, 40, 40:].astype(np.float64)
    peaks = []
    for lo, hi in ((25, 31), (31, 37)):
        i = lo + int(np.argmax(line[lo:hi]))
        a, b, c = np.log(line[i - 1 : i + 2])
        peaks.append((i + 0.5 * (a - c) / (a - 2 * b + c)) * H)
    assert abs(peaks[1] - peaks[0] - 40.0) < 1.0
    assert abs(0.5 * (peaks[0] + peaks[1]) - 300.0) < 1.0
    # Label = the bilayer between the outer 0.2-of-peak crossings: ~70 A, 7 voxels here.
    d = np.abs(np.arange(40) * H - 300.0)
    assert np.array_equal(lab[40, 40, 40:], d < bilayer_half_width_a(H))
    outer = d > 20.0
    peak = line.max()  # voxels 28 and 32 sample the leaflets' centres
    assert np.array_equal(lab[40, 40, 40:][outer], line[outer] > 0.2 * peak)
    assert 32.0 < bilayer_half_width_a(H) < 38.0


@pytest.mark.parametrize("shape", ["ellipsoid", "blob", "torus"])
def test_leaflets_along_normals_of_curved_shapes(shape):
    # The first-order distance f / |grad f| must not distort the bilayer where the surface
    # curves: along the normal at 100 random samples the map (cubic interpolation, 0.5 A
    # steps) peaks 20 A either side of the sample. Interpolating 10 A voxels of a
    # sigma = 8.5 A Gaussian moves a peak by < 1 A; tolerance 1.5 A.
    box = (72, 88, 88)
    body = make_membrane(shape, 280.0, (36.3, 43.8, 44.1), box, H, np.random.default_rng(9))
    pot, _ = _box_array(body, box)
    p, n = body.extra["surface_zyx"], body.extra["normals_zyx"]
    room = np.ones(len(p), bool)  # the whole line +-4.5 voxels lies in the box
    for end in (p - 4.5 * n, p + 4.5 * n):
        room &= np.all((end >= 1) & (end <= np.array(box) - 2), axis=1)
    pick = np.random.default_rng(0).choice(np.nonzero(room)[0], 100, replace=False)
    p, n = p[pick], n[pick]
    s = np.arange(-40.0, 40.25, 0.5)
    line = p[:, None, :] + (s / H)[None, :, None] * n[:, None, :]
    v = ndimage.map_coordinates(pot, line.reshape(-1, 3).T, order=3).reshape(len(p), -1)
    half = len(s) // 2
    inner, outer = s[np.argmax(v[:, :half], 1)], s[half + np.argmax(v[:, half:], 1)]
    assert np.abs(inner + 20.0).max() <= 1.5 and np.abs(outer - 20.0).max() <= 1.5


def test_sphere_area_samples_and_normals(sphere):
    body, _ = sphere
    e = body.extra
    area = 4 * math.pi * 300.0**2
    assert abs(e["area_a2"] / area - 1) < 0.01  # level-set estimate, smooth surface
    assert abs(len(e["surface_zyx"]) * H * H / area - 1) < 0.05  # one sample per voxel^2
    r = e["surface_zyx"] - 40.0
    assert np.allclose(np.linalg.norm(r, axis=1), 30.0, atol=1e-6)
    assert np.allclose(e["normals_zyx"], r / 30.0, atol=1e-6)


def _ellipsoid_area(a, b, c, n=600):
    # Midpoint rule on the parametric surface: converges far below 0.1 % here.
    th = (np.arange(n) + 0.5) * math.pi / n
    ph = (np.arange(2 * n) + 0.5) * math.pi / n
    t, p = np.meshgrid(th, ph, indexing="ij")
    rt = np.stack([a * np.cos(t) * np.cos(p), b * np.cos(t) * np.sin(p), -c * np.sin(t)])
    rp = np.stack([-a * np.sin(t) * np.sin(p), b * np.sin(t) * np.cos(p), 0 * t])
    return np.linalg.norm(np.cross(rt, rp, axis=0), axis=0).sum() * (math.pi / n) ** 2


def test_ellipsoid_area_and_normals():
    box = (72, 72, 72)
    body = make_membrane("ellipsoid", 280.0, (36.3, 35.8, 36.1), box, H, np.random.default_rng(2))
    axes = body.extra["parameters"]["semi_axes_a"]
    assert axes.max() == pytest.approx(280.0) and axes.min() >= 0.6 * 280.0
    exact = _ellipsoid_area(*axes)
    assert abs(body.extra["area_a2"] / exact - 1) < 0.01
    p = _local(body, body.extra["surface_zyx"])
    assert np.allclose(((p / axes) ** 2).sum(1), 1.0, atol=1e-6)
    n_local = p / axes**2
    n_local /= np.linalg.norm(n_local, axis=1, keepdims=True)
    n_box = (n_local @ body.extra["frame_xyz"].T)[:, ::-1]
    assert np.allclose(body.extra["normals_zyx"], n_box, atol=1e-6)


def test_torus_shape():
    box = (56, 96, 96)
    flat = Rotation.identity()
    body = make_membrane(
        "torus", 300.0, (28, 48, 48), box, H, np.random.default_rng(3), rotation=flat
    )
    major = 300.0
    minor = float(body.extra["parameters"]["minor_radius_a"])
    p = _local(body, body.extra["surface_zyx"])
    rho = np.hypot(p[:, 0], p[:, 1])
    assert np.allclose((rho - major) ** 2 + p[:, 2] ** 2, minor**2, rtol=1e-6)
    # In-plane extremes: the outer and inner equators at R + r and R - r (within a voxel).
    assert abs(rho.max() - (major + minor)) < H and abs(rho.min() - (major - minor)) < H
    pot, lab = _box_array(body, box)
    assert not lab[28, 48, 48] and pot[28, 48, 48] < 1e-3  # the hole
    assert lab[28, 48, 48 + round((major + minor) / H)]  # on the outer equator
    assert not lab[28, 48, 48 + round(major / H)]  # the tube's core, r from the midplane


def test_blob_and_tube_surfaces():
    rng = np.random.default_rng(4)
    box = (48, 96, 96)
    blob = make_membrane("blob", 300.0, (24, 48, 48), box, H, rng)
    r = blob.extra["surface_zyx"] - 24.0 * np.array([1.0, 2.0, 2.0])
    dist = np.linalg.norm(r, axis=1) * H
    assert dist.min() > 0.79 * 300 and dist.max() < 1.21 * 300  # +-20 %, on 2000 points
    assert np.all((r * blob.extra["normals_zyx"]).sum(1) > 0)  # outward
    tube = make_membrane("tube", 150.0, (24, 48, 48), box, H, rng)
    prm = tube.extra["parameters"]
    p = _local(tube, tube.extra["surface_zyx"])
    bend = float(prm["bend_radius_a"])
    if bend:
        q = np.hypot(p[:, 0], p[:, 1] - bend) - bend
        dist = np.hypot(q, p[:, 2])
    else:
        dist = np.hypot(p[:, 1], p[:, 2])
    assert np.allclose(dist, 150.0, atol=1e-6)


def test_sheet_crosses_box_and_is_cut_by_slab():
    box = (40, 64, 64)
    rng = np.random.default_rng(5)
    flat = make_membrane("sheet", 60.0, (20, 32, 32), box, H, rng, rotation=Rotation.identity())
    assert flat.corner_zyx[1:] == (0, 0) and flat.label.shape[1:] == (64, 64)
    pts = flat.extra["surface_zyx"]
    assert pts[:, 1].min() < 0.5 and pts[:, 1].max() > 62.5
    prm = flat.extra["parameters"]
    p = _local(flat, pts)
    height = np.cos(p[:, :2] @ prm["wavevectors_per_a"].T + prm["phases"]) @ prm["amplitudes_a"]
    assert np.allclose(p[:, 2], height, atol=1e-6)
    assert 1.0 <= flat.extra["area_a2"] / (64 * 64 * H * H) < 1.1
    steep = Rotation.from_euler("x", 80, degrees=True)
    cut = make_membrane("sheet", 0.0, (20, 32, 32), box, H, rng, rotation=steep, slab_voxels=20)
    assert cut.corner_zyx[0] == 10 and cut.corner_zyx[0] + cut.label.shape[0] == 30
    z = cut.extra["surface_zyx"][:, 0]
    assert z.min() >= 9.5 and z.max() < 29.5
    # A plane crossing a 200 A slab at 80 deg over 640 A: area = 200 x 640 / sin(80).
    assert abs(cut.extra["area_a2"] / (200 * 640 / math.sin(math.radians(80))) - 1) < 0.03


def test_place_membranes_no_overlaps_and_deterministic():
    box = (48, 96, 96)
    occupied = np.zeros(box, bool)
    occupied[20:28, 40:56, 40:56] = True
    reqs = [
        MembraneRequest("sphere", count=3, size_a=(150.0, 200.0)),
        MembraneRequest("tube", count=1, size_a=(100.0, 120.0)),
        MembraneRequest("torus", count=1, size_a=(200.0, 220.0)),
    ]
    kw = {"slab_voxels": 40, "occupied": occupied}
    a = place_membranes(reqs, box, H, rng=np.random.default_rng(6), **kw)
    b = place_membranes(reqs, box, H, rng=np.random.default_rng(6), **kw)
    assert [m.extra["shape"] for m in a] == ["tube", "sphere", "sphere", "sphere", "torus"]
    count = np.zeros(box, np.int32)
    for m in a:
        _, lab = _box_array(m, box)
        count += lab
        assert m.class_name == "membrane" and np.isnan(m.angles_zxz_deg).all()
        assert 4 - 0.5 <= m.centre_zyx[0] < 44 - 0.5 or m.extra["shape"] == "tube"
        assert not lab[:4].any() and not lab[44:].any()  # cut by the slab
    assert count.max() == 1 and not (count.astype(bool) & occupied).any()
    assert occupied.sum() == 8 * 16 * 16  # left unchanged
    for m, n in zip(a, b, strict=True):
        assert m.corner_zyx == n.corner_zyx and m.centre_zyx == n.centre_zyx
        assert np.array_equal(m.potential, n.potential) and np.array_equal(m.label, n.label)
        assert np.array_equal(m.extra["surface_zyx"], n.extra["surface_zyx"])


def test_area_fraction_and_errors():
    box = (40, 64, 64)
    got = place_membranes(
        [MembraneRequest("sphere", area_fraction=0.5, size_a=(120.0, 150.0))],
        box,
        H,
        rng=np.random.default_rng(7),
    )
    total = sum(m.extra["area_a2"] for m in got)
    assert total >= 0.5 * 64 * 64 * H * H
    assert total - got[-1].extra["area_a2"] < 0.5 * 64 * 64 * H * H
    with pytest.raises(FaketInputError, match=r"only \d+ of 40 sphere"):
        place_membranes(
            [MembraneRequest("sphere", count=40, size_a=(250.0, 300.0))],
            box,
            H,
            rng=np.random.default_rng(8),
        )
    with pytest.raises(ValueError, match="unknown membrane shape"):
        place_membranes([MembraneRequest("cube", count=1)], box, H, rng=np.random.default_rng())
    with pytest.raises(ValueError, match="count or an area fraction"):
        place_membranes([MembraneRequest("sphere")], box, H, rng=np.random.default_rng())
    with pytest.raises(ValueError, match="too small"):  # refused before any placement
        place_membranes(
            [MembraneRequest("torus", count=1, size_a=(100.0, 500.0))],
            box,
            H,
            rng=np.random.default_rng(),
        )
    with pytest.raises(ValueError, match="too small"):
        make_membrane("sphere", 30.0, (20, 32, 32), box, H, np.random.default_rng())
