"""``run_bench(model_or_bundle, BenchOptions) -> BenchReport``: the whole benchmark.

Order of work:
  1. every argument check (targets, batch sizes, threads, profile, data vs model), before
     anything is built or timed;
  2. build the artifacts the bundle lacks (``edgecnn.pipeline.export``), one target at
     a time: a target whose build fails is reported with its error, the rest go on;
  3. measure each (target, batch) in a fresh worker process (:mod:`edgecnn.bench.latency`),
     with ``rounds > 1`` interleaved round-robin (and the order rotated each round) so slow
     drift of the machine hits every target alike;
  4. accuracy on ``data`` once per target, the drop and top-1 agreement vs the fp32
     PyTorch reference (the fp32 ONNX artifact when the PyTorch model is not available);
  5. the machine record, the report files, the plot, the history row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgecnn.bench.latency import Job, JobResult, TimingOptions, execute_job, run_job_subprocess
from edgecnn.bench.report import BenchReport, TargetResult, collect_machine
from edgecnn.bench.stats import LatencyStats
from edgecnn import catalog
from edgecnn.bench.targets import ALL_TARGETS, BenchTarget, parse_targets, unavailable_reason
from edgecnn.errors import BundleError, DataError, EdgeCNNError, InputError

MAX_BATCH = 4096


@dataclass
class BenchOptions:
    """Everything ``edgecnn bench`` accepts; the CLI uses the same names."""

    targets: str | list[str] | None = None  # default: the profile's target, else ALL_TARGETS
    batch: list[int] | str | None = None  # default [1] (or the profile's batch_opt)
    threads: int | None = None  # default: the profile's threads, else the runtime default
    data: str | None = None  # labelled data for accuracy, e.g. fashion-mnist:test
    data_limit: int | None = None  # evaluate on a random subset of this many images
    profile: str | None = None  # a device profile from targets/ (defaults + batch limits)
    # building missing artifacts
    weights: str | None = None
    input_size: str | tuple[int, int, int] | None = None
    num_classes: int | None = None
    calib: str | None = None
    calib_samples: int = 512
    out: str | None = None  # bundle folder (model input); default bundles/<model>
    # timing
    warmup: int | str = "auto"
    iterations: int = 100
    duration: float | None = None
    rounds: int = 1
    # output
    report_dir: str | None = None  # default bench_results/<model>-<time>
    plot: bool = True
    db: str | None = None
    save: bool = True  # store the run in the history database
    # execution
    isolate: bool = True  # one fresh process per measurement (per-target peak RSS)
    timeout: float = 900.0  # seconds per measurement
    power: bool | None = None  # tegrastats sampling; default: on when tegrastats exists
    seed: int = 0


@dataclass
class Plan:
    """What the checks resolved: the work to do and what is skipped before it starts."""

    model: str
    input_size: list[int]
    preprocess: dict[str, Any]
    num_classes: int
    labels: list[str]
    bundle: Path | None
    stale: bool = False  # an existing bundle at --out holds another model's artifacts
    loaded: Any = None  # LoadedModel when the input was a model (for exports)
    torch_model: dict[str, Any] | None = None  # load_model arguments for the torch worker
    torch_note: str | None = None
    targets: list[BenchTarget] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    threads: int | None = None
    batch_limit: int | None = None  # TensorRT profile max
    skipped: dict[BenchTarget, str] = field(default_factory=dict)
    profile: Any = None


# -- 1. checks ------------------------------------------------------------------------------
def _parse_batches(batch) -> list[int]:
    if batch is None:
        return [1]
    items = batch.split(",") if isinstance(batch, str) else list(batch)
    out = []
    for b in items:
        try:
            n = int(str(b).strip())
        except ValueError:
            raise InputError(f"--batch takes positive integers like 1,8; got {b!r}") from None
        if n < 1:
            raise InputError(f"--batch {n} is impossible: a batch needs at least one image")
        if n > MAX_BATCH:
            raise InputError(f"--batch {n} is larger than {MAX_BATCH}; benchmark smaller batches")
        if n not in out:
            out.append(n)
    if not out:
        raise InputError("--batch is empty; e.g. --batch 1,8")
    return out


def _is_bundle(path: str) -> bool:
    return Path(path, "manifest.json").is_file()


def _dataset_channels(ds) -> int | None:
    if ds.images is not None:
        return 3 if ds.images.ndim == 4 and ds.images.shape[-1] == 3 else 1
    return ds.meta.get("channels")


def check_data(spec: str, preprocess: dict[str, Any], num_classes: int, model: str):
    """Load ``spec`` and refuse data the model cannot be scored on (before any work)."""
    from edgecnn.data.datasets import load_dataset

    ds = load_dataset(spec)
    if ds.labels is None:
        raise DataError(f"{spec} has no labels; accuracy needs labelled data (class subfolders, "
                        f"a .npz with 'labels', or fashion-mnist:test)")
    want = int(preprocess["channels"])
    have = _dataset_channels(ds)
    if have is not None and have != want:
        kind = {1: "grayscale (1 channel)", 3: "RGB (3 channels)"}
        raise DataError(f"{spec} is {kind.get(have, have)} but {model} takes "
                        f"{kind.get(want, want)} input; use data of the kind the model was "
                        f"trained on")
    if ds.num_classes != num_classes:
        raise DataError(f"{spec} has {ds.num_classes} classes but {model} has {num_classes} "
                        f"outputs; evaluate on data with the model's classes")
    return ds


def plan_bench(model: str, options: BenchOptions, log: Callable[[str], None] = print) -> Plan:
    """All argument checks; loads the model (or opens the bundle) but builds and times nothing."""
    from edgecnn.targets import resolve_target

    profile = resolve_target(options.profile) if options.profile else None
    if options.targets is not None:
        targets = parse_targets(options.targets)
    elif profile is not None:
        targets = parse_targets([f"{catalog.BACKENDS[profile.backend].short}:{profile.precision}"])
    else:
        targets = parse_targets(list(ALL_TARGETS))
    batches = _parse_batches(options.batch if options.batch is not None else
                             ([profile.batch_opt] if profile is not None else None))
    threads = options.threads if options.threads is not None else (
        profile.threads if profile is not None else None)
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")
    if options.rounds < 1:
        raise InputError(f"--rounds must be >= 1, got {options.rounds}")
    if options.data_limit is not None and options.data_limit < 1:
        raise InputError(f"--data-limit must be >= 1, got {options.data_limit}")
    TimingOptions(options.warmup, options.iterations, options.duration).check()

    if _is_bundle(model):
        plan = _plan_from_bundle(Path(model), options)
    else:
        if Path(model).is_dir():
            raise BundleError(f"{model} is a folder without manifest.json; pass a bundle made by "
                              f"'edgecnn export' or a model name")
        plan = _plan_from_model(model, options, log)
    plan.targets, plan.batches, plan.threads, plan.profile = targets, batches, threads, profile

    # TensorRT engines serve batches up to their optimisation profile's max
    if any(t.backend == "tensorrt" for t in targets):
        from edgecnn.options import BatchProfile

        limit = profile.batch_max if profile is not None and profile.backend == "tensorrt" \
            else _engine_batch_max(plan) or BatchProfile().max
        plan.batch_limit = limit
        too_big = [b for b in batches if b > limit]
        if too_big:
            raise InputError(f"--batch {too_big[0]} is above the TensorRT profile's maximum of "
                             f"{limit}; lower --batch or build with a larger profile")
    for t in targets:
        why = unavailable_reason(t)
        if why is None and t.is_torch and plan.torch_model is None:
            why = plan.torch_note or "no PyTorch model for this bundle"
        if why:
            plan.skipped[t] = why
    if options.data:
        check_data(options.data, plan.preprocess, plan.num_classes, plan.model)
    _check_export(plan, options, [t for t in targets if not t.is_torch and t not in plan.skipped
                                  and not _has_artifact(plan, t)])
    return plan


def _engine_batch_max(plan: Plan) -> int | None:
    if plan.bundle is None or plan.stale or not _is_bundle(str(plan.bundle)):
        return None
    from edgecnn.bundle import Bundle

    for a in Bundle.open(plan.bundle).manifest.artifacts:
        if a.backend == "tensorrt":
            for key in ("batch_max", "max_batch"):
                if isinstance(a.details.get(key), int):
                    return a.details[key]
            prof = a.details.get("batch") or a.details.get("profile")
            if isinstance(prof, dict) and isinstance(prof.get("max"), int):
                return prof["max"]
    return None


def _plan_from_bundle(path: Path, options: BenchOptions) -> Plan:
    from edgecnn.bundle import Bundle
    from edgecnn.runtime.session import Session

    bundle = Bundle.open(path)
    m = bundle.manifest
    if not m.artifacts:
        raise BundleError(f"bundle {path} has no artifacts; run 'edgecnn export' first")
    spec = m.find(precision="fp32") if any(a.precision == "fp32" for a in m.artifacts) \
        else m.artifacts[0]
    size = Session.nchw_shape(spec.inputs[0])[1:]
    plan = Plan(model=m.model, input_size=list(size), preprocess=_pp_dict(m.preprocess),
                num_classes=m.num_classes, labels=list(m.labels), bundle=bundle.path)
    src = m.source or {}
    # the torch target needs the PyTorch model the bundle was made from
    if options.weights:
        plan.torch_model = {"model": src.get("model", m.model), "weights": options.weights,
                            "input_size": list(size), "num_classes": m.num_classes}
    elif src.get("kind") == "zoo" and "weights" not in src:
        plan.torch_model = {"model": src.get("model", m.model), "weights": None,
                            "input_size": list(size), "num_classes": m.num_classes}
        plan.torch_note = "random-init zoo model: latency only"
    else:
        plan.torch_note = ("the bundle was exported from weights that are not given; pass "
                           "--weights to benchmark the PyTorch model")
    return plan


def _plan_from_model(model: str, options: BenchOptions, log) -> Plan:
    from edgecnn.models.loading import load_model

    # seeded so a random-init zoo model is the same network here (exported) and in the
    # torch worker (which seeds the same way): agreement then compares like with like
    import torch

    torch.manual_seed(options.seed)
    loaded = load_model(model, weights=options.weights, input_size=options.input_size,
                        num_classes=options.num_classes)
    out = (Path(options.out) if options.out else Path("bundles") / loaded.name).absolute()
    plan = Plan(model=loaded.name, input_size=list(loaded.input_size),
                preprocess=_pp_dict(loaded.preprocess), num_classes=len(loaded.labels),
                labels=list(loaded.labels), bundle=out, loaded=loaded)
    plan.torch_model = {"model": model, "weights": options.weights,
                        "input_size": list(loaded.input_size), "num_classes": len(loaded.labels)}
    plan.stale = _is_bundle(str(out)) and not _same_source(out, loaded)
    return plan


def _same_source(bundle: Path, loaded) -> bool:
    """The bundle at ``bundle`` was exported from this very model (same weights and size)."""
    from edgecnn.bundle import Bundle

    try:
        m = Bundle.open(bundle).manifest
    except EdgeCNNError:
        return False
    keys = ("kind", "model", "sha256", "input_size", "num_classes")
    return m.model == loaded.name and all(m.source.get(k) == loaded.source.get(k) for k in keys)


def _pp_dict(pp) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(pp)


def _has_artifact(plan: Plan, t: BenchTarget) -> bool:
    if plan.bundle is None or plan.stale or not _is_bundle(str(plan.bundle)):
        return False
    from edgecnn.bundle import Bundle

    m = Bundle.open(plan.bundle).manifest
    return any(a.backend == t.backend and a.precision == t.precision for a in m.artifacts)


def _export_options(plan: Plan, options: BenchOptions, t: BenchTarget):
    from edgecnn.options import BatchProfile, ExportOptions

    prof = plan.profile
    batch = BatchProfile()
    if t.backend == "tensorrt":
        if prof is not None and prof.backend == "tensorrt":
            batch = BatchProfile(prof.batch_min, prof.batch_opt, prof.batch_max)
        else:
            batch = BatchProfile(1, min(plan.batches), max(max(plan.batches), batch.max))
    target = prof.file if (prof is not None and prof.is_device and prof.backend == t.backend) \
        else t.export_target
    return ExportOptions(target=target, precision=t.precision, out=plan.bundle,
                         weights=options.weights, input_size=tuple(plan.input_size),
                         num_classes=plan.num_classes, calib=options.calib,
                         calib_samples=options.calib_samples, batch=batch,
                         threads=plan.threads, seed=options.seed)


def _check_export(plan: Plan, options: BenchOptions, targets: list[BenchTarget]) -> None:
    """The export backends' own argument checks (e.g. int8 needs --calib) before any work."""
    import importlib.util

    if plan.loaded is None:  # a bundle: missing artifacts cannot be built without the model
        return
    if importlib.util.find_spec("edgecnn.pipeline") is None:
        return
    from edgecnn.backends.registry import get_backend
    from edgecnn.targets import resolve_target

    for t in targets:
        eo = _export_options(plan, options, t)
        try:
            backend = get_backend(t.backend)
        except (ImportError, EdgeCNNError):
            continue  # reported when the build is attempted
        backend.check(eo, resolve_target(eo.target))


