"""The command lines, called in-process through ``main(argv)``, plus real ``python -m`` runs."""

import re
import subprocess
import sys

import pytest

from lava_qpsnn.cli import main as qpsnn_main
from netx_export.cli import main as export_main


def _one_line_error(capsys, prefix):
    err = capsys.readouterr().err.strip()
    assert err.startswith(prefix) and "\n" not in err, err
    return err


def test_train_export_eval(tmp_path, capsys):
    pt, net = tmp_path / "m.pt", tmp_path / "m.net"
    args = ["--no-progress", "train", "--epochs", "1", "--arch", "16-10", "--time-steps", "8", "--out", str(pt)]
    assert qpsnn_main(args) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert export_main([str(pt)]) == 0
    out = capsys.readouterr().out
    assert "packed weights" in out and "dense" in out and net.exists()
    assert qpsnn_main(["--no-progress", "eval", str(pt), str(net), "--samples", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 test samples" in out and "output spikes identical on 100.00%" in out


def test_train_refuses_to_overwrite_before_training(tmp_path, capsys):
    pt = tmp_path / "m.pt"
    pt.write_text("keep me")
    assert qpsnn_main(["train", "--out", str(pt)]) == 2
    _one_line_error(capsys, "lava_qpsnn: error: ")
    assert pt.read_text() == "keep me"


def test_export_errors(tmp_path, capsys, mlp_files):
    assert export_main([str(tmp_path / "missing.pt")]) == 2
    assert "no checkpoint at" in _one_line_error(capsys, "netx_export: error: ")
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(b"\x00garbage")
    assert export_main([str(foreign)]) == 2
    assert "not a readable" in _one_line_error(capsys, "netx_export: error: ")
    pt, net = mlp_files
    assert export_main([str(pt), "-o", str(net)]) == 2
    assert _one_line_error(capsys, "netx_export: error: ").endswith(
        "exists: allow replacing it (force) or choose another name [--force]"
    )


def test_eval_errors(tmp_path, capsys, mlp_files):
    assert qpsnn_main(["eval", str(tmp_path / "none.net")]) == 2
    assert "no network file" in _one_line_error(capsys, "lava_qpsnn: error: ")
    pt, net = mlp_files
    with pytest.raises(SystemExit) as exit_info:  # argparse's own check
        qpsnn_main(["eval", str(net), "--samples", "0"])
    assert exit_info.value.code == 2
    assert "--samples: expected a number of samples >= 1" in _one_line_error(capsys, "python -m lava_qpsnn eval: error")
    with pytest.raises(SystemExit) as exit_info:
        qpsnn_main(["eval", str(net), "--eval-batch-size", "0"])
    assert exit_info.value.code == 2
    assert _one_line_error(capsys, "python -m lava_qpsnn eval: error: ").endswith(
        "--eval-batch-size: expected a whole number >= 1, got '0'; see --help"
    )
    with pytest.raises(SystemExit) as exit_info:  # the former spelling names the new one
        qpsnn_main(["eval", str(net), "--batch-size", "8"])
    assert exit_info.value.code == 2
    assert "--batch-size is now --eval-batch-size" in _one_line_error(capsys, "python -m lava_qpsnn eval: error: ")
    assert qpsnn_main(["eval", str(pt)]) == 2  # a checkpoint is not a network
    assert "not an HDF5 file" in _one_line_error(capsys, "lava_qpsnn: error: ")


@pytest.mark.parametrize("module", ["lava_qpsnn", "netx_export"])
def test_python_dash_m_reports_bad_input_in_one_line(module, tmp_path):
    args = ["eval", str(tmp_path / "x.net")] if module == "lava_qpsnn" else [str(tmp_path / "x.pt")]
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    "options, message",
    [
        (["--bits", "9"], "bits must be an integer in 1..8 (Loihi 2 synapses hold up to 8 bits), got 9 [--bits]"),
        (["--bits", "0"], "bits must be an integer in 1..8 (Loihi 2 synapses hold up to 8 bits), got 0 [--bits]"),
        (
            ["--bits", "4", "--first-last-bits", "12"],
            "first_last_bits must be an integer in 1..8 (Loihi 2 synapses hold up to 8 bits), got 12 "
            "[--first-last-bits]",
        ),
        (["--bits", "4", "--quantizer", "lsq"], "invalid choice: 'lsq'"),
        (["--bits", "4", "--first-last-bits", "all"], "expected 1..8 or 'same'"),
        (["--quantizer", "baseline"], "--quantizer only apply with --bits"),
        (["--first-last-bits", "same", "--gamma", "max"], "--first-last-bits, --gamma only apply with --bits"),
        (["--grid", "symmetric"], "--grid only apply with --bits"),
        (["--bits", "1", "--grid", "symmetric"], "use the zero-free grid at 1 bit [--grid]"),
        (["--bits", "4", "--grid", "log"], "invalid choice: 'log'"),
        (["--loss", "mse"], "invalid choice: 'mse'"),
        (["--schedule", "step"], "invalid choice: 'step'"),
        (["--weight-decay", "-1"], "need weight decay >= 0"),
        (["--init-gain", "0"], "init gain > 0"),
        (["--threshold", "0"], "neuron threshold must be a finite number > 0"),
        (["--voltage-decay", "1.5"], "neuron voltage_decay must be in [0, 1], got 1.5"),
        (["--current-decay", "-0.1"], "neuron current_decay must be in [0, 1], got -0.1"),
    ],
)
def test_bad_quantization_options(options, message, train_error):
    assert message in train_error(options)


def test_quantized_train_records_its_settings(tmp_path, capsys):
    from lava_qpsnn.training.checkpoint import load_checkpoint

    pt = tmp_path / "q.pt"
    args = ["--no-progress", "train", "--epochs", "1", "--arch", "16-10", "--time-steps", "8", "--out", str(pt)]
    # with slayer's initial weights, one epoch leaves every first-layer |W| below 0.5, which the ternary baseline
    # grid rounds to 0: an all-zero layer netx cannot build (the export refuses it); a larger initialisation does not
    quantized = ["--bits", "2", "--quantizer", "baseline", "--first-last-bits", "same", "--init-gain", "4"]
    assert qpsnn_main([*args, *quantized]) == 0
    out = capsys.readouterr().out
    assert "fixed-point network as exported" in out and "weight bits per conv/dense layer: [2, 2]" in out
    quant = load_checkpoint(pt).quant
    assert (quant.bits, quant.quantizer, quant.first_last_bits, quant.grid) == (2, "baseline", None, "symmetric")
    assert export_main([str(pt)]) == 0
    assert "16.0x smaller" in capsys.readouterr().out  # 2 bits vs 32


def test_train_options_reach_the_checkpoint(tmp_path, capsys):
    from lava_qpsnn.training.checkpoint import load_checkpoint

    pt = tmp_path / "q.pt"
    options = ["--loss", "spike-rate", "--schedule", "constant", "--weight-decay", "0.01", "--init-gain", "2"]
    options += ["--threshold", "1.25", "--tau-grad", "0.02", "--scale-grad", "2", "--bits", "4", "--grid", "zero-free"]
    options += ["--current-decay", "0.25", "--voltage-decay", "0.125", "--learn-decays"]
    args = ["--no-progress", "train", "--epochs", "1", "--arch", "8-10", "--time-steps", "6", "--out", str(pt)]
    assert qpsnn_main([*args, *options]) == 0
    checkpoint = load_checkpoint(pt)
    neuron = checkpoint.model.neuron
    assert (neuron.threshold, neuron.tau_grad, neuron.scale_grad) == (1.25, 0.02, 2.0)
    assert (neuron.current_decay, neuron.voltage_decay, neuron.requires_grad) == (0.25, 0.125, True)
    assert checkpoint.quant.grid == "zero-free"
    # slayer keeps decays as integers out of 4096: 0.25 -> 1024, 0.125 -> 512 before training moved them
    decays = {k: float(v) for k, v in checkpoint.state_dict.items() if k.endswith("_decay")}
    assert len(decays) == 4 and all(0 <= d <= 4096 for d in decays.values())
    assert {decays["blocks.0.neuron.current_decay"], decays["blocks.0.neuron.voltage_decay"]} - {1024.0, 512.0}


@pytest.mark.slow
def test_demo_compares_float_and_qpsnn_and_checks_every_spike_in_lava(tmp_path, capsys):
    args = ["--no-progress", "demo", "--epochs", "2", "--finetune-epochs", "1", "--time-steps", "8", "--samples", "12"]
    assert qpsnn_main([*args, "--arch", "16-16-10", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["float.net", "float.pt", "qpsnn.net", "qpsnn.pt"]
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in out.splitlines())}
    assert rows["hidden widths"] == ["16-16", "8-8"]  # 50% of each hidden layer pruned and removed
    assert rows["weight bits per layer (as stored)"][1] == "8-4-8"  # first and last layers stay 8-bit
    # after pruning 64*8 + 8*8 + 8*10 weights, the hidden layer's at 4 bits: 512 + 32 + 80 bytes
    float_kb, qpsnn_kb = rows["packed weight memory"]
    assert qpsnn_kb == f"{624 / 1024:.2f} KB" and float(float_kb.split()[0]) > 624 / 1024
    assert rows["identical output spikes Lava vs PyTorch"] == ["100.00%"]
    assert rows["identical output spikes simulator vs PyTorch"] == ["100.00%"]
    assert rows["prediction agreement Classifier vs PyTorch"] == ["100.00%"]
    assert rows["Classifier process accuracy, time (12 samples, one run)"][0].endswith(" s")
    assert rows["Loihi 2 neuro cores, chips (ESTIMATE)"] == ["3, 1", "3, 1"]  # three synapse layers, one core each
    assert all(value.endswith(" nJ") for value in rows["energy per inference (ESTIMATE, Loihi 1 figures)"])


@pytest.mark.parametrize("option", ["--lr", "--weight-decay", "--threshold", "--tau-grad", "--init-gain"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_usage_errors(option, value, train_error):
    assert f"argument {option}: expected a finite number, got '{value}'" in train_error([f"{option}={value}"])


def test_negative_seed_is_refused_before_training(train_error):
    assert "seed must be an integer >= 0, got -1" in train_error(["--seed", "-1"])


def test_ctrl_c_in_process_is_one_line_and_status_130(tmp_path, capsys, monkeypatch):
    import lava_qpsnn.cli.train

    def interrupted(**_):
        raise KeyboardInterrupt

    monkeypatch.setattr(lava_qpsnn.cli.train, "train_checkpoint", interrupted)
    assert qpsnn_main(["--no-progress", "train", "--epochs", "1", "--out", str(tmp_path / "m.pt")]) == 130
    assert _one_line_error(capsys, "lava_qpsnn: interrupted") == "lava_qpsnn: interrupted"
    assert not (tmp_path / "m.pt").exists()


def test_ctrl_c_during_training_leaves_no_file(tmp_path):
    """A real SIGINT while a long training runs: one line on stderr, status 130, no checkpoint."""
    import signal
    import time

    out = tmp_path / "m.pt"
    code = (  # SIGINT as in a terminal, even where the test runner was started with it ignored (a background job)
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from lava_qpsnn.cli import main; print('ready', flush=True); "
        f"sys.exit(main(['--no-progress', 'train', '--epochs', '1000', '--out', {str(out)!r}]))"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline() == "ready\n"
        time.sleep(3)  # inside main(): loading data or training
        worker.send_signal(signal.SIGINT)
        _, err = worker.communicate(timeout=120)
    finally:
        worker.kill()  # a failed run must not leave a 1000-epoch training behind
    assert worker.returncode == 130 and err.strip() == "lava_qpsnn: interrupted", err
    assert not out.exists() and not list(tmp_path.glob(".m.pt.*"))


def test_a_closed_output_pipe_ends_quietly(tmp_path, mlp_files):
    """``python -m netx_export model.pt | head -0``: no traceback, SIGPIPE's status 141."""
    pt, _ = mlp_files
    command = [sys.executable, "-m", "netx_export", str(pt), "-o", str(tmp_path / "m.net")]
    worker = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker.stdout.close()  # the reader is gone before the table is printed
    err = worker.stderr.read()
    assert worker.wait(timeout=300) == 141 and err == "", err


def test_demo_refuses_bad_qpsnn_settings_before_any_work(tmp_path, capsys):
    assert qpsnn_main(["demo", "--bits", "9", "--out", str(tmp_path / "demo")]) == 2
    assert _one_line_error(capsys, "lava_qpsnn: error: ").endswith("got 9 [--bits]")
    assert not (tmp_path / "demo").exists()
