"""The import rule of docs/architecture.md, enforced: layers point down, no circles, and the
embeddable runtime reaches no build room and no heavy library.

Imports are read from the source with ``ast`` (function-level imports included: a lazy import
is still an arrow), so the test needs nothing installed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "edgecnn"

# Lowest first. A module may import modules of its own layer or below; never above.
LAYERS: list[tuple[str, ...]] = [
    # leaves: standard library + numpy, shared by every room
    ("edgecnn", "edgecnn.errors", "edgecnn._lazy", "edgecnn._toml", "edgecnn.catalog",
     "edgecnn.options", "edgecnn.manifest", "edgecnn.bundle", "edgecnn.platform_info",
     "edgecnn.progress"),
    ("edgecnn.data",),
    ("edgecnn.models", "edgecnn.runtime", "edgecnn.targets"),
    ("edgecnn.export",),
    ("edgecnn.quantize",),
    ("edgecnn.tensorrt",),
    ("edgecnn.backends",),
    ("edgecnn.pipeline", "edgecnn.train"),
    ("edgecnn.bench",),
    ("edgecnn.fleet",),  # the device lab on Ray: the only room (with cli) that imports ray
    ("edgecnn.cli",),
]
# (importer, imported): the upward arrows docs/architecture.md names and justifies
ALLOWED_UPWARD = {
    # the public `from edgecnn.export import export` hands over to the orchestrator when called
    ("edgecnn.export", "edgecnn.pipeline"),
}
# what the embeddable runtime may never import (build rooms and heavy libraries)
RUNTIME_FORBIDDEN = ("torch", "onnx", "onnxscript", "tensorflow", "litert_torch",
                     "edgecnn.export", "edgecnn.quantize", "edgecnn.tensorrt", "edgecnn.backends",
                     "edgecnn.pipeline", "edgecnn.train", "edgecnn.bench", "edgecnn.cli",
                     "edgecnn.models", "edgecnn.fleet", "ray")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(name: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """Every module ``name`` imports (absolute names; ``from X import mod`` -> X.mod when it
    is a module of ours)."""
    out: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.add(sub if sub in known else mod)
    out.discard(name)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    known = set(files)
    return {name: imports_of(name, p.read_text(encoding="utf-8"), p.name == "__init__.py", known)
            for name, p in files.items()}


def layer_of(module: str) -> int | None:
    best, depth = None, -1
    for i, rooms in enumerate(LAYERS):
        for room in rooms:
            if (module == room or module.startswith(room + ".")) and room.count(".") > depth:
                best, depth = i, room.count(".")
    return best


def _room(module: str) -> str:
    """The most specific LAYERS entry that holds ``module``."""
    rooms = [r for layer in LAYERS for r in layer if module == r or module.startswith(r + ".")]
    return max(rooms, key=len, default=module)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in graph.items():
        for dst in targets:
            if not dst.startswith("edgecnn"):
                continue
            a, b = layer_of(src), layer_of(dst)
            if a is None or b is None:
                bad.append(f"{src} -> {dst}: module not in the layer table")
            elif b > a and (_room(src), _room(dst)) not in ALLOWED_UPWARD:
                bad.append(f"{src} (layer {a}) -> {dst} (layer {b})")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    missing = [m for m in import_graph() if layer_of(m) is None]
    assert not missing, f"add these modules to LAYERS and docs/architecture.md: {missing}"


def test_layers_point_down():
    assert upward_imports(import_graph()) == []


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_runtime_reaches_no_build_room_and_no_heavy_library():
    graph = import_graph()
    bad = sorted(f"{src} -> {dst}" for src, dst_set in graph.items()
                 if src.startswith("edgecnn.runtime") for dst in dst_set
                 if any(dst == f or dst.startswith(f + ".") for f in RUNTIME_FORBIDDEN))
    assert bad == []


def test_only_the_device_lab_imports_ray():
    """Ray is the optional lab extra: the core, the runtime and bench never need it."""
    bad = sorted(src for src, dsts in import_graph().items()
                 if not src.startswith("edgecnn.fleet")
                 and any(d == "ray" or d.startswith("ray.") for d in dsts))
    assert bad == []


def test_a_planted_upward_import_and_circle_are_caught(tmp_path):
    """The checker itself: a data module that imports bench, and two leaves that import each
    other, in a copy of the package layout."""
    pkg = tmp_path / "edgecnn"
    for rel, text in {
        "__init__.py": "",
        "errors.py": "from edgecnn import manifest\n",
        "manifest.py": "from edgecnn.errors import EdgeCNNError\n",
        "data/__init__.py": "",
        "data/folder.py": "def f():\n    from edgecnn.bench.runner import run_bench\n",
        "bench/__init__.py": "",
        "bench/runner.py": "from edgecnn.data import folder\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    graph = import_graph(pkg)
    assert upward_imports(graph) == ["edgecnn.data.folder (layer 1) -> edgecnn.bench.runner (layer 8)"]
    assert ["edgecnn.errors", "edgecnn.manifest"] in cycles(graph)


@pytest.mark.parametrize("module", ["edgecnn.runtime", "edgecnn.manifest", "edgecnn.bundle",
                                    "edgecnn.catalog", "edgecnn.data.accuracy"])
def test_light_modules_import_no_torch_at_run_time(module):
    import subprocess
    import sys

    code = (f"import sys, {module}; print(sorted(m for m in ('torch', 'onnx', 'tensorflow', "
            f"'edgecnn.pipeline', 'edgecnn.backends.registry') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
