"""Resumable runs, the device choice and the per-epoch training subset.

A resumed run is checked against the same run never stopped (its weights, bit for bit, and
its metrics); runs are stopped by raising right after a state was saved, as a kill would.
"""

import contextlib
import sys

import numpy as np
import pytest
import torch

from lava_qpsnn.cli import main as qpsnn_main
from lava_qpsnn.data import Encoding, load_dataset
from lava_qpsnn.errors import ConfigError
from lava_qpsnn.pipeline import train_checkpoint
from lava_qpsnn.training.checkpoint import load_checkpoint
from lava_qpsnn.training.device import resolve_device
from lava_qpsnn.training.loop import TrainConfig, monitor_subset
from lava_qpsnn.training.prune import PruneConfig
from lava_qpsnn.training.quantize import QuantConfig
from lava_qpsnn.training.resume import RunState


class Stopped(Exception):
    """Stands for a kill right after the run state was written."""


@contextlib.contextmanager
def stop_after_saves(monkeypatch, count):
    """Raise :class:`Stopped` right after the ``count``-th save of the run state."""
    original, saves = RunState.save, []

    def save(self, stage, epoch_state):
        original(self, stage, epoch_state)
        saves.append(stage)
        if len(saves) == count:
            raise Stopped

    with monkeypatch.context() as patch:
        patch.setattr(RunState, "save", save)
        with pytest.raises(Stopped):
            yield saves


def assert_same_checkpoint(a, b):
    assert a.metrics == b.metrics
    assert a.state_dict.keys() == b.state_dict.keys()
    for name in a.state_dict:
        assert torch.equal(a.state_dict[name], b.state_dict[name]), name


RUNS = {  # settings, and how many states the run saves (one per epoch of training and of fine-tuning)
    "mlp": (dict(arch="16-10", config=TrainConfig(epochs=3, batch_size=64)), 3),
    "bn-4bit-pruned-2-steps": (
        dict(
            arch="16-10",
            norm="bn",
            config=TrainConfig(epochs=2, batch_size=64),
            quant=QuantConfig(4),
            prune=PruneConfig((0.5,), "svs", finetune_epochs=2, steps=2, calibration_samples=64),
        ),
        4,  # train 2, finetune-1 1, finetune-2 1
    ),
}


@pytest.fixture(scope="module")
def uninterrupted():
    return {
        name: train_checkpoint(**settings, encoding=Encoding(time_steps=4), progress=False)
        for name, (settings, _) in RUNS.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNS)
def test_a_run_stopped_after_any_epoch_resumes_to_the_same_weights_and_metrics(
    name, uninterrupted, tmp_path, monkeypatch
):
    settings, saves = RUNS[name]
    kwargs = dict(**settings, encoding=Encoding(time_steps=4), progress=False)
    for stop in range(1, saves):
        state = tmp_path / f"stop{stop}.partial"
        with stop_after_saves(monkeypatch, stop):
            train_checkpoint(**kwargs, state=state)
        assert state.is_file()
        resumed = train_checkpoint(**kwargs, state=state)
        assert_same_checkpoint(resumed, uninterrupted[name])


@pytest.mark.slow
def test_resuming_after_every_epoch_of_a_pruned_run_in_turn(uninterrupted, tmp_path, monkeypatch):
    """Stopped after every epoch, each time resumed from the previous stop: still the same result."""
    settings, saves = RUNS["bn-4bit-pruned-2-steps"]
    kwargs = dict(**settings, encoding=Encoding(time_steps=4), progress=False)
    state, stages = tmp_path / "run.partial", []
    for _ in range(saves - 1):
        with stop_after_saves(monkeypatch, 1) as saved:
            train_checkpoint(**kwargs, state=state)
        stages += saved
    assert stages == ["train", "train", "finetune-1"]
    assert_same_checkpoint(train_checkpoint(**kwargs, state=state), uninterrupted["bn-4bit-pruned-2-steps"])


def test_a_state_from_other_settings_is_refused_naming_the_difference(tmp_path, monkeypatch):
    state = tmp_path / "run.partial"
    kwargs = dict(arch="8-10", encoding=Encoding(time_steps=4), progress=False)
    with stop_after_saves(monkeypatch, 1):
        train_checkpoint(**kwargs, config=TrainConfig(epochs=2), state=state)
    with pytest.raises(ConfigError, match=r"run with train\.epochs=2, this one has train\.epochs=3") as error:
        train_checkpoint(**kwargs, config=TrainConfig(epochs=3), state=state)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match=r"model\.layers"):
        train_checkpoint(**{**kwargs, "arch": "9-10"}, config=TrainConfig(epochs=2), state=state)


def _train(out, *options):
    args = ["--no-progress", "train", "--epochs", "2", "--arch", "8-10", "--time-steps", "4", "--out", str(out)]
    return qpsnn_main([*args, *options])


