"""The timed loop, and the worker process that measures one target.

Each (target, batch) is measured in a fresh Python process (``python -m
edgecnn.bench.latency JOB.json RESULT.json``) so that its peak RSS is its own, a crash or a
leaked thread pool cannot touch the other targets, and torch is imported only by the
``torch`` target. The worker times: session load (init), the first inference, a warm-up
(a count, or until the rolling median settles) and the timed iterations (a count or a
duration). Accuracy, when asked, runs after the peak RSS is read, so it does not inflate it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from edgecnn.bench.accuracy import Predictor, load_predictor
from edgecnn.bench.stats import rolling_median_settled

WARMUP_WINDOW = 10
WARMUP_REL_TOL = 0.02
WARMUP_MAX_ITERS = 300
WARMUP_MAX_SECONDS = 10.0
MIN_TIMED_ITERS = 5


@dataclass
class TimingOptions:
    """How long to warm up and to measure. ``warmup`` is a count or 'auto'."""

    warmup: int | str = "auto"
    iterations: int = 100
    duration: float | None = None  # seconds; replaces ``iterations`` when set

    def check(self) -> None:
        from edgecnn.errors import EdgeCNNError

        if isinstance(self.warmup, str) and self.warmup != "auto":
            raise EdgeCNNError(f"--warmup must be a count or 'auto', got {self.warmup!r}")
        if isinstance(self.warmup, int) and self.warmup < 0:
            raise EdgeCNNError(f"--warmup must be >= 0, got {self.warmup}")
        if self.iterations < 1:
            raise EdgeCNNError(f"--iterations must be >= 1, got {self.iterations}")
        if self.duration is not None and self.duration <= 0:
            raise EdgeCNNError(f"--duration must be > 0 seconds, got {self.duration}")


@dataclass
class LoopResult:
    first_ms: float
    warmup_iterations: int
    warmup_settled: bool | None  # None when the warm-up was a fixed count
    samples_ms: list[float]


def timed_loop(fn: Callable[[], Any], options: TimingOptions,
               on_start: Callable[[], None] | None = None,
               on_end: Callable[[], None] | None = None) -> LoopResult:
    """Call ``fn`` once (first inference), warm up, then time each call."""
    clock = time.perf_counter_ns
    t0 = clock()
    fn()
    first_ms = (clock() - t0) / 1e6

    warm: list[float] = []
    settled: bool | None = None
    if options.warmup == "auto":
        settled = False
        start = time.perf_counter()
        while len(warm) < WARMUP_MAX_ITERS and time.perf_counter() - start < WARMUP_MAX_SECONDS:
            t0 = clock()
            fn()
            warm.append((clock() - t0) / 1e6)
            if rolling_median_settled(warm, WARMUP_WINDOW, WARMUP_REL_TOL):
                settled = True
                break
    else:
        for _ in range(int(options.warmup)):
            fn()
        warm = [0.0] * int(options.warmup)

    samples: list[float] = []
    if on_start:
        on_start()
    try:
        if options.duration is not None:
            deadline = time.perf_counter() + options.duration
            while time.perf_counter() < deadline or len(samples) < MIN_TIMED_ITERS:
                t0 = clock()
                fn()
                samples.append((clock() - t0) / 1e6)
        else:
            for _ in range(options.iterations):
                t0 = clock()
                fn()
                samples.append((clock() - t0) / 1e6)
    finally:
        if on_end:
            on_end()
    return LoopResult(first_ms=first_ms, warmup_iterations=len(warm), warmup_settled=settled,
                      samples_ms=samples)


# -- the job a worker runs ----------------------------------------------------------------
@dataclass
class Job:
    target: str  # display name, e.g. 'onnx:int8'
    backend: str  # torch | onnxruntime | tflite | tensorrt
    precision: str
    batch: int
    input_size: list[int]  # C, H, W
    timing: TimingOptions = field(default_factory=TimingOptions)
    threads: int | None = None
    bundle: str | None = None  # runtime targets
    model: dict[str, Any] | None = None  # torch target: load_model arguments
    preprocess: dict[str, Any] | None = None  # for accuracy
    data: str | None = None  # dataset spec; accuracy is measured when set
    data_limit: int | None = None
    seed: int = 0
    measure_latency: bool = True
    power: bool = False  # sample tegrastats during the timed loop
    power_interval_ms: int = 100

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Job":
        d = json.loads(text)
        d["timing"] = TimingOptions(**d["timing"])
        return cls(**d)


@dataclass
class JobResult:
    target: str
    batch: int
    status: str = "ok"  # ok | failed
    error: str | None = None
    load_ms: float | None = None
    first_ms: float | None = None
    warmup_iterations: int = 0
    warmup_settled: bool | None = None
    samples_ms: list[float] = field(default_factory=list)
    baseline_rss_mb: float | None = None  # after imports, before loading the model
    peak_rss_mb: float | None = None  # after load + timed loop
    threads: int | None = None
    power: dict[str, Any] | None = None
    power_warnings: list[str] = field(default_factory=list)
    top1: float | None = None
    top5: float | None = None
    eval_n: int | None = None
    predictions: list[int] | None = None
    wall_s: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "JobResult":
        return cls(**json.loads(text))


def _predictor(job: Job) -> Predictor:
    """The job's target through :func:`edgecnn.bench.accuracy.load_predictor`."""
    if job.backend == "torch":
        from edgecnn.model_setup import ModelSetup

        m = job.model or {}
        # seeded: the same random init as the parent's exported model; the same factory
        # arguments, preprocessing and labels as the parent's (``setup``)
        return load_predictor(m["model"], weights=m.get("weights"), backend="torch",
                              threads=job.threads,
                              input_size=tuple(m["input_size"]) if m.get("input_size") else None,
                              num_classes=m.get("num_classes"), seed=job.seed,
                              setup=ModelSetup.from_json(m.get("setup")))
    # the parent verified checksums once; verifying here would add hashing to the load time
    return load_predictor(job.bundle, backend=job.backend, precision=job.precision,
                          threads=job.threads, verify=False)


