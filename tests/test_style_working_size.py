"""The style transfer at a working size (the FakET authors' end scale), against oracles.

The authors' style CLI (paloha/faket, faket/style_transfer/style_transfer.py) resizes the
content and initial images to ``end_scale`` pixels on the longer side and the style image
only if it is larger, all with scikit-image's ``resize(order=1, anti_aliasing=True)``;
that function is the oracle of the resampler here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.transform import resize

from faket.style import StyleSettings, load_backbone, stylize_batch
from faket.style.series import plan_bytes, resize_images, stylize_tilt_series, working_shape
from faket.style.tiling import TilePlan

# Two style layers and relu2_2 for the content: the backbone stops after its second
# block, which keeps these tests fast; the working size does not depend on the depth.
SHALLOW = StyleSettings(style_layers=("relu1_1", "relu2_1"), style_layer_weights=(256.0, 64.0))


@pytest.fixture(scope="module")
def model():
    return load_backbone("random")


def stacks(shape, style_shape=None, seed=5):
    """Initial, content and style stacks in arbitrary units (not [0, 1])."""
    g = torch.Generator().manual_seed(seed)
    style_shape = style_shape or shape
    initial, content = (torch.rand(shape, generator=g) * 30 - 4 for _ in range(2))
    levels = torch.arange(1.0, style_shape[0] + 1)[:, None, None]
    style = torch.rand(style_shape, generator=g) * levels
    return initial, content, style + 10


@pytest.mark.parametrize(
    ("shape_in", "shape_out"),
    [
        ((48, 48), (96, 96)),  # enlarge 2x
        ((256, 256), (192, 192)),  # shrink 4/3: a light blur
        ((256, 256), (75, 75)),  # shrink 3.4x, like 3500 px to 1024
        ((40, 56), (23, 32)),  # not square, aspect kept
        ((40, 56), (57, 80)),
        ((7, 300), (3, 64)),
        ((6, 6), (1, 1)),  # a blur wider than the image: mirrored several times
    ],
)
def test_resize_is_the_authors_scikit_image_resampler(shape_in, shape_out, device):
    image = np.random.default_rng(0).random(shape_in)
    expected = resize(image, shape_out, order=1, anti_aliasing=True)
    ours = resize_images(torch.from_numpy(image)[None].to(device), shape_out)
    assert ours.device == device
    # The same Gaussian and linear weights in float64: rounding only.
    np.testing.assert_allclose(ours[0].cpu().numpy(), expected, rtol=0, atol=1e-12)
    single = resize_images(torch.from_numpy(image.astype(np.float32))[None].to(device), shape_out)
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single[0].cpu().numpy(), expected, rtol=0, atol=1e-6)


def test_working_shape_follows_the_authors_rule():
    # Longer side to the working size, the shorter one rounded, aspect kept.
    assert working_shape(1024, 1024, 1024) == (1024, 1024)
    assert working_shape(512, 512, 1024) == (1024, 1024)
    assert working_shape(3500, 2000, 1024) == (1024, round(1024 * 2000 / 3500))
    assert working_shape(40, 56, 32) == (23, 32)
    # The style only shrinks: a smaller one keeps its size.
    assert working_shape(512, 512, 1024, enlarge=False) == (512, 512)
    assert working_shape(2048, 1024, 1024, enlarge=False) == (1024, 512)
    with pytest.raises(ValueError, match="positive"):
        working_shape(8, 8, 0)
    with pytest.raises(ValueError, match="vanish"):
        working_shape(1000, 1, 16)


def test_no_working_size_is_todays_output(model):
    initial, content, style = stacks((1, 24, 40))
    today = stylize_tilt_series(model, initial, content, style, SHALLOW)
    none = stylize_tilt_series(model, initial, content, style, SHALLOW, working_size=None)
    assert torch.equal(none, today)


def test_working_size_equal_to_the_native_size_is_the_native_output(model):
    initial, content, style = stacks((1, 24, 48), style_shape=(1, 40, 40))
    native = stylize_tilt_series(model, initial, content, style, SHALLOW)
    # 48 px is the longer side of the detector and the style (40 px) is not larger.
    same = stylize_tilt_series(model, initial, content, style, SHALLOW, working_size=48)
    assert torch.equal(same, native)


def oracle(model, initial, content, style, working_size, settings):
    """Plainly: normalise each stack, resize with scikit-image as the authors do, stylise
    at that size, resize back with scikit-image, match each tilt's mean and std."""

    def normalised(x):
        x = x.double().numpy()
        return (x - x.min()) / (x.max() - x.min())

    def fit(shape, enlarge):
        ny, nx = shape
        if not enlarge and max(ny, nx) <= working_size:
            return ny, nx
        if ny >= nx:
            return working_size, round(working_size * nx / ny)
        return round(working_size * ny / nx), working_size

    def resized(stack, shape):
        return torch.from_numpy(
            np.stack([resize(t, shape, order=1, anti_aliasing=True) for t in stack])
        ).float()

    work = fit(initial.shape[1:], enlarge=True)
    style_work = fit(style.shape[1:], enlarge=False)
    x0 = resized(normalised(initial), work)
    c = resized(normalised(content), work)
    s = resized(normalised(style), style_work)
    result = stylize_batch(model, x0, c, s, settings).double().numpy()
    back = np.stack([resize(t, initial.shape[1:], order=1, anti_aliasing=True) for t in result])
    ref = style.double().numpy()
    mean, std = back.mean((1, 2), keepdims=True), back.std((1, 2), keepdims=True)
    return (back - mean) / std * ref.std((1, 2), keepdims=True) + ref.mean((1, 2), keepdims=True)


