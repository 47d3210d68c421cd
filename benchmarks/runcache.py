"""One JSON file per finished benchmark run, so a long benchmark resumes where it stopped."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path


def cached_run(folder: Path, key: str, run: Callable[..., dict], *args) -> dict:
    """``run(*args)``'s result, stored as ``folder/<key>.json`` the first time and read back afterwards."""
    path = folder / (re.sub(r"[^A-Za-z0-9.+-]+", "_", key) + ".json")
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        result = run(*args)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(path)  # a run killed mid-write leaves no half file
    return json.loads(path.read_text())


def tag(name: str, value: object, usual: object) -> str:
    """``-<name><value>`` for a cache key, or nothing for the ``usual`` value: a setting added to a benchmark
    later leaves the keys of the runs it already stored unchanged."""
    return "" if value == usual else f"-{name}{value}"
