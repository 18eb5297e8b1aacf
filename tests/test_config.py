"""The run configuration: defaults, YAML round trip, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from faket.config import FaketConfig, example_yaml
from faket.errors import FaketInputError


def test_every_field_has_a_description_and_a_default():
    config = FaketConfig()
    for section in FaketConfig.model_fields:
        model = type(getattr(config, section))
        for name, field in model.model_fields.items():
            assert field.description, f"{section}.{name}"
            assert not field.is_required(), f"{section}.{name}"


def test_yaml_round_trip(tmp_path):
    config = FaketConfig.from_dict(
        {
            "run": {"output": str(tmp_path / "ds"), "n_tomograms": 4, "seed": 7},
            "phantom": {"shape_zyx": [16, 32, 48], "builtin": {"ring": 2}},
            "reference": {"microscope": {"defocus_um": 4.0}},
            "style": {"backbone": "random", "tile": 64},
        }
    )
    config.to_yaml(tmp_path / "c.yaml")
    again = FaketConfig.from_yaml(tmp_path / "c.yaml")
    assert again == config
    assert again.phantom.shape_zyx == (16, 32, 48)
    assert again.content_hash() == config.content_hash()


def test_example_is_commented_valid_yaml_of_the_defaults():
    text = example_yaml()
    assert text.count("# ") > 30
    assert FaketConfig.from_dict(yaml.safe_load(text)) == FaketConfig()


def test_hash_ignores_workers_and_output_but_not_the_seed():
    base = FaketConfig()
    other = FaketConfig.from_dict({"run": {"workers": 4, "output": "elsewhere"}})
    seeded = FaketConfig.from_dict({"run": {"seed": 1}})
    assert base.content_hash() == other.content_hash() != seeded.content_hash()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"run": {"n_tomograms": 0}},
            "run.n_tomograms: Input should be greater than or equal to 1",
        ),
        ({"phantom": {"voxel_size_a": -2}}, "phantom.voxel_size_a: Input should be greater than 0"),
        ({"style": {"backbone": "resnet"}}, "style.backbone"),
        ({"run": {"typo": 1}}, "run.typo: Extra inputs are not permitted"),
        ({"phantom": {"builtin": {"teapot": 1}}}, "unknown built-in particle teapot"),
        ({"reference": {"microscope": {"defocus": 3}}}, "reference: Value error, microscope"),
        ({"reference": {"microscope": {"voltage_kv": -1}}}, "voltage"),
        ({"reference": {"source": "files"}}, "needs at least one path in tilt_series"),
        (
            {
                "reference": {"source": "files", "tilt_series": ["a.mrc"], "angles": ["a.tlt"]},
                "noise": {"method": "paired"},
            },
            "noise.method paired needs noise.noiseless files",
        ),
        (
            {
                "reference": {"source": "files", "tilt_series": ["a.mrc"], "angles": ["a.tlt"]},
                "noise": {"method": "even-odd"},
            },
            "noise.method even-odd needs reference.even and reference.odd files",
        ),
        ({"noise": {"method": "file"}}, "noise.method file needs noise.stats_file"),
        (
            {
                "reference": {
                    "source": "files",
                    "tilt_series": ["a.mrc"],
                    "angles": ["a.tlt"],
                    "even": ["e.mrc"],
                },
            },
            "give both or neither",
        ),
        ({"projection": {"angles_from": "reference"}}, "angles_from reference needs reference"),
        ({"phantom": {"shape_zyx": [8, 8, 8], "slab_voxels": 9}}, "thicker than the box"),
        (
            {"phantom": {"shape_zyx": [300, 256, 256]}},
            "the default thickness (phantom nz / binning) 300 is larger than the binned "
            "detector width 256",
        ),
        (
            {"reconstruction": {"thickness": 200, "binning": 2}},
            "reconstruction.thickness 200 is larger than the binned detector width 128",
        ),
        ({"style": {"tile": 100}}, "tile must be a multiple of 16 pixels, got 100"),
        (
            {"phantom": {"builtin": {}, "vesicles": 0, "fiducials": 0}},
            "phantom: Value error, no particles, vesicles or fiducials",
        ),
        ({"projection": {"tilt_max_deg": 90}}, "projection.tilt_max_deg: Input should be less"),
        (
            {"phantom": {"membrane_proteins": [{"builtin": "ring", "count": 2}]}},
            "membrane_proteins: there are no membranes",
        ),
        (
            {"phantom": {"membranes": [{"shape": "cube"}]}},
            "phantom.membranes.0.shape: Input should be 'sphere'",
        ),
        (
            {"phantom": {"membranes": [{"shape": "sphere", "count": 1, "area_fraction": 0.5}]}},
            "give a count or an area_fraction, not both",
        ),
        (
            {"phantom": {"membranes": [{"shape": "sphere"}], "membrane_proteins": [{"count": 1}]}},
            "give one of builtin or path",
        ),
        ({"phantom": {"filaments": [{"type": "myosin", "count": 1}]}}, "Input should be 'actin'"),
        ({"phantom": {"volume_fraction": 1.5}}, "volume_fraction: Input should be less than 1"),
        (
            {"phantom": {"voxel_size_a": 100}, "reference": {"microscope": {"voltage_kv": 0}}},
            "voltage_kv must be positive",
        ),
    ],
)
def test_bad_configs_name_the_field_and_the_problem(tmp_path, data, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(FaketInputError) as err:
        FaketConfig.from_yaml(path)
    assert expected in str(err.value) and "bad.yaml" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_and_unparsable_files_are_named(tmp_path):
    with pytest.raises(FaketInputError, match="nope.yaml: no such configuration file"):
        FaketConfig.from_yaml(tmp_path / "nope.yaml")
    (tmp_path / "x.yaml").write_text("run: [unclosed\n")
    with pytest.raises(FaketInputError, match="x.yaml: not valid YAML"):
        FaketConfig.from_yaml(tmp_path / "x.yaml")


def test_config_command_prints_the_example_and_checks_a_file(run_cli, tmp_path):
    code, out, _ = run_cli("config", "--example")
    assert code == 0 and out == example_yaml()
    (tmp_path / "c.yaml").write_text("run: {n_tomograms: 2}\n")
    code, out, _ = run_cli("config", "--check", tmp_path / "c.yaml")
    assert code == 0 and yaml.safe_load(out)["run"]["n_tomograms"] == 2
    (tmp_path / "b.yaml").write_text("run: {n_tomograms: -1}\n")
    code, _, err = run_cli("config", "--check", tmp_path / "b.yaml")
    assert code == 2 and "run.n_tomograms" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"run: {n_tomograms: 2}\n\x00\x01\x02", "a binary file, not a YAML configuration"),
        ("run:\n  output: d\u00e9j\u00e0\n".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
        (
            b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nrun: [*c, *c, *c, *c, *c, *c, *c]\n",
            "YAML aliases (*a) are not allowed",
        ),
        (b"#" * (2**20 + 1), "larger than 1 MiB"),
    ],
)
def test_binary_latin1_alias_bombs_and_huge_files_are_one_line(tmp_path, content, expected):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(FaketInputError) as err:
        FaketConfig.from_yaml(path)
    assert str(err.value) == f"{path}: {expected}" or (
        str(err.value).startswith(f"{path}: {expected}") and "\n" not in str(err.value)
    )


def test_relative_paths_resolve_against_the_config_files_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    data = {
        "run": {"output": "out"},
        "projection": {"angles_file": "tilts/run.tlt"},
        "phantom": {"structures": [{"path": "maps/a.mrc", "count": 1}]},
        "reference": {
            "source": "files",
            "tilt_series": ["refs/a.mrc", str(tmp_path / "elsewhere.mrc")],
            "angles": ["refs/a.tlt", "refs/b.tlt"],
        },
        "noise": {"stats_file": "stats.json"},
    }
    (folder / "run.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)  # not the config's folder
    config = FaketConfig.from_yaml("project/run.yaml")
    project = folder.absolute()
    assert config.run.output == project / "out"
    assert config.projection.angles_file == project / "tilts" / "run.tlt"
    assert config.phantom.structures[0].path == project / "maps" / "a.mrc"
    assert config.reference.tilt_series == [project / "refs" / "a.mrc", tmp_path / "elsewhere.mrc"]
    assert config.noise.stats_file == project / "stats.json"
    assert config.noise_method() == "file"
    # from_dict (the Python API) keeps paths as given: relative to the current folder.
    assert FaketConfig.from_dict(data).run.output == Path("out")


@pytest.mark.parametrize(
    ("reference", "noise", "method"),
    [
        ({}, {}, "paired"),
        ({"source": "files"}, {"noiseless": ["n.mrc"]}, "paired"),
        ({"source": "files", "even": ["e.mrc"], "odd": ["o.mrc"]}, {}, "even-odd"),
        ({"source": "files"}, {}, "unlabelled"),
        ({"source": "files"}, {"method": "unlabelled", "noiseless": ["n.mrc"]}, "unlabelled"),
    ],
)
def test_auto_noise_method_is_the_first_whose_inputs_are_given(reference, noise, method):
    if reference.get("source") == "files":
        reference = {"tilt_series": ["a.mrc"], "angles": ["a.tlt"], **reference}
    config = FaketConfig.from_dict({"reference": reference, "noise": noise})
    assert config.noise_method() == method