@pytest.mark.parametrize(
    ("working_size", "style_shape"),
    [
        (32, (2, 48, 48)),  # shrink the detector 56 -> 32 and the larger style 48 -> 32
        (80, (2, 48, 48)),  # enlarge the detector 56 -> 80; the style keeps its 48 px
    ],
)
def test_other_working_size_agrees_with_the_plain_oracle(model, working_size, style_shape):
    initial, content, style = stacks((2, 40, 56), style_shape)
    ours = stylize_tilt_series(model, initial, content, style, SHALLOW, working_size=working_size)
    expected = oracle(model, initial, content, style, working_size, SHALLOW)
    assert ours.shape == (2, 40, 56) and ours.dtype == style.dtype
    error = (ours.double().numpy() - expected) / style.std((1, 2)).double().numpy()[:, None, None]
    # float32 torch against float64 scikit-image resizing: where a pixel's gradient is
    # within rounding of zero, Adam's step g / (|g| + eps) changes; resizing back spreads
    # such a pixel over its neighbours. Measured: 99.8 % of the pixels within 1e-4 of the
    # style's std, at most 5e-4.
    assert np.mean(np.abs(error) <= 1e-4) >= 0.99
    assert np.abs(error).max() <= 2e-3
    # The result is the style's grey levels per tilt, at the native size.
    torch.testing.assert_close(ours.mean((1, 2)), style.mean((1, 2)), rtol=1e-5, atol=1e-4)


def test_the_memory_budget_and_tiles_apply_at_the_working_size(model):
    initial, content, style = stacks((2, 24, 24))

    def run(**options):
        return stylize_tilt_series(
            model, initial, content, style, SHALLOW, working_size=48, **options
        )

    # A budget of one 48 x 48 working tilt runs one tilt per batch at the working size,
    # where natively both 24 x 24 tilts run at once.
    one_tilt = plan_bytes(48, 48, TilePlan(), "fp32", style_shape=(24, 24), settings=SHALLOW)
    calls = []
    per_tilt = run(memory_budget_bytes=one_tilt, progress=calls.append)
    assert calls == [1, 1]
    native = []
    stylize_tilt_series(
        model,
        initial,
        content,
        style,
        SHALLOW,
        memory_budget_bytes=one_tilt,
        progress=native.append,
    )
    assert native == [2]
    whole = run()
    scale = style.std((1, 2))[:, None, None]

    def error(result: torch.Tensor) -> float:
        return ((result - whole).abs() / scale).max().item()

    # Batching changes only the order of float sums (measured: 3.5e-4 of the style's std
    # at most, where a gradient is near zero and Adam's step g / (|g| + eps) is partial).
    assert error(per_tilt) <= 1e-3
    # Tiles of the 48 px working image: 32 px cores, 4 tiles (natively one 24 px tile).
    # A 16 px halo covers relu2_2's receptive field: the same result up to rounding
    # (measured 2e-4).
    assert error(run(tile=32, halo=16)) <= 1e-3
    # Without a halo, features at the tile edges see padding: the result changes there
    # (measured 0.47), which a single native tile would not.
    assert error(run(tile=32, halo=0)) > 0.1
