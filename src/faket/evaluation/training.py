"""Training the DeepFinder-style picker: soft-Dice loss, patch batches, epochs, validation.

One epoch visits every listed particle of every training volume once, in an order drawn
from ``(seed, epoch)``; each visit cuts a patch around the particle (random shift of up
to ``shift_fraction`` of the patch per axis), standardises it, and turns it by 180
degrees about the tilt axis with probability one half. Batches of ``batch_size`` patches
take one Adam step on the soft-Dice loss (Tversky, alpha = beta = 0.5, summed over
classes), plus by default the voxels' mean cross-entropy (see `picker_loss`).
Validation runs on the particles of a volume that is not trained on, with patches
centred on them (no shift, no turn), and gives the same loss over all of them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from faket._precision import PRECISIONS, autocast_context
from faket.evaluation.patches import (
    centres_zyx,
    epoch_rng,
    patch_start,
    rotate_about_tilt_axis,
    standardise_patches,
)
from faket.evaluation.unet import DeepFinderNet

__all__ = [
    "LabelledVolume",
    "TrainingSettings",
    "dice_overlaps",
    "make_picker",
    "picker_loss",
    "soft_dice_loss",
    "train_picker",
    "training_batch",
    "validate_picker",
]

_EPS = 1e-6

LOSSES = ("dice+ce", "dice")
"""Training losses: soft Dice plus cross-entropy, or DeepFinder's soft Dice alone."""


