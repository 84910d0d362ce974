"""Defect 10: ``edgecnn bench`` reads the engine's batch limit under the keys ``edgecnn build`` writes."""

from __future__ import annotations

from types import SimpleNamespace

from edgecnn.tensorrt.plan import BuildPlan, engine_batch_max


def _plan(**kw) -> BuildPlan:
    base = dict(precision="fp16", trt_onnx="model.fp16.trt.onnx", source_onnx="model.fp16.onnx",
                source_onnx_sha256="0" * 64, input_name="input", input_chw=[1, 8, 8], batch_min=1,
                batch_opt=4, batch_max=16, workspace_mb=64, builder_optimization_level=3,
                trt_version_min="10.3", trt_version_max="10.3",
                timing_cache="trt_timing.{trt}.sm{sm}.{gpu}.cache")
    base.update(kw)
    return BuildPlan(**base)


def _details(plan: BuildPlan, static: bool = False) -> dict:
    """What edgecnn.tensorrt.builder.build_bundle records in the engine artifact's details."""
    from _tensorrt_lib import recorded_machine
    from edgecnn.tensorrt.metadata import DETAILS_KEY, built_engine_metadata

    meta = built_engine_metadata("10.3.0.30", recorded_machine("agx_orin"), "8.7", plan,
                                 0 if static else None, "now", profile=plan.profile_shapes(static))
    return {DETAILS_KEY: meta.to_dict(), "build_plan": plan.to_dict(), "timing_cache": "x.cache"}


def test_reader_reads_what_the_builder_writes():
    assert engine_batch_max(_details(_plan())) == 16
    assert engine_batch_max(_details(_plan(), static=True)) == 4  # a DLA engine is static at opt
    assert engine_batch_max({"build_plan": {"batch_max": 8}}) == 8  # metadata missing
    assert engine_batch_max({"batch_max": 99}) is None and engine_batch_max(None) is None
    assert engine_batch_max({"build_plan": {"batch_max": True}}) is None


def test_bench_plan_uses_the_engine_limit_not_the_default():
    from edgecnn.bench.plan import Plan

    art = SimpleNamespace(backend="tensorrt", precision="fp16", details=_details(_plan(batch_max=16)))
    plan = Plan(model="tiny", input_size=[1, 8, 8], preprocess={}, num_classes=4, labels=[], bundle=None,
                opened=SimpleNamespace(manifest=SimpleNamespace(artifacts=[art])))
    assert plan.engine_batch_max() == 16  # before the fix: None, so bench fell back to 32
