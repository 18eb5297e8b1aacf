"""Cellular scenes: layers, then crowding; masks, lists and geometry agree."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from faket.io import read_particle_locations
from faket.phantom import (
    FilamentRequest,
    MembraneProteinRequest,
    MembraneRequest,
    ParticleClass,
    Scene,
    build_scene,
    build_specimen,
    builtin_particle,
    rotate_map,
)

VOXEL_A = 10.0
SHAPE = (48, 112, 112)
SLAB = 40


@pytest.fixture(scope="module")
def maps():
    return {name: builtin_particle(name, VOXEL_A) for name in ("globule", "ring", "barrel")}


def _classes(maps, globules=20, rings=6):
    return [
        ParticleClass("globule", maps["globule"], globules, "builtin:globule"),
        ParticleClass("ring", maps["ring"], rings, "builtin:ring"),
    ]


def _scene(maps, volume_fraction=None, protein_name="barrel"):
    return Scene(
        membranes=(MembraneRequest("sphere", count=1, size_a=(250.0, 300.0)),),
        membrane_proteins=(MembraneProteinRequest(protein_name, maps["barrel"], 4),),
        filaments=(FilamentRequest("actin", 2, (400.0, 800.0)),),
        volume_fraction=volume_fraction,
    )


@pytest.fixture(scope="module")
def cell(maps):
    return build_scene(
        _classes(maps), SHAPE, VOXEL_A, _scene(maps), slab_voxels=SLAB, n_fiducials=2, seed=4
    )


def test_a_scene_without_layers_is_build_specimen(maps):
    args = (_classes(maps), SHAPE, VOXEL_A)
    plain = build_specimen(*args, slab_voxels=SLAB, n_vesicles=1, vesicle_radius_a=(150, 200))
    scene = build_scene(*args, Scene(), slab_voxels=SLAB, n_vesicles=1, vesicle_radius_a=(150, 200))
    for name in ("grandmodel", "class_mask", "occupancy_mask"):
        assert np.array_equal(getattr(plain, name), getattr(scene, name))
    assert plain.particles == scene.particles and plain.classes == scene.classes


def test_layers_come_first_and_every_instance_is_one_id(cell):
    names = [p.class_name for p in cell.particles]
    assert names[:1] == ["membrane"] and names[1:5] == ["barrel"] * 4
    assert names[5:7] == ["actin"] * 2
    assert names.count("globule") == 20 and names.count("ring") == 6
    class_id = {str(c["name"]): int(c["id"]) for c in cell.classes}
    assert list(class_id) == ["membrane", "barrel", "actin", "globule", "ring", "fiducial"]
    sizes = np.bincount(cell.occupancy_mask.ravel(), minlength=len(names) + 1)
    assert np.all(sizes[1:] > 0)  # nobody's label was overwritten away
    # The class mask is the occupancy mask's instances mapped to their classes.
    lookup = np.array([0] + [class_id[n] for n in names])
    assert np.array_equal(cell.class_mask, lookup[cell.occupancy_mask])
    extended = [p for p in cell.particles if p.class_name in ("membrane", "actin")]
    assert all(not p.has_angles for p in extended)
    assert all(p.has_angles for p in cell.particles if p.class_name in ("barrel", "globule"))


def test_membrane_proteins_re_rendered_from_the_list_equal_their_labels(cell, maps):
    reference = maps["barrel"]
    n = reference.shape[0]
    for index, p in enumerate(cell.particles, start=1):
        if p.class_name != "barrel":
            continue
        centre = np.array([p.z, p.y, p.x])
        base = np.rint(centre).astype(int)
        rotation = Rotation.from_euler("ZXZ", (p.phi, p.theta, p.psi), degrees=True)
        label = rotate_map(reference, rotation, centre - base) > 0.2 * reference.max()
        padded = np.zeros(tuple(s + 2 * n for s in SHAPE), bool)  # the cube may poke out
        lo = base - n // 2 + n
        padded[lo[0] : lo[0] + n, lo[1] : lo[1] + n, lo[2] : lo[2] + n] = label
        assert not padded.sum() - padded[n:-n, n:-n, n:-n].sum()  # the label is in the box
        assert np.array_equal(padded[n:-n, n:-n, n:-n], cell.occupancy_mask == index)
        # It sits on the membrane: the sphere's midplane passes through its centre.
        membrane = cell.layers["membranes"][0]
        distance = np.linalg.norm(centre[::-1] * VOXEL_A - np.array(membrane["centre_xyz_a"]))
        assert 250.0 - VOXEL_A <= distance <= 300.0 + VOXEL_A  # the radius drawn, +- a voxel


def test_layer_records_describe_the_membranes_and_filaments(cell):
    membranes, filaments = cell.layers["membranes"], cell.layers["filaments"]
    assert [m["shape"] for m in membranes] == ["sphere"]
    assert [f["class"] for f in filaments] == ["actin", "actin"]
    for f in filaments:
        monomers = np.asarray(f["monomers"]["xyz_a"])
        axis = np.asarray(f["polyline_xyz_a"])
        assert monomers.shape[1] == 3 and len(f["monomers"]["zxz_deg"]) == len(monomers)
        # Every monomer lies within actin's radius (20 A) plus a voxel of the axis.
        gaps = np.linalg.norm(monomers[:, None] - axis[None], axis=2).min(1)
        assert gaps.max() < 20.0 + 20.0 + VOXEL_A  # sampled axis: one 20 A step
    json.dumps(cell.layers)  # plain JSON


def test_crowding_fills_the_cytosol_left_by_the_layers(maps):
    target = 0.12
    cell = build_scene(
        _classes(maps, 3, 1), SHAPE, VOXEL_A, _scene(maps, target), slab_voxels=SLAB, seed=1
    )
    z0 = (SHAPE[0] - SLAB) // 2
    slab = slice(z0, z0 + SLAB)
    soluble_ids = [int(c["id"]) for c in cell.classes if c["name"] in ("globule", "ring")]
    soluble = np.isin(cell.class_mask[slab], soluble_ids)
    layers = (cell.occupancy_mask[slab] > 0) & ~soluble
    reached = soluble.sum() / (layers.size - layers.sum())
    assert abs(reached - target) <= 0.02


def test_a_scene_is_deterministic_for_a_seed(maps):
    args = (_classes(maps, 6, 2), SHAPE, VOXEL_A, _scene(maps))
    a = build_scene(*args, slab_voxels=SLAB, seed=9)
    b = build_scene(*args, slab_voxels=SLAB, seed=9)
    assert np.array_equal(a.grandmodel, b.grandmodel) and a.particles == b.particles
    c = build_scene(*args, slab_voxels=SLAB, seed=10)
    assert not np.array_equal(a.occupancy_mask, c.occupancy_mask)


def test_a_membrane_protein_named_like_a_soluble_class_is_kept_apart(maps):
    cell = build_scene(
        _classes(maps, 4, 1), SHAPE, VOXEL_A, _scene(maps, protein_name="ring"), slab_voxels=SLAB
    )
    names = [str(c["name"]) for c in cell.classes]
    assert "ring_membrane" in names and "ring" in names


def test_membrane_proteins_need_membranes(maps):
    scene = Scene(membrane_proteins=(MembraneProteinRequest("barrel", maps["barrel"], 1),))
    with pytest.raises(ValueError, match="need membranes"):
        build_scene(_classes(maps), SHAPE, VOXEL_A, scene)


def test_faket_phantom_writes_a_cellular_scene(run_cli, tmp_path):
    out = tmp_path / "cell"
    code, stdout, err = run_cli(
        "phantom",
        "--builtin",
        "globule:5",
        "--box",
        *SHAPE,
        "--voxel-size",
        VOXEL_A,
        "--slab",
        SLAB,
        "--membranes",
        "sphere:1:25-30",
        "--membrane-proteins",
        "barrel:3:0",
        "--filaments",
        "actin:1:40-80",
        "--volume-fraction",
        0.05,
        "-o",
        out,
    )
    assert code == 0, err
    particles = read_particle_locations(out / "particle_locations.txt")
    assert [p.class_name for p in particles[:5]] == ["membrane", *["barrel"] * 3, "actin"]
    layers = json.loads((out / "layers.json").read_text())
    assert len(layers["membranes"]) == 1 and len(layers["filaments"]) == 1
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["volume_fraction"] == 0.05


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--membranes", "cube:2", "'cube:2'"),
        ("--membranes", "sphere:x", "is not a count"),
        ("--membranes", "sphere:1:30-20", "smallest <= largest"),
        ("--filaments", "actin:2:big", "not a size range"),
        ("--filaments", "myosin:2", "'myosin:2'"),
        ("--membrane-proteins", "nothing:3", "neither a built-in type nor a file"),
    ],
)
def test_bad_scene_options_name_the_option(run_cli, tmp_path, option, value, message):
    args = ["phantom", "--builtin", "globule:1", "--box", *SHAPE, "--voxel-size", VOXEL_A]
    code, _, err = run_cli(*args, "--membranes", "sphere:1", option, value, "-o", tmp_path / "o")
    assert code == 2 and option in err and message in err, err
    assert not (tmp_path / "o").exists()


def test_membrane_proteins_without_membranes_are_refused(run_cli, tmp_path):
    args = ["phantom", "--builtin", "globule:1", "--box", *SHAPE, "--voxel-size", VOXEL_A]
    code, _, err = run_cli(*args, "--membrane-proteins", "ring:2", "-o", tmp_path / "o")
    assert code == 2 and "--membrane-proteins" in err and "no --membranes" in err


def test_a_helical_filament_from_the_config_follows_its_lattice():
    from faket.config import FilamentEntry
    from faket.pipeline.scene import scene_from_entries

    entry = FilamentEntry(
        type="helical",
        builtin="globule",
        count=1,
        length_nm=(60.0, 60.0),
        persistence_length_nm=1e6,
        rise_nm=5.0,
        twist_deg=60.0,
        radius_nm=3.0,
    )
    scene = scene_from_entries([], [], [entry], None, VOXEL_A)
    cell = build_scene([], SHAPE, VOXEL_A, scene, slab_voxels=SLAB, seed=2)
    (record,) = cell.layers["filaments"]
    assert record["class"] == "globule_filament"
    xyz = np.asarray(record["monomers"]["xyz_a"])
    # Successive monomers: 50 A apart along the axis and 2 x 30 sin(30 deg) = 30 A around it.
    steps = np.linalg.norm(np.diff(xyz, axis=0), axis=1)
    np.testing.assert_allclose(steps, np.hypot(50.0, 30.0), atol=1.0)  # a nearly straight path
    assert abs(len(xyz) * 50.0 - record["length_a"]) <= 50.0
