"""``run``: a .net deployed as one Lava Classifier process, on the cpu target and (missing) Loihi 2."""

import subprocess
import sys

import numpy as np
import pytest

from lava_qpsnn.cli import main
from lava_qpsnn.data import encode_test_split, load_dataset
from lava_qpsnn.errors import ConfigError
from lava_qpsnn.lava.deployment import deploy
from lava_qpsnn.lava.run import run_lava
from lava_qpsnn.lava.targets import check_target
from lava_qpsnn.training.loop import classify

SAMPLES = 20


def test_run_on_the_cpu_target_reproduces_eval_lava(mlp_checkpoint, mlp_files, capsys):
    pt, net = mlp_files
    _, test = load_dataset("digits")
    spikes = encode_test_split(test, mlp_checkpoint.encoding)[:SAMPLES]
    result = deploy(net, samples=SAMPLES, samples_per_run=7, progress=False)
    np.testing.assert_array_equal(result.predictions, classify(run_lava(net, spikes, progress=False)))
    np.testing.assert_array_equal(result.labels, test.labels[:SAMPLES])

    assert main(["--no-progress", "eval", str(net), "--backend", "lava", "--samples", str(SAMPLES)]) == 0
    eval_accuracy = capsys.readouterr().out.split("accuracy ")[1].split()[0]
    assert main(["--no-progress", "run", str(pt), str(net), "--samples", str(SAMPLES)]) == 0
    out = capsys.readouterr().out
    assert f"{SAMPLES} test samples in one Classifier run, accuracy {eval_accuracy}" in out
    assert f"{100 * result.accuracy:.2f}%" == eval_accuracy
    assert "agree with the PyTorch fixed-point model on 100.00%" in out


def test_run_loihi2_without_the_extension_stops_at_once(mlp_files, tmp_path):
    missing = tmp_path / "missing.pt"  # were any work done first, this would be the error
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lava_qpsnn",
            "run",
            str(missing),
            str(mlp_files[1]),
            "--target",
            "loihi2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "lava-loihi is not installed" in proc.stderr and proc.stderr.endswith("use the 'cpu' target [--target]\n")


def test_run_bad_input(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.net")]) == 2
    assert "no network file at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["run", str(tmp_path / "x.net"), "--target", "loihi3"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert "--target: invalid choice: 'loihi3' (choose from 'cpu', 'loihi2')" in err
    with pytest.raises(ConfigError, match="unknown target"):
        check_target("gpu")


def test_run_refuses_a_checkpoint_of_another_network_before_running(mlp_files, conv_net, tmp_path, capsys):
    assert main(["--no-progress", "run", str(mlp_files[0]), str(conv_net), "--samples", "5"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "differ: give the checkpoint the network was exported from" in err
    assert main(["--no-progress", "run", str(tmp_path / "missing.pt"), str(conv_net)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "missing.pt" in err


def test_eval_refuses_a_checkpoint_of_another_network(mlp_checkpoint, conv_net):
    from lava_qpsnn.evaluation import evaluate

    with pytest.raises(ConfigError, match=r"checkpoint layers \(64, 32, 10\) and model.net layers"):
        evaluate(conv_net, checkpoint=mlp_checkpoint)
