"""Training options: losses against hand arithmetic, the spiking initialisation, the validation split, augmentation.

That every loss trains a network that runs spike-exact in Lava and the simulator is in
``test_simulate.py``.
"""

import math

import numpy as np
import pytest
import torch

from lava_qpsnn.data import load_dataset, shift_images, split_validation
from lava_qpsnn.errors import ConfigError
from lava_qpsnn.pipeline import train_checkpoint
from lava_qpsnn.training.loop import TrainConfig, _loss_function, init_weights
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.specs import ModelConfig, NeuronConfig

# 2 samples, 3 classes, 4 steps
SPIKES = torch.tensor(
    [
        [[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]],
        [[0, 0, 0, 1], [0, 1, 1, 1], [0, 1, 0, 0]],
    ],
    dtype=torch.float32,
)
LABELS = torch.tensor([0, 2])


def test_ce_count_is_cross_entropy_of_the_spike_counts():
    # counts: sample 0 (2, 1, 0), label 0; sample 1 (1, 3, 1), label 2
    nll0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(1) + 1))
    nll1 = -math.log(math.e / (math.e + math.exp(3) + math.e))
    loss = _loss_function(TrainConfig(loss="ce-count"))
    assert loss(SPIKES, LABELS, 2).item() == pytest.approx((nll0 + nll1) / 2, rel=1e-6)
    # a rank holding sample 1 of the batch of 2 contributes its part of the batch's mean
    assert loss(SPIKES[1:], LABELS[1:], 2).item() == pytest.approx(nll1 / 2, rel=1e-6)


def test_ce_rate_is_the_per_step_cross_entropy_averaged_over_steps_and_samples():
    def nll(values, label):
        return -math.log(math.exp(values[label]) / sum(math.exp(v) for v in values))

    steps = [
        [nll((0, 0, 0), 0), nll((1, 0, 0), 0), nll((1, 1, 0), 0), nll((0, 0, 0), 0)],
        [nll((0, 0, 0), 2), nll((0, 1, 1), 2), nll((0, 1, 0), 2), nll((1, 1, 0), 2)],
    ]
    loss = _loss_function(TrainConfig(loss="ce-rate"))
    assert loss(SPIKES, LABELS, 2).item() == pytest.approx(sum(map(sum, steps)) / 8, rel=1e-6)
    assert loss(SPIKES[:1], LABELS[:1], 2).item() == pytest.approx(sum(steps[0]) / 8, rel=1e-6)


def test_spike_rate_is_slayers():
    from lava.lib.dl import slayer

    expected = slayer.loss.SpikeRate(true_rate=0.5, false_rate=0.05, reduction="sum")(SPIKES, LABELS)
    assert _loss_function(TrainConfig(loss="spike-rate"))(SPIKES, LABELS, 2).item() == expected.item()


def test_bad_train_configs():
    with pytest.raises(ConfigError, match="unknown loss 'mse'"):
        TrainConfig(loss="mse")
    with pytest.raises(ConfigError, match="unknown schedule"):
        TrainConfig(schedule="step")
    with pytest.raises(ConfigError, match="weight decay >= 0"):
        TrainConfig(weight_decay=-0.1)
    with pytest.raises(ConfigError, match="augmentation shift must be >= 0"):
        TrainConfig(augment_shift=-1)


def _translated(image: np.ndarray, down: int, right: int) -> np.ndarray:
    """``image`` (``CHW``) moved by ``down``, ``right`` pixels, pixel by pixel: the oracle of shift_images."""
    out = np.zeros_like(image)
    _, height, width = image.shape
    for row in range(height):
        for col in range(width):
            if 0 <= row - down < height and 0 <= col - right < width:
                out[:, row, col] = image[:, row - down, col - right]
    return out


def test_shift_images_moves_each_image_by_its_own_offset_within_the_limit():
    rng = np.random.default_rng(3)
    images = rng.random((400, 2, 5, 6), dtype=np.float32) + 0.5  # no zero pixel: the fill shows
    shifted = shift_images(images, 2, rng)
    assert shifted.shape == images.shape and shifted.dtype == images.dtype
    offsets = []
    for image, moved in zip(images, shifted, strict=True):
        found = [(d, r) for d in range(-2, 3) for r in range(-2, 3) if np.array_equal(moved, _translated(image, d, r))]
        assert len(found) == 1, "not a translation of its image by at most 2 pixels"
        offsets.append(found[0])
    assert set(offsets) == {(d, r) for d in range(-2, 3) for r in range(-2, 3)}  # all 25 offsets drawn
    again = shift_images(images, 2, np.random.default_rng(3).spawn(1)[0])
    assert not np.array_equal(again, shifted)  # a new draw, new offsets


