"""Training under torchrun: 2 CPU processes (gloo) against one process with the same global batch and seed.

What each rank ends with is written by the rank itself (``distributed_worker.py``), so the
comparison does not rest on what rank 0 reports.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lava_qpsnn.training.checkpoint import load_checkpoint

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
WORKER = str(Path(__file__).with_name("distributed_worker.py"))
# The ranks add gradients and BatchNorm sums in another order (the sums in float64) than one process:
# rounding differences, which Adam's normalised steps and the running BatchNorm statistics carry
# through training. They scale with a tensor's largest value, not with each element (a running mean
# of 0.056 beside channels of 0.14 differed by 1.7e-4 on one machine, by less on another): each
# tensor may differ by 2e-3 of its largest magnitude.
SCALE_TOLERANCE = 2e-3


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def _ranks(command: list[str], folder: Path, *options: str) -> list[dict]:
    folder.mkdir()
    result = _run([*command, WORKER, str(folder), *options], folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return [torch.load(path) for path in sorted(folder.glob("rank*.pt"))]


@pytest.mark.slow
def test_two_ranks_train_and_prune_as_one_process(tmp_path):
    """4-bit weights, 50% SVS pruning, fine-tuning, and BatchNorm, whose statistics span both ranks.

    Without BatchNorm the code path is the same minus the statistics sums; it is left out to keep the suite short.
    """
    (one,) = _ranks([sys.executable], tmp_path / "one", "--norm", "bn")
    first, second = _ranks(TORCHRUN, tmp_path / "two", "--norm", "bn")
    # both ranks trained, each on its half of every batch
    assert (one["world"], first["world"], second["world"]) == (1, 2, 2)
    assert first["samples"] > 0 and second["samples"] > 0
    assert first["samples"] + second["samples"] == one["samples"]
    # the first step applies the gradients of one process's loss: the ranks' halves add up to the whole batch.
    # AdamW is nearly invariant to a constant gradient scale: a wrong per-rank loss factor reaches the trained
    # state only through Adam's epsilon, here it is a relative error of 0.5 or more. The ranks' other summation
    # order differs by ~1e-6 of a tensor's largest value (7e-7 on one machine).
    gradients = one["first_gradients"]
    assert gradients.keys() == first["first_gradients"].keys() and any(g.abs().max() > 0 for g in gradients.values())
    for name, value in gradients.items():
        atol = 1e-4 * value.abs().max().item()
        for rank in (first, second):
            torch.testing.assert_close(
                rank["first_gradients"][name], value, atol=atol, rtol=0, msg=lambda t, at=name: f"{at} gradient: {t}"
            )
    # every rank ends with the same network, the same pruned channels and the same figures
    assert first["keeps"] == second["keeps"] and first["metrics"] == second["metrics"]
    assert first["state"].keys() == second["state"].keys()
    for name, value in first["state"].items():
        assert torch.equal(value, second["state"][name]), name
    # and it is the network one process trains
    assert first["keeps"] == one["keeps"]
    for name, value in one["state"].items():
        atol = 1e-6 + SCALE_TOLERANCE * value.abs().max().item() if value.is_floating_point() else 0
        torch.testing.assert_close(first["state"][name], value, atol=atol, rtol=0, msg=lambda t, at=name: f"{at}: {t}")
    for name, value in one["metrics"].items():
        assert first["metrics"][name] == pytest.approx(value, abs=0.01), name


@pytest.mark.slow
def test_torchrun_command_line_writes_one_checkpoint(tmp_path):
    result = _run(
        [
            *TORCHRUN,
            *("-m", "lava_qpsnn", "train", "--dataset", "digits", "--arch", "16-10", "--epochs", "1"),
            *("--time-steps", "4", "--bits", "4", "--prune", "0.5", "--criterion", "svs", "--finetune-epochs", "1"),
            *("--out", "model.pt"),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no second file, no partial, no state
    assert result.stdout.count("saved model.pt") == 1 and result.stdout.count("pruned (svs") == 1
    assert result.stderr.count("finetune-1:   0%") == 1  # one progress bar: rank 0's
    checkpoint = load_checkpoint(tmp_path / "model.pt")
    assert checkpoint.pruning["criterion"] == "svs" and checkpoint.model.widths[0] == 8


@pytest.mark.slow
def test_a_failing_rank_stops_the_others(tmp_path):
    result = _run([*TORCHRUN, WORKER, str(tmp_path), "--fail-rank", "1"], tmp_path)
    assert result.returncode != 0 and "rank 1: failing on purpose" in result.stderr
    assert not list(tmp_path.glob("rank*.pt"))  # rank 0 was stopped, not left waiting to finish


@pytest.mark.slow
def test_ranks_given_other_settings_are_refused_before_training(tmp_path):
    result = _run([*TORCHRUN, WORKER, str(tmp_path), "--seed-of-rank-1", "5"], tmp_path)
    assert result.returncode != 0
    assert "ranks [1] got other training settings than rank 0: give every rank the same" in result.stderr


def test_single_process_commands_refuse_to_start_under_torchrun(tmp_path, monkeypatch, capsys):
    from lava_qpsnn.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets in each of 2 processes
    assert main(["report", str(tmp_path / "model.net")]) == 2
    expected = "lava_qpsnn: error: only train and prune run under torchrun: run this command alone\n"
    assert capsys.readouterr().err == expected
