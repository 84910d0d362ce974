"""Step 5 of a benchmark: the report (rows, machine record, warnings) and where it goes:
the history row, JSON/CSV/Markdown and the plot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn.bench.report import BenchReport, flag_slow_int8

if TYPE_CHECKING:
    from edgecnn.bench.measure import Measured
    from edgecnn.bench.plan import BenchOptions, Plan


def make_report(plan: Plan, options: BenchOptions, machine: dict[str, Any],
                measured: Measured) -> BenchReport:
    """The run's :class:`BenchReport`, with the warnings about how it was measured."""
    from edgecnn.bundle import now_iso

    reference = measured.reference
    report = BenchReport(
        model=plan.model, input_size=list(plan.input_size), results=measured.rows,
        machine=machine,
        options={"targets": [t.name for t in plan.targets], "batch": plan.batches,
                 "threads": plan.threads, "warmup": options.warmup,
                 "iterations": options.iterations, "duration": options.duration,
                 "rounds": options.rounds, "data_limit": options.data_limit,
                 "profile": options.profile, "isolate": options.isolate, "seed": options.seed},
        created=now_iso(), bundle=str(plan.bundle) if plan.bundle else None,
        reference=reference.name if (reference and options.data) else None,
        reference_top1=measured.reference_top1, data=options.data)
    if options.setup is not None and not options.setup.is_empty:
        report.options["setup"] = options.setup.stated()  # what the user stated, as in bundles
    flag_slow_int8(report.results)
    if plan.torch_note and any(t.is_torch for t in plan.targets) and plan.torch_model:
        report.warnings.append(f"torch: {plan.torch_note}")
    load, cores = report.machine.get("load_avg_1m"), report.machine.get("cpu_count") or 1
    if load is not None and load > 0.75 * cores:
        report.warnings.append(f"the machine was busy (1-minute load {load} on {cores} cores): "
                               f"latencies are inflated and multi-threaded targets suffer most")
    jet = report.machine.get("jetson")
    if jet:
        report.warnings.extend(jet.get("warnings") or [])
    return report


def default_report_dir(report: BenchReport) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in report.model)
    return Path("bench_results") / f"{safe}-{stamp}"


def save_outputs(report: BenchReport, options: BenchOptions) -> dict[str, Path]:
    """History row (first, so the files carry the run id), JSON/CSV/Markdown, and the plot."""
    from edgecnn.bench.report import write_reports

    paths: dict[str, Path] = {}
    if options.save:
        from edgecnn.bench.history import History

        with History(options.db) as h:
            h.store(report)
            paths["db"] = h.path
    out = Path(options.report_dir) if options.report_dir else default_report_dir(report)
    paths.update(write_reports(report, out))
    if options.plot:
        from edgecnn.bench.plot import plot_report

        paths["png"] = plot_report(report, out / "bench.png")
    return paths
