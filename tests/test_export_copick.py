"""The copick export, checked by opening the project with copick itself.

Oracles: the dataset's own files (particle_locations.txt, classes.json, class_mask.mrc,
tomogram_*.mrc), read with faket.io; faket's phantom renderer (`rotate_map`) for the
meaning of a transform; the occupancy mask for the voxel-centre convention.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from faket.config import FaketConfig
from faket.errors import FaketInputError
from faket.io import read_classes_json, read_mrc, read_particle_locations
from faket.pipeline import simulate_dataset
from pipeline_data import tiny_config

copick = pytest.importorskip("copick")

from faket.export import export_copick, tomo_type, update_dataset_copick  # noqa: E402

VOXEL_A = 20.0
POSITION_TOL_A = 1e-3  # positions are written with 3 decimals of a voxel: exact here
ANGLE_TOL_DEG = 1e-4  # angles are written with 4 decimals: compare the rotations


def _config(out: Path, **run: object) -> FaketConfig:
    """Two 16 x 32 x 32 tomograms at 20 A, one noise model, a few particles."""
    data = tiny_config(out, **run).model_dump(mode="json")
    data["noise"]["extra_models"] = []
    data["phantom"].update(
        shape_zyx=[16, 32, 32],
        voxel_size_a=VOXEL_A,
        builtin={"ring": 2, "globule": 2},
        vesicles=0,
        fiducials=2,
    )
    return FaketConfig.from_dict(data)


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished dataset whose config asks for the copick output (run.outputs)."""
    out = tmp_path_factory.mktemp("copick") / "ds"
    simulate_dataset(_config(out, outputs=["copick"]), report=False)
    return out


@pytest.fixture(scope="module")
def project(dataset: Path) -> Path:
    """The dataset exported by the library function into a separate folder."""
    config = export_copick(dataset, dataset.parent / "project")
    return config.parent


def _open(project: Path):
    return copick.from_file(str(project / "copick_config.json"))


def _models(dataset: Path) -> list[Path]:
    return sorted(dataset.glob("model_*"))


def test_runs_and_pickable_objects(dataset: Path, project: Path) -> None:
    root = _open(project)
    assert sorted(r.name for r in root.runs) == ["model_0", "model_1"]
    classes = read_classes_json(dataset / "model_0" / "classes.json")
    objects = {o.name: o for o in root.pickable_objects}
    assert sorted(objects) == sorted(c["name"] for c in classes)
    for c in classes:
        o = objects[c["name"]]
        assert o.is_particle and o.label == c["id"]
        assert o.radius == pytest.approx(c["diameter_a"] / 2, abs=1e-9)
    # colours are a function of the class id: the config route's project has the same
    other = {o.name: o.color for o in _open(dataset / "copick").pickable_objects}
    assert other == {name: o.color for name, o in objects.items()}
    assert len({o.color for o in objects.values()}) == len(objects)


def test_tomograms_types_spacing_and_data(dataset: Path, project: Path) -> None:
    index = json.loads((dataset / "dataset.json").read_text())
    for run in _open(project).runs:
        (spacing,) = run.voxel_spacings
        assert spacing.voxel_size == pytest.approx(index["tomogram_voxel_size_a"])
        files = sorted((dataset / run.name).glob("tomogram_*.mrc"))
        expected = {tomo_type(f.stem[len("tomogram_") :]): f for f in files}
        assert {"faket", "noisy", "baseline", "noiseless", "reference"} <= set(expected)
        assert sorted(t.tomo_type for t in spacing.tomograms) == sorted(expected)
        for name, file in expected.items():
            np.testing.assert_array_equal(
                spacing.get_tomograms(name)[0].numpy(), read_mrc(file, volume=True).data
            )


def _picks(run, name: str):
    (picks,) = run.get_picks(object_name=name, user_id="faket")
    return picks


def test_picks_positions_in_angstrom(dataset: Path, project: Path) -> None:
    root = _open(project)
    for model in _models(dataset):
        run = root.get_run(model.name)
        particles = read_particle_locations(model / "particle_locations.txt")
        for o in root.pickable_objects:
            mine = [p for p in particles if p.class_name == o.name]
            points, _ = _picks(run, o.name).numpy()
            assert len(points) == len(mine)
            expected = np.array([(p.x, p.y, p.z) for p in mine]).reshape(-1, 3) * VOXEL_A
            np.testing.assert_allclose(points, expected, rtol=0, atol=POSITION_TOL_A)


