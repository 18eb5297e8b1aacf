"""Training the DeepFinder-style picker: soft-Dice loss, patch batches, epochs, validation.

One epoch visits every listed particle of every training volume once, in an order drawn
from ``(seed, epoch)`` (or, with ``steps_per_epoch``, that many batches of particles
drawn without replacement, DeepFinder's epoch); each visit cuts a patch around the
particle (random shift of up to ``shift_fraction`` of the patch per axis), standardises
it, and turns it by 180 degrees about the tilt axis with probability one half. A
``background_fraction`` of the epoch's patches are instead centred on random voxels that
the class mask calls background (`faket.evaluation.patches.background_centres`), so the
picker also learns what empty ice looks like. Batches of ``batch_size`` patches
take one Adam step on the soft-Dice loss (Tversky, alpha = beta = 0.5, summed over
classes), plus by default the voxels' mean cross-entropy (see `picker_loss`).
Validation runs on a volume that is not trained on: patches centred on its particles (at
most ``val_patches`` of them, evenly spread over its list) and, at the same fraction as
training, on fixed background voxels; no shift, no turn; the same loss over all of them.
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
    background_centres,
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
    "cut_batch",
    "dice_overlaps",
    "epoch_patches",
    "make_picker",
    "picker_loss",
    "soft_dice_loss",
    "steps_per_epoch",
    "train_picker",
    "training_batch",
    "validate_picker",
    "validation_patches",
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
    background_fraction : float
        Fraction of an epoch's patches centred on random background voxels (0:
        DeepFinder's published sampler, every patch on a particle).
    steps_per_epoch : int or None
        Batches per epoch, drawn without replacement from the particles (DeepFinder:
        100); None: every particle once.
    val_patches : int or None
        Most particle patches the validation loss uses (evenly spread over the
        validation volume's particle list); None: all.
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
    background_fraction: float = 0.0
    steps_per_epoch: int | None = None
    val_patches: int | None = None

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
        if not 0 <= self.background_fraction <= 0.9:
            raise ValueError(
                f"the background fraction must be in [0, 0.9], got {self.background_fraction}"
            )
        for name in ("steps_per_epoch", "val_patches"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None), got {value}")

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


def n_background(n_particles: int, fraction: float) -> int:
    """Return the background patches that make ``fraction`` of ``n_particles + them``."""
    return int(round(n_particles * fraction / (1 - fraction))) if fraction > 0 else 0


def cut_batch(
    volumes: Sequence[LabelledVolume],
    which: np.ndarray,
    centres: np.ndarray,
    patch: int,
    turns: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut, standardise and turn one batch of patches around given centres.

    Parameters
    ----------
    volumes : sequence of LabelledVolume
        The volumes patches are cut from.
    which : numpy.ndarray
        ``(B,)`` int: the volume of each patch.
    centres : numpy.ndarray
        ``(B, 3)`` int patch centres ``(z, y, x)`` (clamped into the volume).
    patch : int
        Patch side in voxels.
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
    for v, centre, turn in zip(which, centres, turns, strict=True):
        volume = volumes[int(v)]
        start = patch_start(centre, patch, volume.image.shape)
        image, label = _cut(volume.image, start, patch), _cut(volume.labels, start, patch)
        if turn:
            image, label = rotate_about_tilt_axis(image), rotate_about_tilt_axis(label)
        images.append(image)
        labels.append(label)
    batch = standardise_patches(torch.stack(images).float()).unsqueeze(1)
    return batch.contiguous(memory_format=torch.channels_last_3d), torch.stack(labels)


def training_batch(
    volumes: Sequence[LabelledVolume],
    items: np.ndarray,
    patch: int,
    shifts: np.ndarray,
    turns: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut, standardise and turn one batch of patches centred on particles.

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
    images, labels : torch.Tensor
        As `cut_batch`.
    """
    items = np.asarray(items, dtype=np.int64).reshape(-1, 2)
    centres = _particle_centres(volumes, items) + shifts
    return cut_batch(volumes, items[:, 0], centres, patch, turns)


def _particle_centres(volumes: Sequence[LabelledVolume], items: np.ndarray) -> np.ndarray:
    """Return the ``(z, y, x)`` voxel of each ``(volume, particle)`` item, ``(n, 3)`` int."""
    return np.array([centres_zyx(volumes[v].xyz[k])[0] for v, k in items], dtype=np.int64).reshape(
        -1, 3
    )


def _epoch_size(n_particles: int, settings: TrainingSettings) -> int:
    """Return the patches of one epoch (particles plus background, or fixed batches)."""
    if settings.steps_per_epoch is not None:
        return settings.steps_per_epoch * settings.batch_size
    return int(math.ceil(n_particles / (1 - settings.background_fraction)))


