"""Memory of the style transfer: estimate one tilt's peak, choose tiles to fit a budget.

:func:`plan_bytes` estimates the peak working memory of one tilt under a
:class:`~faket.style.tiling.TilePlan` (an upper bound of the measured peak RSS), and
:func:`plan_tiles` / :func:`transfer_plan` choose the fastest plan that fits a budget:
whole tilts when they fit, else the first blocks in tiles and the deeper blocks whole
or in tiles of their own (:mod:`faket.style.tiling`). :func:`auto_tile` names the
first stage's tile; :func:`batch_plan` the plan and the tilts per batch of a series.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from faket._precision import PRECISIONS
from faket.style.backbones import _WIDTHS as VGG_WIDTHS
from faket.style.backbones import VGG16_BLOCKS, layer_names
from faket.style.tiling import ALIGN, TilePlan, level_of, stage_halo
from faket.style.transfer import StyleSettings

DEFAULT_MEMORY_BUDGET_BYTES = 2 * 2**30
"""Default working-memory budget of one batch of tilts (2 GiB)."""

_ELEMENT_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
"""Bytes of one feature value at each precision (autocast keeps the features in it)."""

_FIXED_BYTES_PER_PIXEL = 40
"""Whole-tilt float32 buffers besides the network's: the normalised initial and content
tilts, the 3-channel image and its gradient, the result."""

_HEAP_FACTOR = {"whole": 1.4, "tiled": 2.1}
"""Peak resident memory over the estimated live bytes of the network's passes, for an
untiled and a tiled transfer (faket's commands keep freed blocks in the heap, which
tiles fragment; see :mod:`faket.style.tiling`). Calibrated on the measured peak RSS of
16 plans at 1024^2 and 2048^2: at most 0.97 of the estimate, 0.54-0.97 (whole: 0.79-0.89),
varying by about 10 % from run to run (``python benchmarks/style.py --memory``)."""

_RUNTIME_BYTES = 64 * 2**20
"""Memory the first transfer of a process adds besides tensors (oneDNN's kernels and
scratch space, autograd's state): measured 69 MB."""

_BACKWARD_COST = 1.2
"""Time of a backward pass relative to the forward pass of the same blocks (measured
1.05-1.15 for blocks 2-5 at 1024^2), for choosing between plans."""

_STAGE_COST = 0.01
"""Cost of each stage boundary relative to the whole transfer, for choosing between plans."""

_MIN_AUTO_TILE = 64
"""Smallest tile core the planner considers (with the deep blocks' 64 px halo, a 64 px
core already computes nine times its own pixels)."""


@dataclass(frozen=True)
class _Conv:
    name: str
    block: int
    c_in: int
    c_out: int


@dataclass(frozen=True)
class _Net:
    """The part of a VGG that the loss uses: its convolutions and loss layers."""

    blocks: tuple[int, ...]
    convs: tuple[_Conv, ...]
    content: str
    style: tuple[str, ...]

    @staticmethod
    def of(blocks: Sequence[int], settings: StyleSettings) -> _Net:
        names = layer_names(blocks)
        layers = (settings.content_layer, *settings.style_layers)
        unknown = sorted(set(layers) - set(names))
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; known: {names}")
        last = max(names.index(n) for n in layers)
        convs, c_in = [], 3
        for name in names[: last + 1]:
            block = level_of(name)
            convs.append(_Conv(name, block, c_in, VGG_WIDTHS[block]))
            c_in = VGG_WIDTHS[block]
        return _Net(tuple(blocks), tuple(convs), settings.content_layer, settings.style_layers)

    @property
    def last_conv(self) -> int:
        return len(self.convs) - 1

    @property
    def stop(self) -> int:
        """One past the deepest block the loss uses."""
        return self.convs[-1].block + 1

    def boundaries(self) -> list[int]:
        """Blocks where a stage may start: after the content layer's block."""
        return list(range(level_of(self.content) + 1, self.stop))

    def flops(self, first: int, stop: int) -> float:
        """Convolution multiply-adds per image pixel of blocks ``first .. stop - 1``."""
        return sum(9 * c.c_in * c.c_out / 4**c.block for c in self.convs if first <= c.block < stop)

    def content_flops(self) -> float:
        stop = self.convs.index(next(c for c in self.convs if c.name == self.content)) + 1
        return sum(9 * c.c_in * c.c_out / 4**c.block for c in self.convs[:stop])


def _values(channels: int, level: int) -> float:
    """Values per image pixel of a map of ``channels`` after ``level`` poolings."""
    return channels / 4**level


@dataclass(frozen=True)
class _StageBytes:
    """Live bytes per image pixel of a tile of one stage.

    Attributes
    ----------
    stored : float
        What a forward pass keeps for the backward pass: activations, pooling indices
        and outputs, the input tile's padded or cast copy.
    backward : float
        What the backward pass adds at its worst moment: ``dL/dF`` of the loss layers
        and the output map's gradient at its start, or the gradients of the first
        block's maps at its end (when the deeper activations are freed).
    forward : float
        A forward pass without gradients: one convolution's input and output, the loss
        layers' activations and the output map.
    """

    stored: float
    backward: float
    forward: float


def _stage_bytes(net: _Net, first: int, stop: int, e: int, loss: set[str]) -> _StageBytes:
    """Return the live bytes per image pixel of a tile of blocks ``first .. stop - 1``."""
    convs = [c for c in net.convs if first <= c.block < stop]
    last = stop == net.stop
    maps = {c.name: _values(c.c_out, c.block) * e for c in convs}
    pooled = [b for b in range(first, stop) if b < stop - 1 or not last]
    pools = {b: _values(VGG_WIDTHS[b], b + 1) * (8 + e) for b in pooled}
    # The input tile: padded (first convolution) and cast (autocast), or a copy of a map.
    copy = 3 * (8 + (e if e < 4 else 0)) if first == 0 else _values(convs[0].c_in, first) * e
    injected = {n: v for n, v in maps.items() if n in loss}
    out = 0.0 if last else _values(VGG_WIDTHS[stop - 1], stop) * e
    stored = copy + sum(maps.values()) + sum(pools.values())
    head = [c.name for c in convs if c.block == first]
    end = copy + sum(maps[n] + injected.get(n, 0.0) for n in head) + pools.get(first, 0.0)
    end += 5 * max(maps[n] for n in head)  # gradients in flight and their sums
    backward = max(sum(injected.values()) + out, end - stored)
    return _StageBytes(stored, backward, _forward_bytes(convs, first, last, e, loss, copy))


def _forward_bytes(
    convs: Sequence[_Conv], first: int, last: bool, e: int, loss: set[str], copy: float
) -> float:
    """Return the peak live bytes per image pixel of a forward pass without gradients.

    Each convolution holds its input and output; the loss layers' activations are
    held to the end; the output map is pooled from the last one.
    """
    held, current, peak = 0.0, copy, copy
    for i, c in enumerate(convs):
        out = _values(c.c_out, c.block) * e
        peak = max(peak, held + current + out)
        if c.name in loss:
            held, current = held + out, 0.0
        else:
            current = out
        block_ends = i + 1 == len(convs) or convs[i + 1].block != c.block
        if block_ends and not (last and i + 1 == len(convs)):
            pooled = _values(c.c_out, c.block + 1) * e
            peak = max(peak, held + current + pooled)
            current = pooled
    return max(peak, held + current)


def _content_bytes(net: _Net, e: int) -> tuple[float, float]:
    """Return the content forward pass's peak live bytes per pixel, and its features'."""
    convs = net.convs[: net.convs.index(_conv(net, net.content)) + 1]
    target = _values(convs[-1].c_out, convs[-1].block) * e
    copy = 12 + 3 * (8 + (e if e < 4 else 0))  # three channels, padded, cast
    return _forward_bytes(convs, 0, True, e, {net.content}, copy), target


def _conv(net: _Net, name: str) -> _Conv:
    return next(c for c in net.convs if c.name == name)


def _axis_extents(n: int, tile: int | None, halo: int) -> list[int]:
    """Return the extents of the tiles along one axis of ``n`` pixels (as tile_grid)."""
    if tile is None or tile >= n:
        return [n]
    return [min(n, start + tile + halo) - max(0, start - halo) for start in range(0, n, tile)]


def _grid(ny: int, nx: int, tile: int | None, halo: int) -> tuple[int, int]:
    """Return the largest tile extent and the sum of all extents, in pixels."""
    if tile is not None and tile >= ny and tile >= nx:
        tile = None
    ys, xs = _axis_extents(ny, tile, halo), _axis_extents(nx, tile, halo)
    return max(ys) * max(xs), sum(ys) * sum(xs)


@dataclass(frozen=True)
class _Budget:
    """The memory and the cost of a plan's parts, for :func:`plan_tiles`."""

    net: _Net
    ny: int
    nx: int
    style_shape: tuple[int, int]
    e: int

    def fixed(self, plan: TilePlan) -> float:
        """Bytes held throughout: whole-tilt buffers, maps between stages, the cache."""
        px = self.ny * self.nx
        total = float(_FIXED_BYTES_PER_PIXEL * px + 4 * self.style_shape[0] * self.style_shape[1])
        for first in plan.splits:  # each map and its float32 gradient
            total += px * _values(VGG_WIDTHS[first - 1], first) * (self.e + 4)
        if plan.cache_content and plan.tiles[0] is not None:
            total += px * _content_bytes(self.net, self.e)[1]
        return total

    def stage(self, plan: TilePlan, s: int) -> tuple[float, float]:
        """Return stage ``s``'s peak working bytes, and the bytes its kept graph holds."""
        first, stop = plan.stage_bounds(self.net.stop)[s]
        loss = {self.net.content, *self.net.style}
        b = _stage_bytes(self.net, first, stop, self.e, loss)
        core = plan.tiles[s]
        tile = None if core is None else core >> first
        area = _grid(self.ny >> first, self.nx >> first, tile, plan.halos[s] >> first)[0]
        area *= 4**first
        graph = b.stored + b.backward
        if s == 0:
            c_forward, c_target = _content_bytes(self.net, self.e)
            if tile is None:  # the content's pass after the graph's, its features held
                return area * (b.stored + max(c_forward, b.backward)), area * (b.stored + c_target)
            passes = max(b.forward + c_forward, c_forward, c_target + graph)
            return area * passes, 0.0
        if tile is None:
            return area * graph, area * b.stored
        return area * max(b.forward, graph), 0.0

    def style(self, plan: TilePlan) -> float:
        """Return the style pass's peak bytes (before the image's passes)."""
        sy, sx = self.style_shape
        forward = _stage_bytes(self.net, 0, self.net.stop, self.e, set(self.net.style)).forward
        area = _grid(sy, sx, plan.style_tile, plan.style_halo)[0]
        fixed = 8 * self.ny * self.nx + 4 * sy * sx
        factor = _HEAP_FACTOR["whole" if plan.style_tile is None else "tiled"]
        return fixed + factor * area * (forward + 12)

    def total(self, plan: TilePlan) -> int:
        """Return the peak working bytes of one tilt under ``plan``."""
        peak, alive = 0.0, 0.0
        for s in range(len(plan.tiles)):
            work, graph = self.stage(plan, s)
            peak = max(peak, alive + work)
            alive += graph
        image = self.fixed(plan) + _HEAP_FACTOR["whole" if plan.is_whole else "tiled"] * peak
        return math.ceil(max(image, self.style(plan)))

    def cost(self, plan: TilePlan) -> float:
        """Return the convolution work of one tilt under ``plan``, in multiply-adds."""
        net, total = self.net, 0.0
        for s, (first, stop) in enumerate(plan.stage_bounds(net.stop)):
            core = plan.tiles[s]
            tile = None if core is None else core >> first
            ny, nx = self.ny >> first, self.nx >> first
            overlap = _grid(ny, nx, tile, plan.halos[s] >> first)[1] / (ny * nx)
            passes = 1 + _BACKWARD_COST + (tile is not None)
            total += overlap * passes * net.flops(first, stop)
            if s == 0:
                total += (
                    overlap * net.content_flops() * (2 if tile and not plan.cache_content else 1)
                )
        style_pixels = _grid(*self.style_shape, plan.style_tile, plan.style_halo)[1]
        return total * self.ny * self.nx + style_pixels * net.flops(0, net.stop)


def _round_up(n: int, step: int) -> int:
    """Return the smallest multiple of ``step`` that is at least ``n``."""
    return -(-n // step) * step


def _tile_candidates(ny: int, nx: int) -> list[int]:
    """Return tile cores worth trying, largest first: the fewest tiles for their size.

    Each is the smallest multiple of 16 that splits an axis into ``k`` tiles; only
    cores smaller than the image and at least :data:`_MIN_AUTO_TILE`.
    """
    found = set()
    for n in (ny, nx):
        for k in range(2, n // ALIGN + 1):
            core = _round_up(_round_up(n, k) // k, ALIGN)
            if _MIN_AUTO_TILE <= core < max(ny, nx):
                found.add(core)
    return sorted(found, reverse=True)


def _largest(candidates: list[int], fits: Callable[[int], bool]) -> int | None:
    """Return the largest candidate that fits (fitting is monotone), by bisection."""
    low, high = 0, len(candidates)  # candidates[high:] fit, if any; descending order
    while low < high:
        mid = (low + high) // 2
        if fits(candidates[mid]):
            high = mid
        else:
            low = mid + 1
    return candidates[low] if low < len(candidates) else None


def _budget_of(
    ny: int,
    nx: int,
    precision: str,
    style_shape: tuple[int, int] | None,
    blocks: Sequence[int],
    settings: StyleSettings | None,
) -> _Budget:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    net = _Net.of(blocks, settings or StyleSettings())
    return _Budget(net, ny, nx, style_shape or (ny, nx), _ELEMENT_BYTES[precision])


def plan_tiles(
    ny: int,
    nx: int,
    precision: str,
    memory_budget_bytes: int | None,
    *,
    tile: int | None = None,
    halo: int = 96,
    style_shape: tuple[int, int] | None = None,
    blocks: Sequence[int] = VGG16_BLOCKS,
    settings: StyleSettings | None = None,
) -> TilePlan | None:
    """Return the fastest way to cut one tilt's transfer that fits a memory budget.

    The candidates cut the backbone into stages after the content layer's block
    (:mod:`faket.style.tiling`); each stage runs whole (once, its graph kept) or in the
    largest tiles that fit, with the halo that makes it exact
    (:func:`~faket.style.tiling.stage_halo`, at most ``halo``), with or without the
    content features kept between the passes; the style image is tiled on its own. Of
    those whose estimated peak working memory (:func:`plan_bytes`) fits, the one with
    the least convolution work wins.

    Parameters
    ----------
    ny, nx : int
        Shape of the tilt (at the working size) in pixels.
    precision : str
        ``fp32``, ``bf16`` or ``fp16``.
    memory_budget_bytes : int or None
        Working memory for one tilt; None (with a ``tile`` only): what the whole
        network in tiles of ``tile`` needs (:meth:`TilePlan.single`).
    tile : int, optional
        Core of the first stage's tiles, in pixels (a multiple of 16); default: chosen.
    halo : int
        Most context per tile side, in pixels (a multiple of 16).
    style_shape : tuple of int, optional
        ``(sy, sx)`` of the style tilt; default the tilt's shape.
    blocks : sequence of int
        Convolutions per block of the backbone (``model.blocks``).
    settings : StyleSettings, optional
        Its layers; default the published ones.

    Returns
    -------
    TilePlan or None
        None when nothing fits the budget.
    """
    budget = _budget_of(ny, nx, precision, style_shape, blocks, settings)
    return _plan_tiles(budget, memory_budget_bytes, tile, halo)


def _plan_tiles(
    budget: _Budget, memory_budget_bytes: int | None, tile: int | None, halo: int
) -> TilePlan | None:
    net, ny, nx = budget.net, budget.ny, budget.nx
    if tile is not None and tile >= max(ny, nx):
        tile = None
    if memory_budget_bytes is None:
        if tile is None:
            return TilePlan()
        limit = float(budget.total(TilePlan.single(tile, halo)))
    else:
        limit = float(memory_budget_bytes - _RUNTIME_BYTES)
    last = net.last_conv
    style_halo = min(halo, stage_halo(net.blocks, 0, net.stop, last))

    def style_fits(core: int | None) -> bool:
        return math.ceil(budget.style(TilePlan(style_tile=core, style_halo=style_halo))) <= limit

    style_tile = None
    if not style_fits(None):
        style_tile = _largest(_tile_candidates(*budget.style_shape), style_fits)
        if style_tile is None:
            return None
    best: tuple[float, TilePlan] | None = None
    boundaries = net.boundaries()
    for n_splits in range(len(boundaries) + 1):
        for splits in itertools.combinations(boundaries, n_splits):
            edges = [0, *splits, net.stop]
            halos = tuple(
                min(halo, stage_halo(net.blocks, a, b, last)) for a, b in itertools.pairwise(edges)
            )
            for whole in itertools.product((True, False), repeat=len(halos)):
                if tile is not None and whole[0]:
                    continue
                for cache in (False, True) if not whole[0] else (False,):
                    stages = _Stages(splits, halos, whole, cache, style_tile, style_halo)
                    plan = _fill_plan(budget, limit, stages, tile)
                    if plan is not None:
                        # Each stage boundary costs a little (whole maps copied).
                        cost = budget.cost(plan) * (1 + _STAGE_COST * len(splits))
                        if best is None or cost < best[0]:
                            best = cost, plan
    return None if best is None else best[1]


@dataclass(frozen=True)
class _Stages:
    """A plan without its tile sizes: the stages, which run whole, the style's tiles."""

    splits: tuple[int, ...]
    halos: tuple[int, ...]
    whole: tuple[bool, ...]
    cache: bool
    style_tile: int | None
    style_halo: int

    def with_tiles(self, tiles: Sequence[int | None]) -> TilePlan:
        return TilePlan(
            self.splits, tuple(tiles), self.halos, self.style_tile, self.style_halo, self.cache
        )


def _fill_plan(budget: _Budget, limit: float, stages: _Stages, tile: int | None) -> TilePlan | None:
    """Return the plan of these stages with the largest tiles that fit, or None.

    A stage's tiles change only its own passes' memory; the graphs of whole stages
    before it are held meanwhile.
    """
    tiles: list[int | None] = [None if w else _MIN_AUTO_TILE for w in stages.whole]
    if tile is not None:
        tiles[0] = tile
    fixed = budget.fixed(stages.with_tiles(tiles))
    factor = _HEAP_FACTOR["whole" if stages.with_tiles(tiles).is_whole else "tiled"]
    held = 0.0
    for s, whole in enumerate(stages.whole):

        def fits(core: int | None, s: int = s, held: float = held) -> bool:
            trial = [*tiles[:s], core, *tiles[s + 1 :]]
            work = budget.stage(stages.with_tiles(trial), s)[0]
            return math.ceil(fixed + factor * (held + work)) <= limit

        if whole or (s == 0 and tile is not None):
            if not fits(tiles[s]):
                return None
        else:
            core = _largest(_tile_candidates(budget.ny, budget.nx), fits)
            if core is None:
                return None
            tiles[s] = core
        held += budget.stage(stages.with_tiles(tiles), s)[1]
    plan = stages.with_tiles(tiles)
    return plan if budget.total(plan) <= limit else None


def plan_bytes(
    ny: int,
    nx: int,
    plan: TilePlan,
    precision: str,
    *,
    style_shape: tuple[int, int] | None = None,
    blocks: Sequence[int] = VGG16_BLOCKS,
    settings: StyleSettings | None = None,
) -> int:
    """Return an upper bound of one tilt's peak working memory under ``plan``, in bytes.

    The live bytes of each phase (the style's forward pass; each stage's passes, with
    the graphs of whole stages held until their backward pass), counted from the
    backbone's maps, pooling indices and gradients, times a measured allowance for the
    heap (:data:`_HEAP_FACTOR`), plus the whole-tilt buffers. The input and output
    tilt-series themselves are not included. Parameters as :func:`plan_tiles`.
    """
    return _budget_of(ny, nx, precision, style_shape, blocks, settings).total(plan) + _RUNTIME_BYTES


def _smallest_plan(budget: _Budget, halo: int) -> TilePlan:
    """Return a plan close to the least memory: every stage in the smallest tiles."""
    net, last = budget.net, budget.net.last_conv
    edges = [0, *net.boundaries(), net.stop]
    halos = tuple(
        min(halo, stage_halo(net.blocks, a, b, last)) for a, b in itertools.pairwise(edges)
    )
    style_halo = min(halo, stage_halo(net.blocks, 0, net.stop, last))
    core = _MIN_AUTO_TILE
    return TilePlan(tuple(edges[1:-1]), (core,) * len(halos), halos, core, style_halo)


def transfer_plan(
    ny: int,
    nx: int,
    precision: str,
    *,
    tile: int | None = None,
    halo: int = 96,
    memory_budget_bytes: int | None = None,
    style_shape: tuple[int, int] | None = None,
    blocks: Sequence[int] = VGG16_BLOCKS,
    settings: StyleSettings | None = None,
) -> TilePlan:
    """Return the plan :func:`stylize_tilt_series` runs for these settings.

    - No ``tile`` and no budget: whole tilts, as always; only a style image whose pass
      would need more than a whole tilt (and more than
      :data:`DEFAULT_MEMORY_BUDGET_BYTES`) runs in tiles.
    - No ``tile``, a budget: whole tilts if one fits the budget, else the fastest plan
      that fits (:func:`plan_tiles`).
    - A ``tile``: the first stage in tiles of ``tile``, the rest as the budget allows
      (default: within what the whole network in tiles of ``tile`` needs).

    Parameters as :func:`plan_tiles`.

    Raises
    ------
    MemoryBudgetError
        If nothing fits the budget.
    """
    budget = _budget_of(ny, nx, precision, style_shape, blocks, settings)
    return _transfer_plan(budget, tile, halo, memory_budget_bytes)


def _transfer_plan(
    budget: _Budget, tile: int | None, halo: int, memory_budget_bytes: int | None
) -> TilePlan:
    if tile is None and memory_budget_bytes is None:
        same = _Budget(budget.net, budget.ny, budget.nx, (budget.ny, budget.nx), budget.e)
        limit = max(same.total(TilePlan()), DEFAULT_MEMORY_BUDGET_BYTES - _RUNTIME_BYTES)
        if budget.total(TilePlan()) <= limit:
            return TilePlan()
        tiled = _plan_tiles(budget, limit + _RUNTIME_BYTES, None, halo)
        if tiled is None:
            return TilePlan()
        return TilePlan(style_tile=tiled.style_tile, style_halo=tiled.style_halo)
    plan = _plan_tiles(budget, memory_budget_bytes, tile, halo)
    if plan is not None:
        return plan
    assert memory_budget_bytes is not None
    asked = _transfer_plan(budget, tile, halo, None)
    fitting = None
    if tile is not None:
        other = _plan_tiles(budget, memory_budget_bytes, None, halo)
        fitting = None if other is None else other.tiles[0]
    least = budget.total(_smallest_plan(budget, halo)) + _RUNTIME_BYTES
    needed = budget.total(asked) + _RUNTIME_BYTES
    raise MemoryBudgetError(needed, memory_budget_bytes, fitting, least_bytes=least)


def auto_tile(
    ny: int,
    nx: int,
    precision: str,
    memory_budget_bytes: int,
    *,
    halo: int = 96,
    style_shape: tuple[int, int] | None = None,
    blocks: Sequence[int] = VGG16_BLOCKS,
    settings: StyleSettings | None = None,
) -> int | None:
    """Return the tile core that fits one tilt into the budget; None if a whole tilt fits.

    The first stage's tile of the plan :func:`transfer_plan` chooses (that stage holds
    most of the memory; deeper stages and the style get tiles of their own).

    Raises
    ------
    MemoryBudgetError
        If not even the smallest tiles fit.
    """
    budget = _budget_of(ny, nx, precision, style_shape, blocks, settings)
    return _transfer_plan(budget, None, halo, memory_budget_bytes).tiles[0]


def style_bytes_per_tilt(
    ny: int,
    nx: int,
    precision: str,
    tile: int | None = None,
    halo: int = 96,
    *,
    memory_budget_bytes: int | None = None,
    style_shape: tuple[int, int] | None = None,
    blocks: Sequence[int] = VGG16_BLOCKS,
    settings: StyleSettings | None = None,
) -> int:
    """Return one tilt's peak working memory in bytes, as :func:`stylize_tilt_series` runs it.

    :func:`plan_bytes` of :func:`transfer_plan`; with a budget that nothing fits, what
    the settings need without the budget.
    """
    budget = _budget_of(ny, nx, precision, style_shape, blocks, settings)
    try:
        plan = _transfer_plan(budget, tile, halo, memory_budget_bytes)
    except MemoryBudgetError as err:
        return err.needed_bytes
    return budget.total(plan) + _RUNTIME_BYTES


def tilts_per_batch(
    ny: int, nx: int, precision: str, memory_budget_bytes: int, tile: int | None, halo: int
) -> int:
    """Return how many tilts fit the memory budget at once (at least 1)."""
    per_tilt = style_bytes_per_tilt(ny, nx, precision, tile, halo) - _RUNTIME_BYTES
    return max(1, (memory_budget_bytes - _RUNTIME_BYTES) // per_tilt)


def largest_fitting_tile(
    ny: int, nx: int, precision: str, memory_budget_bytes: int, halo: int
) -> int | None:
    """Return the first-stage tile core of the fastest plan that fits the budget.

    None when nothing fits, or when a whole tilt does.
    """
    plan = plan_tiles(ny, nx, precision, memory_budget_bytes, halo=halo)
    return None if plan is None else plan.tiles[0]


class MemoryBudgetError(ValueError):
    """One tilt (or one tile of it) needs more working memory than the budget allows.

    Attributes
    ----------
    needed_bytes : int
        Estimated peak working memory of one tilt as asked (whole, or with its tile).
    budget_bytes : int
        The budget.
    fitting_tile : int or None
        The first-stage tile core of the fastest plan that fits the budget, if any.
    least_bytes : int or None
        About the least working memory that any plan needs (the smallest tiles).
    """

    def __init__(
        self,
        needed_bytes: int,
        budget_bytes: int,
        fitting_tile: int | None,
        *,
        least_bytes: int | None = None,
    ) -> None:
        self.needed_bytes = needed_bytes
        self.budget_bytes = budget_bytes
        self.fitting_tile = fitting_tile
        self.least_bytes = least_bytes
        if fitting_tile is not None:
            advice = f"tile={fitting_tile} fits"
        elif least_bytes is not None:
            advice = f"even the smallest tiles need about {least_bytes / 2**30:.2f} GiB"
        else:
            advice = "no tile fits this halo"
        super().__init__(
            f"one tilt needs about {needed_bytes / 2**30:.2f} GiB of working memory, more "
            f"than memory_budget_bytes ({budget_bytes / 2**30:.2f} GiB); {advice}"
        )


def check_memory_budget(
    ny: int,
    nx: int,
    precision: str,
    memory_budget_bytes: int,
    tile: int | None,
    halo: int,
    *,
    style_shape: tuple[int, int] | None = None,
) -> None:
    """Refuse settings under which one whole tilt (or one tile) exceeds the budget.

    With ``tile=None`` this asks whether a whole tilt fits; :func:`stylize_tilt_series`
    with a budget tiles it automatically when it does not (:func:`transfer_plan`
    refuses only a budget that nothing fits).

    Raises
    ------
    MemoryBudgetError
        With the estimated need and the first-stage tile of a plan that would fit.
    """
    budget = _budget_of(ny, nx, precision, style_shape, VGG16_BLOCKS, None)
    if tile is None:
        needed = budget.total(TilePlan()) + _RUNTIME_BYTES
        if needed > memory_budget_bytes:
            plan = _plan_tiles(budget, memory_budget_bytes, None, halo)
            fitting = None if plan is None else plan.tiles[0]
            raise MemoryBudgetError(needed, memory_budget_bytes, fitting)
        return
    _transfer_plan(budget, tile, halo, memory_budget_bytes)


def batch_plan(
    shape: tuple[int, int],
    precision: str,
    style_shape: tuple[int, int],
    blocks: Sequence[int],
    settings: StyleSettings,
    tile: int | None,
    halo: int,
    memory_budget_bytes: int | None,
) -> tuple[TilePlan, int]:
    """Return the plan of one tilt and how many tilts run at once within the budget.

    ``memory_budget_bytes=None``: batches of :data:`DEFAULT_MEMORY_BUDGET_BYTES` and
    no automatic tiling. Raises :class:`MemoryBudgetError` as :func:`transfer_plan`.
    """
    budget = _budget_of(*shape, precision, style_shape, blocks, settings)
    plan = _transfer_plan(budget, tile, halo, memory_budget_bytes)
    # The runtime's memory comes once, each tilt of a batch adds its own.
    batch_bytes = (memory_budget_bytes or DEFAULT_MEMORY_BUDGET_BYTES) - _RUNTIME_BYTES
    return plan, max(1, batch_bytes // budget.total(plan))
