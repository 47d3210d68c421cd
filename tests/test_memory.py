"""Freed memory is reused: the kernel's page-fault counter, not our code, says whether a block came back fresh."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc setting is Linux-only")

_FAULTS = textwrap.dedent(
    """
    import resource, sys
    import torch
    from lava_qpsnn.memory import keep_freed_memory
    took = keep_freed_memory() if sys.argv[1] == "keep" else None
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


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True).stdout
    took, faults = out.split()
    return took, int(faults)


def test_a_freed_block_is_reused_instead_of_faulted_in_again():
    # 10 steps of fresh tensors (42 MiB) fault in 10 x 10,752 pages of 4 KiB; reused ones fault in none
    _, fresh = _faults("default")
    took, reused = _faults("keep")
    assert took == "True"  # glibc on Linux takes the setting
    assert fresh > 50_000, "glibc's default no longer hands out fresh pages: the oracle of this test is gone"
    assert reused < 1_000
