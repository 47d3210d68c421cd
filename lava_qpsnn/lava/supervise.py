"""Lava runs that end: any failure inside Lava's runtime stops all of Lava's processes and raises one line.

Why lava-nc 0.10.0 hangs instead (``lava/magma/runtime``): every ProcessModel and RuntimeService
is a forked process (``SystemProcess``), and they wait for one another on channels with no
timeout. When one of them raises, it records the exception and ends; the others wait for ever:

- a model that fails to build (``Runtime.initialize``, e.g. a Var whose value does not fit
  its shape): Lava prints the traceback to stdout and raises, but the processes that did build
  wait for their first command. ``Runtime.stop`` sends no STOP to a runtime that never started
  and then joins every process (``MultiProcessing.stop``): for ever.
- a model that raises while running (``run_spk``): the models it sends to block in ``recv()``
  on its port, their RuntimeService blocks collecting their answers, and ``Runtime`` waits for
  the service, so the ERROR message Lava means to forward is never sent. ``stop()`` and
  ``Process.__del__`` then wait on a STOP answer that never comes.

Lava's own error handling cannot be reached from inside, so runs are supervised from outside:
:func:`run_supervised` and :func:`stop_supervised` make Lava's call in a daemon thread while
the calling thread watches Lava's processes. When one of them has ended during a run, or the
call raised (a compile error too), every Lava process is ended, the runtime is marked stopped
(so Lava's ``stop()`` and ``__del__`` wait for nothing) and one :class:`LavaRuntimeError` line
names the model that failed and its error. Ctrl-C ends Lava's processes the same way. Lava's
stdout (its traceback print) is kept out of the command's output while a call runs.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import LavaRuntimeError

if TYPE_CHECKING:
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.run_conditions import AbstractRunCondition
    from lava.magma.core.run_configs import RunConfig

__all__ = ["run_supervised", "stop_supervised", "one_line"]

POLL_SECONDS = 0.05  # how often Lava's processes are looked at during a call
STOP_SECONDS = 30.0  # a healthy stop takes well under a second; beyond this its processes are ended
GRACE_SECONDS = 5.0  # after SIGTERM, before SIGKILL; and what a failed call gets to finish its own print
SETTLE_SECONDS = 2.0  # what Lava's own error path gets, once one of its processes ended, to reach its end


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` of an exception on one line, at most ``limit`` characters."""
    text = " ".join(str(exc).split()) or "no message"
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}"


def run_supervised(process: AbstractProcess, condition: AbstractRunCondition, run_cfg: RunConfig, *, name: str) -> None:
    """``process.run(condition, run_cfg)`` that ends in :class:`LavaRuntimeError` wherever Lava fails.

    On failure (or Ctrl-C) every Lava process of the run has ended before this returns.
    """
    _supervised(lambda: process.run(condition=condition, run_cfg=run_cfg), process, name, "run")


def stop_supervised(process: AbstractProcess, *, name: str, timeout: float = STOP_SECONDS) -> None:
    """``process.stop()`` that cannot hang: with one of Lava's processes already ended, or a stop that fails
    or takes over ``timeout`` s, the processes are ended instead (and the stop's failure raised)."""
    if _ended_actor(process) is not None:
        _end_all(process)
        return
    _supervised(process.stop, process, name, "stop", timeout=timeout)


