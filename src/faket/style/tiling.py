"""Exact tiled gradients of the style-transfer loss, for detectors of any size.

A tile is a *core* (the pixels it is responsible for) plus a *halo* of context on each
side, clipped at the image border. Core and halo sizes are multiples of 16, so that
pooling grids of all five VGG blocks line up with the whole image's.

The loss depends on the image's features only through global sums (Gram matrices and
the content difference's sums, :mod:`faket.style.losses`). Pass 1 runs every tile
forward and adds its core's share to those sums; pass 2 runs every tile forward again,
computes ``dL/dF`` on its core from the global sums, back-propagates it and adds the
input gradient of the whole tile (core and halo) into the image's gradient. Each
feature position belongs to exactly one core, so the sum is the whole gradient.

How tiling changes the result: a feature in a core is computed from the tile's pixels
only. When the halo is at least the receptive-field radius of the deepest layer
(66 px for VGG-16 relu5_1, 78 px for VGG-19 relu5_1), every core feature sees exactly
the pixels it sees in the whole image and the tiled gradient equals the untiled one up
to float rounding. A smaller halo makes features near tile edges see the padding
instead of their neighbours, which changes the gradient there; the default halo is 96.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from faket.style.backbones import VGGFeatures
from faket.style.losses import (
    DiffSums,
    content_feature_gradient,
    gram_sum,
    style_feature_gradient,
    style_gram_gradient,
)

ALIGN = 16
"""Tile cores and halos are multiples of this (2 ** (number of pooling steps))."""


@dataclass(frozen=True)
class Tile:
    """One tile: its core and its extent with halo, in image pixels (half-open ranges)."""

    core_y: tuple[int, int]
    core_x: tuple[int, int]
    ext_y: tuple[int, int]
    ext_x: tuple[int, int]

    def core_at(self, level: int) -> tuple[slice, slice]:
        """Return the core's rows and columns inside the tile's feature map at ``level``."""
        k = level
        y0, y1 = self.core_y[0] - self.ext_y[0], self.core_y[1] - self.ext_y[0]
        x0, x1 = self.core_x[0] - self.ext_x[0], self.core_x[1] - self.ext_x[0]
        return slice(y0 >> k, y1 >> k), slice(x0 >> k, x1 >> k)

    def take(self, image: torch.Tensor) -> torch.Tensor:
        """Return the tile's extent of ``(..., ny, nx)`` images."""
        return image[..., self.ext_y[0] : self.ext_y[1], self.ext_x[0] : self.ext_x[1]]


def _ranges(n: int, tile: int) -> list[tuple[int, int]]:
    return [(start, min(n, start + tile)) for start in range(0, n, tile)]


def tile_grid(ny: int, nx: int, tile: int | None, halo: int = 96) -> list[Tile]:
    """Split an ``(ny, nx)`` image into tiles with cores of ``tile`` pixels and a halo.

    Parameters
    ----------
    ny, nx : int
        Image shape in pixels.
    tile : int or None
        Core side in pixels, a multiple of 16; None (or a tile at least the image) gives
        one tile, the whole image.
    halo : int
        Context on each side of a core, in pixels, a multiple of 16.

    Returns
    -------
    list of Tile
        Row-major; the cores partition the image.
    """
    if tile is None or (tile >= ny and tile >= nx):
        return [Tile((0, ny), (0, nx), (0, ny), (0, nx))]
    if tile <= 0 or tile % ALIGN or halo < 0 or halo % ALIGN:
        raise ValueError(
            f"tile ({tile}) must be a positive multiple of {ALIGN} and halo ({halo}) a "
            f"non-negative multiple of {ALIGN}, so that pooling grids line up"
        )
    tiles = []
    for y0, y1 in _ranges(ny, tile):
        for x0, x1 in _ranges(nx, tile):
            ext_y = (max(0, y0 - halo), min(ny, y1 + halo))
            ext_x = (max(0, x0 - halo), min(nx, x1 + halo))
            tiles.append(Tile((y0, y1), (x0, x1), ext_y, ext_x))
    return tiles


def level_of(layer: str) -> int:
    """Return the number of poolings before ``layer`` (``relu3_1`` -> 2)."""
    return int(layer[4 : layer.index("_")]) - 1


def _core(features: torch.Tensor, tile: Tile, layer: str) -> torch.Tensor:
    rows, cols = tile.core_at(level_of(layer))
    return features[..., rows, cols]


def style_gram_targets(
    model: VGGFeatures,
    style: torch.Tensor,
    layers: Iterable[str],
    tiles: list[Tile],
    autocast: Callable[[], AbstractContextManager[object]],
) -> dict[str, torch.Tensor]:
    """Return the Gram matrix of each style layer over the whole image, tile by tile.

    Parameters
    ----------
    model : VGGFeatures
        The backbone.
    style : torch.Tensor
        ``(batch, 3, ny, nx)`` style images in [0, 1].
    layers : iterable of str
        Style layers.
    tiles : list of Tile
        From :func:`tile_grid` for the style images' shape.
    autocast : callable
        Returns the precision context the backbone runs in.

    Returns
    -------
    dict of str to torch.Tensor
        Layer -> ``(batch, c, c)`` float32 ``F F^T / (H W)``.
    """
    layers = list(layers)
    sums: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys(layers, 0)
    with torch.no_grad():
        for tile in tiles:
            with autocast():
                feats = model(tile.take(style), layers)
            for layer in layers:
                core = _core(feats[layer], tile, layer)
                part = gram_sum(core)
                sums[layer] = sums[layer] + part if layer in sums else part
                counts[layer] += core.shape[-2] * core.shape[-1]
    return {layer: sums[layer] / counts[layer] for layer in layers}


