"""Membrane proteins: on their membrane, axis along its normal, reproducible, no overlaps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.phantom._bodies import mark
from faket.phantom.builtin import builtin_particle
from faket.phantom.membrane_proteins import (
    MembraneProteinRequest,
    axis_to_normal,
    place_membrane_proteins,
)
from faket.phantom.membranes import make_membrane
from faket.phantom.specimen import rotate_map

H = 10.0
BOX = (48, 96, 96)
CENTRES = ((24.0, 30.0, 30.0), (24.0, 62.0, 70.0))  # two spheres, 250 A and 200 A
RADII = (250.0, 200.0)


def _grid(body, shape):
    out = np.zeros(shape, bool)
    c = np.array(body.corner_zyx)
    lo = np.maximum(c, 0)
    hi = np.minimum(c + body.label.shape, shape)
    out[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = body.label[
        tuple(slice(a, b) for a, b in zip(lo - c, hi - c, strict=True))
    ]
    return out


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(11)
    membranes = [
        make_membrane("sphere", r, c, BOX, H, rng) for r, c in zip(RADII, CENTRES, strict=True)
    ]
    occupied = np.zeros(BOX, bool)
    for m in membranes:
        mark(occupied, m)
    occupied[20:28, 44:52, 0:8] = True  # some other matter
    rod = builtin_particle("rod", H, diameter_nm=8.0)  # along its Z axis
    glob = builtin_particle("globule", H, diameter_nm=5.0)
    requests = [
        MembraneProteinRequest("rod", rod, 12),
        MembraneProteinRequest("glob", glob, 8, axis_xyz=(1.0, 1.0, 0.0), offset_a=60.0),
    ]
    kw = {"rng": np.random.default_rng(12), "occupied": occupied}
    proteins = place_membrane_proteins(requests, membranes, BOX, H, **kw)
    again = place_membrane_proteins(
        requests, membranes, BOX, H, rng=np.random.default_rng(12), occupied=occupied
    )
    return membranes, occupied, requests, proteins, again


def test_proteins_sit_on_their_membrane_along_the_normal(scene):
    membranes, _, requests, proteins, _ = scene
    assert [p.class_name for p in proteins].count("rod") == 12
    for p in proteins:
        req = requests[0] if p.class_name == "rod" else requests[1]
        m = p.extra["membrane"]
        r = (np.array(p.centre_zyx) - CENTRES[m]) * H  # A, zyx
        # A sphere's sample is on the midplane and its normal is radial: the centre lies
        # offset_a beyond the midplane (float64 rounding only).
        assert np.linalg.norm(r) == pytest.approx(RADII[m] + req.offset_a, abs=1e-6)
        axis = np.asarray(req.axis_xyz) / np.linalg.norm(req.axis_xyz)
        turned = Rotation.from_euler("ZXZ", p.angles_zxz_deg, degrees=True).apply(axis)
        radial = r[::-1] / np.linalg.norm(r)
        assert np.degrees(np.arccos(min(1.0, turned @ radial))) < 0.01


def test_rendered_maps_are_centred_and_aligned(scene):
    # Independent of the listed angles: the rendered potential's centroid is the listed
    # centre (a globule is symmetric; trilinear shifts move it by < 0.1 voxel) and a rod's
    # long principal axis (largest second moment) is radial (< 3 deg at 8 nm / 10 A).
    _, _, _, proteins, _ = scene
    for p in proteins:
        w = p.potential.astype(np.float64)
        idx = np.stack(np.meshgrid(*[np.arange(n) for n in w.shape], indexing="ij"), -1)
        pos = idx.reshape(-1, 3) + np.array(p.corner_zyx)
        centroid = (w.reshape(-1, 1) * pos).sum(0) / w.sum()
        if p.class_name == "glob":
            assert np.linalg.norm(centroid - p.centre_zyx) < 0.1
            continue
        r = pos - centroid
        moments = (w.reshape(-1, 1, 1) * r[:, :, None] * r[:, None, :]).sum(0) / w.sum()
        long_axis = np.linalg.eigh(moments)[1][:, -1]
        radial = np.array(p.centre_zyx) - CENTRES[p.extra["membrane"]]
        cos = abs(long_axis @ radial) / np.linalg.norm(radial)
        assert np.degrees(np.arccos(min(1.0, cos))) < 3.0


def test_listed_pose_reproduces_the_label(scene):
    _, _, requests, proteins, _ = scene
    for p in proteins:
        ref = requests[0].density if p.class_name == "rod" else requests[1].density
        centre = np.array(p.centre_zyx)
        rot = Rotation.from_euler("ZXZ", p.angles_zxz_deg, degrees=True)
        again = rotate_map(ref, rot, centre - np.rint(centre))
        assert np.array_equal(again > 0.2 * ref.max(), p.label)
        assert np.array_equal(np.array(p.corner_zyx), np.rint(centre) - ref.shape[0] // 2)


def test_no_overlaps_except_own_membrane(scene):
    membranes, occupied, _, proteins, _ = scene
    taken = np.zeros(BOX, np.int32)
    labels = [_grid(m, BOX) for m in membranes]
    cuts_in = 0
    for p in proteins:
        lab = _grid(p, BOX)
        assert lab.sum() == p.label.sum()  # wholly inside the box (slab = box)
        taken += lab
        host = p.extra["membrane"]
        other = labels[1 - host]
        assert not (lab & other).any()
        assert not (lab & occupied & ~labels[host]).any()
        cuts_in += bool((lab & labels[host]).any())
    assert taken.max() == 1
    assert cuts_in >= 12  # every transmembrane rod cuts into its own bilayer


def test_deterministic(scene):
    *_, proteins, again = scene
    for a, b in zip(proteins, again, strict=True):
        assert a.centre_zyx == b.centre_zyx and a.angles_zxz_deg == b.angles_zxz_deg
        assert np.array_equal(a.potential, b.potential)


def test_axis_to_normal_and_errors(scene):
    rng = np.random.default_rng(13)
    for _ in range(20):
        a, n = rng.normal(size=(2, 3))
        a, n = a / np.linalg.norm(a), n / np.linalg.norm(n)
        assert np.allclose(axis_to_normal(a, n, rng.uniform(0, 360)).apply(a), n, atol=1e-12)
    z = np.array([0.0, 0.0, 1.0])
    assert np.allclose(axis_to_normal(z, -z, 30.0).apply(z), -z, atol=1e-12)
    membranes, occupied, requests, *_ = scene
    big = builtin_particle("globule", H, diameter_nm=20.0)
    with pytest.raises(FaketInputError, match=r"only \d+ of 200 'big'"):
        place_membrane_proteins(
            [MembraneProteinRequest("big", big, 200, hosts=(1,))],
            membranes,
            BOX,
            H,
            rng=rng,
            occupied=occupied,
        )
    with pytest.raises(ValueError, match="odd cube"):
        place_membrane_proteins(
            [MembraneProteinRequest("x", np.zeros((4, 4, 4)), 1)], membranes, BOX, H, rng=rng
        )
