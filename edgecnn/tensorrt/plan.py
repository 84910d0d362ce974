"""The build plan (build_plan.json) and the TensorRT-ready ONNX (model.<prec>.trt.onnx).

Prepared on any machine by the TensorRT backend (:func:`make_plan`, :func:`make_trt_onnx`,
:func:`record_prepared`), read on the device by ``edgecnn build``. One build_plan.json per
bundle holds one plan per precision. Both file names are the catalogue's
(``edgecnn.catalog.BACKENDS["tensorrt"].prepared_files``). Stdlib only except
:func:`make_trt_onnx` (onnx, inside the function).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.errors import BundleError, ChecksumError
from edgecnn.options import BatchProfile, ExportOptions

BUILD_PLAN = "build_plan.json"  # one of the catalogue's tensorrt prepared_files
PLAN_FORMAT = "edgecnn-trt-build-plan-v1"
PREPARED_KEY = "tensorrt_prepared"  # Manifest.source[PREPARED_KEY][precision] -> file checksums
DEFAULT_TRT_RANGE = ("10.0", "11.99")
DEFAULT_WORKSPACE_MB = 2048


def trt_onnx_name(precision: str) -> str:
    """The TensorRT-ready ONNX of ``precision`` (one of the catalogue's tensorrt prepared_files)."""
    return f"model.{precision}.trt.onnx"


def trt_range(options: ExportOptions, profile) -> tuple[str, str]:
    """The TensorRT versions the engine must build with: --trt-version, else the profile's range."""
    if options.trt_version:
        return options.trt_version, options.trt_version
    return (getattr(profile, "trt_version_min", None) or DEFAULT_TRT_RANGE[0],
            getattr(profile, "trt_version_max", None) or DEFAULT_TRT_RANGE[1])


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

    def profile_shapes(self, static: bool = False) -> tuple[list[int], list[int], list[int]]:
        """(min, opt, max) input shapes; ``static`` (a DLA build): the opt batch for all three."""
        c, h, w = self.input_chw
        lo, opt, hi = (self.batch_opt,) * 3 if static else (self.batch_min, self.batch_opt, self.batch_max)
        return ([lo, c, h, w], [opt, c, h, w], [hi, c, h, w])

    def timing_cache_file(self, trt_version: str, compute_capability: str, gpu_name: str = "") -> str:
        """The timing cache file for this TensorRT, compute capability and GPU model.

        Keyed by GPU name as well: an AGX Orin and an Orin Nano are both sm 8.7, and TensorRT
        rejects a cache made on other device properties. Plans written before the key had
        ``{gpu}`` get it before ``.cache``.
        """
        pattern = self.timing_cache if "{gpu}" in self.timing_cache else \
            self.timing_cache.replace(".cache", ".{gpu}.cache") if self.timing_cache.endswith(".cache") \
            else self.timing_cache + ".{gpu}"
        gpu = re.sub(r"[^A-Za-z0-9]+", "-", gpu_name).strip("-").lower() or "gpu"
        return pattern.format(trt=trt_version.replace("+", "_"), sm=compute_capability.replace(".", ""),
                              gpu=gpu)

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


def read_plans(path: Path, sha256: str | None = None) -> dict[str, BuildPlan]:
    """precision -> plan from a build_plan.json; {} when the file does not exist. With
    ``sha256`` (the manifest's record) the file must match it, checked before it is parsed."""
    if not path.is_file():
        return {}
    if sha256 is not None:
        from edgecnn.bundle import sha256_file

        if sha256_file(path) != sha256:
            raise ChecksumError(f"{path.name} does not match the manifest's checksum: it was "
                                f"changed or damaged in transfer; copy the bundle again or "
                                f"re-export it with --target tensorrt")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path.name} is unreadable ({exc}); prepare the bundle again") from None
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT or \
            not isinstance(data.get("plans"), dict):
        raise BundleError(f"{path.name} is not an edgecnn build plan ({PLAN_FORMAT})")
    return {k: BuildPlan.from_dict(v) for k, v in data["plans"].items()}


