"""TensorRT backend: prepare on any machine, build the engine on the device.

``export`` takes the precision's ONNX (fp32 = model.onnx; fp16/int8 made by the ONNX Runtime
backend's ``ensure_onnx``), writes a TensorRT-ready copy ``model.<prec>.trt.onnx`` (static C/H/W,
dynamic batch, constants folded where safe) and ``build_plan.json`` (both made by
:mod:`edgecnn.tensorrt.plan`), runs the CPU preflight for both ends of the plan's TensorRT range
and fails on its errors. With TensorRT and a GPU present it builds the engine right away;
otherwise it says which ``edgecnn build`` command to run on the device.

Where the plan is recorded: ``build_plan.json`` and the .trt.onnx are plain bundle files (not
artifacts: the runtime would try to run a "tensorrt" artifact as an engine). Their sha256 are
kept in ``manifest.source["tensorrt_prepared"][precision]``, so the manifest tracks them and
``edgecnn build`` refuses files that changed in transfer. Once built, the engine artifact's
details carry the plan and the engine metadata.
"""

from __future__ import annotations

from edgecnn.backends.registry import Backend, ExportContext, register_backend
from edgecnn.errors import ExportError, ProfileError
from edgecnn.options import ExportOptions
from edgecnn.runtime.trt_engine_info import TrtVersion
from edgecnn.tensorrt.plan import BuildPlan, make_plan, record_prepared, trt_onnx_name, trt_range


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
        from edgecnn.tensorrt.preflight import preflight, preflight_versions

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
        folded = f"constant folding {folding}" if folding.startswith("skipped") else \
            f"constant folding by {folding}"
        ctx.log(f"TensorRT plan: {trt_name} ({folded}), batch {plan.batch_min}/{plan.batch_opt}/"
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
        """The precision's ONNX in the staging folder (made by the ONNX Runtime backend if needed)."""
        from edgecnn.backends.onnxruntime import ensure_onnx

        return ensure_onnx(ctx, ctx.precision).file

    def _build_now_or_explain(self, ctx: ExportContext, plan: BuildPlan) -> list:
        from edgecnn._lazy import available
        from edgecnn.platform_info import probe

        bundle = ctx.writer.out
        if available("tensorrt") and probe().gpu is not None:
            from edgecnn.tensorrt.builder import build_bundle

            return [build_bundle(bundle, plan.precision, None, ctx.log, writer=ctx.writer)]
        ctx.log(f"TensorRT is not available here: the {plan.precision} engine is built on the "
                f"device by 'edgecnn build' from build_plan.json")
        return []