@dataclass(frozen=True)
class LossSpec:
    """Layers and weights of the loss (style weights already normalised and scaled)."""

    content_layer: str
    content_weight: float
    style_weights: dict[str, float]
    eps: float


@dataclass
class _Stats:
    content: DiffSums | None = None
    grams: dict[str, torch.Tensor] | None = None
    counts: dict[str, int] | None = None

    def add(self, content: DiffSums, grams: dict[str, torch.Tensor], counts: dict[str, int]):
        if self.content is None or self.grams is None or self.counts is None:
            self.content, self.grams, self.counts = content, grams, counts
            return
        self.content = self.content + content
        self.grams = {k: self.grams[k] + grams[k] for k in grams}
        self.counts = {k: self.counts[k] + counts[k] for k in counts}


def _core_stats(
    feats: dict[str, torch.Tensor],
    content_feat: dict[str, torch.Tensor],
    tile: Tile,
    spec: LossSpec,
) -> tuple[DiffSums, dict[str, torch.Tensor], dict[str, int]]:
    """Return one tile core's share of the global sums (float32)."""
    name = spec.content_layer
    content = DiffSums.between(
        _core(feats[name], tile, name).detach(), _core(content_feat[name], tile, name)
    )
    cores = {n: _core(feats[n], tile, n).detach() for n in spec.style_weights}
    grams = {n: gram_sum(core) for n, core in cores.items()}
    counts = {n: core.shape[-2] * core.shape[-1] for n, core in cores.items()}
    return content, grams, counts


def loss_gradient(
    model: VGGFeatures,
    image: torch.Tensor,
    content: torch.Tensor,
    style_grams: dict[str, torch.Tensor],
    spec: LossSpec,
    tiles: list[Tile],
    autocast: Callable[[], AbstractContextManager[object]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the gradient of the loss with respect to ``image``, and the loss per image.

    Parameters
    ----------
    model : VGGFeatures
        The backbone.
    image, content : torch.Tensor
        ``(batch, 3, ny, nx)`` images in [0, 1]: the one optimised and the content image.
    style_grams : dict of str to torch.Tensor
        Style Gram targets, from :func:`style_gram_targets`.
    spec : LossSpec
        Layers and weights.
    tiles : list of Tile
        From :func:`tile_grid`; one tile runs a single forward and backward pass.
    autocast : callable
        Returns the precision context the backbone runs in.

    Returns
    -------
    gradient : torch.Tensor
        ``(batch, 3, ny, nx)`` float32.
    loss : torch.Tensor
        ``(batch,)`` float32, the loss at ``image``.
    """
    layers = [spec.content_layer, *spec.style_weights]
    stats = _Stats()
    if len(tiles) > 1:  # pass 1: the global sums
        with torch.no_grad():
            for tile in tiles:
                with autocast():
                    feats = model(tile.take(image), layers)
                    content_feat = model(tile.take(content), [spec.content_layer])
                stats.add(*_core_stats(feats, content_feat, tile, spec))
    gradient = image.new_zeros(image.shape, dtype=torch.float32) if len(tiles) > 1 else None
    gram_grads: dict[str, torch.Tensor] = {}
    for tile in tiles:  # pass 2 (the only pass for one tile)
        part = tile.take(image).detach().requires_grad_(True)
        with autocast():
            feats = model(part, layers)
            with torch.no_grad():
                content_feat = model(tile.take(content), [spec.content_layer])
        cores = {name: _core(feats[name], tile, name) for name in layers}
        if len(tiles) == 1:
            stats.add(*_core_stats(feats, content_feat, tile, spec))
        assert stats.content is not None and stats.grams is not None and stats.counts is not None
        if not gram_grads:
            for name, weight in spec.style_weights.items():
                gram = stats.grams[name] / stats.counts[name]
                gram_grads[name] = style_gram_gradient(gram, style_grams[name], weight, spec.eps)
        name = spec.content_layer
        grads = {
            name: content_feature_gradient(
                cores[name].detach(),
                _core(content_feat[name], tile, name),
                stats.content,
                spec.content_weight,
                spec.eps,
            )
        }
        del content_feat
        for name in spec.style_weights:
            grad = style_feature_gradient(
                cores[name].detach(), gram_grads[name], stats.counts[name]
            )
            grads[name] = grads[name] + grad if name in grads else grad
        # Inject dL/dF at each layer and back-propagate to the tile's pixels.
        names = list(grads)
        torch.autograd.backward(
            [cores[name] for name in names],
            [grads.pop(name) for name in names],
            inputs=[part],
        )
        assert part.grad is not None
        if gradient is None:
            gradient = part.grad.float()
        else:
            tile.take(gradient).add_(part.grad)
    assert stats.content is not None and gradient is not None
    loss = spec.content_weight * stats.content.loss(spec.eps)
    for name, weight in spec.style_weights.items():
        assert stats.grams is not None and stats.counts is not None
        diff = stats.grams[name] / stats.counts[name] - style_grams[name]
        loss = loss + weight * DiffSums.of(diff).loss(spec.eps)
    return gradient, loss
