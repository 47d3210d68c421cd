"""The one place where lava-nc 0.10.0 / lava-dl 0.6.0 are made to import and run on Python 3.11.

(Lava's runtime, which hangs when one of its processes fails, is supervised in
:mod:`lava_qpsnn.lava.supervise`.)

Both packages are archived upstream and declare ``Requires-Python <3.11``. Three things
stand between them and a clean run on 3.11 with our tools, all handled here by an import hook
that acts only on the named Lava modules, the first time they are imported:

1. **Dataclass defaults** (a hard error). ``lava/magma/compiler/var_model.py`` uses
   ``ByteEncoder()`` instances as dataclass field defaults. Python 3.11 rejects unhashable
   defaults (``ValueError: mutable default ... use default_factory``), so importing
   slayer or netx fails. While that module executes, :func:`dataclasses.dataclass` is
   replaced by a version that turns such instance defaults into
   ``field(default_factory=...)`` giving an equal copy: the semantics Lava meant.
2. **Start method**. Lava's message infrastructure calls
   ``multiprocessing.set_start_method('fork')`` at import, which raises "context has
   already been set" if anything touched the default context before (tqdm does, for its
   lock), even when that context already is 'fork'. While that module is imported, a
   request for the method already in force is accepted as done.
3. **Import noise**. Importing slayer prints a warning about a missing Prophesee toolbox
   (its object-detection module) and makes torch log a CUDA notice (its C++-extension
   module); both are silenced while ``lava.lib.dl.slayer`` is first imported.

Nothing in site-packages is edited. The hook is installed by :func:`patch_lava` (called
when ``lava_qpsnn`` or ``netx_export`` is imported), only on Python >= 3.11 with
lava-nc 0.10.x, and installing it twice is harmless.

slayer's float32 spike test, which misses Lava's strict ``v > vth`` from ``vth = 4096`` on, is
matched where the integer network is built (:func:`lava_qpsnn.export.fixed_point.match_lava_spike_test`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import importlib.abc
import importlib.machinery
import importlib.metadata
import io
import logging
import multiprocessing
import sys
from types import ModuleType

__all__ = ["patch_lava", "lava_needs_patch"]

_VAR_MODEL = "lava.magma.compiler.var_model"
_MP_INFRA = "lava.magma.runtime.message_infrastructure.multiprocessing"
_SLAYER = "lava.lib.dl.slayer"
_TORCH_CPP_LOGGER = "torch.utils.cpp_extension"
_PATCHED_LAVA_NC = "0.10."


def lava_needs_patch() -> bool:
    """True when this interpreter and the installed lava-nc need the workaround."""
    if sys.version_info < (3, 11):  # noqa: UP036  (the bug is 3.11+; keep the gate explicit)
        return False
    try:
        version = importlib.metadata.version("lava-nc")
    except importlib.metadata.PackageNotFoundError:
        return False
    return version.startswith(_PATCHED_LAVA_NC)


def _default_factory_dataclass(real_dataclass):
    """Wrap ``dataclasses.dataclass`` so unhashable dataclass-instance defaults work."""

    def fix_defaults(cls):
        for name in cls.__dict__.get("__annotations__", {}):
            value = cls.__dict__.get(name)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                if type(value).__hash__ is None:
                    factory = functools.partial(copy.deepcopy, value)
                    setattr(cls, name, dataclasses.field(default_factory=factory))
        return cls

    @functools.wraps(real_dataclass)
    def dataclass(cls=None, /, **kwargs):
        if cls is None:
            return lambda c: real_dataclass(fix_defaults(c), **kwargs)
        return real_dataclass(fix_defaults(cls), **kwargs)

    return dataclass


@contextlib.contextmanager
def _tolerant_dataclasses():
    real = dataclasses.dataclass
    dataclasses.dataclass = _default_factory_dataclass(real)
    try:
        yield
    finally:
        dataclasses.dataclass = real


@contextlib.contextmanager
def _idempotent_start_method():
    real = multiprocessing.set_start_method

    def set_start_method(method, force=False):
        if not force and multiprocessing.get_start_method(allow_none=True) == method:
            return
        real(method, force=force)

    multiprocessing.set_start_method = set_start_method
    try:
        yield
    finally:
        multiprocessing.set_start_method = real


@contextlib.contextmanager
def _quiet_import():
    logger = logging.getLogger(_TORCH_CPP_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


class _PatchingLoader(importlib.abc.Loader):
    """Executes one module of Lava's inside the context that makes it work."""

    def __init__(self, loader: importlib.abc.Loader, context) -> None:
        self._loader = loader
        self._context = context

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with self._context():
            self._loader.exec_module(module)


class _LavaPatchFinder(importlib.abc.MetaPathFinder):
    """Finds the named Lava modules normally, then wraps their loader."""

    contexts = {
        _VAR_MODEL: _tolerant_dataclasses,
        _MP_INFRA: _idempotent_start_method,
        _SLAYER: _quiet_import,
    }

    def find_spec(self, fullname, path, target=None):
        context = self.contexts.get(fullname)
        if context is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader, context)
        return spec


def patch_lava() -> bool:
    """Install the Lava import hook if this Python and lava-nc need it.

    Returns True when the hook is (now or already) active. Must run before Lava's
    compiler is first imported; modules imported earlier are not re-executed.
    """
    if not lava_needs_patch():
        return False
    if not any(isinstance(f, _LavaPatchFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LavaPatchFinder())
    return True
