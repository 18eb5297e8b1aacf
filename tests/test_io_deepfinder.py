"""DeepFinder object lists (XML) and integer label maps.

Oracles: an object list written by hand in the layout of DeepFinder's
``utils/objl.write_xml`` (lxml, pretty-printed, 3 decimals); DeepFinder's shape rotation
(``utils/common.rotate_array``) restated below from its definition; ``mrcfile`` for the
MRC modes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import mrcfile
import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from faket.errors import FaketInputError
from faket.io import Particle, read_mrc
from faket.io.deepfinder import (
    label_dtype,
    read_objects_xml,
    write_label_mrc,
    write_objects_xml,
)

DEEPFINDER_XML = """<objlist>
  <object tomo_idx="3" obj_id="0" class_label="1" x="12.000" y="34.500" z="56.250" \
psi="10.000" phi="20.000" the="30.000" cluster_size="321"/>
  <object tomo_idx="3" obj_id="1" class_label="2" x="1.000" y="2.000" z="3.000"/>
</objlist>
"""


def test_a_deepfinder_object_list_reads_and_writes_back_the_same(tmp_path):
    path = tmp_path / "objl.xml"
    path.write_text(DEEPFINDER_XML)
    first, second = read_objects_xml(path, {1: "ribosome"})
    p = first["particle"]
    assert (p.class_name, p.x, p.y, p.z) == ("ribosome", 12.0, 34.5, 56.25)
    # DeepFinder (phi, psi, the) = faket (psi, phi, theta).
    assert (p.phi, p.theta, p.psi) == (10.0, 30.0, 20.0)
    assert (first["class_label"], first["tomo_idx"], first["obj_id"]) == (1, 3, 0)
    assert first["cluster_size"] == 321
    q = second["particle"]
    assert q.class_name == "2" and not q.has_angles and second["cluster_size"] is None

    out = tmp_path / "objects.xml"
    write_objects_xml([p, q], {"ribosome": 1, "2": 2}, out, tomo_idx=3, cluster_sizes=[321, 0])
    mine = [dict(o.attrib) for o in ET.parse(out).getroot()]
    theirs = [dict(o.attrib) for o in ET.fromstring(DEEPFINDER_XML)]
    theirs[1]["cluster_size"] = "0"
    assert mine == theirs
    assert [list(o.attrib) for o in ET.parse(out).getroot()][0] == list(
        ET.fromstring(DEEPFINDER_XML)[0].attrib
    )  # DeepFinder's attribute order


def _deepfinder_rotate(array: np.ndarray, phi: float, psi: float, the: float) -> np.ndarray:
    """DeepFinder's rotate_array, restated: out(u) = in(c + M (u - c)), linear.

    ``u`` are voxel indices taken in the order (axis 1, axis 0, axis 2), ``c`` the
    array's ``shape / 2`` and ``M = Rotation.from_euler("YZY", (-phi, -the, -psi))``.
    """
    centre = np.asarray(array.shape, dtype=float)[[1, 0, 2]] / 2.0
    i0, i1, i2 = np.indices(array.shape, dtype=float)
    u = np.stack([i1.ravel(), i0.ravel(), i2.ravel()]) - centre[:, None]
    m = Rotation.from_euler("YZY", (-phi, -the, -psi), degrees=True).as_matrix()
    t = m @ u + centre[:, None]
    sampled = ndimage.map_coordinates(array, [t[1], t[0], t[2]], order=1)
    return sampled.reshape(array.shape)


def test_written_angles_turn_a_shape_as_faket_placed_it(tmp_path):
    """A blob off the centre of a reference moves where faket's R takes it."""
    n = 48
    z, y, x = np.indices((n, n, n)) - n / 2
    offset_xyz = np.array([9.0, 4.0, -6.0])
    blob = np.exp(
        -((x - offset_xyz[0]) ** 2 + (y - offset_xyz[1]) ** 2 + (z - offset_xyz[2]) ** 2) / 4
    )
    particle = Particle("a", 0.0, 0.0, 0.0, 30.0, 50.0, 70.0)
    write_objects_xml([particle], {"a": 1}, tmp_path / "objects.xml")
    attrib = ET.parse(tmp_path / "objects.xml").getroot()[0].attrib
    turned = _deepfinder_rotate(blob, *(float(attrib[k]) for k in ("phi", "psi", "the")))
    centre_zyx = np.array(ndimage.center_of_mass(turned)) - n / 2
    r = Rotation.from_euler("ZXZ", (30.0, 50.0, 70.0), degrees=True).as_matrix()
    # Tolerance: linear interpolation of a Gaussian of sigma 1.4 voxels, 0.05 voxel.
    np.testing.assert_allclose(centre_zyx[::-1], r @ offset_xyz, atol=0.05)