def epoch_patches(
    volumes: Sequence[LabelledVolume], settings: TrainingSettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return one epoch's patches: volume index, centre ``(z, y, x)`` and turn of each.

    Particle patches are shifted by up to ``shift_fraction`` of a patch per axis;
    background patches (``background_fraction`` of all) are centred on random
    background voxels of volumes drawn in proportion to their particle counts. The
    order of all of them is shuffled.
    """
    items = np.array([(v, k) for v, vol in enumerate(volumes) for k in range(len(vol.xyz))])
    n_total = _epoch_size(len(items), settings)
    n_back = int(round(n_total * settings.background_fraction))
    n_part = n_total - n_back
    picked = rng.permutation(len(items))
    while len(picked) < n_part:  # more patches than particles: cycle the permutations
        picked = np.concatenate([picked, rng.permutation(len(items))])
    chosen = items[picked[:n_part]]
    reach = int(settings.shift_fraction * settings.patch)
    shifts = rng.integers(-reach, reach + 1, size=(n_part, 3))
    centres = [_particle_centres(volumes, chosen) + shifts]
    which = [chosen[:, 0]]
    if n_back:
        counts = np.array([len(v.xyz) for v in volumes], dtype=np.float64)
        back_which = rng.choice(len(volumes), size=n_back, p=counts / counts.sum())
        for v in range(len(volumes)):
            n = int(np.count_nonzero(back_which == v))
            if n:
                centres.append(background_centres(volumes[v].labels, n, rng))
                which.append(np.full(n, v))
    all_which, all_centres = np.concatenate(which), np.concatenate(centres)
    order = rng.permutation(len(all_which))
    turns = rng.random(len(order)) < 0.5 if settings.rotate else np.zeros(len(order), bool)
    return all_which[order], all_centres[order], turns


def _train_epoch(
    net: DeepFinderNet,
    optimizer: torch.optim.Optimizer,
    volumes: Sequence[LabelledVolume],
    settings: TrainingSettings,
    rng: np.random.Generator,
    on_step: Callable[[], None] | None,
) -> float:
    which, centres, turns = epoch_patches(volumes, settings, rng)
    autocast = autocast_context(volumes[0].image.device, settings.precision)
    net.train()
    total, steps = 0.0, 0
    for first in range(0, len(which), settings.batch_size):
        part = slice(first, first + settings.batch_size)
        images, labels = cut_batch(volumes, which[part], centres[part], settings.patch, turns[part])
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


def steps_per_epoch(volumes: Sequence[LabelledVolume], settings: TrainingSettings) -> int:
    """Return the Adam steps of one training epoch on ``volumes``."""
    n = _epoch_size(sum(len(v.xyz) for v in volumes), settings)
    return -(-n // settings.batch_size)


def validation_patches(
    volume: LabelledVolume, settings: TrainingSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Return the validation patches' volume indices (zeros) and centres ``(z, y, x)``.

    At most ``val_patches`` particles, evenly spread over the list, plus background
    centres at the training fraction drawn from a fixed generator: every epoch, run and
    modality validates on the same voxels.
    """
    n = len(volume.xyz)
    if n == 0:
        raise ValueError(f"{volume.name}: no particles to validate on")
    keep = n if settings.val_patches is None else min(n, settings.val_patches)
    rows = np.unique(np.linspace(0, n - 1, keep).round().astype(np.int64))
    centres = [centres_zyx(volume.xyz[rows])]
    n_back = n_background(len(rows), settings.background_fraction)
    if n_back:
        rng = np.random.default_rng(np.random.SeedSequence([len(rows), 0x5EED]))
        centres.append(background_centres(volume.labels, n_back, rng))
    out = np.concatenate(centres).reshape(-1, 3)
    return np.zeros(len(out), np.int64), out


@torch.no_grad()
def validate_picker(
    net: DeepFinderNet, volume: LabelledVolume, settings: TrainingSettings
) -> dict[str, Any]:
    """Return the training loss and per-class Dice over the validation patches.

    The patches are `validation_patches`: centred on the particles (at most
    ``val_patches``) and on fixed background voxels at the training fraction.

    Returns
    -------
    dict
        ``loss`` (float): the settings' loss over all the validation patches
        taken as one batch (Dice from soft counts summed over every patch, plus the
        mean cross-entropy over every voxel for ``dice+ce``); ``dice`` (list of C
        floats, background first).
    """
    autocast = autocast_context(volume.image.device, settings.precision)
    net.eval()
    overlap = size = None
    cross_entropy, n_voxels = 0.0, 0
    which, centres = validation_patches(volume, settings)
    no_turn = np.zeros(len(which), bool)
    for first in range(0, len(which), settings.batch_size):
        part = slice(first, first + settings.batch_size)
        images, labels = cut_batch(
            [volume], which[part], centres[part], settings.patch, no_turn[part]
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
