"""Automatic tiling for a memory budget: the plan, its memory, and the exact result."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import torch

from faket.io import read_mrc, write_mrc
from faket.style import StyleSettings, load_backbone
from faket.style.backbones import VGG16_BLOCKS, VGG19_BLOCKS, layer_names
from faket.style.series import (
    MemoryBudgetError,
    auto_tile,
    plan_bytes,
    stylize_tilt_series,
    transfer_plan,
)
from faket.style.tiling import (
    TilePlan,
    loss_gradient,
    stage_halo,
    staged_loss_gradient,
    style_gram_targets,
    tile_grid,
)

GIB = 2**30


@pytest.fixture(scope="module")
def model():
    return load_backbone("random")  # VGG-19 blocks: planned with the model's own depth


def test_stage_halos_cover_the_receptive_field():
    vgg16, vgg19 = (layer_names(b).index("relu5_1") for b in (VGG16_BLOCKS, VGG19_BLOCKS))
    # 3 x 3 convolutions widen the field by 2**level image pixels each: 2 + 4 + 12 + 24 + 16.
    assert stage_halo(VGG16_BLOCKS, 0, 5, vgg16) == 64  # 58, rounded to the 16 px grid
    assert stage_halo(VGG16_BLOCKS, 0, 2, vgg16) == 8  # 6, on the 4 px grid of 2 poolings
    assert stage_halo(VGG16_BLOCKS, 2, 5, vgg16) == 64  # 52
    assert stage_halo(VGG19_BLOCKS, 2, 5, vgg19) == 64  # 16 + 32 + 16
    assert stage_halo(VGG19_BLOCKS, 0, 5, vgg19) == 80  # 70


def test_auto_tile_is_whole_when_a_tilt_fits_and_a_fitting_tile_otherwise():
    assert auto_tile(512, 512, "fp32", 4 * GIB) is None
    previous = 0
    for gib in (1, 2, 4):
        budget = gib * GIB
        tile = auto_tile(2048, 2048, "fp32", budget)
        assert tile is not None and tile % 16 == 0 and tile < 2048
        plan = transfer_plan(2048, 2048, "fp32", memory_budget_bytes=budget)
        assert plan.tiles[0] == tile and plan_bytes(2048, 2048, plan, "fp32") <= budget
        assert tile >= previous  # more memory, no smaller tiles
        previous = tile
    # A whole 2048^2 tilt needs far more than that (about 3.1 KB per pixel in fp32).
    assert plan_bytes(2048, 2048, TilePlan(), "fp32") > 12 * GIB
    with pytest.raises(MemoryBudgetError, match="even the smallest tiles") as refused:
        auto_tile(2048, 2048, "fp32", GIB // 10)
    assert refused.value.least_bytes is not None and refused.value.least_bytes > GIB // 10


def test_a_large_non_square_style_is_tiled_on_its_own():
    # A 5760 x 4092 style against a 512 x 512 content: the style's forward pass alone
    # would need about 20 GB; it runs in tiles, with or without a budget.
    style_shape = (5760, 4092)
    whole_style = plan_bytes(512, 512, TilePlan(), "fp32", style_shape=style_shape)
    assert whole_style > 10 * GIB
    plan = transfer_plan(512, 512, "fp32", memory_budget_bytes=2 * GIB, style_shape=style_shape)
    assert plan.style_tile is not None
    assert plan_bytes(512, 512, plan, "fp32", style_shape=style_shape) <= 2 * GIB
    default = transfer_plan(512, 512, "fp32", style_shape=style_shape)
    assert default.is_whole and default.style_tile is not None


def test_an_explicit_tile_keeps_within_what_the_whole_network_in_such_tiles_needs():
    for tile in (512, 1024):
        plan = transfer_plan(2048, 2048, "fp32", tile=tile)
        assert plan.tiles[0] == tile and len(plan.tiles) > 1
        single = plan_bytes(2048, 2048, TilePlan.single(tile, 96), "fp32")
        assert plan_bytes(2048, 2048, plan, "fp32") <= single


@pytest.mark.parametrize(
    "plan",
    [
        TilePlan((2,), (48, None), (8, 0)),  # first blocks in tiles, the rest whole
        TilePlan((2,), (48, None), (8, 0), cache_content=True),
        TilePlan((2, 3), (32, 48, None), (8, 16, 0), cache_content=True),
        TilePlan((2,), (None, 48), (0, 64)),  # the deep blocks in tiles
        TilePlan((3, 4), (32, 64, None), (24, 32, 16)),
    ],
)
def test_staged_gradient_equals_the_whole_image_gradient(model, plan):
    g = torch.Generator().manual_seed(2)
    ny, nx = 100, 84  # not multiples of 16: partial tiles at the far edges
    image = torch.rand(1, 3, ny, nx, generator=g).contiguous(memory_format=torch.channels_last)
    content = torch.rand(1, 1, ny, nx, generator=g)
    spec = StyleSettings().loss_spec()
    grams = style_gram_targets(
        model,
        torch.rand(1, 1, 60, 90, generator=g),
        spec.style_weights,
        [*tile_grid(60, 90, None)],
        nullcontext,
    )
    whole, whole_loss = loss_gradient(
        model, image, content, grams, spec, tile_grid(ny, nx, None), nullcontext
    )
    stages = plan.stages(ny, nx, model.blocks, model.names.index("relu5_1"))
    assert sum(len(s.tiles) for s in stages) > len(stages)  # something is tiled
    tiled, tiled_loss = staged_loss_gradient(
        model, image, content, grams, spec, stages, nullcontext, cache_content=plan.cache_content
    )
    assert (tiled - whole).abs().max() <= 1e-4 * whole.abs().max()
    torch.testing.assert_close(tiled_loss, whole_loss, rtol=1e-5, atol=0)


def test_a_forced_small_budget_with_a_non_square_style_gives_the_untiled_result(model):
    g = torch.Generator().manual_seed(4)
    shape, style_shape = (1, 128, 192), (1, 400, 256)  # another size and aspect
    initial, content = (torch.rand(shape, generator=g) * 20 + 3 for _ in range(2))
    style = torch.rand(style_shape, generator=g) * 2
    whole = stylize_tilt_series(model, initial, content, style)
    blocks, tilt = model.blocks, shape[1:]
    # 90 % of a whole tilt with a style of its own size: the tilt and the style in tiles.
    budget = plan_bytes(*tilt, TilePlan(), "fp32", blocks=blocks) * 9 // 10
    plan = transfer_plan(
        *tilt, "fp32", memory_budget_bytes=budget, style_shape=style_shape[1:], blocks=blocks
    )
    assert not plan.is_whole and plan.style_tile is not None  # both run in tiles
    calls = []
    tiled = stylize_tilt_series(
        model, initial, content, style, memory_budget_bytes=budget, progress=calls.append
    )
    assert calls == [1]
    # The tiled gradient equals the whole one up to float rounding (measured 1e-5 of its
    # scale, no sign differs). Where |gradient| is near Adam's eps (1e-8; the random
    # backbone's gradients are small) the step g / (|g| + eps) is partial and rounding
    # shows: measured 0.23 % of the pixels beyond 1e-4 of the style's std, at most 1.8e-3
    # (two such tilts), as between the untiled transfer in batches of one and two tilts
    # (0.29 %, 2.1e-3).
    error = ((tiled - whole).abs() / style.std((1, 2))[:, None, None]).flatten()
    assert (error <= 1e-4).float().mean() >= 0.99
    assert error.max() <= 5e-3


def test_cli_memory_gib_tiles_one_tilt_that_would_exceed_it(run_cli, tmp_path: Path):
    rng = np.random.default_rng(3)
    for name in ("noisy", "content", "reference"):
        data = rng.standard_normal((2, 40, 56)).astype(np.float32) * 5 + 20
        write_mrc(data, tmp_path / f"{name}.mrc", voxel_size_a=8.0)
    out = tmp_path / "faket.mrc"
    code, _, err = run_cli(
        "style",
        *("--init", tmp_path / "noisy.mrc", "--content", tmp_path / "content.mrc"),
        *("--style", tmp_path / "reference.mrc", "-o", out),
        *("--backbone", "random", "--precision", "fp32", "--device", "cpu"),
        *("--working-size", 240, "--memory-gib", 0.1),  # a whole 240 x 171 tilt: 0.12 GiB
    )
    assert code == 0, err
    assert read_mrc(out, ndim=3).data.shape == (2, 40, 56)
    provenance = json.loads((tmp_path / "faket.provenance.json").read_text())
    plan = provenance["tile_plan"]
    assert provenance["tile"] is None and plan["tiles"][0] is not None
