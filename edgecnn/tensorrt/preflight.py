"""CPU-side preflight: would this ONNX graph parse and build with TensorRT X.Y?

Walks the graph against onnx-tensorrt's operator table (op_support.json, with the version it was
taken from) and reports, before anyone touches a device: ops the parser lacks or marks
unsupported, attribute restrictions from that table, data types, custom-domain ops (need a
plugin), opset outside the parser's range, Q/DQ rule violations (edgecnn.quantize.qdq_check plus
TensorRT's own: signed INT8, zero point 0), large INT64 weights, non-static C/H/W and a fixed
batch outside the optimisation profile. Needs ``onnx`` (imported inside the functions).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgecnn import catalog
from edgecnn.runtime.trt_engine_info import TrtVersion

_TABLE = Path(__file__).resolve().parent / "op_support.json"
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
# ops whose int64 inputs are shapes/indices/axes, not weights
_SHAPE_CONSUMERS = {"Reshape", "Slice", "Expand", "Tile", "Unsqueeze", "Squeeze", "Gather",
                    "GatherElements", "GatherND", "Pad", "Resize", "ConstantOfShape", "Range", "TopK",
                    "Split", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
                    "OneHot", "ScatterND", "ScatterElements", "CumSum", "Concat", "Shape", "Cast",
                    "Trilu", "Upsample"}
INT64_WEIGHT_LIMIT = 1024  # elements; larger int64 initializers are weights, not shapes
# ONNX TensorProto elem type -> name used in the onnx-tensorrt table
_DTYPE_NAMES = {1: "FP32", 2: "UINT8", 3: "INT8", 5: "INT16", 6: "INT32", 7: "INT64", 9: "BOOL",
                10: "FP16", 11: "DOUBLE", 16: "BF16", 17: "FP8", 18: "FP8", 19: "FP8", 20: "FP8",
                21: "UINT4", 22: "INT4", 23: "FP4", 4: "UINT16", 12: "UINT32", 13: "UINT64", 8: "STRING"}
# ops whose every input is data (not shapes/indices) and must be of a supported type
_ALL_INPUTS_DATA = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization",
                    "InstanceNormalization", "LayerNormalization", "PRelu"}


@dataclass
class Issue:
    severity: str  # "error" | "warning"
    code: str  # unsupported-op | custom-domain | opset | dtype | attribute | qdq | int64-weights | dims | precision
    message: str
    node: str | None = None
    op: str | None = None

    def __str__(self) -> str:
        where = f"{self.node} ({self.op}): " if self.node else (f"{self.op}: " if self.op else "")
        return f"{self.severity}: {where}{self.message}"


@dataclass
class PreflightReport:
    trt_version: str
    precision: str | None
    opset: int | None
    ops: dict[str, int]
    issues: list[Issue] = field(default_factory=list)
    table_source: str = ""

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"trt_version": self.trt_version, "precision": self.precision, "opset": self.opset,
                "ops": self.ops, "ok": self.ok, "issues": [vars(i) for i in self.issues]}

    def summary(self) -> str:
        head = (f"TensorRT {self.trt_version} preflight ({self.precision or 'any precision'}, opset "
                f"{self.opset}, {sum(self.ops.values())} nodes, {len(self.ops)} op types): "
                f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        return "\n".join([head] + [f"  {i}" for i in self.issues])


def preflight_versions(lo: str, hi: str) -> list[str]:
    """The versions to check: the range's low end, plus 11.0 when the range reaches 11.x."""
    a, b = TrtVersion.parse(lo), TrtVersion.parse(hi)
    out = [str(a)]
    if b.major >= 11 > a.major:
        out.append("11.0")
    elif b != a and b.major == a.major:
        out.append(str(b))
    return out


@lru_cache(maxsize=1)
def op_table() -> dict[str, Any]:
    return json.loads(_TABLE.read_text(encoding="utf-8"))


def opset_range(version: TrtVersion) -> tuple[int, int, str]:
    """(min, max, table key): the newest table entry that is not newer than ``version``."""
    entries = sorted(((TrtVersion.parse(k), k, v) for k, v in op_table()["versions"].items()))
    chosen = entries[0]
    for v, key, rng in entries:
        if v <= version:
            chosen = (v, key, rng)
    return chosen[2]["opset_min"], chosen[2]["opset_max"], chosen[1]


