"""TensorRT backend: prepare on any machine, build the engine on the device.

``export`` makes the precision's ONNX (fp32 = model.onnx; fp16/int8 from the quantize helpers),
a TensorRT-ready copy ``model.<prec>.trt.onnx`` (static C/H/W, dynamic batch, constants folded
where safe) and ``build_plan.json``, runs the CPU preflight for both ends of the plan's TensorRT
range and fails on its errors. With TensorRT and a GPU present it builds the engine right away;
otherwise it says which ``edgecnn build`` command to run on the device.

Where the plan is recorded: ``build_plan.json`` and the .trt.onnx are plain bundle files (not
artifacts: the runtime would try to run a "tensorrt" artifact as an engine). Their sha256 are
kept in ``manifest.source["tensorrt_prepared"][precision]``, so the manifest tracks them and
``edgecnn build`` refuses files that changed in transfer. Once built, the engine artifact's
details carry the plan and the engine metadata.
"""

from __future__ import annotations

from pathlib import Path

from edgecnn.backends.registry import Backend, ExportContext, register_backend
from edgecnn.errors import ExportError, ProfileError
from edgecnn.options import BatchProfile, ExportOptions
from edgecnn.tensorrt.plan import (BUILD_PLAN, DEFAULT_TRT_RANGE, DEFAULT_WORKSPACE_MB,
                                   PREPARED_KEY, BuildPlan, plans_json, read_plans, trt_onnx_name)
from edgecnn.tensorrt.versions import TrtVersion

PRECISION_ONNX = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}


def trt_range(options: ExportOptions, profile) -> tuple[str, str]:
    """The TensorRT versions the engine must build with: --trt-version, else the profile's range."""
    if options.trt_version:
        return options.trt_version, options.trt_version
    return (getattr(profile, "trt_version_min", None) or DEFAULT_TRT_RANGE[0],
            getattr(profile, "trt_version_max", None) or DEFAULT_TRT_RANGE[1])


def preflight_versions(lo: str, hi: str) -> list[str]:
    """The versions to check: the range's low end, plus 11.0 when the range reaches 11.x."""
    a, b = TrtVersion.parse(lo), TrtVersion.parse(hi)
    out = [str(a)]
    if b.major >= 11 > a.major:
        out.append("11.0")
    elif b != a and b.major == a.major:
        out.append(str(b))
    return out


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
        trt_version_min=lo, trt_version_max=hi, timing_cache="trt_timing.{trt}.sm{sm}.cache",
        dla_cores_available=getattr(profile, "dla_cores", 0), constant_folding=folding,
        target=getattr(profile, "name", "tensorrt"))


def record_prepared(writer, plan: BuildPlan) -> dict:
    """Merge ``plan`` into build_plan.json and record every prepared file's sha256 in
    ``manifest.source["tensorrt_prepared"]``.

    The record is rebuilt from build_plan.json each time (the export pipeline renews
    ``manifest.source`` on every export); plans whose .trt.onnx is gone or changed are dropped.
    """
    from edgecnn.bundle import sha256_file

    plans = read_plans(writer.read_path(BUILD_PLAN))
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


@register_backend
class TensorRTBackend(Backend):
    name = "tensorrt"

    def check(self, options: ExportOptions, profile) -> None:
        self.resolve_precision(options, profile)
        lo, hi = trt_range(options, profile)
        for v in (lo, hi):
            TrtVersion.parse(v)  # raises ProfileError with the bad text
        from edgecnn.tensorrt.versions import build_strategy

        build_strategy(lo)  # refuses TensorRT < 10 before any work
        if options.workspace_mb is not None and options.workspace_mb < 1:
            raise ProfileError(f"workspace_mb must be positive, got {options.workspace_mb}")

    def export(self, ctx: ExportContext) -> list:
        from edgecnn.bundle import sha256_file
        from edgecnn.tensorrt.plan import make_trt_onnx
        from edgecnn.tensorrt.preflight import preflight

        prec = ctx.precision
        src_name = self._precision_onnx(ctx)
        src = ctx.writer.read_path(src_name)
        trt_name = trt_onnx_name(prec)
        dst = ctx.writer.path_for(trt_name)
        input_name, folding, fixed = make_trt_onnx(src, dst, ctx.model.input_size, fold_constants=True)
        plan = make_plan(ctx.options, ctx.profile, prec, input_name, ctx.model.input_size, src_name,
                         sha256_file(dst), folding)
        if fixed is not None:
            ctx.log(f"warning: {src_name} has a fixed batch of {fixed}; the engine profile is "
                    f"{fixed}/{fixed}/{fixed} instead of {plan.batch_min}/{plan.batch_opt}/{plan.batch_max}")
            plan.batch_min = plan.batch_opt = plan.batch_max = fixed
        ctx.log(f"TensorRT plan: {trt_name} ({folding}), batch {plan.batch_min}/{plan.batch_opt}/"
                f"{plan.batch_max}, TensorRT {plan.trt_version_min}..{plan.trt_version_max}")
        for version in preflight_versions(plan.trt_version_min, plan.trt_version_max):
            report = preflight(dst, version, prec, (plan.batch_min, plan.batch_opt, plan.batch_max),
                               ctx.model.input_size)
            for w in report.warnings:
                ctx.log(f"preflight TensorRT {version}: {w}")
            if not report.ok:
                raise ExportError(f"{trt_name} will not build with TensorRT {version}: "
                                  + "; ".join(str(e) for e in report.errors))
        record_prepared(ctx.writer, plan)
        return self._build_now_or_explain(ctx, plan)

    def _precision_onnx(self, ctx: ExportContext) -> str:
        """The precision's ONNX in the staging folder (made by the quantize helpers if needed)."""
        want = PRECISION_ONNX[ctx.precision]
        if ctx.precision == "fp32":
            return Path(ctx.fp32_onnx).name
        for a in ctx.artifacts:
            if a.file == want:
                return want
        if ctx.precision == "fp16":
            from edgecnn.quantize.fp16 import export_fp16 as make
        else:
            from edgecnn.quantize.int8 import export_int8 as make
        artifact = make(ctx)
        ctx.artifacts.append(artifact)
        return artifact.file

    def _build_now_or_explain(self, ctx: ExportContext, plan: BuildPlan) -> list:
        from edgecnn._lazy import available
        from edgecnn.platform_info import probe

        bundle = ctx.writer.out
        cmd = f"edgecnn build {bundle} --precision {plan.precision}"
        if available("tensorrt") and probe().gpu is not None:
            from edgecnn.tensorrt.builder import build_bundle

            return [build_bundle(bundle, plan.precision, None, ctx.log, writer=ctx.writer)]
        ctx.log(f"TensorRT is not available here: the {plan.precision} engine will be built on the "
                f"device. Copy {bundle} there and run: {cmd}")
        return []