def test_positions_are_voxel_centres(dataset: Path, project: Path) -> None:
    """copick's voxel index = position / spacing lands on each particle's density centre.

    The oracle: the centroid of the grandmodel's density over the particle's voxels
    (occupancy_mask), which is within 0.2 voxel of the centre for these particles; a
    half-voxel convention error would be 0.5.
    """
    root = _open(project)
    for model in _models(dataset):
        run = root.get_run(model.name)
        occupancy = np.rint(read_mrc(model / "occupancy_mask.mrc", volume=True).data)
        density = np.abs(read_mrc(model / "grandmodel.mrc", volume=True).data)
        particles = read_particle_locations(model / "particle_locations.txt")
        for o in root.pickable_objects:
            points, _ = _picks(run, o.name).numpy()
            numbers = [k + 1 for k, p in enumerate(particles) if p.class_name == o.name]
            for number, point in zip(numbers, points, strict=True):
                voxels = np.argwhere(occupancy == number)
                zyx = np.average(voxels, axis=0, weights=density[tuple(voxels.T)])
                np.testing.assert_allclose(point / VOXEL_A, zyx[::-1], atol=0.25)


def test_transforms_are_faket_rotations(dataset: Path, project: Path) -> None:
    root = _open(project)
    for model in _models(dataset):
        run = root.get_run(model.name)
        particles = read_particle_locations(model / "particle_locations.txt")
        for o in root.pickable_objects:
            mine = [p for p in particles if p.class_name == o.name]
            _, transforms = _picks(run, o.name).numpy()
            for p, t in zip(mine, transforms, strict=True):
                np.testing.assert_array_equal(t[3], [0, 0, 0, 1])
                np.testing.assert_array_equal(t[:3, 3], 0.0)
                if not np.isfinite([p.phi, p.theta, p.psi]).all():  # no orientation
                    np.testing.assert_array_equal(t, np.eye(4))
                    continue
                faket = Rotation.from_euler("ZXZ", (p.phi, p.theta, p.psi), degrees=True)
                error = (Rotation.from_matrix(t[:3, :3]) * faket.inv()).magnitude()
                assert np.degrees(error) < ANGLE_TOL_DEG


def test_transform_maps_object_to_tomogram() -> None:
    """copick's transform maps object to tomogram space: check it on faket's renderer."""
    from faket.export._dataset import particle_transforms
    from faket.io import Particle
    from faket.phantom.specimen import rotate_map

    n, r_xyz = 15, np.array([4.0, 1.0, 0.0])  # a marker voxel off the centre, (x, y, z)
    reference = np.zeros((n, n, n), np.float32)
    c = n // 2
    reference[c + int(r_xyz[2]), c + int(r_xyz[1]), c + int(r_xyz[0])] = 1.0
    particle = Particle("a", 0, 0, 0, phi=30.0, theta=50.0, psi=-70.0)
    transform = particle_transforms([particle])[0]
    rotation = Rotation.from_euler("ZXZ", (30.0, 50.0, -70.0), degrees=True)
    moved = rotate_map(reference, rotation)
    weights = np.argwhere(moved > 0)
    centroid_zyx = np.average(weights, axis=0, weights=moved[tuple(weights.T)])
    np.testing.assert_allclose(centroid_zyx[::-1] - c, transform[:3, :3] @ r_xyz, atol=0.1)


def test_segmentation_is_the_class_mask(dataset: Path, project: Path) -> None:
    root = _open(project)
    for model in _models(dataset):
        (segmentation,) = root.get_run(model.name).segmentations
        assert segmentation.is_multilabel and segmentation.name == "classes"
        assert segmentation.voxel_size == pytest.approx(VOXEL_A)
        mask = read_mrc(model / "class_mask.mrc", volume=True).data
        np.testing.assert_array_equal(segmentation.numpy(), mask)


