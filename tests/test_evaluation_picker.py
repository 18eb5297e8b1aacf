"""The DeepFinder-style picker: network shapes, Dice loss, patch sampling, training."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import two_class_tomogram
from faket.evaluation import score_picks
from faket.evaluation.patches import (
    centres_zyx,
    patch_start,
    rotate_about_tilt_axis,
    standardise_patches,
)
from faket.evaluation.segment import segment_tomogram
from faket.evaluation.study import picks_from_labels
from faket.evaluation.training import (
    LabelledVolume,
    TrainingSettings,
    make_picker,
    picker_loss,
    soft_dice_loss,
    train_picker,
    training_batch,
    validate_picker,
)
from faket.evaluation.unet import DeepFinderNet, channel_counts

# --- network -------------------------------------------------------------------------


def _published_parameter_count(n_classes: int) -> int:
    """Weights + biases of the published layer list, counted by hand from the issue."""

    def conv(k: int, c_in: int, c_out: int) -> int:
        return k**3 * c_in * c_out + c_out

    return (
        conv(3, 1, 32) + conv(3, 32, 32)  # level 1
        + conv(3, 32, 48) + conv(3, 48, 48)  # level 2
        + conv(3, 48, 64) + 3 * conv(3, 64, 64)  # bottom: four of 64
        + conv(2, 64, 64)  # up + 2x2x2 of 64
        + conv(3, 64 + 48, 48) + conv(3, 48, 48)  # concat with level 2, two of 48
        + conv(2, 48, 48)  # up + 2x2x2 of 48
        + conv(3, 48 + 32, 32) + conv(3, 32, 32)  # concat with level 1, two of 32
        + conv(1, 32, n_classes)  # 1x1x1 to the classes
    )  # fmt: skip


def test_the_published_network_maps_a_56_cube_to_class_probabilities() -> None:
    net = DeepFinderNet(n_classes=8)
    assert sum(p.numel() for p in net.parameters()) == _published_parameter_count(8)
    patch = torch.randn(1, 1, 56, 56, 56, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = net(patch)
    assert out.shape == (1, 8, 56, 56, 56) and out.dtype == torch.float32
    assert torch.all(out >= 0)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(1, 56, 56, 56), atol=1e-5, rtol=0)


def test_width_multiplier_scales_every_level_and_keeps_the_output_shape() -> None:
    assert channel_counts(1.0) == (32, 48, 64)
    assert channel_counts(0.5) == (16, 24, 32)
    assert channel_counts(0.01) == (1, 1, 1)
    net = DeepFinderNet(3, width=0.25)
    assert net.enc1[0].out_channels == 8 and net.bottom[0].out_channels == 16
    out = net(torch.randn(2, 1, 16, 24, 32))
    assert out.shape == (2, 3, 16, 24, 32)
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.randn(1, 1, 18, 16, 16))
    with pytest.raises(ValueError, match="at least 2 classes"):
        DeepFinderNet(1)


def test_make_picker_weights_depend_on_the_seed_only() -> None:
    a, b, c = make_picker(3, 0.25, seed=1), make_picker(3, 0.25, seed=1), make_picker(3, 0.25, 2)
    for (name, pa), pb, pc in zip(
        a.named_parameters(), b.parameters(), c.parameters(), strict=True
    ):
        assert torch.equal(pa, pb)
        if name.endswith("weight"):
            assert not torch.equal(pa, pc)


# --- loss ----------------------------------------------------------------------------


def _tversky_loss_loop(p: np.ndarray, labels: np.ndarray) -> float:
    """DeepFinder's Tversky loss (alpha = beta = 0.5) with explicit per-voxel sums."""
    total = 0.0
    for c in range(p.shape[1]):
        tp = fp = fn = 0.0
        for index in np.ndindex(labels.shape):
            b, rest = index[0], index[1:]
            prob, truth = p[(b, c, *rest)], float(labels[index] == c)
            tp += prob * truth
            fp += prob * (1 - truth)
            fn += (1 - prob) * truth
        total += 1 - tp / (tp + 0.5 * fp + 0.5 * fn)
    return total


def test_dice_loss_is_the_tversky_loss_of_deepfinder_and_ce_is_added_on_request() -> None:
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 4, 3, 5, generator=generator)
    probabilities = torch.softmax(logits, dim=1)
    labels = torch.randint(0, 3, (2, 4, 3, 5), generator=generator)
    expected = _tversky_loss_loop(probabilities.double().numpy(), labels.numpy())
    # float32 sums of 120 terms and a 1e-6 guard: agreement to 1e-5.
    assert float(soft_dice_loss(probabilities, labels)) == pytest.approx(expected, abs=1e-5)
    assert float(picker_loss(logits, labels, "dice")) == pytest.approx(expected, abs=1e-5)
    # Cross-entropy by hand: mean over voxels of -log p(true class).
    p = probabilities.double().numpy()
    ce = -np.mean([np.log(p[(i[0], labels[i].item(), *i[1:])]) for i in np.ndindex(labels.shape)])
    combined = float(picker_loss(logits.to(torch.bfloat16), labels, "dice+ce"))
    assert combined == pytest.approx(expected + ce, abs=0.05)  # bf16 logits: ~1e-2 relative
    assert float(picker_loss(logits, labels)) == pytest.approx(expected + ce, abs=1e-5)
    with pytest.raises(ValueError, match="unknown loss"):
        picker_loss(logits, labels, "focal")


