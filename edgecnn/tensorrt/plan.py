"""The build plan (build_plan.json) and the TensorRT-ready ONNX (model.<prec>.trt.onnx).

Prepared on any machine by the TensorRT backend, read on the device by ``edgecnn build``.
One build_plan.json per bundle holds one plan per precision. Stdlib only except
:func:`make_trt_onnx` (onnx, inside the function).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.errors import BundleError

BUILD_PLAN = "build_plan.json"
PLAN_FORMAT = "edgecnn-trt-build-plan-v1"
PREPARED_KEY = "tensorrt_prepared"  # Manifest.source[PREPARED_KEY][precision] -> file checksums
DEFAULT_TRT_RANGE = ("10.0", "11.99")
DEFAULT_WORKSPACE_MB = 2048


def trt_onnx_name(precision: str) -> str:
    return f"model.{precision}.trt.onnx"


def engine_name(precision: str) -> str:
    return f"model.{precision}.engine"


@dataclass
class BuildPlan:
    precision: str
    trt_onnx: str  # model.<prec>.trt.onnx, what the device parses
    source_onnx: str  # model.onnx / model.fp16.onnx / model.int8.onnx it was made from
    source_onnx_sha256: str  # of trt_onnx (what the engine is built from)
    input_name: str
    input_chw: list[int]
    batch_min: int
    batch_opt: int
    batch_max: int
    workspace_mb: int
    builder_optimization_level: int
    trt_version_min: str
    trt_version_max: str
    timing_cache: str  # file in the bundle; {trt} and {sm} are filled on the device
    dla_core: int | None = None
    dla_cores_available: int = 0  # from the device profile
    constant_folding: str = ""  # what the sanitiser did
    target: str = ""  # profile name
    extra: dict[str, Any] = field(default_factory=dict)

    def profile_shapes(self) -> tuple[list[int], list[int], list[int]]:
        c, h, w = self.input_chw
        return ([self.batch_min, c, h, w], [self.batch_opt, c, h, w], [self.batch_max, c, h, w])

    def timing_cache_file(self, trt_version: str, compute_capability: str) -> str:
        return self.timing_cache.format(trt=trt_version.replace("+", "_"),
                                        sm=compute_capability.replace(".", ""))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "BuildPlan":
        names = {f.name: f for f in dataclasses.fields(cls)}
        if not isinstance(d, dict) or not set(d) <= set(names):
            raise BundleError(f"{BUILD_PLAN}: a plan must be an object with keys from {sorted(names)}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise BundleError(f"{BUILD_PLAN}: {exc}; prepare the bundle again with "
                              f"'edgecnn export --target tensorrt'") from None


def read_plans(path: Path) -> dict[str, BuildPlan]:
    """precision -> plan from a build_plan.json; {} when the file does not exist."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path.name} is unreadable ({exc}); prepare the bundle again") from None
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT or \
            not isinstance(data.get("plans"), dict):
        raise BundleError(f"{path.name} is not an edgecnn build plan ({PLAN_FORMAT})")
    return {k: BuildPlan.from_dict(v) for k, v in data["plans"].items()}


def plans_json(plans: dict[str, BuildPlan]) -> str:
    return json.dumps({"format": PLAN_FORMAT,
                       "plans": {k: plans[k].to_dict() for k in sorted(plans)}}, indent=2) + "\n"


def make_trt_onnx(src: Path, dst: Path, input_chw: tuple[int, int, int],
                  fold_constants: bool = True) -> tuple[str, str, int | None]:
    """Write the TensorRT-ready ONNX; return (input name, what constant folding did, fixed batch).

    Static C/H/W, a symbolic batch ('batch') kept dynamic for the optimisation profile. A graph
    exported with a fixed batch keeps it (its Reshapes hold that batch as a constant; relabelling
    the input would only move the failure to the build) and the fixed batch is returned. Constant
    folding (Polygraphy when installed, else onnxscript's optimizer) is skipped for Q/DQ graphs:
    folding a weight's Quantize->Dequantize pair would turn int8 weights back into fp32 ones.
    """
    import onnx

    model = onnx.load(str(src))
    graph_inputs = [i for i in model.graph.input
                    if i.name not in {x.name for x in model.graph.initializer}]
    if len(graph_inputs) != 1:
        from edgecnn.errors import ExportError

        raise ExportError(f"{src.name} has {len(graph_inputs)} inputs; the TensorRT target expects one "
                          f"image input")
    inp = graph_inputs[0]
    dims = inp.type.tensor_type.shape.dim
    if len(dims) != 4:
        from edgecnn.errors import ExportError

        raise ExportError(f"{src.name} input '{inp.name}' has rank {len(dims)}; expected N,C,H,W")
    fixed_batch = int(dims[0].dim_value) if dims[0].HasField("dim_value") else None
    if fixed_batch is None:
        dims[0].Clear()
        dims[0].dim_param = "batch"
        for out in model.graph.output:  # outputs follow the input batch
            odims = out.type.tensor_type.shape.dim
            if len(odims) and not odims[0].HasField("dim_value"):
                odims[0].Clear()
                odims[0].dim_param = "batch"
    for d, v in zip(list(dims)[1:], input_chw):
        d.Clear()
        d.dim_value = int(v)
    has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
    note = "skipped: Q/DQ graph (folding would dequantize int8 weights)" if has_qdq else "skipped"
    if fold_constants and not has_qdq:
        model, note = _fold(model)
    onnx.save(model, str(dst))
    return inp.name, note, fixed_batch


def _fold(model):
    try:
        from polygraphy.backend.onnx import fold_constants  # type: ignore[import-not-found]

        return fold_constants(model, allow_onnxruntime_shape_inference=False), "polygraphy fold_constants"
    except ImportError:
        pass
    try:
        import onnxscript.optimizer

        return onnxscript.optimizer.optimize(model), "onnxscript.optimizer (polygraphy not installed)"
    except ImportError:
        return model, "skipped: neither polygraphy nor onnxscript is installed"