# -- 2. building what is missing -----------------------------------------------------------
def build_missing(plan: Plan, options: BenchOptions, log: Callable[[str], None] = print
                  ) -> dict[BenchTarget, str]:
    """Export every runnable target the bundle lacks; returns {target: error} for failures."""
    failed: dict[BenchTarget, str] = {}
    todo = [t for t in plan.targets if not t.is_torch and t not in plan.skipped
            and not _has_artifact(plan, t)]
    if not todo:
        return failed
    if plan.loaded is None:
        for t in todo:
            plan.skipped[t] = (f"bundle has no {t.backend}:{t.precision} artifact; build it with "
                               f"'edgecnn export MODEL --target {t.export_target} "
                               f"--precision {t.precision} --out {plan.bundle}'")
        return failed
    from edgecnn.pipeline import export

    for t in todo:
        log(f"building {t.name} into {plan.bundle} ...")
        try:
            export(plan.loaded, _export_options(plan, options, t), log=None)
            plan.stale = False  # the export replaced any other model's bundle
        except EdgeCNNError as exc:
            failed[t] = f"build failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - one target's build must not stop the rest
            failed[t] = f"build failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        if t not in failed and not _has_artifact(plan, t):
            failed[t] = (f"the export finished but wrote no {t.backend}:{t.precision} artifact "
                         f"(on this machine the backend only prepares the build)")
    return failed