def preflight(model: Any, trt_version: str | TrtVersion, precision: str | None = None,
              batch: tuple[int, int, int] | None = None,
              input_size: tuple[int, int, int] | None = None, qdq_rules: bool = True) -> PreflightReport:
    """Check ``model`` (path or onnx.ModelProto) for TensorRT ``trt_version``.

    ``batch`` is the profile's (min, opt, max); ``input_size`` the expected (C, H, W).
    """
    import onnx

    version = trt_version if isinstance(trt_version, TrtVersion) else TrtVersion.parse(trt_version)
    proto = onnx.load(str(model)) if isinstance(model, (str, Path)) else model
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - a graph shape inference rejects is checked without types
        inferred = proto
    graph = inferred.graph
    table = op_table()
    issues: list[Issue] = []

    default_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    lo, hi, key = opset_range(version)
    if default_opset is None:
        issues.append(Issue("error", "opset", "the model declares no ai.onnx opset"))
    elif not lo <= default_opset <= hi:
        issues.append(Issue("error", "opset",
                            f"opset {default_opset} is outside TensorRT {version}'s ONNX parser range "
                            f"{lo}..{hi} (table {key}); re-export with opset={min(max(default_opset, lo), hi)}"))

    types = _value_types(graph)
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    inits = {i.name: i for i in graph.initializer}
    counts: Counter[str] = Counter()
    constants = frozenset(o for n in graph.node if n.op_type == "Constant" for o in n.output)
    for node in graph.node:
        counts[node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"] += 1
        issues.extend(_check_node(node, version, table, types, inits, consumers, constants))

    issues.extend(_check_int64_weights(graph, consumers))
    issues.extend(_check_inputs(graph, batch, input_size))
    issues.extend(_check_precision(graph, counts, precision, types))
    if qdq_rules and (counts.get("QuantizeLinear") or counts.get("DequantizeLinear")):
        issues.extend(_check_qdq_rules(proto))
    return PreflightReport(str(version), precision, default_opset, dict(sorted(counts.items())),
                           issues, table["source"]["table"])


def _value_types(graph) -> dict[str, int]:
    types: dict[str, int] = {}
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value" and a.t is not None:
                    types[node.output[0]] = a.t.data_type
    return types


def _attr(node, name: str, default: Any = None) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _check_node(node, version: TrtVersion, table, types, inits, consumers,
                constants: frozenset[str] = frozenset()) -> list[Issue]:
    out: list[Issue] = []
    name, op = node.name or (node.output[0] if node.output else "?"), node.op_type

    def issue(code: str, msg: str, severity: str = "error") -> None:
        out.append(Issue(severity, code, msg, name, op))

    if node.domain not in ("", "ai.onnx"):
        issue("custom-domain", f"op from domain '{node.domain}' is not part of ONNX: TensorRT's parser "
                               f"needs a plugin registered for '{op}' (not supported by edgecnn)")
        return out
    row = table["ops"].get(op)
    if row is None:
        why = "marked unsupported (N)" if op in table["unsupported"] else "not in the table"
        issue("unsupported-op", f"TensorRT {version}'s ONNX parser has no importer for {op} ({why} in "
                                f"onnx-tensorrt operators.md); replace it in the model or export differently")
        return out
    if "min_trt" in row and version < TrtVersion.parse(row["min_trt"]):
        issue("unsupported-op", f"{op} is first listed for TensorRT {row['min_trt']}, not {version}")
    # data types: the data input(s) against the op's supported types (for this version)
    types_for, older = row["types"], row.get("older")
    if older and version < TrtVersion.parse(older["before"]):
        types_for = older["types"]
    allowed = set(types_for)
    checked = node.input if op in _ALL_INPUTS_DATA else node.input[:1]
    for i, inp in enumerate(checked):
        if not inp or inp not in types:
            continue
        t = _DTYPE_NAMES.get(types[inp], str(types[inp]))
        if t in allowed:
            continue
        if t == "DOUBLE":
            issue("dtype", f"input {i} '{inp}' is DOUBLE: TensorRT casts it down to FP32", "warning")
        else:
            issue("dtype", f"input {i} '{inp}' is {t}; TensorRT {version} supports {op} on "
                           f"{', '.join(types_for)}")
    # attribute restrictions from the table that can be checked statically
    if op in ("MaxPool", "AveragePool", "LpPool"):
        dil = _attr(node, "dilations")
        if dil and any(d != 1 for d in dil):
            issue("attribute", f"dilations {list(dil)}: TensorRT supports only empty or all-ones")
        ks = _attr(node, "kernel_shape")
        if op != "LpPool" and ks is not None and len(ks) not in (2, 3):
            issue("attribute", f"{len(ks)}D pooling: TensorRT supports 2D or 3D only")
        if op == "MaxPool" and len(node.output) > 1 and node.output[1] and node.output[1] in consumers:
            issue("attribute", "the Indices output of MaxPool is not supported")
    elif op == "Resize":
        mode = _attr(node, "mode", b"nearest")
        ctm = _attr(node, "coordinate_transformation_mode", b"half_pixel")
        mode, ctm = (v.decode() if isinstance(v, bytes) else v for v in (mode, ctm))
        if mode not in ("nearest", "linear"):
            issue("attribute", f"mode '{mode}': TensorRT supports nearest and linear")
        if ctm not in ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric",
                       "align_corners"):
            issue("attribute", f"coordinate_transformation_mode '{ctm}' is not supported")
        if _attr(node, "antialias", 0):
            issue("attribute", "antialias is not supported")
    elif op == "TopK" and _attr(node, "sorted", 1) != 1:
        issue("attribute", "sorted must be 1")
    elif op == "LayerNormalization" and any(o and o in consumers for o in node.output[1:]):
        issue("attribute", "only the first output Y is supported")
    elif op in QDQ_OPS:
        out.extend(_check_qdq_node(node, name, types, inits))
        out.extend(_check_qdq_typing(node, name, types, inits, consumers, constants))
    return out


