"""Style and content losses of the FakET neural style transfer, and their gradients.

Per image and layer the loss is the *scaled MSE* ``S(d) = sum(d^2) / (sum(|d|) + eps)``
of a difference ``d``: an MSE scaled so that its gradient has an L1 norm of about 1
(REFERENCE.md section 3). For the content layer ``d = F(x) - F(content)``; for a style
layer ``d = G(x) - G(style)`` with the Gram matrix ``G = F F^T / (H W)``.

Everything here runs in float32, whatever the precision of the features: Gram matrices,
sums and losses are reductions, and bf16 would lose them.

The gradients are written out (:func:`content_feature_gradient`,
:func:`style_feature_gradient`) instead of left to autograd, because they depend on the
features only through a few global sums (``sum |d|``, ``sum d^2``, the Gram matrix). So
a large image can be processed in tiles: one pass gathers the sums, a second pass
back-propagates each tile's exact share (see :mod:`faket.style.tiling`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def _positions_by_channels(features: torch.Tensor) -> torch.Tensor:
    """Return ``(batch, h * w, channels)`` float32: ``F^T``, a view for channels-last input."""
    b, c = features.shape[:2]
    return features.float().permute(0, 2, 3, 1).reshape(b, -1, c)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Return ``F F^T / (H W)`` per image, in float32.

    Parameters
    ----------
    features : torch.Tensor
        ``(batch, channels, h, w)`` activations, any float dtype.

    Returns
    -------
    torch.Tensor
        ``(batch, channels, channels)`` float32.
    """
    return gram_sum(features) / (features.shape[-2] * features.shape[-1])


def gram_sum(features: torch.Tensor) -> torch.Tensor:
    """Return the unnormalised ``F F^T`` per image in float32, for accumulating over tiles."""
    positions = _positions_by_channels(features)
    return positions.transpose(1, 2) @ positions


def _image_dims(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(1, x.ndim))


def scaled_mse(diff: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Return ``sum(d^2) / (sum(|d|) + eps)`` per image.

    Parameters
    ----------
    diff : torch.Tensor
        ``(batch, ...)`` differences.
    eps : float
        Guards the division when ``d`` is zero.

    Returns
    -------
    torch.Tensor
        ``(batch,)`` float32.
    """
    return DiffSums.of(diff).loss(eps)


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
        dims = _image_dims(d)
        # Norms reduce in one pass without temporaries, whatever the memory layout.
        return DiffSums(
            torch.linalg.vector_norm(d, 1, dim=dims), torch.linalg.vector_norm(d, 2, dim=dims) ** 2
        )

    def __add__(self, other: DiffSums) -> DiffSums:
        return DiffSums(self.abs_sum + other.abs_sum, self.sq_sum + other.sq_sum)

    def loss(self, eps: float = 1e-8) -> torch.Tensor:
        """Return the scaled MSE ``sq_sum / (abs_sum + eps)``, ``(batch,)``."""
        return self.sq_sum / (self.abs_sum + eps)


def scaled_mse_gradient(diff: torch.Tensor, sums: DiffSums, eps: float = 1e-8) -> torch.Tensor:
    """Return ``dS/dd`` at ``diff``, given the global sums of the whole ``d``.

    ``S = B / A`` with ``A = sum |d| + eps`` and ``B = sum d^2``, so
    ``dS/dd = 2 d / A - B sign(d) / A^2``.

    Parameters
    ----------
    diff : torch.Tensor
        ``(batch, ...)`` part of ``d`` (all of it, or one tile).
    sums : DiffSums
        Sums over the whole ``d`` (all tiles).
    eps : float
        As in :func:`scaled_mse`.

    Returns
    -------
    torch.Tensor
        Same shape and memory layout as ``diff``, float32.
    """
    d = diff.float()
    shape = (-1,) + (1,) * (d.ndim - 1)
    a = (sums.abs_sum + eps).reshape(shape)
    b = sums.sq_sum.reshape(shape)
    return torch.sign(d).mul_(-b / a.square()).addcmul_(d, 2 / a)


def content_feature_gradient(
    diff: torch.Tensor, sums: DiffSums, weight: float, eps: float
) -> torch.Tensor:
    """Return ``dL/dF`` of ``weight * S(F - target)`` for (a tile of) the content layer.

    Parameters
    ----------
    diff : torch.Tensor
        ``(batch, channels, h, w)`` float32 ``F - target``: the image's activations minus
        the content image's.
    sums : DiffSums
        Sums of ``F - target`` over the whole image.
    weight : float
        Content weight.
    eps : float
        Scaled-MSE guard.
    """
    return scaled_mse_gradient(diff, sums, eps).mul_(weight)


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
        ``(batch, c, h, w)`` float32.
    """
    sym = (gram_gradient + gram_gradient.transpose(1, 2)) / n_positions
    b, c, h, w = features.shape
    # (F^T sym)^T = sym F, as sym is symmetric; computed on F^T, a view for channels-last.
    return (_positions_by_channels(features) @ sym).reshape(b, h, w, c).permute(0, 3, 1, 2)
