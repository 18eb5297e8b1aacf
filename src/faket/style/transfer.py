"""Neural style transfer of tilt-series (REFERENCE.md section 3), batched over tilts.

Per tilt ``i``: the initial image is the noisy tilt ``i``, the content is the content
tilt ``i`` and the style is tilt ``i`` of a reference tilt-series of another tomogram.
Each stack is min-max normalised to [0, 1] as a whole; the grey image is copied into
the three channels of the image being optimised, as the reference does. The loss
(:mod:`faket.style.losses`) is minimised with Adam, the image clamped to [0, 1] after
each step, and the result is the bias-corrected exponential moving average (EMA) of the
iterates, seeded with the initial image, averaged over its three channels. Finally each
tilt is shifted and scaled to the mean and std of the style tilt.

The published setting is ONE iteration. Adam's first step moves every value by
``step_size * g / (|g| + eps)``, which :func:`optimise_image` computes directly (one
forward and backward pass, no optimiser state); the general Adam + EMA loop serves any
other number of iterations, and a test proves the two agree. The three channels get
different gradients through the first convolution, so after one step each channel moves
by its own sign: the mean moves by 0.075 where all three agree and by 0.025 where they
split, as in the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from faket._precision import autocast_context
from faket.style.backbones import VGGFeatures
from faket.style.tiling import (
    LossSpec,
    TilePlan,
    staged_loss_gradient,
    style_gram_targets,
    tile_grid,
)


@dataclass(frozen=True)
class StyleSettings:
    """Settings of the style transfer; the defaults are the published ones.

    Attributes
    ----------
    content_layer : str
        Layer of the content loss (relu2_2).
    content_weight : float
        Weight of the content loss (1).
    style_layers : tuple of str
        Layers of the style loss (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1).
    style_layer_weights : tuple of float
        Relative weights of the style layers (256, 64, 16, 4, 1), normalised to sum 1.
    style_weight : float
        Weight of the style loss (1).
    step_size : float
        Adam step size, in units of the [0, 1] image (0.15).
    iterations : int
        Adam iterations at full resolution (1).
    ema_decay : float
        Decay of the exponential moving average of the iterates (0.99).
    adam_betas : tuple of float
        Adam's beta1 and beta2 (torch defaults; the first step does not depend on them).
    adam_eps : float
        Adam's epsilon.
    loss_eps : float
        Guard of the scaled-MSE division.
    """

    content_layer: str = "relu2_2"
    content_weight: float = 1.0
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    style_layer_weights: tuple[float, ...] = (256.0, 64.0, 16.0, 4.0, 1.0)
    style_weight: float = 1.0
    step_size: float = 0.15
    iterations: int = 1
    ema_decay: float = 0.99
    adam_betas: tuple[float, float] = field(default=(0.9, 0.999))
    adam_eps: float = 1e-8
    loss_eps: float = 1e-8

    def __post_init__(self) -> None:
        if len(self.style_layers) != len(self.style_layer_weights):
            raise ValueError("style_layers and style_layer_weights must have the same length")
        if sum(self.style_layer_weights) <= 0 or min(self.style_layer_weights) < 0:
            raise ValueError("style layer weights must be >= 0 with a positive sum")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.step_size <= 0:
            raise ValueError(f"step_size must be positive, got {self.step_size}")

    def loss_spec(self) -> LossSpec:
        """Return the layers and weights, style weights normalised and scaled."""
        total = sum(self.style_layer_weights)
        weights = {
            name: self.style_weight * w / total
            for name, w in zip(self.style_layers, self.style_layer_weights, strict=True)
        }
        return LossSpec(self.content_layer, self.content_weight, weights, self.loss_eps)

    def as_dict(self) -> dict[str, object]:
        """Return the settings as plain values, for provenance."""
        return asdict(self)


def optimise_image(
    initial: torch.Tensor,
    gradient_of: Callable[[torch.Tensor], torch.Tensor],
    settings: StyleSettings,
    *,
    closed_form: bool = True,
) -> torch.Tensor:
    """Run Adam on the 3-channel image and return the channel mean of its EMA.

    Parameters
    ----------
    initial : torch.Tensor
        ``(batch, 3, ny, nx)`` float32 initial images in [0, 1].
    gradient_of : callable
        Image -> gradient of the loss, same shape, float32.
    settings : StyleSettings
        Step size, iterations, EMA decay, Adam's betas and epsilon.
    closed_form : bool
        With one iteration, compute Adam's first step and the EMA directly (the
        default); False always runs ``torch.optim.Adam``.

    Returns
    -------
    torch.Tensor
        ``(batch, 1, ny, nx)`` float32.
    """
    decay = settings.ema_decay
    x0 = initial.detach()
    if settings.iterations == 1 and closed_form:
        # In place on the gradient: one temporary image, not five (large detectors).
        g = gradient_of(x0)
        scale = g.abs().add_(settings.adam_eps)
        step = g.mul_(settings.step_size).div_(scale)
        del scale
        x1 = step.neg_().add_(x0).clamp_(0, 1)  # x0 - step
        # EMA seeded with x0 and updated with x1, bias-corrected by 1 - decay^2 (the
        # same roundings as the expression written out).
        average = x1.mul_(1 - decay).add_(decay * (1 - decay) * x0).div_(1 - decay * decay)
        return average.mean(1, keepdim=True)
    image = x0.clone().requires_grad_(True)
    optimiser = torch.optim.Adam(
        [image], lr=settings.step_size, betas=settings.adam_betas, eps=settings.adam_eps
    )
    value, accum = (1 - decay) * x0, decay
    for _ in range(settings.iterations):
        image.grad = gradient_of(image.detach())
        optimiser.step()
        with torch.no_grad():
            image.clamp_(0, 1)
            value = decay * value + (1 - decay) * image
            accum *= decay
    return (value / (1 - accum)).mean(1, keepdim=True).detach()


def stylize_batch(
    model: VGGFeatures,
    initial: torch.Tensor,
    content: torch.Tensor,
    style: torch.Tensor,
    settings: StyleSettings,
    *,
    precision: str = "fp32",
    tile: int | None = None,
    halo: int = 96,
    closed_form: bool = True,
    plan: TilePlan | None = None,
) -> torch.Tensor:
    """Stylise a batch of grey images already in [0, 1].

    Parameters
    ----------
    model : VGGFeatures
        Frozen backbone on the images' device.
    initial, content : torch.Tensor
        ``(batch, ny, nx)`` float32 in [0, 1].
    style : torch.Tensor
        ``(batch, sy, sx)`` float32 in [0, 1]; the size may differ from the others.
    settings : StyleSettings
        Loss and optimiser settings.
    precision : str
        ``fp32``, ``bf16`` or ``fp16``: autocast of the convolutions; reductions stay
        float32.
    tile, halo : int or None
        Tile core and halo in pixels (multiples of 16) of the whole network, for the
        images and the style, see :mod:`faket.style.tiling`; None processes whole
        images. Ignored when ``plan`` is given.
    closed_form : bool
        See :func:`optimise_image`.
    plan : TilePlan, optional
        Stages and tiles (:func:`faket.style.series.plan_tiles` chooses them for a
        memory budget); default ``TilePlan.single(tile, halo)``.

    Returns
    -------
    torch.Tensor
        ``(batch, ny, nx)`` float32, before matching to the style's mean and std.
    """
    autocast = autocast_context(initial.device, precision)
    spec = settings.loss_spec()
    fmt = torch.channels_last
    plan = plan or TilePlan.single(tile, halo)
    last_conv = max(model.names.index(n) for n in (spec.content_layer, *spec.style_weights))
    stages = plan.stages(initial.shape[-2], initial.shape[-1], model.blocks, last_conv)
    style_tiles = tile_grid(style.shape[-2], style.shape[-1], plan.style_tile, plan.style_halo)
    # Content and style stay grey; each tile is copied into three channels when it runs.
    grams = style_gram_targets(model, style[:, None], spec.style_weights, style_tiles, autocast)
    content1 = content[:, None]

    def gradient_of(image: torch.Tensor) -> torch.Tensor:
        image = image.contiguous(memory_format=fmt)
        grad, _ = staged_loss_gradient(
            model,
            image,
            content1,
            grams,
            spec,
            stages,
            autocast,
            cache_content=plan.cache_content,
        )
        return grad

    initial3 = initial[:, None].expand(-1, 3, -1, -1).contiguous(memory_format=fmt)
    out = optimise_image(initial3.float(), gradient_of, settings, closed_form=closed_form)
    return out[:, 0]
