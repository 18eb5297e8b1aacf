"""DeepFinder outputs: object lists (XML) and integer label maps (MRC).

Object list, as DeepFinder's ``deepfinder.utils.objl`` reads and writes it::

    <objlist>
      <object tomo_idx="0" obj_id="0" class_label="1" x="12.000" y="3.500" z="7.000"
              psi="10.000" phi="20.000" the="30.000" cluster_size="321"/>
    </objlist>

``class_label`` (int, 0 is background) and ``x y z`` (voxels, array axes 2, 1, 0) are
mandatory; ``tomo_idx``, ``obj_id``, the three angles (all or none) and
``cluster_size`` (voxels of the object) are optional. Numbers are written with 3
decimals, as DeepFinder does.

Angles: DeepFinder's ``(phi, psi, the)`` follow TOM/PyTOM (``utils/common.rotate_array``,
which its target builder uses to turn a class's shape): the shape is rotated by
``Rotation.from_euler("ZXZ", (psi, the, phi), degrees=True)`` acting on ``(x, y, z)``,
that is ``phi`` about Z first, then ``the`` about the fixed X, then ``psi`` about the
fixed Z. faket's ``R = Rotation.from_euler("ZXZ", (phi, theta, psi))`` (see
:mod:`faket.io.particles`) is therefore written as DeepFinder ``phi = psi``,
``the = theta``, ``psi = phi``. A particle without angles gets none.

Label maps: class ids are written as MRC mode 0 (int8) when they fit in 0..127, else
mode 6 (uint16); ``mrcfile`` reads them back as int8 / uint16 and `faket.io.read_mrc`
as float32. (``mrcfile`` 1.5 stores a uint8 array as mode 6, so int8 is the 1-byte
mode.)
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faket.errors import FaketInputError
from faket.io._atomic import atomic_write
from faket.io.particles import Particle

_LABEL = "Created by faket (mrcfile)"
_NAN = float("nan")


def write_objects_xml(
    particles: Sequence[Particle],
    class_ids: dict[str, int],
    path: str | os.PathLike[str],
    *,
    tomo_idx: int | None = None,
    cluster_sizes: Sequence[int] | None = None,
) -> None:
    """Write particles as a DeepFinder object list (XML), atomically.

    Parameters
    ----------
    particles : sequence of Particle
        Centres in voxels, faket ZXZ angles in degrees; ``obj_id`` is the list index.
    class_ids : dict of str to int
        ``class_label`` of each class name.
    path : str or PathLike
        The XML file; its folder must exist.
    tomo_idx : int, optional
        ``tomo_idx`` of every object; None leaves it out.
    cluster_sizes : sequence of int, optional
        Voxels of each particle (``cluster_size``), in particle order; None leaves it out.

    Raises
    ------
    FaketInputError
        Naming ``path``, if a class has no id or ``cluster_sizes`` has the wrong length.
    """
    target = Path(path)
    if cluster_sizes is not None and len(cluster_sizes) != len(particles):
        raise FaketInputError(
            f"{len(cluster_sizes)} cluster sizes for {len(particles)} particles", target
        )
    root = ET.Element("objlist")
    for index, particle in enumerate(particles):
        if particle.class_name not in class_ids:
            raise FaketInputError(f"class {particle.class_name!r} has no class label", target)
        size = None if cluster_sizes is None else int(cluster_sizes[index])
        ET.SubElement(root, "object", _attributes(index, particle, class_ids, tomo_idx, size))
    ET.indent(root)
    with atomic_write(target) as temp:
        ET.ElementTree(root).write(temp, encoding="utf-8", xml_declaration=False)
        with open(temp, "a", encoding="utf-8") as handle:
            handle.write("\n")


def _attributes(
    index: int,
    particle: Particle,
    class_ids: dict[str, int],
    tomo_idx: int | None,
    cluster_size: int | None,
) -> dict[str, str]:
    """Return one object's XML attributes, in DeepFinder's order."""
    out = {} if tomo_idx is None else {"tomo_idx": str(int(tomo_idx))}
    out["obj_id"] = str(index)
    out["class_label"] = str(int(class_ids[particle.class_name]))
    out.update({k: f"{float(getattr(particle, k)):.3f}" for k in ("x", "y", "z")})
    if particle.has_angles:
        out["psi"] = f"{particle.phi:.3f}"
        out["phi"] = f"{particle.psi:.3f}"
        out["the"] = f"{particle.theta:.3f}"
    if cluster_size is not None:
        out["cluster_size"] = str(cluster_size)
    return out


def read_objects_xml(
    path: str | os.PathLike[str], class_names: dict[int, str] | None = None
) -> list[dict[str, Any]]:
    """Read a DeepFinder object list.

    Parameters
    ----------
    path : str or PathLike
        The XML file.
    class_names : dict of int to str, optional
        Class name of each ``class_label``; else the label as text.

    Returns
    -------
    list of dict
        Per object: ``particle`` (a `Particle`, faket ZXZ angles, NaN when the object
        has none), ``class_label``, ``tomo_idx``, ``obj_id`` and ``cluster_size`` (None
        when absent).

    Raises
    ------
    FaketInputError
        If the file is missing, not XML, or an object lacks ``class_label`` or ``x y z``
        or has a value that is not a number (the message gives the object's index).
    """
    file = Path(path)
    if not file.is_file():
        raise FaketInputError("no such file", file)
    try:
        root = ET.parse(file).getroot()
    except ET.ParseError as err:
        raise FaketInputError(f"not an XML object list ({err})", file) from err
    return [_read_object(i, node.attrib, class_names or {}, file) for i, node in enumerate(root)]


def _read_object(
    index: int, attrib: dict[str, str], class_names: dict[int, str], file: Path
) -> dict[str, Any]:
    """Return one object of `read_objects_xml`."""
    try:
        label = int(attrib["class_label"])
        x, y, z = (float(attrib[k]) for k in ("x", "y", "z"))
        given = [attrib.get(k) for k in ("phi", "psi", "the")]
        phi_df, psi_df, the_df = (_NAN if v is None else float(v) for v in given)
        optional = {k: _int_or_none(attrib.get(k)) for k in ("tomo_idx", "obj_id", "cluster_size")}
    except (KeyError, ValueError) as err:
        raise FaketInputError(f"object {index}: bad or missing attribute ({err})", file) from err
    if not all(math.isfinite(v) for v in (x, y, z)):
        raise FaketInputError(f"object {index}: x y z must be finite numbers", file)
    name = class_names.get(label, str(label))
    particle = Particle(name, x, y, z, psi_df, the_df, phi_df)
    return {"particle": particle, "class_label": label, **optional}


def _int_or_none(text: str | None) -> int | None:
    """Return ``text`` as an int, None for None."""
    return None if text is None else int(text)


def label_dtype(max_label: int) -> type[np.integer[Any]]:
    """Return the smallest MRC integer dtype for labels ``0 .. max_label``: int8 or uint16.

    Raises
    ------
    ValueError
        If ``max_label`` is negative or above 65535.
    """
    if max_label < 0 or max_label > np.iinfo(np.uint16).max:
        raise ValueError(f"labels must lie in 0..65535, got a maximum of {max_label}")
    return np.int8 if max_label <= np.iinfo(np.int8).max else np.uint16


def write_label_mrc(
    labels: np.ndarray, path: str | os.PathLike[str], *, voxel_size_a: float | None = None
) -> None:
    """Write a label map (non-negative integer ids) as an integer MRC file, atomically.

    Parameters
    ----------
    labels : np.ndarray
        ``(z, y, x)`` (or ``(y, x)``) integer or integral float ids, 0 .. 65535.
    path : str or PathLike
        The file to write; its folder must exist.
    voxel_size_a : float, optional
        Voxel size in A; None leaves it unset.

    Raises
    ------
    FaketInputError
        Naming ``path``, if the array is not 2-D or 3-D, is empty, or holds values that
        are not integers in 0..65535. Nothing is written then.
    """
    import mrcfile

    target = Path(path)
    array = np.asarray(labels)
    if array.ndim not in (2, 3) or array.size == 0:
        raise FaketInputError(
            f"a label map must be a non-empty 2-D or 3-D array, got {array.shape}", target
        )
    top = int(array.max()) if np.all(np.isfinite(array)) else -1
    if array.min() < 0 or top < 0 or not np.array_equal(array, np.round(array)) or top > 65535:
        raise FaketInputError("label ids must be integers in 0..65535", target)
    data = np.ascontiguousarray(array, dtype=label_dtype(top))
    with atomic_write(target) as temp:
        with mrcfile.new(temp, overwrite=True) as mrc:
            mrc.set_data(data)
            if voxel_size_a is not None:
                mrc.voxel_size = float(voxel_size_a)
            mrc.header.label[0] = _LABEL  # mrcfile's default label has the time of day
            mrc.header.nlabl = 1