_FLOATS = {"FP32", "FP16", "BF16"}
# ops whose float inputs must share one type in a strongly typed network
_SAME_FLOAT_INPUTS = _ALL_INPUTS_DATA | {"Add", "Sub", "Mul", "Div", "Concat", "Sum", "Max", "Min"}


def _check_qdq_typing(node, name, types, inits, consumers, constants=frozenset()) -> list[Issue]:
    """Strongly typed Q/DQ (TensorRT 10 with STRONGLY_TYPED, every TensorRT 11 network):
    QuantizeLinear's input type equals its scale type; DequantizeLinear's output has its scale's
    type, so a consumer that mixes it with another float type is refused; activation scales are
    per tensor (per-channel scales only for weights)."""
    from onnx import numpy_helper

    out: list[Issue] = []
    scale = node.input[1] if len(node.input) > 1 else ""
    scale_t = _DTYPE_NAMES.get(types.get(scale, 0))
    if node.op_type == "QuantizeLinear" and scale_t:
        in_t = _DTYPE_NAMES.get(types.get(node.input[0], 0))
        if in_t in _FLOATS and in_t != scale_t:
            out.append(Issue("error", "qdq", f"input '{node.input[0]}' is {in_t}, scale '{scale}' is "
                                             f"{scale_t}: a strongly typed network needs them equal; "
                                             f"cast the scale to {in_t}", name, node.op_type))
        x = node.input[0]
        is_weight = x in inits or x in constants
        if not is_weight and scale in inits and numpy_helper.to_array(inits[scale]).size > 1:
            out.append(Issue("error", "qdq", f"activation '{x}' has a per-channel scale: TensorRT "
                                             f"quantizes activations per tensor (per-channel scales are "
                                             f"for weights); re-quantize with one activation scale",
                             name, node.op_type))
    if node.op_type == "DequantizeLinear" and scale_t and node.output:
        for user in consumers.get(node.output[0], []):
            if user.op_type not in _SAME_FLOAT_INPUTS:
                continue
            others = {_DTYPE_NAMES.get(types.get(i, 0)) for i in user.input
                      if i and i != node.output[0] and not (user.op_type in ("Conv", "ConvTranspose", "Gemm")
                                                            and i == user.input[-1] and len(user.input) > 2)}
            mixed = sorted(t for t in others & _FLOATS if t != scale_t)
            if mixed:
                out.append(Issue("error", "qdq", f"'{node.output[0]}' is {scale_t} (its scale's type) and "
                                                 f"{user.op_type} '{user.name}' also takes {mixed[0]}: a "
                                                 f"strongly typed network does not mix float types; use "
                                                 f"{mixed[0]} scales", name, node.op_type))
    return out


