"""Style and content losses of the FakET neural style transfer, and their gradients.

Per image and layer the loss is the *scaled MSE* ``S(d) = sum(d^2) / (sum(|d|) + eps)``
of a difference ``d``: an MSE scaled so that its gradient has an L1 norm of about 1
(REFERENCE.md section 3). For the content layer ``d = F(x) - F(content)``; for a style
layer ``d = G(x) - G(style)`` with the Gram matrix ``G = F F^T / (H W)``.

All reductions run in float32, whatever the precision of the features: Gram matrices,
sums and losses. Features are read in chunks of positions that are converted to float32
on the fly, so no float32 copy of a whole activation map is ever made, and gradients are
written straight back in the features' dtype and memory layout.

The gradients are written out (:func:`content_feature_gradient`,
:func:`style_feature_gradient`) instead of left to autograd, because they depend on the
features only through a few global sums (``sum |d|``, ``sum d^2``, the Gram matrix). So
a large image can be processed in tiles: one pass gathers the sums, a second pass
back-propagates each tile's exact share (see :mod:`faket.style.tiling`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

CHUNK_POSITIONS = 1 << 15
"""Positions per chunk of a float32 reduction (32768 x 64 channels = 8 MiB)."""


def _positions(features: torch.Tensor) -> torch.Tensor:
    """Return ``(batch, h * w, channels)``: ``F^T``, a view for channels-last tensors."""
    b, c = features.shape[:2]
    return features.permute(0, 2, 3, 1).reshape(b, -1, c)


def _chunks(n: int) -> Iterator[slice]:
    for start in range(0, n, CHUNK_POSITIONS):
        yield slice(start, min(n, start + CHUNK_POSITIONS))


def _empty_like_channels_last(features: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(features, memory_format=torch.channels_last)


def gram_sum(features: torch.Tensor) -> torch.Tensor:
    """Return the unnormalised ``F F^T`` per image in float32, for accumulating over tiles.

    Parameters
    ----------
    features : torch.Tensor
        ``(batch, channels, h, w)`` activations, any float dtype.

    Returns
    -------
    torch.Tensor
        ``(batch, channels, channels)`` float32.
    """
    positions = _positions(features)
    b, n, c = positions.shape
    total = torch.zeros((b, c, c), dtype=torch.float32, device=features.device)
    for part in _chunks(n):
        p = positions[:, part].float()
        total.baddbmm_(p.transpose(1, 2), p)
    return total


@dataclass(frozen=True)
class DiffSums:
    """The two sums a scaled MSE needs, per image: ``abs_sum = sum |d|``, ``sq_sum = sum d^2``.

    Both are ``(batch,)`` float32 tensors; they add over disjoint parts of ``d``.
    """

    abs_sum: torch.Tensor
    sq_sum: torch.Tensor

    @staticmethod
    def of(diff: torch.Tensor) -> DiffSums:
        """Return the sums of ``diff`` ``(batch, ...)`` over all but the first axis."""
        d = diff.float()
        dims = tuple(range(1, d.ndim))
        # Norms reduce in one pass without temporaries, whatever the memory layout.
        return DiffSums(
            torch.linalg.vector_norm(d, 1, dim=dims), torch.linalg.vector_norm(d, 2, dim=dims) ** 2
        )

    @staticmethod
    def between(features: torch.Tensor, target: torch.Tensor) -> DiffSums:
        """Return the sums of ``features - target`` (both ``(batch, c, h, w)``), chunked."""
        f, t = _positions(features), _positions(target)
        b = f.shape[0]
        abs_sum = torch.zeros(b, dtype=torch.float32, device=features.device)
        sq_sum = torch.zeros_like(abs_sum)
        for part in _chunks(f.shape[1]):
            sums = DiffSums.of(f[:, part].float() - t[:, part].float())
            abs_sum += sums.abs_sum
            sq_sum += sums.sq_sum
        return DiffSums(abs_sum, sq_sum)

    def __add__(self, other: DiffSums) -> DiffSums:
        return DiffSums(self.abs_sum + other.abs_sum, self.sq_sum + other.sq_sum)

    def loss(self, eps: float = 1e-8) -> torch.Tensor:
        """Return the scaled MSE ``sq_sum / (abs_sum + eps)``, ``(batch,)``."""
        return self.sq_sum / (self.abs_sum + eps)


def scaled_mse(diff: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Return ``sum(d^2) / (sum(|d|) + eps)`` per image, ``(batch,)`` float32."""
    return DiffSums.of(diff).loss(eps)


