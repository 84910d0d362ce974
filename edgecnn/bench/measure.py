"""Steps 3-4 of a benchmark: measure every (target, batch) and score accuracy.

Each measurement runs in a fresh worker process (:mod:`edgecnn.bench.latency`); with
``rounds > 1`` the cells are interleaved round-robin and the order rotated each round, so slow
drift of the machine hits every target alike. The rounds pool into one :class:`TargetResult`
per cell. Accuracy on ``data`` runs once per target; the drop and top-1 agreement are against
the fp32 PyTorch reference (the fp32 ONNX artifact when the PyTorch model is not available).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgecnn.bench.latency import Job, JobResult, TimingOptions, execute_job, run_job_subprocess
from edgecnn.bench.plan import BenchOptions, Plan
from edgecnn.bench.report import TargetResult
from edgecnn.bench.stats import LatencyStats
from edgecnn.bench.targets import BenchTarget, unavailable_reason


@dataclass
class Measured:
    """One row per (target, batch) in plan order, and the accuracy reference."""

    rows: list[TargetResult]
    reference: BenchTarget | None
    reference_top1: float | None


def measure(plan: Plan, options: BenchOptions, failed: dict[BenchTarget, str], power: bool,
            log: Callable[[str], None] = print, progress: bool = True) -> Measured:
    """Rows for skipped and failed targets, then the scheduled jobs, pooled per cell."""
    runnable: list[BenchTarget] = []
    results: dict[tuple[BenchTarget, int], TargetResult] = {}
    for t in plan.targets:
        if t in plan.skipped:
            for b in plan.batches:
                results[(t, b)] = TargetResult(t.name, t.backend, t.precision, b, "skipped",
                                               plan.skipped[t], artifact=t.artifact_file)
        elif t in failed:
            for b in plan.batches:
                results[(t, b)] = TargetResult(t.name, t.backend, t.precision, b, "failed",
                                               failed[t], artifact=t.artifact_file)
        else:
            fixed = plan.fixed_batch(t)
            bad = [b for b in plan.batches if fixed is not None and b != fixed]
            for b in bad:
                results[(t, b)] = TargetResult(
                    t.name, t.backend, t.precision, b, "skipped",
                    f"the artifact has a fixed batch of {fixed}", artifact=t.artifact_file)
            if len(bad) < len(plan.batches):
                runnable.append(t)
    cells_ok = {(t, b) for t in runnable for b in plan.batches if (t, b) not in results}

    reference = _reference(plan, options, runnable)
    jobs = _make_jobs(plan, options, runnable, reference, power, cells_ok)
    done: dict[tuple[str, int], list[JobResult]] = {}
    acc: dict[str, JobResult] = {}
    run = run_job_subprocess if options.isolate else _run_inprocess
    for r, job in _progress(jobs, progress):
        res = run(job, options.timeout)
        if job.measure_latency:
            done.setdefault((job.target, job.batch), []).append(res)
        if job.data and res.status == "ok":
            acc[job.target] = res
        elif job.data and not job.measure_latency:
            log(f"reference {job.target} accuracy failed: {res.error}")

    for t in runnable:
        for b in plan.batches:
            if (t, b) in results:
                continue
            results[(t, b)] = _aggregate(t, b, done.get((t.name, b), []), plan)
    rows = [results[(t, b)] for t in plan.targets for b in plan.batches]
    ref_top1 = None
    if options.data:
        ref = acc.get(reference.name) if reference else None
        ref_top1 = ref.top1 if ref else None
        _fill_accuracy(rows, acc, ref)
    return Measured(rows, reference, ref_top1)


def _fill_accuracy(rows: list[TargetResult], acc: dict[str, JobResult],
                   ref: JobResult | None) -> None:
    """Each target's accuracy on every one of its rows; drop and agreement vs ``ref``."""
    for row in rows:
        a = acc.get(row.target)
        if a is None or row.status != "ok":
            continue
        row.top1, row.top5, row.eval_n = a.top1, a.top5, a.eval_n
        if ref is not None:
            row.top1_drop = ref.top1 - a.top1
            if ref.predictions and a.predictions and len(ref.predictions) == len(a.predictions):
                row.agreement = 100.0 * float(np.mean(np.asarray(ref.predictions) ==
                                                      np.asarray(a.predictions)))


def _make_jobs(plan: Plan, options: BenchOptions, runnable: list[BenchTarget],
               reference: BenchTarget | None, power: bool,
               cells_ok: set | None = None) -> list[tuple[int, Job]]:
    timing = TimingOptions(options.warmup, options.iterations, options.duration)
    cells = [(t, b) for t in runnable for b in plan.batches
             if cells_ok is None or (t, b) in cells_ok]
    acc_cell = {}
    if options.data:
        for t in runnable:
            acc_cell[t] = min(b for tt, b in cells if tt == t)
    jobs: list[tuple[int, Job]] = []
    for r in range(options.rounds):
        k = r % len(cells) if cells else 0
        for t, b in cells[k:] + cells[:k]:  # rotate so no target always runs first
            jobs.append((r, _job(plan, options, t, b, timing, power,
                                 data=options.data if r == 0 and acc_cell.get(t) == b else None)))
    if options.data and reference is not None and reference not in runnable:
        jobs.insert(0, (0, _job(plan, options, reference, 64, timing, False, data=options.data,
                                measure_latency=False)))
    return jobs


