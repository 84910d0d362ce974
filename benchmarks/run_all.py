"""``make bench``: the README's benchmark tables and the runtime-overhead checks.

1. resnet18 at 3x224x224 (random weights, no data): every target at batch 1, 2 threads.
2. the trained small ResNet (weights/resnet8_fmnist.pt) on Fashion-MNIST test: the same
   table with top-1/top-5, the drop vs fp32 PyTorch and top-1 agreement.
3. the runtime wrapper's overhead: edgecnn ``Session.run`` vs onnxruntime's own
   ``InferenceSession.run`` and LiteRT's own ``Interpreter`` on the same files, interleaved.
4. edgecnn's TFLite latency vs ``ai_edge_litert.tools.benchmark_litert_model`` on the same file.

Results go to benchmarks/results/: bench.json/.csv/.md/.png per table in resnet18-224/ and
resnet8-fmnist/, claims and overheads in bench_summary.json/.md. Speed claims are printed
with their measured numbers, never asserted in tests.

    python benchmarks/run_all.py [--only resnet18,resnet8,overhead] [--iterations N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
THREADS = 2
ALL = "torch,onnx:fp32,onnx:fp16,onnx:int8,onnx:int8-trt,tflite:fp32,tflite:int8,tensorrt:fp16,tensorrt:int8"


def bench_table(name: str, model: str, args, **kw):
    from edgecnn.bench.report import print_table
    from edgecnn.bench.runner import BenchOptions, run_bench, save_outputs

    out = RESULTS / name
    opts = BenchOptions(targets=ALL, batch="1", threads=THREADS, warmup="auto",
                        iterations=args.iterations, rounds=args.rounds,
                        report_dir=str(out),  # history: the default database
                        out=str(ROOT / "bundles" / f"bench-{name}"), **kw)
    t0 = time.perf_counter()
    report = run_bench(model, opts, log=print)
    save_outputs(report, opts)
    print_table(report)
    print(f"[{name}] {time.perf_counter() - t0:.0f} s; files in {out}")
    return report


def speed_claim(report) -> dict:
    rows = {r.target: r for r in report.ok() if r.batch == 1}
    torch = rows.get("torch")
    others = [r for t, r in rows.items() if t != "torch"]
    if torch is None or not others:
        return {"checked": False, "why": "torch or no other target ran"}
    fastest = min(others, key=lambda r: r.latency.p50)
    speedup = torch.latency.p50 / fastest.latency.p50
    out = {"checked": True, "fastest": fastest.target, "fastest_p50_ms": fastest.latency.p50,
           "torch_p50_ms": torch.latency.p50, "speedup": speedup, "pass_4x": speedup >= 4.0}
    int8 = [r for r in report.ok() if r.precision == "int8" and r.top1_drop is not None]
    if int8:
        out["int8_top1_drop"] = {r.target: r.top1_drop for r in int8}
        out["pass_int8_drop"] = all(r.top1_drop <= 0.5 for r in int8)
    return out


# -- wrapper overhead -------------------------------------------------------------------------
def _interleaved(fns: dict, x_by: dict, blocks: int, per_block: int) -> dict:
    """Median per-call ms of each fn, timed in alternating blocks so drift hits all alike."""
    times = {k: [] for k in fns}
    for k, fn in fns.items():  # warm-up
        for _ in range(20):
            fn(x_by[k])
    for b in range(blocks):
        order = list(fns) if b % 2 == 0 else list(reversed(list(fns)))
        for k in order:
            fn, x = fns[k], x_by[k]
            for _ in range(per_block):
                t0 = time.perf_counter_ns()
                fn(x)
                times[k].append((time.perf_counter_ns() - t0) / 1e6)
    return {k: {"p50_ms": statistics.median(v), "n": len(v)} for k, v in times.items()}


def overhead_onnx(bundle: Path, blocks: int, per_block: int) -> dict:
    import onnxruntime as ort

    import edgecnn.runtime as rt

    sess = rt.load(bundle, backend="onnxruntime", precision="fp32", threads=THREADS)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads, so.inter_op_num_threads = THREADS, 1
    raw = ort.InferenceSession(sess.path, sess_options=so, providers=["CPUExecutionProvider"])
    iname, oname = raw.get_inputs()[0].name, raw.get_outputs()[0].name
    x = np.random.default_rng(0).standard_normal((1, *sess.input_shape[1:])).astype(np.float32)
    res = _interleaved({"edgecnn": sess.run, "onnxruntime": lambda a: raw.run([oname], {iname: a})[0]},
                       {"edgecnn": x, "onnxruntime": x}, blocks, per_block)
    res["overhead_pct"] = 100 * (res["edgecnn"]["p50_ms"] / res["onnxruntime"]["p50_ms"] - 1)
    res["file"] = os.path.basename(sess.path)
    return res


def _litert_file(bundle: Path, precision: str = "fp32") -> Path | None:
    p = bundle / f"model.{precision}.tflite"
    return p if p.is_file() else None


def overhead_litert(bundle: Path, blocks: int, per_block: int) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    import edgecnn.runtime as rt

    sess = rt.load(bundle, backend="tflite", precision="fp32", threads=THREADS)
    interp = Interpreter(model_path=sess.path, num_threads=THREADS)
    interp.allocate_tensors()
    i_det, o_det = interp.get_input_details()[0], interp.get_output_details()[0]

    def raw(a):
        interp.set_tensor(i_det["index"], a)
        interp.invoke()
        return interp.get_tensor(o_det["index"])

    rng = np.random.default_rng(0)
    x_nchw = rng.standard_normal((1, *sess.input_shape[1:])).astype(np.float32)
    x_raw = rng.standard_normal(tuple(i_det["shape"])).astype(np.float32)
    res = _interleaved({"edgecnn": sess.run, "litert": raw},
                       {"edgecnn": x_nchw, "litert": x_raw}, blocks, per_block)
    res["overhead_pct"] = 100 * (res["edgecnn"]["p50_ms"] / res["litert"]["p50_ms"] - 1)
    res["note"] = ("edgecnn.run takes NCHW (its in-memory copy of the model transposes it to "
                   "the file's NHWC) and runs LiteRT's CompiledModel; the raw Interpreter is fed "
                   "NHWC directly")
    res["file"] = os.path.basename(sess.path)
    return res


def vs_litert_tool(bundle: Path, rounds: int, runs: int) -> dict:
    """edgecnn's TFLite ``Session.run`` (float32 NCHW in, float32 logits out) vs LiteRT's own
    ``benchmark_litert_model`` on the same file and threads, per precision: interleaved rounds
    (the tool runs in this process each round), the per-round ratio's median and quartiles
    (benchmarks/litert_overhead.py splits this further)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from litert_overhead import ratio_stats
    from tflite import _times, tool_latency

    import edgecnn.runtime as rt

    out = {}
    for precision in ("fp32", "int8"):
        f = _litert_file(bundle, precision)
        if f is None:
            continue
        sess = rt.load(bundle, backend="tflite", precision=precision, threads=THREADS)
        x = np.random.default_rng(0).standard_normal((1, *sess.input_shape[1:])).astype(np.float32)
        ours, tool = [], []
        for _ in range(rounds):
            _times(lambda: sess.run(x), 5)  # settle after the tool's CompiledModel
            ours.append(statistics.median(_times(lambda: sess.run(x), runs)))
            tool.append(tool_latency(f, THREADS, runs, 5)["median_ms"])
        sess.close()
        out[precision] = {"file": f.name, "rounds": rounds, "runs_per_round": runs,
                          "tool_median_ms": round(statistics.median(tool), 3),
                          "edgecnn_median_ms": round(statistics.median(ours), 3),
                          "vs_tool": ratio_stats(ours, tool)}
    out["note"] = ("edgecnn takes float32 NCHW and returns float32 logits (at int8 the model "
                   "quantises the input itself); the tool runs LiteRT's CompiledModel on its own "
                   "input tensor, written once")
    return out


