"""The device install: ``edgecnn build`` and ``runtime.load(..., backend="tensorrt")`` on a machine
with only the Jetson extra (numpy, click, rich, pillow, cuda-python; TensorRT from JetPack) import
nothing else, and without TensorRT they stop at a clear BackendUnavailableError naming TensorRT,
never a ModuleNotFoundError.

A subprocess blocks every import outside that set (torch, onnx, onnxruntime, onnxscript, ...), runs
both paths on a bundle holding a build plan and an engine artifact, and then checks every loaded
top-level module against the standard library and the distributions the extra pulls in (read from
installed package metadata).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVICE_DISTS = ("numpy", "click", "rich", "pillow", "cuda-python")  # core deps + the jetson extra
BLOCKED = ("torch", "onnx", "onnxruntime", "onnxscript", "onnx_ir", "tensorflow", "ai_edge_litert",
           "litert_torch", "matplotlib", "polygraphy", "psutil", "tensorrt")


@pytest.fixture(scope="module")
def engine_bundle(tmp_path_factory):
    from _tensorrt_lib import engine_metadata, io_specs, make_manifest
    from edgecnn.bundle import BundleWriter
    from edgecnn.tensorrt.plan import BuildPlan, plans_json

    out = tmp_path_factory.mktemp("dev") / "b"
    plan = BuildPlan("fp16", "model.fp16.trt.onnx", "model.fp16.onnx", "0" * 64, "input", [1, 8, 8],
                     1, 4, 8, 64, 3, "10.3", "10.3", "trt_timing.{trt}.sm{sm}.{gpu}.cache")
    inputs, outputs = io_specs((1, 8, 8), 4)
    with BundleWriter(out, make_manifest()) as w:
        w.write_text("build_plan.json", plans_json({"fp16": plan}))
        w.path_for("model.fp16.engine").write_bytes(b"engine")
        w.add_artifact("model.fp16.engine", "tensorrt", "fp16", inputs, outputs,
                       {"engine": engine_metadata("desktop").to_dict()})
    return out


SCRIPT = textwrap.dedent('''
    import importlib.abc, json, sys
    BLOCKED = set(sys.argv[2].split(","))

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked: not in the device install)")
            return None

    sys.meta_path.insert(0, Block())
    bundle, result = sys.argv[1], {}
    from edgecnn.errors import BackendUnavailableError
    import edgecnn.runtime as rt
    try:
        rt.load(bundle, backend="tensorrt")
    except BackendUnavailableError as exc:
        result["load"] = str(exc)
    from edgecnn.cli.main import cli
    try:
        cli.main(["build", bundle, "--precision", "fp16"], standalone_mode=False)
    except Exception as exc:
        result["build"] = type(exc).__name__ + ": " + str(getattr(exc, "message", exc))
    result["modules"] = sorted({m.split(".")[0] for m in sys.modules})
    print(json.dumps(result))
''')


def _closure(dists) -> set[str]:
    """Distributions ``dists`` need, recursively (extras' own requirements left out)."""
    import importlib.metadata as md
    import re

    seen, todo = set(), [d.lower() for d in dists]
    while todo:
        d = todo.pop()
        if d in seen:
            continue
        seen.add(d)
        try:
            reqs = md.requires(d) or []
        except md.PackageNotFoundError:
            continue
        for r in reqs:
            if "extra ==" in r:
                continue
            marker = r.split(";", 1)[1] if ";" in r else ""
            if "python_version < \"3.11\"" in marker and sys.version_info >= (3, 11):
                continue
            todo.append(re.split(r"[ <>=!~;\[(]", r, maxsplit=1)[0].lower())
    return {s.replace("_", "-") for s in seen}


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_build_and_load_need_only_the_device_install(engine_bundle):
    import importlib.metadata as md

    res = subprocess.run([sys.executable, "-c", SCRIPT, str(engine_bundle), ",".join(BLOCKED)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert "TensorRT is not installed" in out["load"] and "edgecnn[jetson]" in out["load"]
    assert out["build"].startswith("ClickException: TensorRT is not installed"), out["build"]
    allowed = _closure(DEVICE_DISTS) | {"edgecnn"}
    owners = md.packages_distributions()
    foreign = {}
    for mod in out["modules"]:
        if mod in sys.stdlib_module_names or mod.startswith("_") or mod == "edgecnn":
            continue
        dists = {d.lower().replace("_", "-") for d in owners.get(mod, [mod])}
        if not dists & allowed:
            foreign[mod] = sorted(dists)
    assert not foreign, f"the build/runtime path imported modules outside the device install: {foreign}"
