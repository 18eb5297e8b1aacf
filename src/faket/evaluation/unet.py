"""The DeepFinder segmentation network (Moebel et al. 2021), in PyTorch.

A 3-D U-Net with two pooling levels and no batch normalisation, as used by FakET::

    in -> conv32 conv32 ----------------------------------> cat -> conv32 conv32 -> 1x1x1 -> softmax
              pool -> conv48 conv48 ---------------> cat -> conv48 conv48 -> up, conv48(2^3)
                          pool -> conv64 x4 -> up, conv64(2^3)

Every convolution is 3x3x3 (``same`` padding, ReLU) except the two 2x2x2 convolutions
after each nearest-neighbour up-sampling, which pad like Keras ``same`` (one voxel after,
none before) so the layer shapes are those of the published Keras model. Weights are
Glorot-uniform and biases zero, Keras's defaults. ``width`` scales every channel count
(32/48/64) for small CPU runs; 1.0 is the published network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DeepFinderNet", "channel_counts"]

_PUBLISHED_CHANNELS = (32, 48, 64)


def channel_counts(width: float) -> tuple[int, int, int]:
    """Return the channel counts of the three levels for a width multiplier.

    Parameters
    ----------
    width : float
        Multiplier of the published (32, 48, 64) channels; each count is rounded and at
        least 1.
    """
    if not width > 0:
        raise ValueError(f"the width multiplier must be positive, got {width}")
    return tuple(max(1, round(c * width)) for c in _PUBLISHED_CHANNELS)  # type: ignore[return-value]


def _conv3(n_in: int, n_out: int) -> nn.Conv3d:
    return nn.Conv3d(n_in, n_out, kernel_size=3, padding=1)


class _UpConv(nn.Module):
    """Nearest-neighbour up-sampling by 2, then a 2x2x2 convolution with Keras ``same`` padding."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(n_in, n_out, kernel_size=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.conv(F.pad(x, (0, 1, 0, 1, 0, 1))))


class DeepFinderNet(nn.Module):
    """DeepFinder's 3-D U-Net: a ``(B, 1, D, H, W)`` patch -> ``(B, C, D, H, W)`` class scores.

    Parameters
    ----------
    n_classes : int
        Number of output labels, background included (at least 2).
    width : float
        Channel multiplier; 1.0 gives the published 32/48/64 channels.

    Notes
    -----
    ``D``, ``H`` and ``W`` must be multiples of 4 (two poolings). :meth:`forward` returns
    the softmax probabilities over the class axis; :meth:`logits` the scores before it.
    """

    def __init__(self, n_classes: int, width: float = 1.0) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"a segmentation needs at least 2 classes, got {n_classes}")
        c1, c2, c3 = channel_counts(width)
        self.n_classes = n_classes
        self.width = width
        self.enc1 = nn.ModuleList([_conv3(1, c1), _conv3(c1, c1)])
        self.enc2 = nn.ModuleList([_conv3(c1, c2), _conv3(c2, c2)])
        self.bottom = nn.ModuleList([_conv3(c2, c3)] + [_conv3(c3, c3) for _ in range(3)])
        self.up2 = _UpConv(c3, c3)
        self.dec2 = nn.ModuleList([_conv3(c3 + c2, c2), _conv3(c2, c2)])
        self.up1 = _UpConv(c2, c2)
        self.dec1 = nn.ModuleList([_conv3(c2 + c1, c1), _conv3(c1, c1)])
        self.head = nn.Conv3d(c1, n_classes, kernel_size=1)
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.xavier_uniform_(module.weight)
                assert module.bias is not None
                nn.init.zeros_(module.bias)

    @staticmethod
    def _stack(layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            x = F.relu(layer(x))
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Return the class scores before the softmax, ``(B, C, D, H, W)``."""
        if x.ndim != 5 or x.shape[1] != 1:
            raise ValueError(f"expected a (B, 1, D, H, W) patch, got shape {tuple(x.shape)}")
        if any(s % 4 for s in x.shape[2:]):
            raise ValueError(f"patch sides must be multiples of 4, got {tuple(x.shape[2:])}")
        high = self._stack(self.enc1, x)
        mid = self._stack(self.enc2, F.max_pool3d(high, 2))
        low = self._stack(self.bottom, F.max_pool3d(mid, 2))
        x = self._stack(self.dec2, torch.cat([self.up2(low), mid], dim=1))
        x = self._stack(self.dec1, torch.cat([self.up1(x), high], dim=1))
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the softmax probabilities over classes, ``(B, C, D, H, W)`` float32."""
        return torch.softmax(self.logits(x).float(), dim=1)