def test_config_route_writes_and_keeps_the_project(dataset: Path) -> None:
    marker = dataset / "copick" / "faket_export.json"
    assert _open(dataset / "copick").get_run("model_1") is not None
    before = marker.read_bytes(), marker.stat().st_mtime_ns
    copy = dataset.parent / "ds_copy"
    shutil.copytree(dataset, copy)
    simulate_dataset(_config(dataset, outputs=["copick"]), report=False)  # finished: resumes
    assert (marker.read_bytes(), marker.stat().st_mtime_ns) == before
    assert update_dataset_copick(dataset) is False
    # a moved dataset is exported again: its config must point at the new folder
    assert update_dataset_copick(copy) is True
    overlay = json.loads((copy / "copick" / "copick_config.json").read_text())["overlay_root"]
    assert overlay == f"local://{copy.absolute() / 'copick' / 'overlay'}"
    stale = copy / ".copick.tmp-0123abcd" / "overlay"  # left by a killed export
    stale.mkdir(parents=True)
    simulate_dataset(_config(copy), report=False, force=True)  # --force removes it
    assert not (copy / "copick").exists()
    assert not list(copy.glob(".copick.tmp-*"))


def test_binned_tomograms_get_their_own_spacing(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    config = _config(out, n_tomograms=1).model_dump(mode="json")
    config["reconstruction"] = {"binning": 2}
    simulate_dataset(FaketConfig.from_dict(config), report=False)
    (run,) = _open(export_copick(out, tmp_path / "p").parent).runs
    spacings = {vs.voxel_size: vs for vs in run.voxel_spacings}
    assert sorted(spacings) == [VOXEL_A, 2 * VOXEL_A]
    assert spacings[VOXEL_A].tomograms == [] and len(spacings[2 * VOXEL_A].tomograms) == 5
    assert run.segmentations[0].voxel_size == pytest.approx(VOXEL_A)


def test_cli_exports_chosen_modalities(dataset: Path, tmp_path: Path, run_cli) -> None:
    code, out, err = run_cli(
        "export", "copick", dataset, "-o", tmp_path / "p", "--modality", "faket", "--levels", 1
    )
    assert code == 0 and err == "" and "copick_config.json" in out
    for run in _open(tmp_path / "p").runs:
        (tomogram,) = run.voxel_spacings[0].tomograms
        assert tomogram.tomo_type == "faket"


def _bad(run_cli, folder: Path, *args: object) -> str:
    before = sorted(folder.rglob("*"))
    code, out, err = run_cli("export", "copick", *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("faket: error: ")
    assert sorted(folder.rglob("*")) == before  # nothing written, no temporary left
    return err


def test_bad_inputs_write_nothing(dataset: Path, tmp_path: Path, run_cli) -> None:
    (tmp_path / "plain").mkdir()
    err = _bad(run_cli, tmp_path, tmp_path / "plain", "-o", tmp_path / "p")
    assert "not a faket dataset" in err and "plain" in err
    err = _bad(run_cli, tmp_path, tmp_path / "absent", "-o", tmp_path / "p")
    assert "no such dataset folder" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("x")
    err = _bad(run_cli, tmp_path, dataset, "-o", tmp_path / "full")
    assert "exists and is not empty" in err and "full" in err
    err = _bad(run_cli, dataset, dataset, "-o", dataset)
    assert "must not be (or hold) the dataset" in err
    err = _bad(run_cli, dataset, dataset, "-o", dataset / "model_0" / "p")
    assert "must not lie in model_0/" in err
    err = _bad(run_cli, dataset, dataset, "-o", dataset / "report" / "p")
    assert "must not lie in report/" in err
    err = _bad(run_cli, tmp_path, dataset, "-o", tmp_path / "p", "--modality", "nope")
    assert "no modality nope" in err and "tomogram_nope.mrc" in err


def test_without_copick_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "copick", None)
    with pytest.raises(FaketInputError, match=r"pip install 'faket\[copick\]'"):
        export_copick(tmp_path, tmp_path / "p")
    assert not (tmp_path / "p").exists()
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FaketInputError, match=r"run\.outputs.*copick is not installed"):
        FaketConfig.from_dict({"run": {"outputs": ["copick"]}})


def test_particles_without_angles_get_identities() -> None:
    from faket.export._dataset import has_orientations, particle_transforms
    from faket.io import Particle

    nan = float("nan")
    particles = [Particle("v", 1, 2, 3, nan, nan, nan), Particle("v", 1, 2, 3, 90.0, 0.0, 0.0)]
    transforms = particle_transforms(particles)
    np.testing.assert_array_equal(transforms[0], np.eye(4))
    np.testing.assert_allclose(
        transforms[1, :3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12
    )
    assert not has_orientations(particles[:1]) and has_orientations(particles)
    assert particle_transforms([]).shape == (0, 4, 4)