def test_shift_images_without_a_shift_returns_the_images_and_draws_nothing():
    images = np.ones((3, 1, 4, 4), np.float32)
    rng = np.random.default_rng(0)
    assert shift_images(images, 0, rng) is images
    assert rng.integers(1 << 30) == np.random.default_rng(0).integers(1 << 30)
    with pytest.raises(ConfigError, match="does not fit 4 x 4 images: use 0 .. 3"):
        shift_images(images, 4, rng)


@pytest.mark.parametrize("gain, threshold", [(1.0, 1.0), (2.0, 0.5)])
def test_init_scales_with_gain_threshold_and_fan_in(gain, threshold):
    torch.manual_seed(0)
    net = build_model(ModelConfig.from_arch("8c3-16c3s2-10", (1, 8, 8), 10, neuron=NeuronConfig(threshold=threshold)))
    init_weights(net, gain)  # the conv net's Flatten block has no synapse and is skipped
    fan_ins = [1 * 3 * 3, 8 * 3 * 3, 16 * 4 * 4]
    weights = [b.synapse.weight for b in net.blocks if getattr(b, "synapse", None) is not None]
    for weight, fan_in in zip(weights, fan_ins, strict=True):
        bound = math.sqrt(3) * gain * threshold / math.sqrt(fan_in)  # uniform(-a, a) has std a / sqrt(3)
        assert weight.abs().max() <= bound
        assert weight.abs().max() > 0.9 * bound
        assert weight.std().item() == pytest.approx(gain * threshold / math.sqrt(fan_in), rel=0.15)


def test_validation_split_is_a_fixed_stratified_part_of_the_training_split():
    train, test = load_dataset("digits")
    rest, validation = split_validation(train, 0.2)
    assert len(rest) + len(validation) == len(train) and len(validation) == math.ceil(0.2 * len(train))
    pairs = {(x.tobytes(), int(y)) for x, y in zip(train.images, train.labels, strict=True)}
    seen = {(x.tobytes(), int(y)) for part in (rest, validation) for x, y in zip(part.images, part.labels, strict=True)}
    assert seen == pairs
    assert not {x.tobytes() for x in validation.images} & {x.tobytes() for x in rest.images}
    counts = np.bincount(validation.labels, minlength=10)
    assert counts.min() >= 28 and counts.max() <= 30  # 288 images over 10 classes
    again = split_validation(train, 0.2)[1]
    np.testing.assert_array_equal(again.images, validation.images)
    with pytest.raises(ConfigError, match="validation fraction must be in"):
        split_validation(train, 1.0)