@dataclass(frozen=True)
class TrainingSettings:
    """Settings of the picker and its training; the defaults are DeepFinder's as in FakET.

    Attributes
    ----------
    width : float
        Channel multiplier of the network (1.0 = 32/48/64 channels).
    patch : int
        Patch side in voxels, a multiple of 4.
    batch_size : int
        Patches per Adam step.
    epochs : int
        Epochs; each visits every training particle once.
    learning_rate : float
        Adam's step size.
    betas : tuple of float
        Adam's moment decays.
    shift_fraction : float
        Largest random shift of a patch centre, as a fraction of the patch (per axis).
    rotate : bool
        Turn half of the patches by 180 degrees about the tilt axis.
    precision : str
        ``fp32``, ``bf16`` or ``fp16`` autocast of the convolutions; the loss is float32.
    loss : str
        ``dice+ce`` (default) or ``dice`` (DeepFinder's loss alone); see `picker_loss`.
    """

    width: float = 1.0
    patch: int = 56
    batch_size: int = 25
    epochs: int = 70
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    shift_fraction: float = 0.25
    rotate: bool = True
    precision: str = "fp32"
    loss: str = "dice+ce"

    def __post_init__(self) -> None:
        if self.patch < 4 or self.patch % 4:
            raise ValueError(f"the patch side must be a positive multiple of 4, got {self.patch}")
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError("batch size and epochs must be at least 1")
        if not self.learning_rate > 0:
            raise ValueError(f"the learning rate must be positive, got {self.learning_rate}")
        if not 0 <= self.shift_fraction <= 0.5:
            raise ValueError(f"the shift fraction must be in [0, 0.5], got {self.shift_fraction}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as plain values (for logs and provenance)."""
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out


@dataclass(frozen=True)
class LabelledVolume:
    """A tomogram with its class labels and particle centres.

    Attributes
    ----------
    image : torch.Tensor
        ``(nz, ny, nx)`` float32 tomogram.
    labels : torch.Tensor
        ``(nz, ny, nx)`` int64 class ids, 0 = background, on the image's device.
    xyz : numpy.ndarray
        ``(n, 3)`` particle centres in voxels, columns ``x, y, z``.
    name : str
        For messages.
    """

    image: torch.Tensor
    labels: torch.Tensor
    xyz: np.ndarray
    name: str = "volume"

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape != self.labels.shape:
            raise ValueError(
                f"{self.name}: image {tuple(self.image.shape)} and labels "
                f"{tuple(self.labels.shape)} must be the same 3-D shape"
            )


def dice_overlaps(
    probabilities: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the per-class soft overlaps and sizes the Dice loss is made of.

    Parameters
    ----------
    probabilities : torch.Tensor
        ``(B, C, D, H, W)`` class probabilities.
    labels : torch.Tensor
        ``(B, D, H, W)`` int64 class ids in ``0 .. C - 1``.

    Returns
    -------
    overlap, size : torch.Tensor
        ``(C,)`` float32: ``sum p g`` and ``sum p + sum g`` over the batch and voxels.
    """
    p = probabilities.float()
    n_classes = p.shape[1]
    onehot = torch.nn.functional.one_hot(labels, n_classes).movedim(-1, 1).to(p.dtype)
    dims = (0, 2, 3, 4)
    return (p * onehot).sum(dims), p.sum(dims) + onehot.sum(dims)


def _dice_from_overlaps(overlap: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    # Tversky with alpha = beta = 0.5: TP / (TP + FP/2 + FN/2) = 2 TP / (sum p + sum g).
    return (2 * overlap + _EPS) / (size + _EPS)


def soft_dice_loss(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Return DeepFinder's loss ``sum_c (1 - Tversky_c)`` with alpha = beta = 0.5.

    ``Tversky_c = TP_c / (TP_c + FP_c / 2 + FN_c / 2)`` with soft counts over the whole
    batch (``TP = sum p g``, ``FP = sum p (1 - g)``, ``FN = sum (1 - p) g``), which is
    the soft Dice coefficient, summed over every label, background included. A tiny
    constant (1e-6) in numerator and denominator makes a class absent from both
    prediction and truth count as perfect, so a perfect prediction has loss 0; the loss
    is at most ``C``.

    Parameters
    ----------
    probabilities : torch.Tensor
        ``(B, C, D, H, W)`` class probabilities (softmax output).
    labels : torch.Tensor
        ``(B, D, H, W)`` int64 class ids.

    Returns
    -------
    torch.Tensor
        Scalar float32.
    """
    overlap, size = dice_overlaps(probabilities, labels)
    return (1 - _dice_from_overlaps(overlap, size)).sum()


def picker_loss(logits: torch.Tensor, labels: torch.Tensor, kind: str = "dice+ce") -> torch.Tensor:
    """Return the training loss of a batch from the network's class scores.

    ``dice`` is `soft_dice_loss` of the softmax, DeepFinder's loss. ``dice+ce`` adds the
    mean voxel cross-entropy, as nnU-Net does. Alone, the Dice loss stalled in every
    CPU-scale training we ran (noiseless or noisy tomograms, learning rate 1e-4 or
    1e-3, fp32 or bf16): within 100 Adam steps the net predicted background with
    probability 1 everywhere, where the softmax saturates and no gradient is left, since
    the background's Dice term pushes its probability up at 95 % of the voxels before
    any feature tells particles apart. Summing over the particle classes only does not
    help: a particle class then took over the background. The cross-entropy's gradient
    does not vanish that way; with it the same trainings learn.

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, C, D, H, W)`` class scores before the softmax (any float dtype).
    labels : torch.Tensor
        ``(B, D, H, W)`` int64 class ids.
    kind : str
        ``dice+ce`` or ``dice``.

    Returns
    -------
    torch.Tensor
        Scalar float32.
    """
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")
    scores = logits.float()
    loss = soft_dice_loss(torch.softmax(scores, dim=1), labels)
    if kind == "dice+ce":
        loss = loss + torch.nn.functional.cross_entropy(scores, labels)
    return loss


def make_picker(n_classes: int, width: float, seed: int) -> DeepFinderNet:
    """Return a freshly initialised picker whose weights depend on ``seed`` only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return DeepFinderNet(n_classes, width)


def _cut(volume: torch.Tensor, start: np.ndarray, patch: int) -> torch.Tensor:
    z, y, x = (int(s) for s in start)
    return volume[z : z + patch, y : y + patch, x : x + patch]


def training_batch(
    volumes: Sequence[LabelledVolume],
    items: np.ndarray,
    patch: int,
    shifts: np.ndarray,
    turns: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut, standardise and turn one batch of patches.

    Parameters
    ----------
    volumes : sequence of LabelledVolume
        The volumes patches are cut from.
    items : numpy.ndarray
        ``(B, 2)`` int: volume index and particle index (row of its ``xyz``).
    patch : int
        Patch side in voxels.
    shifts : numpy.ndarray
        ``(B, 3)`` int shifts of the centres, ``(dz, dy, dx)`` voxels.
    turns : numpy.ndarray
        ``(B,)`` bool: turn the patch by 180 degrees about the tilt axis.

    Returns
    -------
    images : torch.Tensor
        ``(B, 1, P, P, P)`` float32, each standardised, channels-last.
    labels : torch.Tensor
        ``(B, P, P, P)`` int64.
    """
    images, labels = [], []
    for (v, k), shift, turn in zip(items, shifts, turns, strict=True):
        volume = volumes[v]
        centre = centres_zyx(volume.xyz[k])[0] + shift
        start = patch_start(centre, patch, volume.image.shape)
        image, label = _cut(volume.image, start, patch), _cut(volume.labels, start, patch)
        if turn:
            image, label = rotate_about_tilt_axis(image), rotate_about_tilt_axis(label)
        images.append(image)
        labels.append(label)
    batch = standardise_patches(torch.stack(images).float()).unsqueeze(1)
    return batch.contiguous(memory_format=torch.channels_last_3d), torch.stack(labels)


def _train_epoch(
    net: DeepFinderNet,
    optimizer: torch.optim.Optimizer,
    volumes: Sequence[LabelledVolume],
    settings: TrainingSettings,
    rng: np.random.Generator,
    on_step: Callable[[], None] | None,
) -> float:
    items = np.array([(v, k) for v, vol in enumerate(volumes) for k in range(len(vol.xyz))])
    order = items[rng.permutation(len(items))]
    reach = int(settings.shift_fraction * settings.patch)
    shifts = rng.integers(-reach, reach + 1, size=(len(order), 3))
    turns = rng.random(len(order)) < 0.5 if settings.rotate else np.zeros(len(order), bool)
    autocast = autocast_context(volumes[0].image.device, settings.precision)
    net.train()
    total, steps = 0.0, 0
    for first in range(0, len(order), settings.batch_size):
        part = slice(first, first + settings.batch_size)
        images, labels = training_batch(
            volumes, order[part], settings.patch, shifts[part], turns[part]
        )
        with autocast():
            logits = net.logits(images)
        loss = picker_loss(logits, labels, settings.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        total += float(loss.detach())
        steps += 1
        if on_step is not None:
            on_step()
    return total / max(steps, 1)


@torch.no_grad()
def validate_picker(
    net: DeepFinderNet, volume: LabelledVolume, settings: TrainingSettings
) -> dict[str, Any]:
    """Return the training loss and per-class Dice over patches centred on every particle.

    Returns
    -------
    dict
        ``loss`` (float): the settings' loss over all the volume's particle patches
        taken as one batch (Dice from soft counts summed over every patch, plus the
        mean cross-entropy over every voxel for ``dice+ce``); ``dice`` (list of C
        floats, background first).
    """
    autocast = autocast_context(volume.image.device, settings.precision)
    net.eval()
    overlap = size = None
    cross_entropy, n_voxels = 0.0, 0
    n = len(volume.xyz)
    items = np.stack([np.zeros(n, np.int64), np.arange(n)], axis=1)
    no_shift, no_turn = np.zeros((n, 3), np.int64), np.zeros(n, bool)
    for first in range(0, n, settings.batch_size):
        part = slice(first, first + settings.batch_size)
        images, labels = training_batch(
            [volume], items[part], settings.patch, no_shift[part], no_turn[part]
        )
        with autocast():
            logits = net.logits(images)
        scores = logits.float()
        o, s = dice_overlaps(torch.softmax(scores, dim=1), labels)
        overlap = o if overlap is None else overlap + o
        size = s if size is None else size + s
        ce = torch.nn.functional.cross_entropy(scores, labels, reduction="sum")
        cross_entropy += float(ce)
        n_voxels += labels.numel()
    if overlap is None or size is None:
        raise ValueError(f"{volume.name}: no particles to validate on")
    dice = _dice_from_overlaps(overlap, size)
    loss = float((1 - dice).sum())
    if settings.loss == "dice+ce":
        loss += cross_entropy / n_voxels
    return {"loss": loss, "dice": [float(d) for d in dice]}


def train_picker(
    net: DeepFinderNet,
    train: Sequence[LabelledVolume],
    val: LabelledVolume,
    settings: TrainingSettings,
    *,
    seed: int,
    start_epoch: int = 0,
    optimizer_state: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any], DeepFinderNet, torch.optim.Optimizer], None] | None = None,
    on_step: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Train ``net`` in place; return one record per epoch run.

    Parameters
    ----------
    net : DeepFinderNet
        The picker, on the volumes' device (see `make_picker`).
    train : sequence of LabelledVolume
        Training volumes (their particles are the epoch's patches).
    val : LabelledVolume
        Validation volume, not among ``train``.
    settings : TrainingSettings
        The training settings.
    seed : int
        Seed of the sampling (order, shifts, turns), with the epoch number.
    start_epoch : int
        Epochs already done (resuming: pass the optimizer's saved state too).
    optimizer_state : dict, optional
        Adam's state to resume from.
    on_epoch : callable, optional
        Called after each epoch with its record, the net and the optimizer (checkpoints,
        logs).
    on_step : callable, optional
        Called after each Adam step (progress).

    Returns
    -------
    list of dict
        Per epoch: ``epoch`` (1-based), ``train_loss`` (mean over steps), ``val_loss``,
        ``val_dice`` (per class) and ``seconds``.
    """
    if not train:
        raise ValueError("no training volumes")
    if any(len(v.xyz) == 0 for v in train):
        empty = next(v.name for v in train if len(v.xyz) == 0)
        raise ValueError(f"{empty}: no particles to train on")
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.learning_rate, betas=settings.betas)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    net.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    records = []
    for epoch in range(start_epoch + 1, settings.epochs + 1):
        began = time.perf_counter()
        train_loss = _train_epoch(net, optimizer, train, settings, epoch_rng(seed, epoch), on_step)
        check = validate_picker(net, val, settings)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": check["loss"],
            "val_dice": check["dice"],
            "seconds": time.perf_counter() - began,
        }
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"the training loss became {train_loss} at epoch {epoch}")
        records.append(record)
        if on_epoch is not None:
            on_epoch(record, net, optimizer)
    return records
