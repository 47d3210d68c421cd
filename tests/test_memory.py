"""Freed memory is reused: the kernel's page-fault counter, not our code, says whether a block came back fresh."""

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")

_FAULTS = textwrap.dedent(
    """
    import resource
    import torch
    from lava_qpsnn.memory import keep_freed_memory
    took = keep_freed_memory()
    def step():  # like a training step: several large tensors alive together, then freed
        alive = [torch.ones(mib << 18) for mib in (4, 16, 8, 12, 2)]
        del alive
    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def test_a_freed_block_is_reused_instead_of_faulted_in_again():
    # 10 steps of 42 MiB allocate 10 x 10,752 pages of 4 KiB. As glibc comes, many of them are
    # faulted in anew, how many depending on where its moving mmap threshold stands; with the
    # setting, the blocks of the first step serve all the others.
    out = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True, check=True).stdout
    took, faults = out.split()
    assert took == "True"  # glibc on Linux takes the setting
    assert int(faults) < 0.05 * 10 * 10_752