def _chunked(predict: Callable[[np.ndarray], np.ndarray], fixed: int | None,
             max_batch: int) -> Callable[[np.ndarray], np.ndarray]:
    """Run any batch through a predictor that takes a fixed (or bounded) batch size."""
    step = fixed or max_batch

    def run(x: np.ndarray) -> np.ndarray:
        outs = []
        for i in range(0, len(x), step):
            part = x[i:i + step]
            n = len(part)
            if fixed and n < fixed:  # pad the last chunk to the artifact's batch
                part = np.concatenate([part, np.repeat(part[-1:], fixed - n, axis=0)])
            outs.append(np.asarray(predict(np.ascontiguousarray(part)))[:n])
        return np.concatenate(outs)

    return run


def execute_job(job: Job) -> JobResult:
    """Measure one target in this process (the worker's body)."""
    from edgecnn.bench.memory import current_rss_mb, peak_rss_mb

    res = JobResult(target=job.target, batch=job.batch, threads=job.threads)
    wall = time.perf_counter()
    res.baseline_rss_mb = current_rss_mb()
    t0 = time.perf_counter_ns()
    predictor = _predictor(job)
    res.load_ms = (time.perf_counter_ns() - t0) / 1e6
    predict, fixed, session = predictor.predict_fn, predictor.fixed_batch, predictor.session
    if job.threads is None:
        res.threads = getattr(session, "threads", None)

    if job.measure_latency:
        rng = np.random.default_rng(job.seed)
        x = rng.standard_normal((job.batch, *job.input_size)).astype(np.float32)
        sampler = None
        if job.power:
            from edgecnn.bench.jetson import TegrastatsSampler

            if TegrastatsSampler.available():
                sampler = TegrastatsSampler(job.power_interval_ms)
        loop = timed_loop(lambda: predict(x), job.timing,
                          on_start=sampler.__enter__ if sampler else None,
                          on_end=(lambda: sampler.__exit__(None, None, None)) if sampler else None)
        res.first_ms = loop.first_ms
        res.warmup_iterations = loop.warmup_iterations
        res.warmup_settled = loop.warmup_settled
        res.samples_ms = loop.samples_ms
        if sampler is not None:
            from edgecnn.bench.jetson import summarize_power

            mean = float(np.mean(loop.samples_ms))
            summary = summarize_power(sampler.samples, mean, job.batch)
            if summary is not None:
                res.power = summary.to_dict()
                res.power_warnings = list(summary.warnings)
    res.peak_rss_mb = peak_rss_mb()

    if job.data:
        from edgecnn.data.accuracy import evaluate
        from edgecnn.data.datasets import load_dataset
        from edgecnn.manifest import Preprocess

        ds = load_dataset(job.data)
        if job.data_limit:
            ds = ds.subset(job.data_limit, seed=job.seed)
        mb = getattr(session, "max_batch", None)
        max_batch = mb() if callable(mb) else None
        runner = _chunked(predict, fixed, min(64, max_batch or 64))
        acc = evaluate(runner, ds, Preprocess.from_dict(job.preprocess), batch_size=256,
                       progress=False)
        res.top1, res.top5, res.eval_n = acc.top1, acc.top5, acc.n
        res.predictions = [int(p) for p in acc.predictions] if acc.predictions is not None else None
    predictor.close()
    res.wall_s = time.perf_counter() - wall
    return res


def thread_env(threads: int | None) -> dict[str, str]:
    """Environment that pins the worker's thread pools (OpenMP/MKL/XNNPACK read these)."""
    env = dict(os.environ)
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def run_job_subprocess(job: Job, timeout: float | None = None) -> JobResult:
    """Run ``job`` in a fresh interpreter and read its result; failures become status 'failed'."""
    with tempfile.TemporaryDirectory(prefix="edgecnn-bench-") as tmp:
        jpath, rpath = os.path.join(tmp, "job.json"), os.path.join(tmp, "result.json")
        with open(jpath, "w", encoding="utf-8") as f:
            f.write(job.to_json())
        try:
            proc = subprocess.run([sys.executable, "-m", "edgecnn.bench.latency", jpath, rpath],
                                  capture_output=True, text=True, timeout=timeout,
                                  env=thread_env(job.threads))
        except subprocess.TimeoutExpired:
            return JobResult(job.target, job.batch, status="failed",
                             error=f"timed out after {timeout:.0f} s")
        if os.path.isfile(rpath):
            with open(rpath, encoding="utf-8") as f:
                return JobResult.from_json(f.read())
        tail = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
        why = tail[-1] if tail else f"worker exited with status {proc.returncode}"
        if proc.returncode < 0:
            why = f"worker killed by signal {-proc.returncode} ({why})"
        return JobResult(job.target, job.batch, status="failed", error=why[:500])


def _worker_main(argv: list[str]) -> int:
    jpath, rpath = argv
    with open(jpath, encoding="utf-8") as f:
        job = Job.from_json(f.read())
    try:
        res = execute_job(job)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the target's error
        from edgecnn.errors import EdgeCNNError

        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not isinstance(exc, EdgeCNNError):
            msg = f"{type(exc).__name__}: {msg}"
            traceback.print_exc()
        res = JobResult(job.target, job.batch, status="failed", error=msg[:500])
    tmp = rpath + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(res.to_json())
    os.replace(tmp, rpath)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