def test_dice_loss_is_zero_for_a_perfect_prediction_and_high_for_a_wrong_one() -> None:
    labels = torch.zeros(1, 8, 8, 8, dtype=torch.int64)
    labels[0, 2:4, 2:4, 2:4] = 1
    labels[0, 5:7, 5:7, 5:7] = 2
    perfect = torch.nn.functional.one_hot(labels, 4).movedim(-1, 1).float()  # class 3 absent
    assert float(soft_dice_loss(perfect, labels)) == 0.0
    swapped = perfect[:, [0, 2, 1, 3]]
    assert float(soft_dice_loss(swapped, labels)) == pytest.approx(2.0, abs=1e-6)
    # Confident logits of the right class: the combined loss goes to 0 as well.
    assert float(picker_loss(200.0 * perfect, labels, "dice+ce")) == pytest.approx(0, abs=1e-6)


# --- patches -------------------------------------------------------------------------


def _marked_volume(shape: tuple[int, int, int], xyz: np.ndarray) -> LabelledVolume:
    """A volume that is 0 except +(k+1) at particle k's centre, labels likewise."""
    image = torch.zeros(shape)
    labels = torch.zeros(shape, dtype=torch.int64)
    for k, (x, y, z) in enumerate(xyz.astype(int)):
        image[z, y, x] = k + 1
        labels[z, y, x] = k + 1
    return LabelledVolume(image, labels, xyz)