# -- 3-4. measuring -------------------------------------------------------------------------
def _fixed_batch(plan: Plan, t: BenchTarget) -> int | None:
    if t.is_torch or plan.bundle is None:
        return None
    from edgecnn.bundle import Bundle
    from edgecnn.runtime.session import Session

    m = Bundle.open(plan.bundle).manifest
    a = m.find(t.backend, t.precision)
    n = Session.nchw_shape(a.inputs[0])[0]
    return None if n == -1 else n


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
    return Job(target=t.name, backend=t.backend, precision=t.precision, batch=batch,
               input_size=list(plan.input_size), timing=timing, threads=plan.threads,
               bundle=None if t.is_torch else str(plan.bundle),
               model=plan.torch_model if t.is_torch else None, preprocess=plan.preprocess,
               data=data, data_limit=options.data_limit, seed=options.seed,
               measure_latency=measure_latency, power=power)


def _aggregate(t: BenchTarget, batch: int, results: list[JobResult], plan: Plan) -> TargetResult:
    row = TargetResult(target=t.name, backend=t.backend, precision=t.precision, batch=batch,
                       threads=plan.threads, artifact=t.artifact_file)
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


def run_bench(model: str, options: BenchOptions | None = None,
              log: Callable[[str], None] = print, progress: bool = True) -> BenchReport:
    """Check, build, measure and report (see the module doc). Writes nothing but the bundle;
    :func:`save_outputs` writes the report files, the plot and the history row."""
    options = options or BenchOptions()
    plan = plan_bench(model, options, log)
    build_failed = build_missing(plan, options, log)
    for t in plan.targets:
        if t.is_torch or t in plan.skipped or t in build_failed:
            continue
        try:  # checksums once here, so the workers' load time is the backend's alone
            from edgecnn.bundle import Bundle

            b = Bundle.open(plan.bundle)
            b.artifact_path(b.find(t.backend, t.precision), verify=True)
        except EdgeCNNError as exc:
            build_failed[t] = str(exc)

    power = options.power if options.power is not None else _tegrastats_available()
    machine = collect_machine(plan.threads)  # before the workers: their load is not the machine's
    runnable: list[BenchTarget] = []
    results: dict[tuple[BenchTarget, int], TargetResult] = {}
    for t in plan.targets:
        if t in plan.skipped:
            for b in plan.batches:
                results[(t, b)] = TargetResult(t.name, t.backend, t.precision, b, "skipped",
                                               plan.skipped[t], artifact=t.artifact_file)
        elif t in build_failed:
            for b in plan.batches:
                results[(t, b)] = TargetResult(t.name, t.backend, t.precision, b, "failed",
                                               build_failed[t], artifact=t.artifact_file)
        else:
            fixed = _fixed_batch(plan, t)
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
    from edgecnn.bundle import now_iso

    report = BenchReport(
        model=plan.model, input_size=list(plan.input_size), results=rows,
        machine=machine,
        options={"targets": [t.name for t in plan.targets], "batch": plan.batches,
                 "threads": plan.threads, "warmup": options.warmup,
                 "iterations": options.iterations, "duration": options.duration,
                 "rounds": options.rounds, "data_limit": options.data_limit,
                 "profile": options.profile, "isolate": options.isolate, "seed": options.seed},
        created=now_iso(), bundle=str(plan.bundle) if plan.bundle else None,
        reference=reference.name if (reference and options.data) else None,
        reference_top1=ref_top1, data=options.data)
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
    if onnx_t in runnable or (_has_artifact(plan, onnx_t) and unavailable_reason(onnx_t) is None):
        return onnx_t
    return None


def _run_inprocess(job: Job, timeout: float | None = None) -> JobResult:
    try:
        return execute_job(job)
    except Exception as exc:  # noqa: BLE001
        return JobResult(job.target, job.batch, status="failed",
                         error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _tegrastats_available() -> bool:
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


# -- 5. outputs -----------------------------------------------------------------------------
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
