"""Training across processes started by ``torchrun``: one process group, a shard of the data per rank.

``torchrun --nproc_per_node=N -m lava_qpsnn train ...`` starts N copies of the command with
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment; :func:`session` joins them in
a process group (gloo on the CPU, nccl on GPUs, one GPU per local rank). Without torchrun there
is one rank, and every function here does nothing or returns its input: the code that calls
them is the single-process code.

How the work is shared, chosen so that N ranks compute what one process computes with the
same global batch and seed (up to the order of floating-point sums):

- every rank draws the same shuffle and the same rate-coded spikes for a global batch, and
  runs its contiguous share of it (:func:`share`); a rank's loss is its samples' part of the
  whole batch's loss times N, so that DistributedDataParallel's average of the ranks'
  gradients is the gradient of the whole batch;
- evaluation and pruning scores run batch ``i`` on rank ``i mod N`` and sum counts and
  scores over ranks (:func:`my_batches`, :func:`sum_over_ranks`), so every rank gets the same
  accuracy and prunes exactly the same channels;
- BatchNorm normalises with the statistics of the whole global batch (:func:`batch_moments`);
- only rank 0 shows progress, prints, and writes files (:func:`is_main`).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from ..data import load_dataset
from ..errors import ConfigError
from .device import resolve_device

__all__ = [
    "ranks",
    "session",
    "rank",
    "world_size",
    "is_main",
    "share",
    "my_batches",
    "sum_over_ranks",
    "check_same",
    "wrap",
    "batch_moments",
    "node_leader_first",
    "launched_by_torchrun",
]

T = TypeVar("T")

SLAYER_STATES = ("current_state", "voltage_state")  # per-sample neuron state buffers of slayer's CUBA neuron
TIMEOUT = datetime.timedelta(minutes=10)  # a rank that stops answering fails the others, it does not hang them


def world_size() -> int:
    """Number of ranks training together (1 without torchrun)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's rank, 0 without torchrun."""
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this rank prints and writes files (rank 0)."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """Whether torchrun started this process as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextlib.contextmanager
def session(device: str | torch.device) -> Iterator[torch.device]:
    """Join torchrun's process group for the duration of a command; yield the device this rank uses.

    ``device`` is the command's ``--device``, already resolved: on ``cuda`` each rank takes
    GPU ``LOCAL_RANK`` and the group uses nccl; on the CPU, gloo. Without torchrun, yields
    ``device`` and starts nothing.
    """
    device = torch.device(device)
    if not launched_by_torchrun() or dist.is_initialized():
        yield device
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    try:
        yield device
    finally:
        dist.destroy_process_group()


def share(index: np.ndarray) -> np.ndarray:
    """This rank's contiguous share of a global batch's sample indices (``np.array_split``)."""
    return np.array_split(index, world_size())[rank()]


def my_batches(batches: Iterable[T]) -> Iterator[T]:
    """Batch ``i`` of ``batches`` if ``i mod N`` is this rank.

    Every rank still draws (encodes) all batches and runs only its own: simple, and cheap next
    to running the network; the evaluation and calibration sets are small.
    """
    n, me = world_size(), rank()
    for i, batch in enumerate(batches):
        if i % n == me:
            yield batch


def sum_over_ranks(value: torch.Tensor | float | int) -> torch.Tensor | float | int:
    """``value`` summed over all ranks (in float64 for numbers), the same on every rank."""
    if not dist.is_initialized():
        return value
    if isinstance(value, torch.Tensor):
        total = value.detach().to(_group_device(), torch.float64, copy=True)
        dist.all_reduce(total)
        return total.to(value.device, value.dtype)
    total = torch.tensor(float(value), dtype=torch.float64, device=_group_device())
    dist.all_reduce(total)
    return type(value)(total.item())