def test_patches_are_centred_on_the_particles_real_x_y_z() -> None:
    # A non-cubic volume and particles whose x, y and z all differ: a swapped axis
    # would put the centre elsewhere (or outside the volume).
    xyz = np.array([[40.0, 9.0, 14.0], [7.0, 30.0, 10.0], [25.0, 20.0, 5.0]])
    volume = _marked_volume((20, 36, 48), xyz)
    np.testing.assert_array_equal(centres_zyx(xyz), [[14, 9, 40], [10, 30, 7], [5, 20, 25]])
    patch = 8
    items = np.array([[0, 0], [0, 1], [0, 2]])
    zero = np.zeros((3, 3), np.int64)
    _, labels = training_batch([volume], items, patch, zero, np.zeros(3, bool))
    for k, (x, y, z) in enumerate(xyz.astype(int)):
        start = patch_start((z, y, x), patch, (20, 36, 48))
        local = (z - start[0], y - start[1], x - start[2])
        assert labels[k][local] == k + 1
        if np.all(start == np.array([z, y, x]) - patch // 2):  # not clamped at a border
            assert labels[k][patch // 2, patch // 2, patch // 2] == k + 1


def test_random_shifts_stay_within_a_quarter_patch_and_the_volume() -> None:
    xyz = np.array([[30.0, 20.0, 12.0]])
    volume = _marked_volume((24, 40, 60), xyz)
    patch = 16
    rng = np.random.default_rng(0)
    shifts = rng.integers(-4, 5, size=(50, 3))
    items = np.zeros((50, 2), np.int64)
    _, labels = training_batch([volume], items, patch, shifts, np.zeros(50, bool))
    for k in range(50):
        where = np.argwhere(labels[k].numpy() == 1)
        assert len(where) == 1  # the particle is inside every shifted patch
        assert np.all(np.abs(where[0] - patch // 2 + shifts[k]) == 0)


def test_rotation_about_the_tilt_axis_maps_z_y_x_to_minus_z_y_minus_x() -> None:
    volume = torch.arange(2 * 3 * 4).reshape(2, 3, 4)
    turned = rotate_about_tilt_axis(volume)
    for z, y, x in np.ndindex(2, 3, 4):
        assert turned[z, y, x] == volume[1 - z, y, 3 - x]
    assert torch.equal(rotate_about_tilt_axis(turned), volume)


def test_each_patch_is_standardised_and_constant_patches_become_zeros() -> None:
    patches = torch.stack([torch.linspace(-3, 9, 64).reshape(4, 4, 4), torch.full((4, 4, 4), 5.0)])
    out = standardise_patches(patches)
    assert float(out[0].mean()) == pytest.approx(0, abs=1e-6)
    assert float(out[0].std(correction=0)) == pytest.approx(1, abs=1e-5)
    assert torch.equal(out[1], torch.zeros(4, 4, 4))


# --- training ------------------------------------------------------------------------


def _synthetic(seed: int = 0, noise: float = 0.1) -> tuple[LabelledVolume, list, np.ndarray]:
    image, mask, occupancy, names, xyz = two_class_tomogram(seed=seed, noise=noise)
    volume = LabelledVolume(torch.from_numpy(image), torch.from_numpy(mask), xyz, "synthetic")
    return volume, names, occupancy


SMALL = TrainingSettings(
    width=0.25, patch=16, batch_size=4, epochs=1, learning_rate=1e-3, precision="fp32"
)


def test_one_adam_step_at_the_published_learning_rate_lowers_the_loss() -> None:
    volume, _, _ = _synthetic()
    net = make_picker(3, 0.25, seed=0)
    images, labels = training_batch(
        [volume], np.array([[0, k] for k in range(4)]), 16, np.zeros((4, 3), int), np.zeros(4, bool)
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.999))
    for kind in ("dice", "dice+ce"):
        before = picker_loss(net.logits(images), labels, kind)
        optimizer.zero_grad()
        before.backward()
        optimizer.step()
        with torch.no_grad():
            after = picker_loss(net.logits(images), labels, kind)
        assert float(after) < float(before.detach())


def test_training_is_deterministic_for_a_seed_and_changes_with_it() -> None:
    volume, _, _ = _synthetic()
    val, _, _ = _synthetic(seed=1)
    settings = replace(SMALL, epochs=2)

    def run(seed: int) -> tuple[list, DeepFinderNet]:
        net = make_picker(3, settings.width, seed)
        return train_picker(net, [volume], val, settings, seed=seed), net

    (log_a, net_a), (log_b, net_b), (log_c, net_c) = run(5), run(5), run(6)
    assert [r["train_loss"] for r in log_a] == [r["train_loss"] for r in log_b]
    assert [r["val_loss"] for r in log_a] == [r["val_loss"] for r in log_b]
    for pa, pb in zip(net_a.parameters(), net_b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(net_a.head.weight, net_c.head.weight)
    assert log_a[-1]["train_loss"] != log_c[-1]["train_loss"]


def test_a_resumed_training_equals_an_uninterrupted_one() -> None:
    volume, _, _ = _synthetic()
    val, _, _ = _synthetic(seed=1)
    two = replace(SMALL, epochs=2)
    straight = make_picker(3, 0.25, seed=0)
    train_picker(straight, [volume], val, two, seed=0)

    saved: dict = {}

    def keep(record: dict, net: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        saved["model"] = {k: v.clone() for k, v in net.state_dict().items()}
        saved["optimizer"] = optimizer.state_dict()

    first = make_picker(3, 0.25, seed=0)
    train_picker(first, [volume], val, SMALL, seed=0, on_epoch=keep)
    resumed = make_picker(3, 0.25, seed=99)
    resumed.load_state_dict(saved["model"])
    records = train_picker(
        resumed, [volume], val, two, seed=0, start_epoch=1, optimizer_state=saved["optimizer"]
    )
    assert [r["epoch"] for r in records] == [2]
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)


def test_validation_reports_a_loss_and_a_dice_per_class() -> None:
    volume, _, _ = _synthetic()
    result = validate_picker(make_picker(3, 0.25, seed=0), volume, SMALL)
    assert len(result["dice"]) == 3 and all(0 <= d <= 1 for d in result["dice"])
    dice_only = validate_picker(make_picker(3, 0.25, seed=0), volume, replace(SMALL, loss="dice"))
    assert dice_only["dice"] == result["dice"]
    assert dice_only["loss"] == pytest.approx(3 - sum(result["dice"]), abs=1e-5)
    assert result["loss"] > dice_only["loss"]  # plus the cross-entropy


@pytest.mark.slow
def test_the_picker_overfits_a_two_class_tomogram_and_finds_its_particles() -> None:
    volume, names, occupancy = _synthetic()
    # 60 epochs of 3 steps at lr 3e-3 reach F1 = 1 (measured: from epoch 50 on).
    settings = replace(SMALL, epochs=60, learning_rate=3e-3)
    net = make_picker(3, settings.width, seed=0)
    log = train_picker(net, [volume], volume, settings, seed=0)
    assert log[-1]["val_loss"] < 0.5 * log[0]["val_loss"]
    labels = segment_tomogram(net, volume.image, patch=16, step=8).numpy()
    classes = [
        {"id": 1, "name": "small", "diameter_a": 40.0},
        {"id": 2, "name": "large", "diameter_a": 80.0},
    ]
    picks = picks_from_labels(labels, classes, voxel_size_a=10.0)
    result = score_picks(
        names,
        volume.xyz,
        occupancy,
        [p.class_name for p in picks],
        np.array([[p.x, p.y, p.z] for p in picks]).reshape(-1, 3),
        class_order=["small", "large"],
    )
    assert result.f1 >= 0.9, (result.f1, result.per_class)
    assert result.macro_f1_real >= 0.9