def summary_markdown(summary: dict) -> str:
    """The README section: each table as written by the bench, then the claims and overheads."""
    out = ["# edgecnn benchmark results", ""]
    for name in ("resnet18-224", "resnet8-fmnist"):
        md = RESULTS / name / "bench.md"
        if md.is_file():
            out += [md.read_text().replace("# edgecnn bench:", "## edgecnn bench:"), ""]
    out += ["## Claims (batch 1, 2 threads)", ""]
    for key in ("resnet18", "resnet8"):
        c = summary.get(key)
        if not c:
            continue
        if not c.get("checked"):
            out.append(f"- {key}: not checked ({c.get('why')})")
            continue
        out.append(f"- {key}: fastest target {c['fastest']} p50 {c['fastest_p50_ms']:.3f} ms vs "
                   f"PyTorch eager {c['torch_p50_ms']:.3f} ms = {c['speedup']:.1f}x "
                   f"({'meets' if c['pass_4x'] else 'misses'} the 4x goal)")
        if "int8_top1_drop" in c:
            drops = ", ".join(f"{t} {d:+.2f} pt" for t, d in c["int8_top1_drop"].items())
            out.append(f"- {key}: INT8 top-1 drop vs fp32 PyTorch: {drops} "
                       f"({'within' if c['pass_int8_drop'] else 'beyond'} 0.5 pt)")
    ov = summary.get("overhead") or {}
    if ov:
        out += ["", "## Runtime wrapper overhead (same file, interleaved blocks, p50)", "",
                "| backend | edgecnn Session.run ms | library directly ms | overhead |",
                "|---|---|---|---|"]
        for lib in ("onnxruntime", "litert"):
            r = ov.get(lib)
            if r:
                out.append(f"| {lib} ({r['file']}) | {r['edgecnn']['p50_ms']:.3f} | "
                           f"{r[lib]['p50_ms']:.3f} | {r['overhead_pct']:+.1f}% |")
        t = ov.get("litert_tool") or {}
        for precision in ("fp32", "int8"):
            r = t.get(precision)
            if r and "vs_tool" in r:
                v = r["vs_tool"]
                out += ["", f"edgecnn TFLite {precision} median {r['edgecnn_median_ms']:.3f} ms vs "
                            f"`ai_edge_litert.tools.benchmark_litert_model` "
                            f"{r['tool_median_ms']:.3f} ms on {r['file']}: per-round ratio "
                            f"{100 * (v['median'] - 1):+.1f}% (quartiles "
                            f"{100 * (v['q1'] - 1):+.1f}% .. {100 * (v['q3'] - 1):+.1f}%, "
                            f"{r['rounds']} rounds)"]
        if t.get("note"):
            out += ["", t["note"]]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="resnet18,resnet8,overhead")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.iterations, args.rounds = 20, 1
    os.chdir(ROOT)
    RESULTS.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    # --only reruns part of the set: keep the other parts' results
    prev = RESULTS / "bench_summary.json"
    summary: dict = json.loads(prev.read_text()) if prev.is_file() else {}
    summary["threads"] = THREADS
    if "resnet18" in only:
        rep = bench_table("resnet18-224", "resnet18", args, input_size="3x224x224",
                          calib="fashion-mnist:train", calib_samples=64)
        summary["resnet18"] = speed_claim(rep)
    if "resnet8" in only:
        w = ROOT / "weights" / "resnet8_fmnist.pt"
        if w.is_file():
            rep = bench_table("resnet8-fmnist", "resnet8", args, weights=str(w),
                              data="fashion-mnist:test", calib="fashion-mnist:train")
            summary["resnet8"] = speed_claim(rep)
        else:
            summary["resnet8"] = {"checked": False, "why": f"{w} does not exist yet"}
    if "overhead" in only:
        bundle = ROOT / "bundles" / "bench-resnet18-224"
        ov: dict = {}
        if (bundle / "model.onnx").is_file():
            ov["onnxruntime"] = overhead_onnx(bundle, blocks=10, per_block=30)
        if _litert_file(bundle):
            ov["litert"] = overhead_litert(bundle, blocks=10, per_block=30)
            ov["litert_tool"] = vs_litert_tool(bundle, rounds=21, runs=20)
        summary["overhead"] = ov
    (RESULTS / "bench_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / "bench_summary.md").write_text(summary_markdown(summary))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