def _check_qdq_node(node, name, types, inits) -> list[Issue]:
    """TensorRT's own Q/DQ rules: signed INT8 (UINT8 only at network I/O), zero point 0."""
    from onnx import numpy_helper

    out: list[Issue] = []
    zp_name = node.input[2] if len(node.input) > 2 else ""
    if zp_name:
        zp_type = _DTYPE_NAMES.get(types.get(zp_name, 0))
        if zp_type == "UINT8":
            out.append(Issue("error", "qdq", f"zero point '{zp_name}' is UINT8: TensorRT quantizes to "
                                             f"signed INT8 only (UINT8 only at network I/O); "
                                             f"re-quantize symmetric int8", name, node.op_type))
        if zp_name in inits:
            zp = numpy_helper.to_array(inits[zp_name])
            if zp.size and (zp != 0).any():
                out.append(Issue("error", "qdq", f"zero point '{zp_name}' is not 0: TensorRT needs "
                                                 f"symmetric quantization", name, node.op_type))
    return out


def _check_int64_weights(graph, consumers) -> list[Issue]:
    from onnx import TensorProto

    out = []
    for init in graph.initializer:
        if init.data_type != TensorProto.INT64:
            continue
        n = 1
        for d in init.dims:
            n *= d
        users = {c.op_type for c in consumers.get(init.name, [])}
        as_weight = users - _SHAPE_CONSUMERS
        if n > INT64_WEIGHT_LIMIT or as_weight:
            out.append(Issue("warning", "int64-weights",
                             f"INT64 initializer '{init.name}' ({n} elements) used by "
                             f"{sorted(users) or 'nothing'}: TensorRT 10+ runs INT64 natively in "
                             f"elementwise ops, but INT64 weights cost memory and speed; int32 is "
                             f"cheaper where the values fit"))
    return out


def _check_inputs(graph, batch, input_size) -> list[Issue]:
    out = []
    inits = {i.name for i in graph.initializer}
    for vi in graph.input:
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
        for axis, d in enumerate(shape[1:], start=1):
            if not isinstance(d, int):
                out.append(Issue("error", "dims", f"input '{vi.name}' dim {axis} is dynamic ({d}): "
                                                  f"C/H/W must be static for the engine profile"))
        if input_size is not None and all(isinstance(d, int) for d in shape[1:]) \
                and tuple(shape[1:]) != tuple(input_size):
            out.append(Issue("error", "dims", f"input '{vi.name}' is {shape[1:]}, the plan expects "
                                              f"{list(input_size)}"))
        if shape and isinstance(shape[0], int) and batch is not None:
            lo, _opt, hi = batch
            if not lo <= shape[0] <= hi or lo != hi:
                out.append(Issue("error", "dims",
                                 f"input '{vi.name}' has a fixed batch of {shape[0]}, the profile asks "
                                 f"for {lo}..{hi}: re-export with a dynamic batch or set the batch "
                                 f"profile to {shape[0]}"))
    return out


def _check_precision(graph, counts, precision, types) -> list[Issue]:
    """Strongly typed: the graph must carry the precision the plan promises."""
    has_qdq = bool(counts.get("QuantizeLinear") or counts.get("DequantizeLinear"))
    has_fp16 = any(t == 10 for t in types.values())
    if precision == "int8" and not has_qdq:
        return [Issue("error", "precision", "int8 needs a Q/DQ graph (model.int8.onnx): a strongly "
                                            "typed build takes precision from the graph and would run fp32")]
    if precision == "fp16" and not has_fp16:
        return [Issue("error", "precision", "fp16 needs FLOAT16 tensors in the graph (model.fp16.onnx): "
                                            "a strongly typed build would run fp32")]
    if precision == "fp32" and (has_qdq or has_fp16):
        return [Issue("warning", "precision", "the fp32 plan's graph holds Q/DQ or FLOAT16 tensors; "
                                              "the engine runs in those types")]
    return []


def _check_qdq_rules(proto) -> list[Issue]:
    """The quantize helper's Q/DQ placement rules, when that module is present."""
    try:
        from edgecnn.quantize.qdq_check import check_qdq
    except ImportError as exc:
        return [Issue("warning", "qdq", f"Q/DQ placement rules not checked: edgecnn.quantize.qdq_check "
                                        f"is not available ({exc})")]
    out = []
    for v in check_qdq(proto):
        rule = getattr(v, "rule", "")
        out.append(Issue("error", "qdq", f"[{rule}] {getattr(v, 'message', v)}" if rule else str(v),
                         getattr(v, "node", None) or None, None))
    return out


