"""Every TensorRT name edgecnn uses exists in the real TensorRT 10.3 and 11.4 Python bindings.

The bindings are the real ``tensorrt-cu12-bindings`` wheels (10.3.0 and 11.4.0.106), fetched by pip
into a cache (see _trt_bindings.py; skipped with pip's reason when the package index is
unreachable). Their ``tensorrt.so`` cannot be imported here (no ``-libs``, no GPU), so the test
reads the names it registers as strings.

What this proves: each attribute name edgecnn reads or writes on a TensorRT module, class, enum or
object is registered by that release, and names 11.x removed are only used on a 10.x branch.
What it does not prove: that the name belongs to the class edgecnn uses it on (the strings carry
no owner; the docstring checks below cover the cases where ownership matters), argument types,
or behaviour on a GPU (scripts/gpu_acceptance.sh).

How edgecnn's uses are found: an AST walk over the modules that touch TensorRT. An attribute is a
TensorRT use when its base is the ``trt`` module (or an alias of a chain rooted there), or a
variable holding a TensorRT object, by the naming convention those modules follow
(``TRT_OBJECTS``); method names of classes that subclass a ``trt`` class are uses too (TensorRT
calls them). Names reached through ``getattr(trt.X, "NAME")`` are checked from the tables that hold
them (network flags per version, DataType members).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from _trt_bindings import Unavailable, bindings

ROOT = Path(__file__).resolve().parents[2]
TRT_MODULES = ["edgecnn/tensorrt/builder.py", "edgecnn/tensorrt/build_log.py",
               "edgecnn/tensorrt/network_io.py", "edgecnn/tensorrt/dla.py", "edgecnn/runtime/tensorrt.py"]
# variables that hold TensorRT objects in those modules (their naming convention)
TRT_OBJECTS = {"builder", "network", "parser", "config", "profile", "cache", "engine", "context", "ctx",
               "runtime", "inspector", "err", "layer", "t", "deserialized", "logger", "severity"}
TRT_SELF = {"_engine", "_context", "_runtime", "_graph_ctx", "_logger"}
RELEASES = ("10.3", "11.4")
# removed in 11.x: must appear only on a 10.x branch
REMOVED_IN_11 = {"EXPLICIT_BATCH", "IInt8Calibrator", "IInt8EntropyCalibrator", "IInt8EntropyCalibrator2",
                 "IInt8MinMaxCalibrator", "IInt8LegacyCalibrator", "int8_calibrator"}
REMOVED_BUILDER_FLAGS = {"FP16", "INT8", "BF16"}  # as BuilderFlag members


def _bindings(release):
    try:
        return bindings(release)
    except Unavailable as exc:
        pytest.skip(str(exc))


class _Uses(ast.NodeVisitor):
    """(name, branch, where) of every TensorRT attribute a module uses; branch '10', '11' or '*'."""

    def __init__(self, path: str):
        self.path, self.uses, self.branch, self.aliases = path, [], ["*"], {"trt"}

    def rooted(self, node) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.aliases or node.id in TRT_OBJECTS
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return node.attr in TRT_SELF
            return self.rooted(node.value)
        if isinstance(node, ast.Call):
            return self.rooted(node.func)
        return False

    def add(self, name, node):
        self.uses.append((name, self.branch[-1], f"{self.path}:{node.lineno}"))

    def visit_Attribute(self, node):
        if self.rooted(node.value):
            self.add(node.attr, node)
            if isinstance(node.value, ast.Attribute) and node.value.attr == "BuilderFlag":
                self.uses.append((f"BuilderFlag.{node.attr}", self.branch[-1], f"{self.path}:{node.lineno}"))
        self.generic_visit(node)

    def visit_Assign(self, node):
        if isinstance(node.value, ast.Attribute) and self.rooted(node.value):
            self.aliases |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        if any(isinstance(b, ast.Attribute) and self.rooted(b) for b in node.bases):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                    self.add(item.name, item)  # TensorRT calls it
        self.generic_visit(node)

    def visit_If(self, node):
        branch = _major_branch(node.test)
        self.visit(node.test)
        self.branch.append(branch or self.branch[-1])
        for n in node.body:
            self.visit(n)
        self.branch[-1] = {"10": "11", "11": "10"}[branch] if branch else self.branch[-2]
        for n in node.orelse:
            self.visit(n)
        self.branch.pop()


def _major_branch(test) -> str | None:
    """'10' for ``x.major == 10`` / ``< 11``, '11' for ``== 11`` / ``>= 11`` / ``> 10``."""
    if not (isinstance(test, ast.Compare) and isinstance(test.left, ast.Attribute)
            and test.left.attr == "major" and isinstance(test.comparators[0], ast.Constant)):
        return None
    op, n = type(test.ops[0]), test.comparators[0].value
    if (op is ast.Eq and n == 10) or (op is ast.Lt and n == 11) or (op is ast.LtE and n == 10):
        return "10"
    if (op is ast.Eq and n == 11) or (op is ast.GtE and n == 11) or (op is ast.Gt and n == 10):
        return "11"
    return None


def edgecnn_trt_uses() -> list[tuple[str, str, str]]:
    out = []
    for rel in TRT_MODULES:
        v = _Uses(rel)
        v.visit(ast.parse((ROOT / rel).read_text()))
        out += v.uses
    return out


def test_the_walk_finds_what_the_builder_and_runtime_use():
    """The extraction itself: a few names each module is known to use are found (guards the walk)."""
    names = {n for n, _, _ in edgecnn_trt_uses()}
    for expected in ("create_network", "set_timing_cache", "clear_flag", "TF32", "ILogger", "log",
                     "phase_start", "execute_async_v3", "set_input_shape", "create_execution_context",
                     "get_engine_information", "can_run_on_DLA", "DLA_core", "nptype", "get_input"):
        assert expected in names, expected
    assert len(names) > 60


@pytest.mark.parametrize("release", RELEASES)
def test_every_trt_name_edgecnn_uses_exists_in_the_real_bindings(release):
    b = _bindings(release)
    branch = release.split(".")[0]
    uses = [(n, where) for n, br, where in edgecnn_trt_uses() if br in ("*", branch)
            and "." not in n and n != "__version__"]
    missing = sorted({f"{n} ({where})" for n, where in uses if b.has(n) is None})
    assert not missing, f"not registered by tensorrt-cu12-bindings {b.version}: {missing}"
    suffix_only = sorted({n for n, _ in uses if b.has(n) == "suffix"})
    assert len(suffix_only) <= 3, f"names found only as suffixes of longer strings: {suffix_only}"


@pytest.mark.parametrize("release", RELEASES)
def test_names_reached_by_getattr_exist(release):
    from edgecnn.tensorrt.network_io import DTYPES
    from edgecnn.tensorrt.versions import build_strategy

    b = _bindings(release)
    strategy = build_strategy(b.version)
    for name in (*strategy.network_flags, *DTYPES, "NetworkDefinitionCreationFlag", "DataType"):
        assert b.has(name), f"{name} is not registered by TensorRT {b.version}"


def test_names_removed_in_11_are_used_only_on_the_10_branch():
    for release, present in (("10.3", True), ("11.4", False)):
        b = _bindings(release)
        assert (b.has("EXPLICIT_BATCH") is not None) is present
        assert (b.has("IInt8EntropyCalibrator2") is not None) is present
        # ownership by docstring: the FP16/INT8 *builder flags* (10.3), not DataType.FP16 etc.
        assert b.has_doc("Enable FP16 layer selection") is present
        assert b.has_doc("Enable Int8 layer selection") is present
    from edgecnn.tensorrt.versions import build_strategy

    assert "EXPLICIT_BATCH" not in build_strategy("11.4").network_flags
    bad = [(n, where) for n, br, where in edgecnn_trt_uses() if br != "10" and
           (n in REMOVED_IN_11 or n.removeprefix("BuilderFlag.") in REMOVED_BUILDER_FLAGS and n.startswith("BuilderFlag."))]
    assert not bad, f"names removed in TensorRT 11 used outside a 10.x branch: {bad}"


def test_docstrings_back_the_defect_fixes():
    """Ownership where it matters, from the registered docstrings (both releases):
    TF32 is a builder flag that is on by default (so fp32 plans must clear it), the timing cache
    verifies device properties unless ignore_mismatch, and DLA_core is documented on both the
    builder config and the runtime."""
    for release in RELEASES:
        b = _bindings(release)
        assert b.has_doc("to use TF32") and b.has_doc("Enabled by default.")
        assert b.has_doc("allows loading cache created from a different device")
        assert b.has_doc(":ivar DLA_core: :class:`int` The DLA core that the engine executes on")
        assert b.text.count(b":ivar DLA_core:") >= 2, "DLA_core on the config and on the runtime"


@pytest.mark.parametrize("release", RELEASES)
def test_the_recording_fake_offers_only_real_names(release):
    """Tests built on tests/unit/_tensorrt_fake.py may only lean on names TensorRT registers."""
    from _tensorrt_fake import public_surface

    b = _bindings(release)
    missing = sorted(n for n in public_surface()["tensorrt"] if b.has(n) is None)
    assert not missing, f"the fake offers names TensorRT {b.version} does not register: {missing}"


def test_the_walk_sees_version_branches():
    """The branch logic the removed-names rule relies on, on a planted snippet."""
    src = ("def f(trt, v, config):\n"
           "    if v.major == 10:\n"
           "        config.set_flag(trt.BuilderFlag.FP16)\n"
           "    else:\n"
           "        config.clear_flag(trt.BuilderFlag.TF32)\n"
           "    x = trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH\n")
    v = _Uses("snippet.py")
    v.visit(ast.parse(src))
    branches = {n: br for n, br, _ in v.uses}
    assert branches["BuilderFlag.FP16"] == "10" and branches["BuilderFlag.TF32"] == "11"
    assert branches["EXPLICIT_BATCH"] == "*"  # outside a 10.x branch: the rule would refuse it
