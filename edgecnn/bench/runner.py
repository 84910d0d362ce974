"""``run_bench(model_or_bundle, BenchOptions) -> BenchReport``: the whole benchmark.

Order of work, one module each:
  1. :mod:`~edgecnn.bench.plan`: every argument check (targets, batch sizes, threads, profile,
     data vs model), before anything is built or timed; the bundle is opened once here;
  2. :mod:`~edgecnn.bench.build`: build the artifacts the bundle lacks
     (``edgecnn.pipeline.export``), one target at a time: a target whose build fails is
     reported with its error, the rest go on; then every artifact's checksum, once;
  3. :mod:`~edgecnn.bench.measure`: measure each (target, batch) in a fresh worker process
     (:mod:`edgecnn.bench.latency`), with ``rounds > 1`` interleaved round-robin (and the
     order rotated each round) so slow drift of the machine hits every target alike;
  4. accuracy on ``data`` once per target, the drop and top-1 agreement vs the fp32
     PyTorch reference (the fp32 ONNX artifact when the PyTorch model is not available);
  5. :mod:`~edgecnn.bench.outputs`: the machine record, the report files, the plot, the
     history row.
"""

from __future__ import annotations

from typing import Callable

from edgecnn.bench.build import build_missing, verify_artifacts
from edgecnn.bench.measure import Measured, _make_jobs, measure, tegrastats_available
from edgecnn.bench.outputs import default_report_dir, make_report, save_outputs
from edgecnn.bench.plan import (MAX_BATCH, BenchOptions, Plan, check_data, check_export,
                                export_options, plan_bench)
from edgecnn.bench.report import BenchReport, collect_machine


def run_bench(model: str, options: BenchOptions | None = None,
              log: Callable[[str], None] = print, progress: bool = True) -> BenchReport:
    """Check, build, measure and report (see the module doc). Writes nothing but the bundle;
    :func:`save_outputs` writes the report files, the plot and the history row."""
    options = options or BenchOptions()
    plan = plan_bench(model, options, log)
    failed = build_missing(plan, options, log)
    verify_artifacts(plan, failed)
    power = options.power if options.power is not None else tegrastats_available()
    machine = collect_machine(plan.threads)  # before the workers: their load is not the machine's
    measured = measure(plan, options, failed, power, log, progress)
    return make_report(plan, options, machine, measured)


__all__ = ["MAX_BATCH", "BenchOptions", "Measured", "Plan", "build_missing", "check_data",
           "check_export", "default_report_dir", "export_options", "make_report", "measure",
           "plan_bench", "run_bench", "save_outputs", "verify_artifacts", "_make_jobs"]
