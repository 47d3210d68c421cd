"""Freed memory kept for the next step: glibc's ``malloc`` set for loops that allocate the same large arrays.

A training step (and a simulator batch) allocates the same large tensors every time: activations,
voltages, gradients, delayed spikes. glibc serves each block above its mmap threshold (128 KiB,
raised as blocks are freed, to at most 32 MiB) with fresh pages from the kernel, gives them back
when the block is freed, and also returns free memory at the top of its heap beyond twice that
threshold. So, depending on where that moving threshold stands, a step faults in and zero-fills
the pages of its large tensors again: on a CPU this costs about a quarter of a training step of
a small convolutional network (``benchmarks/results/train_speed-2threads-fresh-memory.md``).

:func:`keep_freed_memory` raises both limits, so that freed blocks stay in the process and the
next step reuses them. The process then keeps its peak memory until it exits, which suits a
training or simulation run. It acts only where the C library is glibc (Linux); elsewhere, and
where glibc refuses the mmap threshold, nothing changes. Training (:func:`~lava_qpsnn.training.loop.train`)
and the simulator call it; calling it again does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_LARGEST = 2**31 - 1  # mallopt takes a C int


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep freed blocks of any size for reuse; True if it took the setting."""
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the C library this process runs on
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # the mmap threshold first: raising only the trim threshold freezes the mmap threshold where it
    # stands (128 KiB at first), and every larger block would come from the kernel. glibc caps it at
    # 32 MiB on some versions; blocks above the cap keep coming fresh from the kernel.
    if not (mallopt(_M_MMAP_THRESHOLD, 1 << 30) or mallopt(_M_MMAP_THRESHOLD, 32 << 20)):
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, _LARGEST))
