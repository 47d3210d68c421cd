import dataclasses
import sys

import pytest

from lava_qpsnn.lava import compat as lava_compat

needs_patch = pytest.mark.skipif(not lava_compat.lava_needs_patch(), reason="lava-nc works here unpatched")


@needs_patch
def test_unpatched_lava_fails_on_python_311(run_python):
    result = run_python("import lava.magma.compiler.var_model")
    assert result.returncode != 0
    assert "mutable default" in result.stderr


def test_importing_our_package_makes_lava_import_cleanly(run_python):
    result = run_python(
        "import lava_qpsnn\n"
        "import lava.lib.dl.slayer, lava.lib.dl.netx\n"
        "from lava.proc import io\n"
        "from lava.magma.compiler.var_model import CoreEncoder\n"
        "assert CoreEncoder().x == CoreEncoder().x and CoreEncoder().x is not CoreEncoder().x\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""  # no Prophesee warning, no CUDA notice


def test_netx_export_import_also_patches(run_python):
    result = run_python("import netx_export\nimport lava.lib.dl.netx")
    assert result.returncode == 0, result.stderr


def test_lava_imports_after_another_library_fixed_the_start_method(run_python):
    result = run_python(
        "import multiprocessing as mp\nmp.RLock()  # as tqdm does\nimport lava_qpsnn\nfrom lava.proc import io\n"
    )
    assert result.returncode == 0, result.stderr


@needs_patch
def test_patch_is_idempotent():
    assert lava_compat.patch_lava() and lava_compat.patch_lava()
    finders = [f for f in sys.meta_path if isinstance(f, lava_compat._LavaPatchFinder)]
    assert len(finders) == 1


def test_dataclass_wrapper_turns_instance_defaults_into_factories():
    @dataclasses.dataclass
    class Inner:
        value: int = 3

    with lava_compat._tolerant_dataclasses():

        @dataclasses.dataclass
        class Outer:
            a: Inner = Inner(7)
            b: int = 1

    first, second = Outer(), Outer()
    assert first.a == Inner(7) and first.a is not second.a
    assert dataclasses.dataclass is not None and Outer.__dataclass_fields__["b"].default == 1
    with pytest.raises(ValueError, match="mutable default"):

        @dataclasses.dataclass
        class Plain:
            a: Inner = Inner(7)