def check_bundle(bundle: str | Path, target: str | None = None, trt_version: str | None = None,
                 precision: str | None = None) -> list[PreflightReport]:
    """``edgecnn check``: preflight a bundle's ONNX files.

    ``target='tensorrt'``: every prepared (or preparable) precision against ``trt_version`` or,
    without it, both ends of the build plan's range (10.3 and 11.0 by default). No target: the
    Q/DQ rules on the bundle's int8 ONNX artifacts only.
    """
    from edgecnn.bundle import Bundle
    from edgecnn.errors import BundleError
    from edgecnn.tensorrt.plan import (BUILD_PLAN, read_plans, recorded_plan_sha256,
                                       trt_onnx_name)

    b = Bundle.open(bundle)
    onnx_files = {p: catalog.artifact_file("onnxruntime", p)
                  for p in catalog.entry("onnxruntime").precisions}
    if target is None:
        # TensorRT's Q/DQ rules apply to the TensorRT-shaped graph only: the CPU-shaped int8
        # graph (uint8 activations, non-zero zero points) is right for ONNX Runtime's kernels
        int8 = [a for a in b.manifest.artifacts if a.backend == "onnxruntime"
                and a.precision == "int8" and a.variant == "tensorrt"
                and (precision in (None, "int8"))]
        reports = []
        for a in int8:
            import onnx

            model = onnx.load(str(b.artifact_path(a)))
            issues = _check_qdq_rules(model)
            g = model.graph
            types = _value_types(g)
            inits = {i.name: i for i in g.initializer}
            for node in g.node:
                if node.op_type in QDQ_OPS:
                    issues.extend(_check_qdq_node(node, node.name, types, inits))
            reports.append(PreflightReport("-", "int8", None, dict(Counter(n.op_type for n in g.node)),
                                           issues))
        return reports
    if catalog.canonical(target) != "tensorrt":
        raise BundleError(f"edgecnn check --target supports tensorrt only, got {target!r}")
    plans = read_plans(b.path / BUILD_PLAN, recorded_plan_sha256(b.manifest))
    precisions = [precision] if precision else (sorted(plans) or
                                                [p for p, f in onnx_files.items() if (b.path / f).is_file()])
    reports = []
    for prec in precisions:
        plan = plans.get(prec)
        candidates = [trt_onnx_name(prec), onnx_files[prec]]
        path = next((b.path / f for f in candidates if (b.path / f).is_file()), None)
        if path is None:
            raise BundleError(f"{b.path} has neither {candidates[0]} nor {candidates[1]}; export that "
                              f"precision first")
        _verify_checked_file(b, path, plan)
        if trt_version:
            versions = [trt_version]
        elif plan:
            versions = preflight_versions(plan.trt_version_min, plan.trt_version_max)
        else:
            versions = ["10.3", "11.0"]
        batch = (plan.batch_min, plan.batch_opt, plan.batch_max) if plan else None
        chw = tuple(plan.input_chw) if plan else None
        for v in versions:
            reports.append(preflight(path, v, prec, batch, chw))
    return reports


def _verify_checked_file(b, path: Path, plan) -> None:
    """The file ``check --target tensorrt`` reads must be the one the bundle records: a manifest
    artifact by its sha256, a prepared .trt.onnx by build_plan.json (itself checked against the
    manifest's record), as plain ``check`` and ``edgecnn build`` do."""
    from edgecnn.bundle import sha256_file
    from edgecnn.errors import ChecksumError
    from edgecnn.tensorrt.plan import BUILD_PLAN, PREPARED_KEY

    for a in b.manifest.artifacts:
        if a.file == path.name:
            b.artifact_path(a, verify=True)  # ChecksumError on a changed file
            return
    record = b.manifest.source.get(PREPARED_KEY) or {}
    if record and sha256_file(b.path / BUILD_PLAN) != record.get("build_plan_sha256"):
        raise ChecksumError(f"{BUILD_PLAN} does not match the manifest's checksum: it was changed "
                            f"or damaged in transfer; copy the bundle again or re-export it")
    if plan is None or plan.trt_onnx != path.name:
        raise ChecksumError(f"{path.name} is recorded neither in the manifest nor in {BUILD_PLAN}, "
                            f"so it cannot be checked against a checksum; re-export the bundle "
                            f"with --target tensorrt")
    if sha256_file(path) != plan.source_onnx_sha256:
        raise ChecksumError(f"{path.name} does not match its checksum in {BUILD_PLAN}: the file was "
                            f"changed or damaged in transfer; copy the bundle again or re-export it")
