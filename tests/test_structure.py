"""The packages' dependency runs one way: ``netx_export`` (the exporter's command line) uses ``lava_qpsnn``."""

import ast
import importlib
import re
import typing
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
    assert all(getattr(netx_export, name).__module__.startswith("lava_qpsnn.export.") for name in netx_export.__all__)


def test_the_library_speaks_of_settings_not_command_line_options():
    """Only the command lines (cli/, command.py) name options: the library's errors and advice carry
    ``settings`` instead. Every text outside a docstring is checked (a bare token such as a pip
    argument is not prose)."""
    package = Path(lava_qpsnn.__file__).parent
    option = re.compile(r"(^|[\s(\[])--[a-z]")
    found = []
    for path in package.rglob("*.py"):
        if path.name == "command.py" or path.relative_to(package).parts[0] == "cli":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and ast.get_docstring(node) is not None
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if " " in node.value and option.search(node.value):
                    found.append(f"{path.name}:{node.lineno}")
    assert not found


def _tutorial_cells():
    import nbformat

    for notebook in sorted((Path(__file__).parents[1] / "tutorials").glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
            if cell.cell_type == "code":
                yield f"{notebook.name} cell {index}", ast.parse(cell.source)


# the modules a user imports from: the pipeline at the top, the building blocks in the stages' packages
PUBLIC_MODULES = (
    "lava_qpsnn",
    "lava_qpsnn.data",
    "lava_qpsnn.training",
    "lava_qpsnn.netx",
    "lava_qpsnn.sim",
    "lava_qpsnn.export",
    "lava_qpsnn.interchange",
    "lava_qpsnn.lava",
    "lava_qpsnn.report",
    "lava_qpsnn.errors",
    "lava_qpsnn.demo",
    "netx_export",
)


def _public() -> dict[str, set[str]]:
    return {name: set(importlib.import_module(name).__all__) for name in PUBLIC_MODULES}


def test_tutorials_use_only_the_public_api():
    """A tutorial teaches what a user may rely on: names in the public modules' ``__all__``, nothing deeper."""
    public = _public()
    found = []
    for where, tree in _tutorial_cells():
        aliases = {}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0] in ("lava_qpsnn", "netx_export")
            ):
                if node.module not in public:
                    found.append(f"{where}: from {node.module}")
                found += [f"{where}: {a.name}" for a in node.names if a.name not in public.get(node.module, ())]
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in ("lava_qpsnn", "netx_export"):
                        if alias.name not in public:
                            found.append(f"{where}: import {alias.name}")
                        aliases[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
                found.append(f"{where}: __import__")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                if node.attr not in public[aliases[node.value.id]] and not node.attr.startswith("__"):
                    found.append(f"{where}: {node.value.id}.{node.attr}")
    assert not found


def test_the_public_api_resolves_and_is_small():
    """Every public name exists; the top level names the pipeline (about 25 names), and every type a public
    function of it takes or returns is public somewhere."""
    for module, names in _public().items():
        assert all(hasattr(importlib.import_module(module), name) for name in names), module
    assert len(set(lava_qpsnn.__all__)) == len(lava_qpsnn.__all__) <= 30
    everything = set().union(*_public().values())
    for name in lava_qpsnn.__all__:
        hints = typing.get_type_hints(getattr(lava_qpsnn, name)) if callable(getattr(lava_qpsnn, name)) else {}
        for hint in hints.values():
            for kind in _classes(hint):
                if kind.__module__.startswith("lava_qpsnn"):
                    assert kind.__name__ in everything, f"{name} uses {kind.__name__}, which no public module names"


def _classes(hint: object) -> list[type]:
    if isinstance(hint, type):
        return [hint]
    return [kind for arg in typing.get_args(hint) for kind in _classes(arg)]


# The pipeline's stages in order. A module may import from its own stage, an earlier one and the
# foundation; never from a later stage or the entry points. The entry points may import anything.
FOUNDATION = {"errors", "files", "table", "loihi", "memory"}
STAGES = ["data", "training", "netx", "sim", "export", "interchange", "lava", "report"]
ENTRY_POINTS = {"", "__main__", "cli", "command", "evaluation", "pipeline", "demo"}


def _library_imports() -> dict[str, set[str]]:
    """Every module of lava_qpsnn (dotted, without the package name) -> the lava_qpsnn modules it imports,
    at any depth of the file (function-level imports count)."""
    package = Path(lava_qpsnn.__file__).parent
    graph = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        base = name.split(".") if is_package else name.split(".")[:-1]
        found = set()
        tree = ast.parse(path.read_text())
        typing_only = {  # imports under `if TYPE_CHECKING:` never run
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
            for inner in ast.walk(node)
        }
        for node in (n for n in ast.walk(tree) if id(n) not in typing_only):
            if isinstance(node, ast.ImportFrom) and node.level:
                anchor = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*anchor, *([node.module] if node.module else [])])
                found.add(target)
                found.update(f"{target}.{a.name}".lstrip(".") for a in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lava_qpsnn"):
                target = node.module.removeprefix("lava_qpsnn").lstrip(".")
                found.add(target)
                found.update(f"{target}.{a.name}".lstrip(".") for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(
                    a.name.removeprefix("lava_qpsnn").lstrip(".") for a in node.names if a.name.startswith("lava_qpsnn")
                )
        modules = {
            m
            for m in found
            if (package / (m.replace(".", "/") + ".py")).is_file()
            or (package / m.replace(".", "/") / "__init__.py").is_file()
        }
        graph[name] = modules - {name}
    return graph


def _rank(module: str) -> float:
    top = module.split(".")[0]
    if top in FOUNDATION:
        return -1
    if top in STAGES:
        return STAGES.index(top)
    assert top in ENTRY_POINTS, f"lava_qpsnn.{module} belongs to no stage: add it to FOUNDATION, STAGES or ENTRY_POINTS"
    return len(STAGES)


def _backward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if _rank(target) > _rank(module) or (_rank(module) == -1 and _rank(target) != -1)
    ]


def _circles(graph: dict[str, set[str]], packages: set[str]) -> list[str]:
    """Import circles among modules (a package's ``__init__`` re-exports its modules, so it closes none)."""
    edges = {m: {t for t in targets if t not in packages} for m, targets in graph.items() if m not in packages}
    circles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    return circles


def test_no_stage_imports_a_later_one():
    assert not _backward_imports(_library_imports())


def test_no_modules_import_each_other_in_a_circle():
    package = Path(lava_qpsnn.__file__).parent
    graph = _library_imports()
    packages = {m for m in graph if (package / m.replace(".", "/") / "__init__.py").is_file()}
    assert not _circles(graph, packages)


def test_the_structure_rules_catch_what_they_forbid():
    """The imports an earlier layout had: training reached into export and lava, models, quantize and prune
    imported each other."""
    earlier = {
        "training.quantize": {"export.limits", "lava.compat", "training.models"},
        "training.models": {"training.quantize", "training.prune"},
        "training.prune": {"training.quantize", "training.models"},
        "loihi": {"training.models"},
    }
    assert sorted(_backward_imports(earlier)) == [
        "loihi -> training.models",
        "training.quantize -> export.limits",
        "training.quantize -> lava.compat",
    ]
    circles = _circles(earlier, set())
    assert "training.models -> training.prune -> training.models" in circles
    assert "training.models -> training.prune -> training.quantize -> training.models" in circles


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
