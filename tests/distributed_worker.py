"""One rank of a training + pruning run through the Python API, for tests/test_distributed.py.

Run by ``torchrun --nproc_per_node=N tests/distributed_worker.py OUT [--norm bn] [--seed-of-rank-1 S] [--fail-rank R]``
or by plain ``python`` (one rank). Each rank writes ``OUT/rank<r>.pt``: the gradients its optimizer
applied in the first step (after DDP averaged them), its final weights, kept channels, metrics and the
number of training samples its model saw, so that the test compares what every rank holds, not what
rank 0 reports.
"""

import argparse
import sys
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding, load_dataset
from lava_qpsnn.training import distributed
from lava_qpsnn.training.loop import TrainConfig, init_weights, train
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.prune import PruneConfig, prune_and_finetune
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import ModelConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed-of-rank-1", type=int, default=0)
    parser.add_argument("--fail-rank", type=int, default=-1)
    parser.add_argument("--norm", default="none")
    args = parser.parse_args()
    with distributed.session("cpu"):
        rank = distributed.rank()
        config = TrainConfig(epochs=1, batch_size=32, monitor_samples=0, seed=args.seed_of_rank_1 if rank == 1 else 0)
        distributed.check_same("training settings", repr(config))
        encoding = Encoding(time_steps=8)
        train_set, test_set = load_dataset("digits")
        torch.manual_seed(0)
        model = build_model(ModelConfig.from_arch("16-10", train_set.images.shape[1:], 10, norm=args.norm))
        init_weights(model, 1.0)
        quantize_model(model, QuantConfig(4))
        seen = [0]
        model.register_forward_pre_hook(lambda m, inputs: seen.__setitem__(0, seen[0] + len(inputs[0]) * m.training))
        names = {id(p): name for name, p in model.named_parameters()}
        first: dict[str, torch.Tensor] = {}

        def record_first_step(optimizer, args, kwargs):
            if not first:
                params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
                first.update({names[id(p)]: p.grad.detach().clone() for p in params})

        hook = register_optimizer_step_pre_hook(record_first_step)
        train(model, train_set, test_set, encoding, config, progress=False)
        hook.remove()
        if rank == args.fail_rank:
            sys.exit(f"rank {rank}: failing on purpose")
        prune = PruneConfig((0.5,), criterion="svs", finetune_epochs=1)
        net, record, metrics = prune_and_finetune(model, prune, train_set, test_set, encoding, config, progress=False)
        result = {"world": distributed.world_size(), "samples": seen[0], "keeps": record["kept_channels"]}
        result["first_gradients"] = first
        torch.save({**result, "metrics": metrics, "state": net.state_dict()}, args.out / f"rank{rank}.pt")


if __name__ == "__main__":
    main()