def _supervised(call: Callable[[], None], process: AbstractProcess, name: str, what: str, timeout: float = 0) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the watching thread
            errors.append(exc)

    worker = threading.Thread(target=work, name=f"lava {what} of {name}", daemon=True)
    start = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            worker.start()
            while worker.is_alive():
                worker.join(POLL_SECONDS)
                ended = _ended_actor(process) if what == "run" else None
                # while Lava starts its processes, a failed build ends the call itself once all have started
                if ended is not None and (_initialized(process) or time.monotonic() - start > GRACE_SECONDS):
                    worker.join(SETTLE_SECONDS)  # where Lava's own error path is reached, it joins every process
                    raise LavaRuntimeError(f"Lava {what} of {name} failed {_describe(process, errors)}")
                if timeout and time.monotonic() - start > timeout:
                    raise LavaRuntimeError(f"Lava {what} of {name} took over {timeout:.0f} s; its processes were ended")
            if errors:
                if isinstance(errors[0], KeyboardInterrupt):
                    raise errors[0]
                raise LavaRuntimeError(f"Lava {what} of {name} failed {_describe(process, errors)}") from errors[0]
        except BaseException:
            _end_all(process)
            worker.join(GRACE_SECONDS)  # a failed initialize prints its traceback: into the redirect
            raise


def _actors(process: AbstractProcess) -> list:
    """Lava's forked processes of ``process``'s runtime (none before it was built)."""
    runtime = getattr(process, "runtime", None)
    infrastructure = getattr(runtime, "_messaging_infrastructure", None)
    return list(getattr(infrastructure, "actors", ()))


def _has_ended(actor) -> bool:
    try:
        return actor._is_done or not actor.is_alive()
    except ValueError:  # closed by Lava's own join meanwhile
        return True


def _ended_actor(process: AbstractProcess):
    """The first of Lava's processes that has ended, or None (during a run none ends: they end on STOP)."""
    return next((actor for actor in _actors(process) if _has_ended(actor)), None)


def _initialized(process: AbstractProcess) -> bool:
    """True once Lava's runtime has started every one of its processes."""
    return bool(getattr(process.runtime, "_is_initialized", False))


def _recorded(actor) -> BaseException | None:
    """The exception one of Lava's processes sent before it ended (Lava's ``SystemProcess``), or None."""
    try:
        record = actor.exception  # (exception, traceback text)
    except Exception as exc:  # an exception that cannot be unpickled here
        return exc
    return record[0] if record else None


def _describe(process: AbstractProcess, errors: list[BaseException]) -> str:
    """``in <model> (<error>)`` of the Lava process that failed, else ``(<error of the call>)``.

    The failed process is the first that recorded an exception. It may end after others that its
    RuntimeService stopped, so it is waited for a moment.
    """
    deadline = time.monotonic() + GRACE_SECONDS
    while process.runtime is not None:
        actors = _actors(process)
        failed = next((a for a in actors if _has_ended(a) and _recorded(a) is not None), None)
        if failed is not None:
            models = _models(process)
            index = actors.index(failed)
            where = f"in {models[index]} " if index < len(models) else ""
            return f"{where}({one_line(_recorded(failed))})"
        if time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    return f"({one_line(errors[0])})" if errors else "(one of its processes ended without an error)"


def _models(process: AbstractProcess) -> list[str]:
    """The class each of Lava's processes runs, in the order Lava starts them (``Runtime.initialize``:
    the Python ProcessModels, then the RuntimeServices)."""
    from lava.magma.compiler.builders.py_builder import PyProcessBuilder

    executable = process.runtime._executable
    models = [b.proc_model for b in executable.proc_builders.values() if isinstance(b, PyProcessBuilder)]
    services = [b.rs_class for b in executable.runtime_service_builders.values()]
    return [cls.__name__ for cls in models + services]


def _end_all(process: AbstractProcess) -> None:
    """End every Lava process of the run, free its shared memory and mark the runtime stopped."""
    actors = _actors(process)
    for actor in actors:
        with contextlib.suppress(Exception):
            if actor.is_alive():
                actor.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for actor in actors:
        with contextlib.suppress(Exception):
            multiprocessing.Process.join(actor, max(0.0, deadline - time.monotonic()))
            if actor.is_alive():
                actor.kill()
            actor.join()  # Lava's join: reaps the process and reads what it recorded
    runtime = process.runtime
    if runtime is not None:
        runtime._is_started = runtime._is_running = False  # Lava's stop() and __del__ then only free resources
        with contextlib.suppress(Exception):
            runtime.stop()