class _Unread:
    """A test split that fails when anything reads it."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was read ({name})")

    def __len__(self):
        raise AssertionError("the test split was read (len)")


@pytest.mark.slow
def test_training_with_a_validation_split_never_reads_the_test_split(monkeypatch):
    import lava_qpsnn.pipeline as experiment

    train, _ = load_dataset("digits")
    monkeypatch.setattr(experiment, "load_dataset", lambda name: (train, _Unread()))
    checkpoint = train_checkpoint(arch="8-10", config=TrainConfig(epochs=1, validation=0.2), progress=False)
    assert set(checkpoint.metrics) == {"train_accuracy", "validation_accuracy", "fixed_point_validation_accuracy"}


def test_training_with_augmentation_trains_on_moved_images_and_records_it(tmp_path, monkeypatch):
    import lava_qpsnn.training.loop as loop
    from lava_qpsnn.cli import main
    from lava_qpsnn.training import load_checkpoint

    encoded = []  # the images of every training batch, as the loop encodes them
    original = loop.encode_images
    monkeypatch.setattr(loop, "encode_images", lambda images, *args: encoded.append(images) or original(images, *args))
    train_set, _ = load_dataset("digits")
    for shift in (0, 1):
        encoded.clear()
        out = tmp_path / f"shift{shift}.pt"
        args = ["train", "--arch", "8-10", "--epochs", "1", "--augment-shift", str(shift), "--out", str(out)]
        assert main([*args, "--no-progress"]) == 0
        assert load_checkpoint(out).training.augment_shift == shift
        batch = encoded[0]
        moved = 0
        for image in batch:  # each is one training image, moved by at most `shift` pixels
            offsets = [
                (d, r)
                for source in train_set.images
                for d in range(-shift, shift + 1)
                for r in range(-shift, shift + 1)
                if np.array_equal(image, _translated(source, d, r))
            ]
            assert offsets, "a trained image is no translation of a training image"
            moved += (0, 0) not in offsets
        assert (moved > 0) == (shift > 0)


@pytest.mark.slow
def test_train_and_prune_commands_with_a_validation_split_never_read_the_test_split(tmp_path, monkeypatch, capsys):
    import lava_qpsnn.pipeline as experiment
    from lava_qpsnn.cli import main
    from lava_qpsnn.training.checkpoint import load_checkpoint

    train, _ = load_dataset("digits")
    monkeypatch.setattr(experiment, "load_dataset", lambda name: (train, _Unread()))
    trained, pruned = tmp_path / "t.pt", tmp_path / "p.pt"
    common = ["--no-progress"]
    train_args = ["train", "--arch", "8-10", "--epochs", "1", "--validation", "0.2"]
    assert main([*common, *train_args, "--out", str(trained)]) == 0
    assert "validation accuracy" in capsys.readouterr().out
    args = ["prune", str(trained), "--prune", "0.5", "--finetune-epochs", "1"]  # the checkpoint's split
    assert main([*common, *args, "--out", str(pruned)]) == 0
    out = capsys.readouterr().out
    assert "validation accuracy unpruned" in out and "test accuracy" not in out
    metrics = load_checkpoint(pruned).metrics
    assert metrics["unpruned_validation_accuracy"] == load_checkpoint(trained).metrics["validation_accuracy"]
    assert not any("test" in name for name in metrics)
    with pytest.raises(SystemExit) as stop:
        main([*common, "train", "--validation", "1", "--out", str(tmp_path / "x.pt")])
    assert stop.value.code == 2
    assert "expected a fraction in (0, 1)" in capsys.readouterr().err


# --- train --init: a checkpoint's network trained further ---


@pytest.fixture(scope="module")
def initial(tmp_path_factory):
    """A small direct-encoded float network and a 4-bit pruned one trained from it, as files."""
    from lava_qpsnn.cli import main

    folder = tmp_path_factory.mktemp("init")
    base = ["--arch", "6c3s2-16-10", "--encoding", "direct", "--payload-bits", "4", "--time-steps", "6", "--seed", "3"]
    assert main(["--no-progress", "train", *base, "--epochs", "1", "--out", str(folder / "float.pt")]) == 0
    small = ["--init", str(folder / "float.pt"), "--epochs", "0", "--bits", "4", "--prune", "0.5"]
    assert main(["--no-progress", "train", *small, "--finetune-epochs", "1", "--out", str(folder / "small.pt")]) == 0
    return folder


def test_init_starts_from_the_checkpoints_weights_data_and_encoding(initial, tmp_path, capsys):
    from lava_qpsnn.cli import main
    from lava_qpsnn.training.checkpoint import load_checkpoint

    out = tmp_path / "same.pt"
    assert (
        main(["--no-progress", "train", "--init", str(initial / "float.pt"), "--epochs", "0", "--out", str(out)]) == 0
    )
    before, after = load_checkpoint(initial / "float.pt"), load_checkpoint(out)
    assert (after.model, after.dataset, after.encoding) == (before.model, before.dataset, before.encoding)
    assert after.state_dict.keys() == before.state_dict.keys()
    assert all(torch.equal(after.state_dict[k], before.state_dict[k]) for k in before.state_dict)
    longer = tmp_path / "longer.pt"
    assert (
        main(["--no-progress", "train", "--init", str(out), "--epochs", "0", "--time-steps", "8", "--out", str(longer)])
        == 0
    )
    assert load_checkpoint(longer).encoding == type(before.encoding)(8, 3, "direct", 4)  # its seed kept
    reseeded = tmp_path / "reseeded.pt"
    assert (
        main(["--no-progress", "train", "--init", str(out), "--epochs", "0", "--seed", "5", "--out", str(reseeded)])
        == 0
    )
    assert load_checkpoint(reseeded).encoding.seed == 5
    small = load_checkpoint(initial / "small.pt")
    assert small.quant.bits == 4 and small.pruning["criterion"] == "svs" and small.model.widths == (3, 8, 10)
    kept = tmp_path / "kept.pt"
    assert (
        main(["--no-progress", "train", "--init", str(initial / "small.pt"), "--epochs", "1", "--out", str(kept)]) == 0
    )
    again = load_checkpoint(kept)
    assert (again.quant, again.pruning, again.model) == (small.quant, small.pruning, small.model)


@pytest.mark.parametrize(
    "source, options, message",
    [
        (
            "float.pt",
            ["--arch", "conv", "--threshold", "0.5"],
            "--arch, --threshold describe a new network, but --init",
        ),
        ("float.pt", ["--norm", "bn"], "--norm describes a new network, but --init trains the checkpoint's own"),
        ("small.pt", ["--bits", "2"], "the initial network is already quantized (4 bits, rescaw): train it further"),
        (
            "small.pt",
            ["--prune", "0.5"],
            "the initial network is already pruned (svs, ratios [0.5, 0.5]): train it further",
        ),
        ("float.pt", ["--dataset", "mnist"], "takes 1x8x8 images of 10 classes, the data set has 1x28x28 images"),
    ],
)
def test_init_refuses_what_contradicts_its_checkpoint_in_one_line(initial, source, options, message, train_error):
    assert message in train_error(["--init", str(initial / source), *options])