def _job(plan: Plan, options: BenchOptions, t: BenchTarget, batch: int, timing: TimingOptions,
         power: bool, data: str | None, measure_latency: bool = True) -> Job:
    # the worker loads by precision[-variant] ('int8-trt'): the artifact this target names
    return Job(target=t.name, backend=t.backend, precision=t.spec, batch=batch,
               input_size=list(plan.input_size), timing=timing, threads=plan.threads,
               bundle=None if t.is_torch else str(plan.bundle),
               model=plan.torch_model if t.is_torch else None, preprocess=plan.preprocess,
               data=data, data_limit=options.data_limit, seed=options.seed,
               measure_latency=measure_latency, power=power)


def _aggregate(t: BenchTarget, batch: int, results: list[JobResult], plan: Plan) -> TargetResult:
    row = TargetResult(target=t.name, backend=t.backend, precision=t.precision, batch=batch,
                       threads=plan.threads, artifact=t.artifact_file)
    if t.variant == "tensorrt" and t.backend != "tensorrt" and batch == min(plan.batches):
        row.warnings.append(f"{t.artifact_file} is the TensorRT-shaped INT8 graph: TensorRT's "
                            f"accuracy proxy, not the CPU artifact (that is onnx:int8)")
    note = _saturation_note(t, plan) if batch == min(plan.batches) else None
    if note:
        row.warnings.append(note)
    failed = [r for r in results if r.status != "ok"]
    if failed:
        row.status, row.reason = "failed", failed[0].error
        return row
    ok = results
    row.rounds = len(ok)
    row.threads = plan.threads or next((r.threads for r in ok if r.threads), None)
    pooled = [s for r in ok for s in r.samples_ms]
    row.latency = LatencyStats.from_samples(pooled)
    row.round_p50s = [float(np.median(r.samples_ms)) for r in ok]
    row.load_ms = float(np.median([r.load_ms for r in ok]))
    row.first_ms = float(np.median([r.first_ms for r in ok]))
    row.warmup_iterations = int(np.median([r.warmup_iterations for r in ok]))
    row.throughput = row.latency.throughput(batch)
    peaks = [r.peak_rss_mb for r in ok if r.peak_rss_mb is not None]
    row.peak_rss_mb = max(peaks) if peaks else None
    deltas = [r.peak_rss_mb - r.baseline_rss_mb for r in ok
              if r.peak_rss_mb is not None and r.baseline_rss_mb is not None]
    row.rss_delta_mb = max(deltas) if deltas else None
    if any(r.warmup_settled is False for r in ok):
        row.warnings.append("warm-up did not settle within its cap; the first timed "
                            "iterations may still be warming up")
    powers = [r.power for r in ok if r.power]
    if powers:
        p = dict(powers[0])
        for key in ("avg_input_mw", "energy_per_inference_mj", "energy_per_image_mj"):
            vals = [q[key] for q in powers if q.get(key) is not None]
            p[key] = float(np.mean(vals)) if vals else None
        row.power = p
        for r in ok:
            for w in r.power_warnings:
                if w not in row.warnings:
                    row.warnings.append(w)
    if row.artifact and plan.bundle is not None:
        f = Path(plan.bundle) / row.artifact
        row.artifact_bytes = f.stat().st_size if f.is_file() else None
    return row


def _reference(plan: Plan, options: BenchOptions, runnable: list[BenchTarget]
               ) -> BenchTarget | None:
    """fp32 PyTorch when it can run here, else the fp32 ONNX artifact."""
    torch_t = BenchTarget("torch", "fp32")
    if torch_t in runnable:
        return torch_t
    if plan.torch_model is not None and unavailable_reason(torch_t) is None \
            and plan.torch_note is None:
        return torch_t
    onnx_t = BenchTarget("onnxruntime", "fp32")
    if onnx_t in runnable or (plan.has_artifact(onnx_t) and unavailable_reason(onnx_t) is None):
        return onnx_t
    return None


def _run_inprocess(job: Job, timeout: float | None = None) -> JobResult:
    try:
        return execute_job(job)
    except Exception as exc:  # noqa: BLE001
        return JobResult(job.target, job.batch, status="failed",
                         error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def tegrastats_available() -> bool:
    from edgecnn.bench.jetson import TegrastatsSampler, is_tegra

    return is_tegra() and TegrastatsSampler.available()


def _progress(jobs: list[tuple[int, Job]], enabled: bool):
    if not enabled or not jobs:
        yield from jobs
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("benchmarking", total=len(jobs))
        for r, job in jobs:
            what = "accuracy" if not job.measure_latency else f"batch {job.batch}"
            bar.update(task, description=f"round {r + 1}: {job.target} ({what})")
            yield r, job
            bar.advance(task)


def _saturation_note(t: BenchTarget, plan: Plan) -> str | None:
    """The runtime's warning for an 8-bit CPU graph chosen on a VNNI CPU, run on one without
    (the workers load it in their own processes, where a RuntimeWarning would go unseen)."""
    if t.backend != "onnxruntime" or t.precision != "int8" or plan.opened is None:
        return None
    from edgecnn.errors import EdgeCNNError
    from edgecnn.runtime.ort import saturation_note

    try:
        artifact = plan.opened.manifest.find(t.backend, t.precision, t.variant or None)
    except EdgeCNNError:  # a missing artifact is reported by the job itself
        return None
    return saturation_note(artifact.details)

