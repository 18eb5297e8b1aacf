"""The random-backbone ablation (``style.ablation_models``): FAKET_RANDOM files and checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from faket.config import FaketConfig
from faket.errors import FaketInputError
from faket.io import read_mrc
from faket.pipeline import simulate_dataset
from faket.pipeline.layout import SPECIMEN_FOLDER_FILES, modality_names, reconstructed_names
from pipeline_data import N_TILTS, SHAPE, tiny_config


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """The run sets ``run.threads`` in this process; give the other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _ablation_config(output: Path, **style: object) -> FaketConfig:
    data = tiny_config(output, n_tomograms=1).model_dump(mode="json")
    data["style"] = {**data["style"], "backbone": "vgg16-hed", **style}
    data["report"] = {"likeness": False}
    return FaketConfig.from_dict(data)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ablation") / "ds"
    simulate_dataset(_ablation_config(out, ablation_models=["spectral"]), report=False)
    return out


def test_the_spectral_ablation_writes_faket_random_and_its_tomogram(dataset):
    folder = dataset / "model_0"
    random = read_mrc(folder / "faket_random_spectral.mrc", ndim=3).data
    faket = read_mrc(folder / "faket_spectral.mrc", ndim=3).data
    assert random.shape == faket.shape == (N_TILTS, SHAPE[1], SHAPE[2])
    assert np.isfinite(random).all()
    # Another backbone: the styled series differ by more than rounding.
    assert np.abs(random - faket).mean() > 1e-3 * np.abs(faket).mean()
    tomogram = read_mrc(folder / "tomogram_faket_random_spectral.mrc", ndim=3).data
    assert tomogram.shape == SHAPE and np.isfinite(tomogram).all()
    assert not (folder / "faket_random.mrc").exists()  # the primary model is not ablated
    files = json.loads((dataset / "dataset.json").read_text())["tomograms"][0]["files"]
    assert {"faket_random_spectral.mrc", "tomogram_faket_random_spectral.mrc"} <= set(files)


def test_the_ablation_files_are_fakets_own_and_absent_by_default():
    assert {"faket_random.mrc", "tomogram_faket_random_spectral.mrc"} <= set(SPECIMEN_FOLDER_FILES)
    models = ("published", "spectral")
    assert not any("random" in n for n in modality_names(models) + reconstructed_names(models))
    names = reconstructed_names(models, ("published", "spectral"))
    assert names[-1] == "reference"
    assert {"faket_random", "faket_random_spectral"} <= set(names)


def test_the_ablation_changes_the_resume_key(tmp_path):
    plain = _ablation_config(tmp_path).content_hash()
    assert plain != _ablation_config(tmp_path, ablation_models=["spectral"]).content_hash()


@pytest.mark.parametrize(
    ("noise", "style"),
    [
        ({"extra_models": []}, {"ablation_models": ["spectral"]}),
        ({"model": "spectral"}, {"ablation_models": ["published"]}),
        ({"extra_models": ["spectral"]}, {"ablation_models": ["spectral", "spectral"]}),
        ({"extra_models": ["spectral"]}, {"ablation_models": ["spectral"], "backbone": "random"}),
    ],
)
def test_an_ablation_model_outside_the_run_is_refused(noise, style):
    with pytest.raises(FaketInputError, match=r"style\.ablation_models") as err:
        FaketConfig.from_dict({"noise": noise, "style": style})
    assert "\n" not in str(err.value)
