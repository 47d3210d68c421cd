"""Sizing Lava runs: the rate measured on a short run, the default sample count, and the commands using them.

No test here starts a long Lava run: the runs are stand-ins on a fake clock (the simulator
gives their spikes, so the commands' results stay real).
"""

import functools

import numpy as np
import pytest

import lava_qpsnn.cli.evaluate as eval_command
import lava_qpsnn.evaluation as evaluate_module
import lava_qpsnn.lava.deployment as deploy_module
import lava_qpsnn.lava.run as lava_run_module
import lava_qpsnn.lava.sizing as sizing
from lava_qpsnn.cli import main
from lava_qpsnn.errors import ConfigError
from lava_qpsnn.lava.deployment import Deployment
from lava_qpsnn.lava.sizing import BUDGET_SECONDS, Rate, format_duration, measure_rate, sized_samples
from lava_qpsnn.sim import simulate
from lava_qpsnn.training.loop import classify

STARTUP, PER_SAMPLE = 3.0, 0.5  # the stand-in Lava: 3 s to build and start, then 0.5 s per sample


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fake_run(clock: FakeClock, calls: list[int]):
    """``run(samples, chunk, on_chunk)`` that takes STARTUP + PER_SAMPLE per sample on ``clock``."""

    def run(samples: int, chunk: int, on_chunk) -> None:
        calls.append(samples)
        clock.now += STARTUP
        for start in range(0, samples, chunk):
            done = min(start + chunk, samples)
            clock.now += (done - start) * PER_SAMPLE
            on_chunk(done)

    return run


def test_the_rate_excludes_the_startup():
    clock, calls = FakeClock(), []
    rate = measure_rate(fake_run(clock, calls), 6, chunk=2, clock=clock)
    assert calls == [6]
    assert rate == Rate(startup=STARTUP, per_sample=PER_SAMPLE, samples=6)
    assert rate.seconds(100) == STARTUP + 100 * PER_SAMPLE


def test_a_one_chunk_measurement_charges_the_startup_to_its_samples():
    clock = FakeClock()
    rate = measure_rate(fake_run(clock, []), 2, chunk=2, clock=clock)
    assert rate == Rate(startup=0.0, per_sample=(STARTUP + 2 * PER_SAMPLE) / 2, samples=2)


def test_a_run_that_reports_nothing_is_an_error():
    with pytest.raises(ConfigError, match="no samples"):
        measure_rate(lambda samples, chunk, on_chunk: None, 4)


def test_the_default_count_fits_the_budget():
    rate = Rate(startup=10.0, per_sample=2.0, samples=6)
    assert sized_samples(10_000, rate, budget=150) == 70  # (150 - 10) / 2
    assert rate.seconds(70) <= 150 < rate.seconds(71)
    assert sized_samples(50, rate, budget=150) == 50  # all fit
    assert sized_samples(10_000, Rate(startup=200.0, per_sample=2.0, samples=6), budget=150) == 1  # at least one
    assert sized_samples(10_000, Rate(startup=0.0, per_sample=0.0, samples=6)) == 10_000


def test_durations_read_naturally():
    assert [format_duration(s) for s in (42, 150, 5000, 7200)] == ["42 s", "2.5 min", "83.3 min", "2.0 h"]


@pytest.fixture
def fake_lava(monkeypatch):
    """Lava runs replaced by the simulator on a fake clock; returns the sample counts of every run."""
    clock, calls = FakeClock(), []
    monkeypatch.setattr(sizing, "measure_rate", functools.partial(measure_rate, clock=clock))

    def run_lava(net_path, spikes, *, samples_per_run=50, progress=True, on_chunk=None):
        fake_run(clock, calls)(len(spikes), samples_per_run, on_chunk or (lambda done: None))
        return simulate(net_path, spikes)

    monkeypatch.setattr(lava_run_module, "run_lava", run_lava)
    monkeypatch.setattr(evaluate_module, "run_lava", run_lava)
    monkeypatch.setattr(eval_command, "run_lava", run_lava)
    return calls


def test_eval_lava_runs_what_fits_the_budget(fake_lava, mlp_files, capsys):
    pt, net = mlp_files
    expected = int((BUDGET_SECONDS - STARTUP) / PER_SAMPLE)  # 294 of the 360 digits test samples
    assert main(["--no-progress", "eval", str(pt), str(net), "--backend", "lava"]) == 0
    out = capsys.readouterr().out
    assert fake_lava == [6, expected]  # the measuring run, then the sized one
    assert f"running the first {expected} of 360 test samples, about 2.5 min" in out
    assert "(as many as fit the 2.5 min default; --samples all: about 3.0 min)" in out  # 3 s + 360 * 0.5 s
    assert f"lava: {expected} test samples" in out and "output spikes identical on 100.00%" in out


def test_eval_lava_all_and_n(fake_lava, mlp_files, capsys):
    net = mlp_files[1]
    assert main(["--no-progress", "eval", str(net), "--backend", "lava", "--samples", "all"]) == 0
    out = capsys.readouterr().out
    assert "running all 360 test samples, about 3.0 min (--samples all)" in out and "lava: 360 test samples" in out
    assert main(["--no-progress", "eval", str(net), "--backend", "lava", "--samples", "9"]) == 0
    out = capsys.readouterr().out
    assert fake_lava == [6, 360, 9]  # a given count is not measured first
    assert "lava: 9 test samples" in out and "running" not in out


def test_eval_sim_all_runs_everything(mlp_files, capsys):
    assert main(["--no-progress", "eval", str(mlp_files[1]), "--samples", "all"]) == 0
    assert "sim: 360 test samples" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["0", "-2", "some", "1.5"])
def test_bad_sample_counts_are_usage_errors(value, mlp_files, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(mlp_files[1]), "--samples", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "a number of samples >= 1 or 'all'" in err


def test_run_is_sized_the_same_way(monkeypatch, mlp_files, capsys):
    clock, calls = FakeClock(), []
    monkeypatch.setattr(sizing, "measure_rate", functools.partial(measure_rate, clock=clock))

    def deploy(net_path, *, target="cpu", samples=None, samples_per_run=50, progress=True, on_chunk=None):
        fake_run(clock, calls)(samples, samples_per_run, on_chunk or (lambda done: None))
        labels = np.zeros(samples, np.int64)
        return Deployment(target, classify(np.zeros((samples, 10, 4))), labels, 1.0)

    monkeypatch.setattr(deploy_module, "deploy", deploy)
    monkeypatch.setattr(eval_command, "deploy", deploy)
    assert main(["--no-progress", "run", str(mlp_files[1])]) == 0
    out = capsys.readouterr().out
    assert calls == [6, 294] and "294 test samples in one Classifier run" in out
