"""Exact tiled gradients of the style-transfer loss, for detectors of any size.

A tile is a *core* (the pixels it is responsible for) plus a *halo* of context on each
side, clipped at the image border. Cores and halos are aligned to the pooling grids
(multiples of 16 image pixels do for every stage), so that the pooling grids of a tile
line up with the whole image's.

The loss depends on the image's features only through global sums (Gram matrices and
the content difference's sums, :mod:`faket.style.losses`). Pass 1 runs every tile
forward and adds its core's share to those sums; pass 2 runs every tile forward again,
computes ``dL/dF`` on its core from the global sums, back-propagates it and adds the
input gradient of the whole tile (core and halo) into the image's gradient. Each
feature position belongs to exactly one core, so the sum is the whole gradient.

*Stages* make this cheaper (:class:`Stage`, :func:`staged_loss_gradient`). The backbone
is cut at block boundaries; each stage runs on the pooled output of the one before,
which is kept as a whole map (the input of block 3 of a VGG is 32 bytes per image
pixel in float32, against about 3 KB per pixel for the whole network's backward pass).
The first blocks hold most of the memory (full-resolution maps of 64 channels) and
little of the work; the deep blocks hold most of the work and little memory. So the
first stage runs in tiles, twice, with the small halo its own receptive field needs,
and a deep stage whose whole map fits in memory runs once, its graph kept for the
backward sweep, with no halo at all. The backward sweep goes through the stages in
reverse, each back-propagating its layers' ``dL/dF`` plus the gradient of its output
map into the gradient of its input map.

Memory: a tiled run of a large image gives the heap's free pages back to the system
between stages and between the style's tiles (:func:`faket._runtime.release_free_memory`).
faket's commands keep freed blocks for reuse, and tiles of several sizes, with small
blocks made between their large maps, fragment the heap: without it the resident memory
reached 2.1 times the live bytes (1.7 with it).

How tiling changes the result: a feature in a core is computed from the tile's pixels
only. When each stage's halo is at least its receptive-field radius
(:func:`stage_halo`; 58 px in all for VGG-16 relu5_1, 70 px for VGG-19 relu5_1),
every core feature sees exactly the values it sees in the whole image and the tiled
gradient equals the untiled one up to float rounding. A smaller halo makes features
near tile edges see the padding instead of their neighbours, which changes the
gradient there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from faket._runtime import release_free_memory
from faket.style.backbones import VGGFeatures
from faket.style.losses import (
    CHUNK_POSITIONS,
    DiffSums,
    content_feature_gradient,
    gram_sum,
    style_feature_gradient,
    style_gram_gradient,
)

ALIGN = 16
"""Tile cores and halos in image pixels are multiples of this (2 ** number of poolings)."""

Autocast = Callable[[], AbstractContextManager[object]]

_TRIM_PIXELS = 512 * 512
"""Images from this many pixels up give the heap's free pages back between tiled stages
(below, the heap holds little and trimming costs more than it saves)."""


@dataclass(frozen=True)
class Tile:
    """One tile: its core and its extent with halo, in map pixels (half-open ranges)."""

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

    def global_core_at(self, level: int) -> tuple[slice, slice]:
        """Return the core's rows and columns inside the whole map at ``level``."""
        k = level
        return (
            slice(self.core_y[0] >> k, self.core_y[1] >> k),
            slice(self.core_x[0] >> k, self.core_x[1] >> k),
        )

    def take(self, image: torch.Tensor) -> torch.Tensor:
        """Return the tile's extent of ``(..., ny, nx)`` images."""
        return image[..., self.ext_y[0] : self.ext_y[1], self.ext_x[0] : self.ext_x[1]]

    @property
    def pixels(self) -> int:
        """Pixels of the tile's extent."""
        return (self.ext_y[1] - self.ext_y[0]) * (self.ext_x[1] - self.ext_x[0])


def _ranges(n: int, tile: int) -> list[tuple[int, int]]:
    return [(start, min(n, start + tile)) for start in range(0, n, tile)]