def scaled_mse_gradient(diff: torch.Tensor, sums: DiffSums, eps: float = 1e-8) -> torch.Tensor:
    """Return ``dS/dd`` at ``diff``, given the global sums of the whole ``d``.

    ``S = B / A`` with ``A = sum |d| + eps`` and ``B = sum d^2``, so
    ``dS/dd = 2 d / A - B sign(d) / A^2``.

    Parameters
    ----------
    diff : torch.Tensor
        ``(batch, ...)`` part of ``d`` (all of it, one tile or one chunk).
    sums : DiffSums
        Sums over the whole ``d``.
    eps : float
        As in :func:`scaled_mse`.

    Returns
    -------
    torch.Tensor
        Same shape as ``diff``, float32.
    """
    d = diff.float()
    shape = (-1,) + (1,) * (d.ndim - 1)
    a = (sums.abs_sum + eps).reshape(shape)
    b = sums.sq_sum.reshape(shape)
    return torch.sign(d).mul_(-b / a.square()).addcmul_(d, 2 / a)


def content_feature_gradient(
    features: torch.Tensor, target: torch.Tensor, sums: DiffSums, weight: float, eps: float
) -> torch.Tensor:
    """Return ``dL/dF`` of ``weight * S(F - target)`` for (a tile of) the content layer.

    Parameters
    ----------
    features, target : torch.Tensor
        ``(batch, channels, h, w)`` activations of the image and of the content image.
    sums : DiffSums
        Sums of ``F - target`` over the whole image.
    weight : float
        Content weight.
    eps : float
        Scaled-MSE guard.

    Returns
    -------
    torch.Tensor
        ``(batch, channels, h, w)`` in the features' dtype, channels-last.
    """
    out = _empty_like_channels_last(features)
    f, t, o = _positions(features), _positions(target), _positions(out)
    for part in _chunks(f.shape[1]):
        d = f[:, part].float() - t[:, part].float()
        o[:, part] = scaled_mse_gradient(d, sums, eps).mul_(weight)
    return out


def style_gram_gradient(
    gram: torch.Tensor, target: torch.Tensor, weight: float, eps: float
) -> torch.Tensor:
    """Return ``dL/dG`` of ``weight * S(G - target)``, ``(batch, c, c)`` float32."""
    diff = gram - target
    return weight * scaled_mse_gradient(diff, DiffSums.of(diff), eps)


def style_feature_gradient(
    features: torch.Tensor, gram_gradient: torch.Tensor, n_positions: int
) -> torch.Tensor:
    """Return ``dL/dF = (D + D^T) F / N`` for (a tile of) a style layer.

    Parameters
    ----------
    features : torch.Tensor
        ``(batch, c, h, w)`` activations (all of the image, or one tile of it).
    gram_gradient : torch.Tensor
        ``D = dL/dG``, ``(batch, c, c)``, from the whole image's Gram matrix.
    n_positions : int
        ``N = H W`` of the whole image at this layer.

    Returns
    -------
    torch.Tensor
        ``(batch, c, h, w)`` in the features' dtype, channels-last; computed in float32.
    """
    # (F^T sym)^T = sym F, as sym is symmetric; computed on F^T, position chunk by chunk.
    sym = (gram_gradient + gram_gradient.transpose(1, 2)) / n_positions
    out = _empty_like_channels_last(features)
    f, o = _positions(features), _positions(out)
    for part in _chunks(f.shape[1]):
        o[:, part] = f[:, part].float() @ sym
    return out
