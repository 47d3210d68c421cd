"""The packages' dependency runs one way: ``netx_export`` (the exporter's command line) uses ``lava_qpsnn``."""

import ast
import re
from pathlib import Path

import lava_qpsnn
import netx_export


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_lava_qpsnn_never_imports_netx_export():
    package = Path(lava_qpsnn.__file__).parent
    offenders = {
        str(path.relative_to(package)): sorted(n for n in _imported_modules(path) if n.split(".")[0] == "netx_export")
        for path in package.rglob("*.py")
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_netx_export_names_its_api():
    assert set(netx_export.__all__) == {"export_netx", "format_summary", "LayerSummary"}
    assert all(getattr(netx_export, name).__module__ == "lava_qpsnn.export.writer" for name in netx_export.__all__)


def test_library_errors_speak_of_settings_not_command_line_options():
    """Only the command lines (cli.py) name options; the library's errors carry ``settings`` instead."""
    package = Path(lava_qpsnn.__file__).parent
    option = re.compile(r"(^|[\s(])--[a-z]")
    found = []
    for path in package.rglob("*.py"):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                texts = [n.value for n in ast.walk(node.exc) if isinstance(n, ast.Constant)]
                found += [f"{path.name}:{node.lineno}" for text in texts if option.search(str(text))]
    assert not found


def _tutorial_cells():
    import nbformat

    for notebook in sorted((Path(__file__).parents[1] / "tutorials").glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
            if cell.cell_type == "code":
                yield f"{notebook.name} cell {index}", ast.parse(cell.source)


def test_tutorials_use_only_the_public_api():
    """A tutorial teaches what a user may rely on: names in the two packages' ``__all__``, nothing deeper."""
    public = {"lava_qpsnn": set(lava_qpsnn.__all__), "netx_export": set(netx_export.__all__)}
    found = []
    for where, tree in _tutorial_cells():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in public:
                if node.module not in public:
                    found.append(f"{where}: from {node.module}")
                found += [f"{where}: {a.name}" for a in node.names if a.name not in public.get(node.module, ())]
            elif isinstance(node, ast.Import):
                deep = [a.name for a in node.names if a.name.split(".")[0] in public and "." in a.name]
                found += [f"{where}: import {name}" for name in deep]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in public:
                if node.attr not in public[node.value.id] and not node.attr.startswith("__"):
                    found.append(f"{where}: {node.value.id}.{node.attr}")
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
                found.append(f"{where}: __import__")
    assert not found


def test_the_public_api_resolves():
    assert all(hasattr(lava_qpsnn, name) for name in lava_qpsnn.__all__)
    assert len(set(lava_qpsnn.__all__)) == len(lava_qpsnn.__all__)


def test_numpy_is_only_taken_from_cpu_tensors():
    """``tensor.numpy()`` raises for a tensor on a GPU: the library calls it only on a ``.cpu()`` result
    (a no-op for a CPU tensor), so no code path works on the CPU and fails on ``--device cuda``."""
    package = Path(lava_qpsnn.__file__).parent
    found = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "numpy":
                receiver = node.func.value
                on_cpu = isinstance(receiver, ast.Call) and getattr(receiver.func, "attr", None) == "cpu"
                if not on_cpu:
                    found.append(f"{path.relative_to(package)}:{node.lineno}")
    assert not found, f".numpy() not on a .cpu() result: {found}"
