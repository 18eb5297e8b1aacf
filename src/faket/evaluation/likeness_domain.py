"""The domain classifier of the likeness measures, and an exact ROC AUC.

:func:`domain_auc` trains a small CNN to tell patches of one tilt-series from patches of
another and reports its ROC AUC on held-out tilts (:func:`roc_auc`, the rank formula):
0.5 means indistinguishable, 1 fully separable.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faket.evaluation._tilt_series import (
    TiltSeriesLike,
    check_pair,
    smallest_side,
    standardise_tilts,
)

__all__ = ["DomainAuc", "default_patch", "domain_auc", "roc_auc"]


# ---------------------------------------------------------------------------- ROC AUC


def _midranks(values: np.ndarray) -> np.ndarray:
    """Return the 1-based ranks of ``values``, ties given the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    first = np.empty(ordered.size, dtype=bool)
    first[:1] = True
    first[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, ordered.size))
    group = np.cumsum(first) - 1
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = (starts + (counts + 1) / 2.0)[group]
    return ranks


def roc_auc(scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> float:
    """Return the area under the ROC curve, exactly, by the rank-sum (Mann-Whitney) formula.

    ``AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with ``R_pos`` the sum of the
    positives' ranks among all scores, ties given their mean rank: the probability that a
    random positive scores above a random negative, ties counted one half.

    Parameters
    ----------
    scores : numpy.ndarray or torch.Tensor
        ``(n,)`` finite scores; higher means "more likely positive".
    labels : numpy.ndarray or torch.Tensor
        ``(n,)`` 1/True for positives, 0/False for negatives; both must occur.

    Returns
    -------
    float
        In ``[0, 1]``; 0.5 for scores that do not tell the classes apart.
    """
    s = np.asarray(scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores)
    y = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    s, y = s.astype(np.float64).ravel(), y.ravel()
    if s.size != y.size:
        raise ValueError(f"scores has {s.size} values and labels {y.size}; they must agree")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1 or booleans")
    if not np.isfinite(s).all():
        raise ValueError("scores has NaN or Inf values")
    positive = y.astype(bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("labels must hold both positives and negatives")
    rank_sum = float(_midranks(s)[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


# ------------------------------------------------------------------ domain classifier


@dataclass(frozen=True)
class DomainAuc:
    """The held-out result of a domain classifier between tilt-series a and b.

    Attributes
    ----------
    auc : float
        ROC AUC on the held-out tilts with a as the positive class (not folded: below 0.5
        is chance, not likeness; see `domain_auc`).
    n_test_a, n_test_b : int
        Held-out patches of a and of b.
    patch : int
        Patch side in pixels.
    steps : int
        Training steps.
    train_loss : float
        Mean binary cross-entropy over the last tenth of the steps (0.693 = chance).
    """

    auc: float
    n_test_a: int
    n_test_b: int
    patch: int
    steps: int
    train_loss: float


def default_patch(smallest_side: int) -> int:
    """Return the classifier's patch side for images whose shortest side is given.

    16 px from 32 px images up, else half the side rounded down to a multiple of 4, at
    least 8 px (three stride-2 convolutions leave 1 x 1). Small patches see the texture
    (noise, CTF ripples, local grey values) and little of the particles' layout: on the
    64 px demo, two references of different specimens score an AUC of about 0.75 with
    16 px patches and 0.9 with 32 px ones, while the modalities stay near 1 with both.
    """
    if smallest_side < 8:
        raise ValueError(f"images must be at least 8 pixels on a side, got {smallest_side}")
    return max(8, min(16, (smallest_side // 2) // 4 * 4))


class _DomainNet(nn.Module):
    """A 3x3 convolution at full resolution, three strided ones, global average pooling.

    Channels ``width, 2 width, 4 width, 4 width``; the receptive field is 17 px, so the
    net sees texture (noise, CTF ripples, grey-value shape) more than the layout of
    particles. A step on 64 patches of 16 x 16 costs about 40 M multiply-adds.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(4 * width, 4 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, p, p)`` patches -> ``(batch,)`` logits (positive: a)."""
        return self.head(self.features(x)).squeeze(1)


@contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run torch's CPU ops on one thread inside the block (restored after it).

    The classifier's operations are tiny: splitting each over threads costs more than it
    saves (about 7x slower on 2 busy cores), and one thread makes the result independent
    of the machine's core count.
    """
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _gather(
    stack: torch.Tensor, t: torch.Tensor, y: torch.Tensor, x: torch.Tensor, patch: int
) -> torch.Tensor:
    """Cut ``(n, 1, patch, patch)`` patches at tilts ``t`` and corners ``(y, x)``."""
    offsets = torch.arange(patch, device=stack.device)
    t, y, x = (v.to(stack.device) for v in (t, y, x))
    rows = (y[:, None] + offsets)[:, :, None]
    cols = (x[:, None] + offsets)[:, None, :]
    return stack[t[:, None, None], rows, cols].unsqueeze(1)


def _grid_starts(n: int, patch: int) -> list[int]:
    """Return patch starts every ``patch // 2`` pixels that cover ``n`` (last one flush)."""
    if patch >= n:
        return [0]
    step = max(patch // 2, 1)
    n_pos = math.ceil((n - patch) / step) + 1
    return [round(i * (n - patch) / (n_pos - 1)) for i in range(n_pos)]


def _test_positions(
    stack: torch.Tensor, tilts: torch.Tensor, patch: int, limit: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the held-out patch corners: a half-overlapping grid, at most ``limit``."""
    ys = torch.tensor(_grid_starts(stack.shape[1], patch))
    xs = torch.tensor(_grid_starts(stack.shape[2], patch))
    t, y, x = torch.meshgrid(tilts, ys, xs, indexing="ij")
    t, y, x = t.flatten(), y.flatten(), x.flatten()
    if t.numel() > limit:
        keep = torch.randperm(t.numel(), generator=generator)[:limit].sort().values
        t, y, x = t[keep], y[keep], x[keep]
    return t, y, x


def _train_and_score(
    sa: torch.Tensor,
    sb: torch.Tensor,
    p: int,
    steps: int,
    batch_size: int,
    learning_rate: float,
    width: int,
    max_test_patches: int,
    seed: int,
) -> tuple[list[torch.Tensor], list[int], list[float]]:
    """Train the classifier on the even tilts; return held-out logits, counts, last losses."""
    device = sa.device
    n_tilts = sa.shape[0]
    train = torch.arange(0, n_tilts, 2)
    test = torch.arange(1, n_tilts, 2)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _DomainNet(width)
    net = net.to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
    target = torch.cat([torch.ones(batch_size), torch.zeros(batch_size)]).to(device)

    def draw(stack: torch.Tensor) -> torch.Tensor:
        t = train[torch.randint(train.numel(), (batch_size,), generator=generator)]
        y = torch.randint(stack.shape[1] - p + 1, (batch_size,), generator=generator)
        x = torch.randint(stack.shape[2] - p + 1, (batch_size,), generator=generator)
        return _gather(stack, t, y, x, p)

    losses = []
    net.train()
    for _ in range(steps):
        batch = torch.cat([draw(sa), draw(sb)])
        loss = F.binary_cross_entropy_with_logits(net(batch), target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    tail = losses[-max(1, steps // 10) :]

    net.eval()
    scores = []
    counts = []
    with torch.no_grad():
        for stack in (sa, sb):
            t, y, x = _test_positions(stack, test, p, max_test_patches, generator)
            logits = [
                net(_gather(stack, t[i : i + 512], y[i : i + 512], x[i : i + 512], p))
                for i in range(0, t.numel(), 512)
            ]
            scores.append(torch.cat(logits).cpu().to(torch.float64))
            counts.append(t.numel())
    return scores, counts, tail


def domain_auc(
    a: TiltSeriesLike,
    b: TiltSeriesLike,
    *,
    patch: int | None = None,
    steps: int = 300,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    width: int = 8,
    max_test_patches: int = 2048,
    seed: int = 0,
) -> DomainAuc:
    """Train a small CNN to tell patches of a from patches of b; return its held-out AUC.

    Each tilt is standardised on its own (not each patch, so grey-value level and
    contrast still count). The even tilts (0, 2, ...) train, the odd tilts are held out,
    for both series. Each step draws ``batch_size`` patches of a and as many of b at
    random tilts and positions, and takes one Adam step on the binary cross-entropy.
    The held-out patches lie on a half-overlapping grid over each odd tilt (a fixed
    random subset of ``max_test_patches`` per series if there are more), and the
    classifier's logits give the ROC AUC by `roc_auc`, with a as the positive class.

    The AUC is reported as it is, not folded to ``max(AUC, 1 - AUC)``: a classifier that
    learnt nothing that generalises scores 0.5 on average, above or below; folding would
    push that chance level up (by about the AUC's standard error) and make two
    indistinguishable series look separable. Values clearly below 0.5 would mean the
    classifier learnt an inverted rule, which does not happen with held-out tilts of the
    same series; read them as 0.5.

    Parameters
    ----------
    a, b : torch.Tensor or numpy.ndarray
        ``(n_tilts, ny, nx)`` tilt-series with the same number of tilts (at least 2);
        image sizes may differ. The classifier runs on a's device.
    patch : int, optional
        Patch side in pixels (8 to the shortest image side); default `default_patch`.
    steps : int
        Training steps (the fixed budget: 300 take about 3 s on 2 CPU cores with 16 px patches).
    batch_size : int
        Patches of each series per step.
    learning_rate : float
        Adam's step size.
    width : int
        Channels of the first convolution (then ``2, 4, 4 * width``).
    max_test_patches : int
        Held-out patches per series at most.
    seed : int
        Seeds the weights and every draw: the same inputs and seed give the same AUC on
        the same machine and device.

    Returns
    -------
    DomainAuc
    """
    ta, tb = check_pair(a, b)
    if ta.shape[0] < 2:
        raise ValueError("the domain classifier needs at least 2 tilts (even train, odd test)")
    for name, value, low in (
        ("steps", steps, 1),
        ("batch_size", batch_size, 1),
        ("width", width, 1),
        ("max_test_patches", max_test_patches, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    side = smallest_side(ta, tb)
    p = default_patch(side) if patch is None else patch
    if isinstance(p, bool) or not isinstance(p, int) or not 8 <= p <= side:
        raise ValueError(
            f"patch must be an integer from 8 to the shortest side ({side}), got {p!r}"
        )
    device = ta.device
    sa = standardise_tilts(ta).to(device=device, dtype=torch.float32)
    sb = standardise_tilts(tb).to(device=device, dtype=torch.float32)
    with _one_cpu_thread(device):
        scores, counts, tail = _train_and_score(
            sa, sb, p, steps, batch_size, learning_rate, width, max_test_patches, seed
        )
    labels = np.concatenate([np.ones(counts[0]), np.zeros(counts[1])])
    auc = roc_auc(torch.cat(scores).numpy(), labels)
    return DomainAuc(
        auc=auc,
        n_test_a=counts[0],
        n_test_b=counts[1],
        patch=p,
        steps=steps,
        train_loss=float(np.mean(tail)),
    )