def tile_grid(
    ny: int, nx: int, tile: int | None, halo: int = 96, *, align: int = ALIGN
) -> list[Tile]:
    """Split an ``(ny, nx)`` map into tiles with cores of ``tile`` pixels and a halo.

    Parameters
    ----------
    ny, nx : int
        Map shape in pixels.
    tile : int or None
        Core side in pixels, a multiple of ``align``; None (or a tile at least the map)
        gives one tile, the whole map.
    halo : int
        Context on each side of a core, in pixels, a multiple of ``align``.
    align : int
        The pooling grid the cores and halos must follow (16 for the whole VGG).

    Returns
    -------
    list of Tile
        Row-major; the cores partition the map.
    """
    if tile is None or (tile >= ny and tile >= nx):
        return [Tile((0, ny), (0, nx), (0, ny), (0, nx))]
    if tile <= 0 or tile % align or halo < 0 or halo % align:
        raise ValueError(
            f"tile ({tile}) must be a positive multiple of {align} and halo ({halo}) a "
            f"non-negative multiple of {align}, so that pooling grids line up"
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


def stage_pools(blocks: Sequence[int], first: int, stop: int, last_conv: int) -> int:
    """Return the poolings inside blocks ``first .. stop - 1``, the one after the stage too.

    A stage that ends before ``last_conv`` (the deepest convolution used) pools its
    output for the next stage; the stage holding ``last_conv`` stops there.
    """
    end = sum(blocks[:stop])
    return stop - first if last_conv >= end else stop - first - 1


def stage_halo(blocks: Sequence[int], first: int, stop: int, last_conv: int) -> int:
    """Return the halo, in image pixels, that makes tiles of a stage exact.

    Each 3 x 3 convolution at pooling level ``l`` widens the receptive field by ``2**l``
    image pixels on each side; poolings add nothing when cores follow their grid. The
    sum is rounded up to the stage's pooling grid, ``2**(first + poolings)`` pixels.

    Parameters
    ----------
    blocks : sequence of int
        Convolutions per block of the backbone.
    first, stop : int
        The stage's blocks, ``first .. stop - 1``.
    last_conv : int
        Index of the deepest convolution the loss uses.
    """
    radius, i = 0, 0
    for b, n in enumerate(blocks):
        for _ in range(n):
            if first <= b < stop and i <= last_conv:
                radius += 2**b
            i += 1
    grid = 2 ** (first + stage_pools(blocks, first, stop, last_conv))
    return -(-radius // grid) * grid


@dataclass(frozen=True)
class Stage:
    """Blocks ``first_block .. stop_block - 1`` of the backbone, in tiles of their input.

    The input of block ``b > 0`` is the 2 x 2 max pooling of block ``b - 1``'s last
    activation, so a stage's input map is ``2**first_block`` times smaller per side
    than the image; its tiles are in that map's pixels. A stage of one tile (the whole
    map) runs once and keeps its graph until the backward sweep; a tiled stage runs
    twice (the global sums, then the gradient).
    """

    first_block: int
    stop_block: int
    tiles: tuple[Tile, ...]

    @property
    def whole(self) -> bool:
        """Whether the stage runs as one piece (one pass, graph kept)."""
        return len(self.tiles) == 1


@dataclass(frozen=True)
class TilePlan:
    """How one tilt's transfer is cut into stages and tiles; sizes in image pixels.

    Attributes
    ----------
    splits : tuple of int
        First block (0-based) of each stage after the first: ``(2,)`` runs blocks 1-2,
        then blocks 3 to the deepest layer; ``()`` runs the whole network as one stage.
    tiles : tuple of (int or None)
        Core of each stage's tiles, in image pixels (multiples of 16); None: the stage's
        whole map in one piece (one pass, its graph kept).
    halos : tuple of int
        Context of each stage's tiles, in image pixels; :func:`stage_halo` is exact.
    style_tile : int or None
        Core of the style image's tiles (the whole network, forward only); None: whole.
    style_halo : int
        Their context, in image pixels.
    cache_content : bool
        Keep the content features of a tiled first stage between its two passes.
    """

    splits: tuple[int, ...] = ()
    tiles: tuple[int | None, ...] = (None,)
    halos: tuple[int, ...] = (0,)
    style_tile: int | None = None
    style_halo: int = 0
    cache_content: bool = False

    def __post_init__(self) -> None:
        if not len(self.tiles) == len(self.halos) == len(self.splits) + 1:
            raise ValueError("a TilePlan needs one tile and one halo per stage")

    @staticmethod
    def single(tile: int | None, halo: int) -> TilePlan:
        """Return the plan that runs the whole network in tiles of ``tile`` (or whole)."""
        return TilePlan((), (tile,), (halo,), tile, halo)

    @property
    def is_whole(self) -> bool:
        """Whether the image runs as one piece (the untiled transfer)."""
        return self.tiles[0] is None and len(self.tiles) == 1

    def stage_bounds(self, stop: int) -> list[tuple[int, int]]:
        """Return the blocks ``(first, stop)`` of each stage, the last ending at ``stop``."""
        edges = [0, *self.splits, stop]
        return list(zip(edges[:-1], edges[1:], strict=True))

    def stages(self, ny: int, nx: int, blocks: Sequence[int], last_conv: int) -> list[Stage]:
        """Return the stages of an ``(ny, nx)`` image for :func:`staged_loss_gradient`.

        Parameters
        ----------
        ny, nx : int
            Image shape in pixels.
        blocks : sequence of int
            Convolutions per block of the backbone.
        last_conv : int
            Index of the deepest convolution the loss uses.
        """
        stop = _block_of_conv(blocks, last_conv) + 1
        out = []
        for (first, end), tile, halo in zip(
            self.stage_bounds(stop), self.tiles, self.halos, strict=True
        ):
            grid = 2 ** stage_pools(blocks, first, end, last_conv)
            if first >= end or (tile is not None and (tile % ALIGN or halo % (grid << first))):
                raise ValueError(
                    f"tile ({tile}) must be a multiple of {ALIGN} and halo ({halo}) of "
                    f"{grid << first} for blocks {first + 1}-{end}, so that pooling grids line up"
                )
            core = None if tile is None else tile >> first
            tiles = tile_grid(ny >> first, nx >> first, core, halo >> first, align=grid)
            out.append(Stage(first, end, tuple(tiles)))
        return out


def _block_of_conv(blocks: Sequence[int], conv: int) -> int:
    """Return the block (0-based) of convolution ``conv``."""
    total = 0
    for b, n in enumerate(blocks):
        total += n
        if conv < total:
            return b
    raise ValueError(f"the backbone has no convolution {conv}")


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """Return ``(batch, 3, h, w)`` channels-last images from grey ``(batch, 1, h, w)`` ones."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous(memory_format=torch.channels_last)


def _run_blocks(
    model: VGGFeatures, x: torch.Tensor, stage: Stage, last_conv: int, wanted: set[str]
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Run a stage's blocks on ``x``; return the wanted activations and the pooled output.

    The same operations as :meth:`VGGFeatures.forward`; the output is None for the stage
    that holds ``last_conv``.
    """
    out: dict[str, torch.Tensor] = {}
    i = sum(model.blocks[: stage.first_block])
    for b in range(stage.first_block, stage.stop_block):
        if b > stage.first_block:
            x = F.max_pool2d(x, 2)
        for _ in range(model.blocks[b]):
            if i == 0:
                x = F.pad(x, (1, 1, 1, 1), mode="replicate")
            x = F.relu(model.conv(i)(x), inplace=True)  # conv keeps its input, not output
            if model.names[i] in wanted:
                out[model.names[i]] = x
            if i == last_conv:
                return out, None
            i += 1
    return out, F.max_pool2d(x, 2)


def _core(features: torch.Tensor, tile: Tile, layer: str, first_block: int = 0) -> torch.Tensor:
    rows, cols = tile.core_at(level_of(layer) - first_block)
    return features[..., rows, cols]


def style_gram_targets(
    model: VGGFeatures,
    style: torch.Tensor,
    layers: Iterable[str],
    tiles: list[Tile],
    autocast: Autocast,
) -> dict[str, torch.Tensor]:
    """Return the Gram matrix of each style layer over the whole image, tile by tile.

    Parameters
    ----------
    model : VGGFeatures
        The backbone.
    style : torch.Tensor
        ``(batch, 3, ny, nx)`` style images in [0, 1] (or ``(batch, 1, ny, nx)`` grey
        ones, copied into three channels tile by tile).
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
    # Accumulators first: blocks made between a tile's large maps fragment the heap.
    sums = _gram_accumulators(model, layers, style)
    counts = dict.fromkeys(layers, 0)
    trim = len(tiles) > 1 and style.shape[-2] * style.shape[-1] >= _TRIM_PIXELS
    with torch.no_grad():
        for tile in tiles:
            if trim:
                release_free_memory()
            with autocast():
                feats = model(_rgb(tile.take(style)), layers)
            for layer in layers:
                core = _core(feats.pop(layer), tile, layer)
                sums[layer].add_(_gram(core))
                counts[layer] += core.shape[-2] * core.shape[-1]
            del feats
    if trim:
        release_free_memory()
    return {layer: sums[layer] / counts[layer] for layer in layers}


def _gram_accumulators(
    model: VGGFeatures, layers: Iterable[str], like: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Return zero ``(batch, c, c)`` float32 Gram sums of ``layers``, on ``like``'s device."""
    sums = {}
    for n in layers:
        c = model.conv(model.names.index(n)).out_channels
        sums[n] = torch.zeros((like.shape[0], c, c), dtype=torch.float32, device=like.device)
    return sums


@dataclass(frozen=True)
class LossSpec:
    """Layers and weights of the loss (style weights already normalised and scaled)."""

    content_layer: str
    content_weight: float
    style_weights: dict[str, float]
    eps: float


@dataclass
class _Stats:
    """Global sums of the loss, added up over tiles and stages."""

    content: DiffSums | None = None
    grams: dict[str, torch.Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add_content(self, sums: DiffSums) -> None:
        self.content = sums if self.content is None else self.content + sums

    def add_gram(self, layer: str, core: torch.Tensor) -> None:
        self.grams[layer].add_(_gram(core.detach()))
        self.counts[layer] = self.counts.get(layer, 0) + core.shape[-2] * core.shape[-1]


def _check_stages(model: VGGFeatures, stages: Sequence[Stage], last_conv: int, content: str):
    n = len(model.blocks)
    bounds = [(s.first_block, s.stop_block) for s in stages]
    contiguous = all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    last_block = level_of(model.names[last_conv])
    if (
        not stages
        or bounds[0][0] != 0
        or not contiguous
        or any(b0 >= b1 for b0, b1 in bounds)
        or not bounds[-1][0] <= last_block < bounds[-1][1] <= n
    ):
        raise ValueError(
            f"stages {bounds} must cover the blocks from 0 to the deepest layer's "
            f"({last_block}) without gaps, one stage ending there"
        )
    if level_of(content) >= stages[0].stop_block:
        raise ValueError(f"the content layer {content} must lie in the first stage {bounds[0]}")


def staged_loss_gradient(
    model: VGGFeatures,
    image: torch.Tensor,
    content: torch.Tensor,
    style_grams: dict[str, torch.Tensor],
    spec: LossSpec,
    stages: Sequence[Stage],
    autocast: Autocast,
    *,
    cache_content: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the gradient of the loss with respect to ``image``, and the loss per image.

    Parameters
    ----------
    model : VGGFeatures
        The backbone.
    image : torch.Tensor
        ``(batch, 3, ny, nx)`` image in [0, 1], the one optimised.
    content : torch.Tensor
        ``(batch, 3, ny, nx)`` or grey ``(batch, 1, ny, nx)`` content image in [0, 1].
    style_grams : dict of str to torch.Tensor
        Style Gram targets, from :func:`style_gram_targets`.
    spec : LossSpec
        Layers and weights.
    stages : sequence of Stage
        The backbone's blocks from 0 to the deepest layer of the loss, in order, each
        with its tiles (:func:`tile_grid` of its input map); the content layer lies in
        the first stage.
    autocast : callable
        Returns the precision context the backbone runs in.
    cache_content : bool
        Keep the content image's features at the content layer from the first pass of
        a tiled first stage (a whole feature map) instead of computing them again.

    Returns
    -------
    gradient : torch.Tensor
        ``(batch, 3, ny, nx)`` float32.
    loss : torch.Tensor
        ``(batch,)`` float32, the loss at ``image``.
    """
    name_c = spec.content_layer
    layers = list(dict.fromkeys([name_c, *spec.style_weights]))
    last_conv = max(model.names.index(n) for n in layers)
    _check_stages(model, stages, last_conv, name_c)
    wanted = [{n for n in layers if s.first_block <= level_of(n) < s.stop_block} for s in stages]
    stats = _Stats(grams=_gram_accumulators(model, spec.style_weights, image))
    trim = any(not stage.whole for stage in stages) and image[0, 0].numel() >= _TRIM_PIXELS
    inputs: list[torch.Tensor | None] = []  # the input map of each stage
    kept: dict[int, tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]] = {}
    content_feats: dict[int, torch.Tensor] = {}  # whole stage 0 or the cache, by tile
    cached: torch.Tensor | None = None

    def content_of(tile: Tile) -> torch.Tensor:
        with torch.no_grad(), autocast():
            return model(_rgb(tile.take(content)), [name_c])[name_c]

    def gather(s: int, tile: Tile, feats: dict[str, torch.Tensor], target: torch.Tensor | None):
        first = stages[s].first_block
        if target is not None:
            core = _core(feats[name_c], tile, name_c).detach()
            stats.add_content(_diff_sums(core, _core(target, tile, name_c)))
        for n in spec.style_weights:
            if n in feats:
                stats.add_gram(n, _core(feats[n], tile, n, first))

    # Forward sweep: the global sums, and each stage's output map for the next stage.
    x = image.detach()
    for s, stage in enumerate(stages):
        if trim:  # tiles fragment the heap: give its free pages back between stages
            release_free_memory()
        inputs.append(x)
        if stage.whole:
            leaf = x.detach().requires_grad_(True)
            with autocast():
                feats, out = _run_blocks(model, leaf, stage, last_conv, wanted[s])
            target = content_of(stage.tiles[0]) if s == 0 else None
            gather(s, stage.tiles[0], feats, target)
            if target is not None:
                content_feats[0] = target
                del target
            kept[s] = (leaf, feats, out)
            next_x = None if out is None else out.detach()
        else:
            next_x = None
            pools = stage.stop_block - stage.first_block
            for tile in stage.tiles:
                with torch.no_grad(), autocast():
                    feats, out = _run_blocks(model, tile.take(x), stage, last_conv, wanted[s])
                target = content_of(tile) if s == 0 else None
                gather(s, tile, feats, target)
                if target is not None and cache_content:
                    if cached is None:
                        shape = (*target.shape[:2], *_level_shape(x, level_of(name_c)))
                        cached = _empty_like_map(target, shape)
                    _window(cached, tile.global_core_at(level_of(name_c))).copy_(
                        _core(target, tile, name_c)
                    )
                del feats, target
                if out is not None:
                    if next_x is None:
                        shape = (*out.shape[:2], *_level_shape(x, pools))
                        next_x = _empty_like_map(out, shape)
                    _window(next_x, tile.global_core_at(pools)).copy_(
                        _window(out, tile.core_at(pools))
                    )
                del out
        x = next_x  # type: ignore[assignment]
    del x

    # The gradients of the loss with respect to the Gram matrices and the content sums.
    assert stats.content is not None
    gram_grads = {
        n: style_gram_gradient(stats.grams[n] / stats.counts[n], style_grams[n], w, spec.eps)
        for n, w in spec.style_weights.items()
    }
    loss = spec.content_weight * stats.content.loss(spec.eps)
    for n, w in spec.style_weights.items():
        diff = stats.grams[n] / stats.counts[n] - style_grams[n]
        loss = loss + w * DiffSums.of(diff).loss(spec.eps)

    def inject(
        s: int, tile: Tile, feats: dict[str, torch.Tensor], targets: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Return the core features of a tile and their ``dL/dF``, content layer first.

        ``targets`` holds the content features of the core in the first stage; they are
        taken from it and freed before the style gradients are made.
        """
        first = stages[s].first_block
        cores = {n: _core(feats[n], tile, n, first) for n in feats}
        grads: dict[str, torch.Tensor] = {}
        if targets:
            sums, weight = stats.content, spec.content_weight
            assert sums is not None
            grads[name_c] = _by_slab(
                lambda f, t: content_feature_gradient(f, t, sums, weight, spec.eps),
                cores[name_c].detach(),
                targets.pop(),
            )
        for n in spec.style_weights:
            if n in cores:
                grad = _by_slab(
                    lambda f, n=n: style_feature_gradient(f, gram_grads[n], stats.counts[n]),
                    cores[n].detach(),
                )
                grads[n] = grads[n] + grad if n in grads else grad
        names = list(grads)
        return [cores[n] for n in names], [grads.pop(n) for n in names]

    # Backward sweep, deepest stage first: dL/dF of each stage's layers plus the gradient
    # of its output map, back-propagated into the gradient of its input map.
    grad_out: torch.Tensor | None = None
    for s in reversed(range(len(stages))):
        if trim:
            release_free_memory()
        stage = stages[s]
        pools = stage.stop_block - stage.first_block
        if stage.whole:
            leaf, feats, out = kept.pop(s)
            tile = stage.tiles[0]
            targets = [_core(content_feats.pop(0), tile, name_c)] if s == 0 else []
            tensors, grads = inject(s, tile, feats, targets)
            del feats
            if out is not None and grad_out is not None:
                tensors.append(out)
                grads.append(grad_out.to(out.dtype))
            torch.autograd.backward(tensors, grads, inputs=[leaf])
            del tensors, grads, out
            assert leaf.grad is not None
            grad_in = leaf.grad if leaf.grad.dtype == torch.float32 else leaf.grad.float()
        else:
            x_in = inputs[s]
            assert x_in is not None
            grad_in = torch.zeros_like(x_in, dtype=torch.float32)
            for tile in stage.tiles:
                targets = []
                if s == 0 and cached is not None:
                    targets = [_window(cached, tile.global_core_at(level_of(name_c)))]
                elif s == 0:  # before the graph, as above
                    targets = [_core(content_of(tile), tile, name_c)]
                part = tile.take(x_in).detach().requires_grad_(True)
                with autocast():
                    feats, out = _run_blocks(model, part, stage, last_conv, wanted[s])
                tensors, grads = inject(s, tile, feats, targets)
                del feats
                if out is not None and grad_out is not None:
                    tensors.append(_window(out, tile.core_at(pools)))
                    grads.append(_window(grad_out, tile.global_core_at(pools)).to(out.dtype))
                torch.autograd.backward(tensors, grads, inputs=[part])
                del tensors, grads, out
                assert part.grad is not None
                tile.take(grad_in).add_(part.grad)
            del x_in
        inputs[s] = None  # free the input map
        grad_out = grad_in
        del grad_in
    assert grad_out is not None
    return grad_out, loss


def _slabs(x: torch.Tensor) -> list[slice]:
    """Return row ranges of a ``(..., h, w)`` map, to read it without copying it whole.

    One range for a contiguous channels-last map (its positions are a view); else slabs
    of at most :data:`CHUNK_POSITIONS` positions (the core of a tile is a strided view,
    and reading it whole would copy it).
    """
    h, w = x.shape[-2:]
    if h * w == 0 or x.is_contiguous(memory_format=torch.channels_last):
        return [slice(0, h)]
    rows = max(1, CHUNK_POSITIONS // max(1, w))
    return [slice(r, min(h, r + rows)) for r in range(0, h, rows)]


def _gram(features: torch.Tensor) -> torch.Tensor:
    """Return :func:`gram_sum` of a map, slab by slab."""
    slabs = _slabs(features)
    total = gram_sum(features[..., slabs[0], :])
    for rows in slabs[1:]:
        total.add_(gram_sum(features[..., rows, :]))
    return total


def _diff_sums(features: torch.Tensor, target: torch.Tensor) -> DiffSums:
    """Return :meth:`DiffSums.between` two maps, slab by slab."""
    slabs = _slabs(features)
    total = DiffSums.between(features[..., slabs[0], :], target[..., slabs[0], :])
    for rows in slabs[1:]:
        total = total + DiffSums.between(features[..., rows, :], target[..., rows, :])
    return total


def _by_slab(gradient: Callable[..., torch.Tensor], *maps: torch.Tensor) -> torch.Tensor:
    """Return ``gradient(*maps)`` computed slab by slab into one channels-last map."""
    slabs = _slabs(maps[0])
    if len(slabs) == 1:
        return gradient(*maps)
    out = torch.empty_like(maps[0], memory_format=torch.channels_last)
    for rows in slabs:
        out[..., rows, :] = gradient(*(m[..., rows, :] for m in maps))
    return out


def _window(x: torch.Tensor, rows_cols: tuple[slice, slice]) -> torch.Tensor:
    """Return ``x[..., rows, cols]``."""
    rows, cols = rows_cols
    return x[..., rows, cols]


def _empty_like_map(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Return an uninitialised channels-last map of ``shape`` with ``x``'s dtype and device."""
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)


def _level_shape(x: torch.Tensor, level: int) -> tuple[int, int]:
    """Return the spatial shape of ``x``'s map after ``level`` 2 x 2 poolings."""
    return x.shape[-2] >> level, x.shape[-1] >> level


def loss_gradient(
    model: VGGFeatures,
    image: torch.Tensor,
    content: torch.Tensor,
    style_grams: dict[str, torch.Tensor],
    spec: LossSpec,
    tiles: list[Tile],
    autocast: Autocast,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the loss gradient with the whole network run in ``tiles`` of the image.

    :func:`staged_loss_gradient` with a single stage: one tile runs a single forward
    and backward pass; more tiles run two passes.

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
        From :func:`tile_grid`.
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
    stop = max(level_of(n) for n in layers) + 1
    stages = [Stage(0, stop, tuple(tiles))]
    return staged_loss_gradient(model, image, content, style_grams, spec, stages, autocast)
