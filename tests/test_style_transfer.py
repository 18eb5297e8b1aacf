"""Style transfer against a plain per-tilt oracle, and its invariants."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch

from faket.errors import FaketInputError
from faket.style import StyleSettings, load_backbone, optimise_image, stylize_batch
from faket.style.series import match_mean_std, plan_bytes, stylize_tilt_series
from faket.style.tiling import TilePlan, loss_gradient, style_gram_targets, tile_grid


@pytest.fixture(scope="module")
def model():
    return load_backbone("vgg16-hed").to(memory_format=torch.channels_last)


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(7)
    # Values in [0.2, 0.8]: one step of 0.075 never reaches the [0, 1] clamp.
    return tuple(0.2 + 0.6 * torch.rand(3, 64, 64, generator=g) for _ in range(3))


def oracle(model, initial, content, style, settings):
    """The reference written plainly: per tilt, a 3-channel float32 image, torch Adam,
    clamping, and the bias-corrected EMA seeded with the initial image."""

    def gram(f):
        m = f.flatten(2)
        return m @ m.transpose(1, 2) / m.shape[-1]

    def scaled_mse(a, b):
        d = a - b
        return d.pow(2).sum() / (d.abs().sum() + 1e-8)

    total = sum(settings.style_layer_weights)
    weights = [w / total for w in settings.style_layer_weights]
    layers = [settings.content_layer, *settings.style_layers]
    outputs = []
    for i in range(initial.shape[0]):
        x = initial[i][None, None].repeat(1, 3, 1, 1).requires_grad_(True)
        with torch.no_grad():
            c = model(content[i][None, None].repeat(1, 3, 1, 1), layers)[settings.content_layer]
            s = model(style[i][None, None].repeat(1, 3, 1, 1), layers)
        optimiser = torch.optim.Adam([x], lr=settings.step_size)
        decay = settings.ema_decay
        value, accum = (1 - decay) * x.detach().clone(), decay
        for _ in range(settings.iterations):
            f = model(x, layers)
            loss = settings.content_weight * scaled_mse(f[settings.content_layer], c)
            for name, w in zip(settings.style_layers, weights, strict=True):
                loss = loss + settings.style_weight * w * scaled_mse(gram(f[name]), gram(s[name]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                x.clamp_(0, 1)
            value, accum = decay * value + (1 - decay) * x.detach(), accum * decay
        outputs.append((value / (1 - accum)).mean(1)[0])
    return torch.stack(outputs)


@pytest.mark.parametrize("iterations", [1, 3])
def test_agrees_with_the_plain_oracle(model, images, iterations):
    settings = StyleSettings(iterations=iterations)
    expected = oracle(model, *images, settings)
    ours = stylize_batch(model, *images, settings)
    error = (ours - expected).abs().flatten()
    if iterations == 1:
        # Our gradient is the same sum in another order, so a pixel can only differ where
        # its gradient is within rounding of zero and Adam's sign step flips (measured:
        # none or a few pixels in 12288).
        assert (error <= 1e-5).float().mean() >= 0.999
    else:
        # Later Adam steps divide by sqrt(v): where successive gradients nearly cancel,
        # rounding is amplified, and any early flip changes that pixel's path (measured:
        # median 6e-8, 99th percentile 3.5e-4, 99.9th 6e-3 of a [0, 1] image).
        assert error.median() <= 1e-6
        assert error.quantile(0.99) <= 1e-3
    assert (ours - expected).abs().max() <= 2 * settings.step_size


def test_one_step_moves_each_pixel_by_the_channel_mean_of_three_signs(model, images):
    initial = images[0]
    moved = stylize_batch(model, *images, StyleSettings()) - initial
    # EMA of x0 and x1 = x0 + 0.15 s with s in {-1, 0, 1} per channel:
    # (0.0099 x0 + 0.01 x1) / 0.0199 = x0 + 0.0754 s, averaged over 3 channels.
    step = 0.15 * 0.01 / 0.0199
    levels = torch.tensor([-3, -1, 1, 3]) * step / 3
    nearest = (moved[..., None] - levels).abs().min(-1).values
    # Pixels whose gradient is within ~1e-8 of zero move less (g / (|g| + eps) < 1).
    assert (nearest <= 1e-5).float().mean() >= 0.999
    fractions = [((moved - lv).abs() < 1e-4).float().mean().item() for lv in levels]
    assert min(fractions) > 0.01  # all four levels occur: the channels do get different signs


def test_closed_form_equals_general_adam_and_ema(images):
    g = torch.Generator().manual_seed(3)
    fixed = torch.randn(3, 3, 64, 64, generator=g)
    x0 = images[0][:, None].expand(-1, 3, -1, -1).contiguous()

    def gradient_of(x):
        return fixed * (1 + x)  # depends on x, like a real loss gradient

    settings = StyleSettings()
    closed = optimise_image(x0, gradient_of, settings, closed_form=True)
    general = optimise_image(x0, gradient_of, settings, closed_form=False)
    # Same arithmetic in another order (Adam's bias corrections, the EMA's two updates).
    torch.testing.assert_close(closed, general, rtol=0, atol=1e-6)


def test_bf16_keeps_the_sign_of_the_update_for_most_pixels(model, images):
    fp32 = stylize_batch(model, *images, StyleSettings()) - images[0]
    bf16 = stylize_batch(model, *images, StyleSettings(), precision="bf16") - images[0]
    agree = (torch.sign(fp32) == torch.sign(bf16)).float().mean().item()
    # Measured 0.97-0.98 on these images: bf16 flips the sign where |gradient| is small.
    assert agree >= 0.95


def test_tiled_gradient_equals_the_whole_image_gradient_with_enough_halo(model):
    g = torch.Generator().manual_seed(11)
    image, content, style = (torch.rand(1, 3, 96, 96, generator=g) for _ in range(3))
    spec = StyleSettings().loss_spec()
    whole_grid = tile_grid(96, 96, None)
    grams = style_gram_targets(model, style, spec.style_weights, whole_grid, nullcontext)
    # The style Gram targets gathered over tiles equal the whole image's.
    tiled_grams = style_gram_targets(
        model, style, spec.style_weights, tile_grid(96, 96, 48, 80), nullcontext
    )
    for name in grams:
        torch.testing.assert_close(tiled_grams[name], grams[name], rtol=1e-4, atol=1e-6)

    def gradient(tile, halo):
        grid = tile_grid(96, 96, tile, halo)
        return loss_gradient(model, image, content, grams, spec, grid, nullcontext)

    whole, whole_loss = gradient(None, 0)
    scale = whole.abs().max()
    # halo 80 > 66 px, the receptive-field radius of VGG-16 relu5_1: every core feature
    # sees the pixels it sees in the whole image, so only float rounding differs.
    tiled, tiled_loss = gradient(48, 80)
    assert (tiled - whole).abs().max() <= 1e-4 * scale
    torch.testing.assert_close(tiled_loss, whole_loss, rtol=1e-5, atol=0)
    # A halo shorter than the receptive field changes the gradient near tile edges
    # (measured: 2e-3 of the gradient's scale for a 16 px halo).
    short, _ = gradient(48, 16)
    assert (short - whole).abs().max() > max(5e-4 * scale, 10 * (tiled - whole).abs().max())


def test_tilt_series_is_normalised_batched_and_matched_to_the_style(model, images):
    initial, content, style = (x * 40 - 7 for x in images)  # any units
    style = style * torch.linspace(1, 3, 3)[:, None, None]
    one_batch = stylize_tilt_series(model, initial, content, style)
    calls = []
    one_tilt = plan_bytes(64, 64, TilePlan(), "fp32")  # a budget that holds one tilt
    per_tilt = stylize_tilt_series(
        model, initial, content, style, memory_budget_bytes=one_tilt, progress=calls.append
    )
    assert calls == [1, 1, 1]
    # Batching changes no arithmetic per tilt but the summation order of float reductions.
    torch.testing.assert_close(per_tilt, one_batch, rtol=1e-5, atol=1e-5)
    # Each tilt ends with its style tilt's mean and std.
    torch.testing.assert_close(one_batch.mean((1, 2)), style.mean((1, 2)), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(
        one_batch.std((1, 2), correction=0), style.std((1, 2), correction=0), rtol=1e-5, atol=0
    )
    # Min-max normalisation makes the stage independent of the inputs' units.
    rescaled = stylize_tilt_series(model, initial * 3 + 100, content / 2, style)
    torch.testing.assert_close(rescaled, one_batch, rtol=1e-5, atol=1e-4)


def test_match_mean_std_is_exact():
    x = torch.rand(3, 8, 8) * 5
    ref = torch.rand(3, 10, 10) * torch.tensor([1.0, 2.0, 3.0])[:, None, None] + 4
    out = match_mean_std(x, ref)
    torch.testing.assert_close(out.mean((1, 2)), ref.mean((1, 2)))
    torch.testing.assert_close(out.std((1, 2), correction=0), ref.std((1, 2), correction=0))


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((4, 8, 8), (4, 8, 8), (3, 8, 8)), "has 3 tilts but initial has 4"),
        (((4, 8, 8), (4, 8, 9), (4, 8, 8)), "differs from initial"),
        (((4, 8), (4, 8, 8), (4, 8, 8)), "must be 3-D"),
    ],
)
def test_bad_stacks_are_refused(model, shapes, message):
    stacks = [torch.rand(s) for s in shapes]
    with pytest.raises(FaketInputError, match=message):
        stylize_tilt_series(model, *stacks)


def test_constant_or_nonfinite_stack_is_refused(model):
    good = torch.rand(2, 16, 16)
    with pytest.raises(FaketInputError, match="style: the tilt-series is constant"):
        stylize_tilt_series(model, good, good, torch.ones(2, 16, 16))
    bad = good.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(FaketInputError, match="content: the tilt-series has NaN"):
        stylize_tilt_series(model, good, bad, good)


def test_settings_are_validated():
    with pytest.raises(ValueError, match="same length"):
        StyleSettings(style_layers=("relu1_1",))
    with pytest.raises(ValueError, match="iterations"):
        StyleSettings(iterations=0)
    with pytest.raises(ValueError, match="multiple of 16"):
        stylize_batch(
            load_backbone("random"),
            *(torch.rand(1, 40, 40) for _ in range(3)),
            StyleSettings(),
            tile=20,
        )
