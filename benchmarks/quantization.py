"""INT8 (and FP16) vs fp32 on the Fashion-MNIST test set, in ONNX Runtime on this CPU.

    python benchmarks/quantization.py [--models lenet5 resnet8] [--methods minmax entropy percentile]
        [--calib calibration/fashion-mnist-train.toml] [--test fashion-mnist:test] [--limit N]
        [--budget 0.3 --eval fashion-mnist:val [--budget-methods minmax percentile]]
        [--threads 2] [--random-weights]

For each model with trained weights (``weights/<model>_fmnist.pt``): export model.onnx,
quantize with every method (one bundle, ranges cached per method), then report
  - top-1 of fp32 / FP16 / INT8 on the test images, the drop in points, INT8-vs-fp32 agreement;
  - file sizes and the ratio;
  - ORT latency at batch 1 and 8, fp32 and INT8 interleaved (rounds of ``--iters`` calls,
    per-call median per round, then median over rounds and p10..p90). INT8 is often NOT
    faster on an x86 CPU: the INT8 ONNX is first of all the accuracy proxy for TensorRT;
  - with ``--budget``: the drop after the accuracy budget (layers left in float, measured on
    ``--eval``, never on the test set) next to the plain PTQ drop.
Writes benchmarks/results/quantization.{json,md}. ``--random-weights`` runs models without
trained weights (a smoke run; accuracies then mean nothing).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["lenet5", "resnet8"])
    p.add_argument("--methods", nargs="+", default=["minmax", "entropy", "percentile"])
    p.add_argument("--calib", default=str(ROOT / "calibration" / "fashion-mnist-train.toml"))
    p.add_argument("--calib-samples", type=int, default=512)
    p.add_argument("--test", default="fashion-mnist:test")
    p.add_argument("--limit", type=int, default=None, help="first N test images only")
    p.add_argument("--budget", type=float, default=None, help="max accuracy drop (points)")
    p.add_argument("--eval", default="fashion-mnist:val", help="held-out data for --budget")
    p.add_argument("--budget-methods", nargs="+", default=None,
                   help="calibration methods to run the budget on (default: the best one)")
    p.add_argument("--weights-dir", default=str(ROOT / "weights"))
    p.add_argument("--random-weights", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default=str(RESULTS / "quantization"))
    return p.parse_args(argv)


def quantizable_count(path: Path) -> int:
    from edgecnn.quantize.int8 import quantizable_nodes

    return len(quantizable_nodes(path))


def session(path: Path, threads: int):
    from edgecnn.runtime.ort import inference_session as ort_session

    return ort_session(path, threads)


def latency(sessions: dict[str, object], x: np.ndarray, iters: int, rounds: int) -> dict:
    """Interleaved rounds; per-call median per round; median and p10/p90 over rounds (ms)."""
    names = {k: s.get_inputs()[0].name for k, s in sessions.items()}
    for k, s in sessions.items():  # warm-up
        for _ in range(10):
            s.run(None, {names[k]: x})
    per: dict[str, list[float]] = {k: [] for k in sessions}
    order = list(sessions)
    for r in range(rounds):
        for k in (order if r % 2 == 0 else order[::-1]):
            s, t = sessions[k], []
            for _ in range(iters):
                t0 = time.perf_counter()
                s.run(None, {names[k]: x})
                t.append(time.perf_counter() - t0)
            per[k].append(statistics.median(t) * 1e3)
    out = {}
    for k, v in per.items():
        q = np.percentile(v, [10, 50, 90])
        out[k] = {"median_ms": round(float(q[1]), 4), "p10_ms": round(float(q[0]), 4),
                  "p90_ms": round(float(q[2]), 4)}
    return out


def top1(sess, ds, pre, progress_label: str) -> tuple[float, np.ndarray]:
    from edgecnn.data.accuracy import evaluate
    from edgecnn.runtime.ort import run_batched as run_model

    res = evaluate(lambda b: run_model(sess, b, 256), ds, pre, batch_size=256,
                   description=progress_label)
    return res.top1, res.predictions


def export(lm, bundle: Path, args, method: str, budget=None):
    """model.onnx (first call) then one INT8 (+FP16) export into ``bundle``."""
    from edgecnn.backends.onnxruntime import ensure_onnx
    from edgecnn.backends.registry import ExportContext
    from edgecnn.bundle import BundleWriter
    from edgecnn.export.onnx import export_onnx
    from edgecnn.manifest import Manifest
    from edgecnn.options import ExportOptions

    opts = ExportOptions(calib=args.calib, calib_samples=args.calib_samples, calib_method=method,
                         max_accuracy_drop=budget, eval=args.eval if budget is not None else None,
                         threads=args.threads)
    logs: list[str] = []

    def log(message: str) -> None:  # shown as it happens: a budget search takes minutes
        logs.append(message)
        print(f"  {message}", flush=True)

    with BundleWriter(bundle, Manifest(model=lm.name, preprocess=lm.preprocess,
                                       labels=lm.labels)) as w:
        staged = w.path_for("model.onnx")
        if not staged.exists():
            export_onnx(lm.module, lm.input_size, staged)
        ctx = ExportContext(model=lm, options=opts, profile=None, precision="int8", writer=w,
                            fp32_onnx=staged, log=log)
        t0 = time.perf_counter()
        a8 = ensure_onnx(ctx, "int8")
        seconds = time.perf_counter() - t0
        a16 = ensure_onnx(ctx, "fp16") if not (bundle / "model.fp16.onnx").exists() else None
    return a8, a16, seconds, logs


def bench_model(name: str, args, test_ds) -> dict | None:
    from edgecnn.models.loading import load_model

    wpath = Path(args.weights_dir) / f"{name}_fmnist.pt"
    if wpath.is_file():
        lm = load_model(name, weights=str(wpath))
    elif args.random_weights:
        lm = load_model(name, input_size=(1, 28, 28), num_classes=10)
    else:
        print(f"[skip] {name}: no {wpath} (train it first, or --random-weights for a smoke run)")
        return None
    pre = lm.preprocess
    ds = test_ds
    row: dict = {"model": name, "weights": str(wpath) if wpath.is_file() else None,
                 "input_size": list(lm.input_size), "test": ds.spec, "test_images": len(ds),
                 "methods": {}}
    with tempfile.TemporaryDirectory(prefix=f"qbench-{name}-") as tmp:
        bundle = Path(tmp) / "bundle"
        for method in args.methods:
            a8, _, seconds, _ = export(lm, bundle, args, method)
            s32, s8 = session(bundle / "model.onnx", args.threads), session(bundle / "model.int8.onnx", args.threads)
            if "fp32" not in row:
                acc32, pred32 = top1(s32, ds, pre, f"{name} fp32")
                acc16, pred16 = top1(session(bundle / "model.fp16.onnx", args.threads), ds, pre,
                                     f"{name} fp16")
                row["fp32"] = {"top1": round(acc32, 3), "size_bytes": (bundle / "model.onnx").stat().st_size}
                row["fp16"] = {"top1": round(acc16, 3), "drop": round(acc32 - acc16, 3),
                               "agreement": round(100 * float(np.mean(pred16 == pred32)), 3),
                               "size_bytes": (bundle / "model.fp16.onnx").stat().st_size}
            acc8, pred8 = top1(s8, ds, pre, f"{name} int8 {method}")
            row["methods"][method] = {
                "top1": round(acc8, 3), "drop": round(row["fp32"]["top1"] - acc8, 3),
                "agreement": round(100 * float(np.mean(pred8 == pred32)), 3),
                "size_bytes": a8.size_bytes,
                "size_ratio": round(row["fp32"]["size_bytes"] / a8.size_bytes, 2),
                "quantize_seconds": round(seconds, 2)}
            print(f"{name} {method}: fp32 {acc32:.2f}%  int8 {acc8:.2f}%  "
                  f"drop {acc32 - acc8:+.2f} pt  ({a8.size_bytes / 1024:.0f} KiB)")
        best = min(row["methods"], key=lambda m: row["methods"][m]["drop"])
        row["best_method"] = best
        if args.budget is not None:
            row["budgets"] = []
            for method in args.budget_methods or [best]:
                from edgecnn.errors import CalibrationError

                try:
                    a8, _, seconds, logs = export(lm, bundle, args, method, budget=args.budget)
                except CalibrationError as exc:  # a budget that cannot be met is a result too
                    print(f"{name} {method} budget: {exc}")
                    row["budgets"].append({"method": method, "max_accuracy_drop": args.budget,
                                           "eval": args.eval, "error": str(exc)})
                    continue
                acc8, _ = top1(session(bundle / "model.int8.onnx", args.threads), ds, pre,
                               f"{name} int8 {method} budget")
                row["budgets"].append({
                    "method": method, "max_accuracy_drop": args.budget, "eval": args.eval,
                    "top1": round(acc8, 3), "drop": round(row["fp32"]["top1"] - acc8, 3),
                    "excluded_layers": a8.details["excluded_layers"],
                    "quantizable_layers": quantizable_count(bundle / "model.onnx"),
                    "eval_drop": a8.details["accuracy_drop"],
                    "quantize_seconds": round(seconds, 2)})
        # latency of the best method's INT8 vs fp32, interleaved
        export(lm, bundle, args, best)
        s32, s8 = session(bundle / "model.onnx", args.threads), session(bundle / "model.int8.onnx", args.threads)
        row["latency"] = {}
        for b in (1, 8):
            x = next(ds.head(b).batches(pre, b))[0]
            row["latency"][str(b)] = latency({"fp32": s32, "int8": s8}, x, args.iters, args.rounds)
    return row


def _rel(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


def markdown(rows: list[dict], meta: dict) -> str:
    out = [f"# INT8 / FP16 vs fp32 in ONNX Runtime ({meta['cpu']}, {meta['threads']} threads)", "",
           f"Test set: {meta['test']} ({rows[0]['test_images'] if rows else 0} images); "
           f"calibration: {meta['calib']} ({meta['calib_samples']} samples).", "",
           "| model | fp32 top-1 | FP16 top-1 | INT8 method | INT8 top-1 | drop (pt) | agreement | "
           "size fp32 -> INT8 | ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for m, v in r["methods"].items():
            out.append(f"| {r['model']} | {r['fp32']['top1']:.2f} | {r['fp16']['top1']:.2f} | {m} | "
                       f"{v['top1']:.2f} | {v['drop']:+.2f} | {v['agreement']:.2f}% | "
                       f"{r['fp32']['size_bytes'] / 1024:.0f} -> {v['size_bytes'] / 1024:.0f} KiB | "
                       f"{v['size_ratio']:.2f}x |")
    if any(r.get("budgets") for r in rows):
        out += ["", "Accuracy budget (measured on the eval split, reported on the test set):", "",
                "| model | method | plain drop (pt) | budget | drop with budget (pt) | "
                "layers in float | search s | float layers |", "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            for b in r.get("budgets", []):
                if "error" in b:
                    out.append(f"| {r['model']} | {b['method']} | "
                               f"{r['methods'][b['method']]['drop']:+.2f} | {b['max_accuracy_drop']} | "
                               f"not met | {b['error']} | | |")
                    continue
                out.append(f"| {r['model']} | {b['method']} | {r['methods'][b['method']]['drop']:+.2f} | "
                           f"{b['max_accuracy_drop']} | {b['drop']:+.2f} | "
                           f"{len(b['excluded_layers'])} of {b['quantizable_layers']} | "
                           f"{b['quantize_seconds']:.0f} | {', '.join(b['excluded_layers']) or '-'} |")
    out += ["", "ORT latency, median of per-round medians (p10..p90), ms:", "",
            "| model | batch | fp32 | INT8 |", "|---|---|---|---|"]
    for r in rows:
        for b, v in r.get("latency", {}).items():
            f = lambda d: f"{d['median_ms']:.3f} ({d['p10_ms']:.3f}..{d['p90_ms']:.3f})"  # noqa: E731
            out.append(f"| {r['model']} ({r['best_method']}) | {b} | {f(v['fp32'])} | {f(v['int8'])} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    from edgecnn.data.datasets import load_dataset

    test_ds = load_dataset(args.test)
    if args.limit:
        test_ds = test_ds.head(args.limit)
    rows = [r for r in (bench_model(m, args, test_ds) for m in args.models) if r]
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    import onnxruntime

    meta = {"cpu": cpu, "threads": args.threads, "onnxruntime": onnxruntime.__version__,
            "test": args.test, "calib": _rel(args.calib), "calib_samples": args.calib_samples,
            "random_weights": args.random_weights, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    md = markdown(rows, meta)
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