@pytest.mark.slow
def test_cli_resume_continues_a_stopped_train_and_removes_its_state(tmp_path, monkeypatch, capsys):
    reference, out = tmp_path / "reference.pt", tmp_path / "m.pt"
    assert _train(reference) == 0
    partial = tmp_path / "m.pt.partial"
    with stop_after_saves(monkeypatch, 1):
        _train(out)
    assert partial.is_file() and not out.exists()  # no output until the run is complete
    capsys.readouterr()
    assert _train(out) == 2  # a saved run is neither lost nor silently restarted
    err = capsys.readouterr().err.strip()
    assert "m.pt.partial holds an interrupted run: pass --resume" in err and "\n" not in err
    assert _train(out, "--epochs", "3", "--resume") == 2
    assert "train.epochs=2" in capsys.readouterr().err
    assert _train(out, "--resume") == 0
    assert out.is_file() and not partial.exists()
    assert_same_checkpoint(load_checkpoint(out), load_checkpoint(reference))


@pytest.mark.slow
def test_epoch_metrics_come_from_a_fixed_training_subset_and_the_test_split_is_read_once(tmp_path, monkeypatch):
    train_module = sys.modules["lava_qpsnn.training.loop"]  # the package's name 'train' is the function
    train_set, test_set = load_dataset("digits")
    encoded = []
    original = train_module.encode_test_split
    monkeypatch.setattr(
        train_module, "encode_test_split", lambda data, enc: encoded.append(len(data)) or original(data, enc)
    )
    state = tmp_path / "run.partial"
    with stop_after_saves(monkeypatch, 3):  # the run saves after each of its 3 epochs: stop after the last
        train_checkpoint(
            arch="8-10",
            encoding=Encoding(time_steps=4),
            config=TrainConfig(epochs=3, monitor_samples=100),
            progress=False,
            state=state,
        )
    assert encoded == [100]  # the subset, encoded once; the test split not yet
    history = torch.load(state, weights_only=True)["epoch_state"]["history"]
    assert len(history) == 3 and all(set(h) == {"train_accuracy", "monitor_accuracy"} for h in history)
    subset = monitor_subset(train_set, 100)
    assert {x.tobytes() for x in subset.images} <= {x.tobytes() for x in train_set.images}
    assert len({x.tobytes() for x in subset.images}) > 90  # (digits holds a few duplicate images)
    np.testing.assert_array_equal(monitor_subset(train_set, 100).labels, subset.labels)
    with pytest.raises(ConfigError, match="monitor samples must be >= 0"):
        TrainConfig(monitor_samples=-1)


def test_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="PyTorch sees no CUDA GPU here; use 'cpu'"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("command", ["train", "prune", "eval"])
def test_cuda_without_a_gpu_is_a_one_line_error_before_any_work(command, tmp_path, capsys, monkeypatch, mlp_files):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    pt, net = mlp_files
    out = tmp_path / "out.pt"
    args = {
        "train": ["train", "--out", str(out)],
        "prune": ["prune", str(pt), "--prune", "0.5", "--out", str(out)],
        "eval": ["eval", str(pt), str(net)],
    }[command]
    assert qpsnn_main([*args, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lava_qpsnn: error: device 'cuda': PyTorch sees no CUDA GPU here; use 'cpu' (or 'auto') [--device]"
    assert not out.exists()


@pytest.mark.slow
def test_cli_prune_resumes_and_refuses_a_state_of_another_checkpoint(tmp_path, monkeypatch, capsys, mlp_files):
    trained, _ = mlp_files
    args = ["--no-progress", "prune", str(trained), "--prune", "0.5", "--finetune-epochs", "2"]
    args += ["--calibration-samples", "64"]
    reference, out = tmp_path / "reference.pt", tmp_path / "pruned.pt"
    assert qpsnn_main([*args, "--out", str(reference)]) == 0
    with stop_after_saves(monkeypatch, 1) as saved:
        qpsnn_main([*args, "--out", str(out)])
    assert saved == ["finetune-1"] and not out.exists()
    other = tmp_path / "other.pt"
    assert _train(other) == 0
    capsys.readouterr()
    args_other = [other if a == str(trained) else a for a in args]
    assert qpsnn_main([*map(str, args_other), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pruned.pt.partial is a run with source=" in err and "\n" not in err
    assert qpsnn_main([*args, "--out", str(out), "--resume"]) == 0
    assert_same_checkpoint(load_checkpoint(out), load_checkpoint(reference))
    assert not (tmp_path / "pruned.pt.partial").exists()


@pytest.mark.slow
def test_the_per_epoch_subset_changes_nothing_in_training():
    def run(monitor_samples):
        config = TrainConfig(epochs=2, batch_size=64, monitor_samples=monitor_samples)
        return train_checkpoint(arch="8-10", norm="bn", encoding=Encoding(time_steps=4), config=config, progress=False)

    a, b = run(0), run(300)
    assert a.metrics == b.metrics
    assert all(torch.equal(a.state_dict[name], b.state_dict[name]) for name in a.state_dict)