def check_same(what: str, value: str, fix: str | None = None) -> None:
    """Refuse to go on unless every rank holds the same ``value`` (e.g. its options), before any work.

    The error names the ranks that differ and ``fix`` (default: give every rank the same ``what``).
    """
    if not dist.is_initialized():
        return
    digest = hashlib.sha256(value.encode()).digest()[:8]
    mine = torch.tensor(list(digest), dtype=torch.int64, device=_group_device())
    gathered = [torch.empty_like(mine) for _ in range(world_size())]
    dist.all_gather(gathered, mine)
    differ = [r for r, other in enumerate(gathered) if not torch.equal(other, gathered[0])]
    if differ:
        raise ConfigError(f"ranks {differ} got other {what} than rank 0: {fix or f'give every rank the same {what}'}")


@contextlib.contextmanager
def node_leader_first() -> Iterator[None]:
    """Local rank 0 of each machine runs the block before the other ranks do (e.g. filling a data cache).

    So that ranks never download or write the same cache file at once; the others then find it.
    """
    if not dist.is_initialized():
        yield
        return
    leader = int(os.environ.get("LOCAL_RANK", "0")) == 0
    if not leader:
        dist.barrier()
    yield
    if leader:
        dist.barrier()


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in DistributedDataParallel when ranks train together (weights and buffers broadcast from rank 0).

    slayer's neuron states (``current_state``, ``voltage_state``) are left out of the
    broadcast: they are shaped by each rank's own share of the batch.
    """
    if not dist.is_initialized():
        return model
    local = [name for name, _ in model.named_buffers() if name.rsplit(".", 1)[-1] in SLAYER_STATES]
    DDP._set_params_and_buffers_to_ignore_for_model(model, local)
    where = next(model.parameters()).device
    return DDP(model, device_ids=[where] if where.type == "cuda" else None)


def batch_moments(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-channel mean, biased variance and count of ``values`` (``N x C x ...``, channels on dim 1) over the
    whole global batch.

    In one process: ``values``' own moments. Across ranks: sums and sums of squares are added
    over ranks, with gradients flowing back to every rank (a SyncBatchNorm that also runs on
    gloo), so a BatchNorm normalises with the statistics one process would compute.
    """
    dims, count = [0, *range(2, values.dim())], values.numel() // values.shape[1]
    if not dist.is_initialized():  # two passes of sums (torch.var over these dims is several times slower)
        mean = values.sum(dims) / count
        centered = values - mean.reshape(1, -1, *[1] * (values.dim() - 2))
        return mean, (centered * centered).sum(dims) / count, count
    wide = values.double()  # E[x^2] - E[x]^2 in float64: no cancellation at float32 precision
    local = torch.tensor([float(count)], dtype=torch.float64, device=values.device)
    totals = _SumOverRanks.apply(torch.cat([wide.sum(dims), (wide * wide).sum(dims), local]))
    channels = values.shape[1]
    n = totals[-1]
    mean = totals[:channels] / n
    var = (totals[channels : 2 * channels] / n - mean * mean).clamp_min(0)
    return mean.to(values.dtype), var.to(values.dtype), int(n.item())


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) with its gradient: each rank's input feeds every rank's sum, so its gradient is the
    sum of the output gradients of all ranks."""

    @staticmethod
    def forward(ctx, values: torch.Tensor) -> torch.Tensor:
        total = values.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def _group_device() -> torch.device:
    """Where collectives of the current backend take tensors: the rank's GPU for nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextlib.contextmanager
def ranks(device: str, options: dict[str, str], state: Path, dataset: str) -> Iterator[str]:
    """A command's work under torchrun: join the other ranks; yields this rank's device (its own GPU on ``cuda``).

    Every rank must have been given the same ``options`` and see the same saved run ``state`` (or
    none); each machine's first rank loads ``dataset`` before the others (one writer per data
    cache); only rank 0 prints (the others' stdout is discarded). Without torchrun, nothing changes.
    """
    with session(resolve_device(device)) as mine:
        if world_size() > 1:  # one process: no state to hash, no data set to load twice
            check_same("options", json.dumps(options, sort_keys=True))
            saved = hashlib.sha256(state.read_bytes()).hexdigest() if state.exists() else "none"
            shared = f"every rank must see the same {state} to resume: put the output on a file system all ranks share"
            check_same("saved run state", saved, fix=shared)
            with node_leader_first():
                load_dataset(dataset)
        with contextlib.ExitStack() as stack:
            if not is_main():
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
            yield str(mine)
