"""Resumable runs: the state of a run saved after every epoch, so an interrupted run continues.

A run is a sequence of named stages: ``train``, then with pruning ``prune-1``, ``finetune-1``,
``prune-2``, ... A stage that finished before the last save is skipped on resume and its
recorded result used; the stage that was running continues after its last completed epoch
with the saved model, optimizer, learning-rate schedule, random generators (torch, numpy's
global one and the training generator that shuffles and encodes) and epoch metrics; the
stages after it run as usual. The resumed run therefore ends with the same weights and
metrics, bit for bit, as one that was never stopped.

The file (``model.pt.partial`` beside ``--out`` on the command line) is plain data read with
``torch.load(..., weights_only=True)``, written atomically, and records the run's settings:
a file from other settings is refused, naming the first setting that differs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError
from ..files import atomic_output

__all__ = ["RunState", "state_path", "capture_rng", "restore_rng", "settings_of"]

FORMAT = "lava-qpsnn-run-state"
VERSION = 1
T = TypeVar("T")


def state_path(out: str | os.PathLike) -> Path:
    """Where the command line keeps the state of a run writing ``out``: ``out`` + ``.partial``."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def settings_of(**parts: Any) -> dict[str, Any]:
    """Flat ``{"train.epochs": 3, ...}`` of dataclasses, dicts and plain values: what must match to resume."""
    flat: dict[str, Any] = {}

    def add(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, dict):
            for key, item in value.items():
                add(f"{prefix}.{key}", item)
        else:
            flat[prefix] = list(value) if isinstance(value, tuple) else value

    for name, part in parts.items():
        add(name, part)
    return flat


class RunState:
    """The saved progress of one run; ``path=None`` saves nothing (a run that cannot be resumed).

    If ``path`` exists it is loaded, and must have been written with the same ``settings``.
    """

    def __init__(self, path: str | os.PathLike | None = None, settings: dict[str, Any] | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.settings = dict(settings or {})
        self.results: dict[str, Any] = {}
        self._stage: str | None = None
        self._epoch_state: dict | None = None
        if self.path is not None and self.path.exists():
            self._load()

    @property
    def resumed(self) -> bool:
        """Whether a saved run was loaded."""
        return self._stage is not None

    def stage(self, name: str, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``work(*args, **kwargs)``, or its recorded result if stage ``name`` finished before the last save."""
        if name not in self.results:
            self.results[name] = work(*args, **kwargs)
        return self.results[name]

    def epoch_state(self, stage: str) -> dict | None:
        """What :meth:`save` last saved in ``stage``, if that stage was the one running; else None."""
        return self._epoch_state if stage == self._stage else None

    def save(self, stage: str, epoch_state: dict) -> None:
        """Atomically record ``stage``'s ``epoch_state`` (plain data, CPU tensors) and the finished stages."""
        if self.path is None:
            return
        data = {
            "format": FORMAT,
            "version": VERSION,
            "settings": self.settings,
            "results": self.results,
            "stage": stage,
            "epoch_state": epoch_state,
        }
        with atomic_output(self.path, force=True) as tmp:
            torch.save(data, tmp)

    def remove(self) -> None:
        """Delete the file (once the run's output is safely written)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def _load(self) -> None:
        path = self.path
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a damaged or foreign file
            reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{path} is not a readable run state ({reason}): delete it to start over") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise CheckpointError(f"{path} is not a lava-qpsnn run state of version {VERSION}: delete it to start over")
        saved = data["settings"]
        for key in sorted(set(saved) | set(self.settings)):
            if saved.get(key) != self.settings.get(key):
                raise ConfigError(
                    f"{path} is a run with {key}={saved.get(key)!r}, this one has {key}={self.settings.get(key)!r}: "
                    f"resume with the same options, or delete {path.name} to start over"
                )
        self.results = dict(data["results"])
        self._stage, self._epoch_state = data["stage"], data["epoch_state"]


def capture_rng(generator: np.random.Generator) -> dict:
    """The state of every random generator training draws from, as plain data."""
    legacy = np.random.get_state(legacy=False)  # its key array is kept as a tensor: weights_only loads those
    key = torch.from_numpy(legacy["state"]["key"].astype(np.int64))
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {**legacy, "state": {**legacy["state"], "key": key}},
        "generator": generator.bit_generator.state,
    }


def restore_rng(state: dict, generator: np.random.Generator) -> None:
    """Put every generator back to what :func:`capture_rng` recorded."""
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    legacy = state["numpy"]
    key = legacy["state"]["key"].cpu().numpy().astype(np.uint32)
    np.random.set_state({**legacy, "state": {**legacy["state"], "key": key}})
    generator.bit_generator.state = state["generator"]