def test_written_objects_file_is_deepfinder_layout(tmp_path):
    out = tmp_path / "objects.xml"
    particles = [Particle("a", 1.23456, 2.0, 3.0, 1.0, 2.0, 3.0), Particle("b", 4.0, 5.0, 6.0)]
    write_objects_xml(particles, {"a": 1, "b": 2}, out)
    text = out.read_text()
    assert text.startswith('<objlist>\n  <object obj_id="0" class_label="1" x="1.235"')
    assert [o.get("class_label") for o in ET.parse(out).getroot()] == ["1", "2"]
    nan = float("nan")
    write_objects_xml([Particle("a", 1, 2, 3, nan, nan, nan)], {"a": 1}, out)
    assert "phi" not in ET.parse(out).getroot()[0].attrib


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("<objlist><object x='1' y='2' z='3'/></objlist>", "object 0: bad or missing attribute"),
        ("<objlist><object class_label='1' x='a' y='2' z='3'/>", "not an XML object list"),
        (
            "<objlist><object class_label='1' x='nan' y='2' z='3'/></objlist>",
            "object 0: x y z must be finite",
        ),
    ],
)
def test_bad_object_lists_are_one_line_errors(tmp_path, text, fragment):
    path = tmp_path / "objl.xml"
    path.write_text(text)
    with pytest.raises(FaketInputError, match=fragment):
        read_objects_xml(path)


def test_writer_refuses_unknown_classes_and_wrong_sizes(tmp_path):
    out = tmp_path / "o.xml"
    with pytest.raises(FaketInputError, match="class 'a' has no class label"):
        write_objects_xml([Particle("a", 1, 2, 3)], {}, out)
    with pytest.raises(FaketInputError, match="2 cluster sizes for 1 particles"):
        write_objects_xml([Particle("a", 1, 2, 3)], {"a": 1}, out, cluster_sizes=[1, 2])
    assert not out.exists()


@pytest.mark.parametrize(
    ("top", "mode", "dtype"), [(4, 0, np.int8), (127, 0, np.int8), (300, 6, np.uint16)]
)
def test_label_maps_are_integer_mrc(tmp_path, top, mode, dtype):
    labels = np.zeros((4, 5, 6), np.int32)
    labels[1, 2, 3] = top
    labels[2, 2, 2] = 1
    path = tmp_path / "class_mask.mrc"
    write_label_mrc(labels, path, voxel_size_a=10.0)
    with mrcfile.open(path) as mrc:
        assert int(mrc.header.mode) == mode and mrc.data.dtype == dtype
        np.testing.assert_array_equal(mrc.data, labels)
        assert float(mrc.voxel_size.x) == pytest.approx(10.0)
    assert path.stat().st_size == 1024 + labels.size * np.dtype(dtype).itemsize
    back = read_mrc(path, ndim=3)
    assert back.data.dtype == np.float32 and back.voxel_size_a == pytest.approx(10.0)
    np.testing.assert_array_equal(back.data, labels)
    assert label_dtype(top) == dtype


@pytest.mark.parametrize(
    "labels",
    [np.full((2, 2, 2), -1), np.full((2, 2, 2), 1.5), np.full((2, 2, 2), 70000), np.zeros(3)],
)
def test_bad_label_maps_are_refused(tmp_path, labels):
    path = tmp_path / "m.mrc"
    with pytest.raises(FaketInputError, match="m.mrc: "):
        write_label_mrc(labels, path)
    assert not path.exists()


def test_read_missing_file(tmp_path):
    with pytest.raises(FaketInputError, match="no such file"):
        read_objects_xml(tmp_path / "none.xml")


def test_cluster_sizes_counted_per_slice_equal_one_bincount():
    # Oracle: np.bincount of the whole mask (what objects.xml's cluster_size held before
    # the count went per Z-slice to save the volume's int64 copy); exact integers.
    from faket.io.specimen_files import _label_sizes

    rng = np.random.default_rng(0)
    mask = rng.integers(0, 9, (6, 10, 12)).astype(np.int32)
    mask[0] = 0  # a slice of background only: its counts are shorter
    for n_labels in (3, 9, 12):
        np.testing.assert_array_equal(
            _label_sizes(mask, n_labels), np.bincount(mask.ravel(), minlength=n_labels)
        )