def engine_batch_max(details: Any) -> int | None:
    """The largest batch a built engine takes, from its artifact details; None if not recorded.

    The engine metadata's profile (``details["engine"]["profiles"][0]["max"][0]``, what the
    engine was really built with: a DLA build is static) wins over the build plan's
    ``batch_max`` (``details["build_plan"]``). Both are written by ``edgecnn build``.
    """
    if not isinstance(details, dict):
        return None
    engine = details.get("engine")
    profiles = engine.get("profiles") if isinstance(engine, dict) else None
    if isinstance(profiles, list) and profiles and isinstance(profiles[0], dict):
        mx = profiles[0].get("max")
        if isinstance(mx, list) and mx and isinstance(mx[0], int) and not isinstance(mx[0], bool) \
                and mx[0] > 0:
            return mx[0]
    plan = details.get("build_plan")
    value = plan.get("batch_max") if isinstance(plan, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def plans_json(plans: dict[str, BuildPlan]) -> str:
    return json.dumps({"format": PLAN_FORMAT,
                       "plans": {k: plans[k].to_dict() for k in sorted(plans)}}, indent=2) + "\n"


def make_plan(options: ExportOptions, profile, precision: str, input_name: str,
              input_chw: tuple[int, int, int], source_onnx: str, trt_onnx_sha256: str,
              folding: str) -> BuildPlan:
    lo, hi = trt_range(options, profile)
    b = options.batch
    if b is None and profile is not None and getattr(profile, "is_device", False):
        b_min, b_opt, b_max = profile.batch_min, profile.batch_opt, profile.batch_max
    else:  # an explicit --batch always wins, even when it equals the defaults
        b = b or BatchProfile()
        b_min, b_opt, b_max = b.min, b.opt, b.max
    return BuildPlan(
        precision=precision, trt_onnx=trt_onnx_name(precision), source_onnx=source_onnx,
        source_onnx_sha256=trt_onnx_sha256, input_name=input_name, input_chw=list(input_chw),
        batch_min=b_min, batch_opt=b_opt, batch_max=b_max,
        workspace_mb=options.workspace_mb or getattr(profile, "workspace_mb", None) or DEFAULT_WORKSPACE_MB,
        builder_optimization_level=getattr(profile, "builder_optimization_level", 3),
        trt_version_min=lo, trt_version_max=hi, timing_cache="trt_timing.{trt}.sm{sm}.{gpu}.cache",
        dla_cores_available=getattr(profile, "dla_cores", 0), constant_folding=folding,
        target=getattr(profile, "name", "tensorrt"))


def recorded_plan_sha256(manifest) -> str | None:
    """The sha256 of build_plan.json the manifest records (None for a bundle without a record)."""
    record = manifest.source.get(PREPARED_KEY)
    value = record.get("build_plan_sha256") if isinstance(record, dict) else None
    return value if isinstance(value, str) else None


def record_prepared(writer, plan: BuildPlan) -> dict:
    """Merge ``plan`` into build_plan.json and record every prepared file's sha256 in
    ``manifest.source["tensorrt_prepared"]``.

    The record is rebuilt from build_plan.json each time (the export pipeline renews
    ``manifest.source`` on every export); plans whose .trt.onnx is gone or changed are dropped.
    """
    from edgecnn.bundle import sha256_file

    try:  # a carried-over plan that no longer matches the manifest's record is prepared anew
        plans = read_plans(writer.read_path(BUILD_PLAN), recorded_plan_sha256(writer.manifest))
    except BundleError:
        plans = {}
    plans[plan.precision] = plan
    for prec, p in list(plans.items()):
        f = writer.read_path(p.trt_onnx)
        if not f.is_file() or sha256_file(f) != p.source_onnx_sha256:
            del plans[prec]
    path = writer.write_text(BUILD_PLAN, plans_json(plans))
    record = {"build_plan": BUILD_PLAN, "build_plan_sha256": sha256_file(path),
              "precisions": {k: {"trt_onnx": p.trt_onnx, "trt_onnx_sha256": p.source_onnx_sha256,
                                 "from": p.source_onnx} for k, p in sorted(plans.items())}}
    writer.manifest.source[PREPARED_KEY] = record
    return record


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
