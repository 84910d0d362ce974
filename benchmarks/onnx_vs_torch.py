"""PyTorch eager vs the ONNX Runtime bundle, side by side in one process.

    python benchmarks/onnx_vs_torch.py [--model resnet18] [--input-size 3x224x224] [--threads 2]

Both run the same random-weight model on the same CPU threads. Rounds are interleaved
(torch, ORT, ORT, torch, ...) so load from other processes hits both alike; each round
times ``--iters`` calls and keeps the per-call median. Reported: the median over rounds and
the spread (p10..p90). Writes benchmarks/results/onnx_vs_torch.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def percentile(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def time_calls(fn, iters: int) -> float:
    """Median seconds per call over ``iters`` calls."""
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--input-size", default="3x224x224")
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--iters", type=int, default=6, help="calls per round at batch 1 (fewer at larger batches)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import torch

    import edgecnn.runtime as rt
    from edgecnn.options import ExportOptions
    from edgecnn.bundle import tool_versions
    from edgecnn.pipeline import export
    from edgecnn.models.loading import load_model, parse_input_size

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    size = parse_input_size(args.input_size)
    loaded = load_model(args.model, input_size=size)
    load_avg = os.getloadavg()
    print(f"exporting {args.model} {args.input_size}...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        res = export(loaded, ExportOptions(out=Path(tmp) / args.model, threads=args.threads), log=None)
        session = rt.load(res.bundle, threads=args.threads)
        module = loaded.module.eval()
        rows = []
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            x = np.random.default_rng(0).standard_normal((bs, *size)).astype(np.float32)
            xt = torch.from_numpy(x)
            iters = max(2, args.iters // max(1, bs // 2))

            def run_torch():
                with torch.inference_mode():
                    module(xt)

            def run_ort():
                session.run(x)

            for _ in range(3):  # warm-up: allocator, ORT's first-run kernel selection
                run_torch()
                run_ort()
            t_torch, t_ort = [], []
            for r in range(args.rounds):
                order = (("torch", run_torch), ("ort", run_ort))
                for name, fn in (order if r % 2 == 0 else order[::-1]):
                    (t_torch if name == "torch" else t_ort).append(time_calls(fn, iters))
                print(f"batch {bs} round {r + 1}/{args.rounds}: torch {1e3 * t_torch[-1]:.1f} ms, "
                      f"ort {1e3 * t_ort[-1]:.1f} ms", file=sys.stderr, flush=True)
            ratios = [a / b for a, b in zip(t_torch, t_ort)]
            rows.append({
                "batch": bs, "iters_per_round": iters, "rounds": args.rounds,
                "torch_ms": {"median": 1e3 * statistics.median(t_torch),
                             "p10": 1e3 * percentile(t_torch, 10), "p90": 1e3 * percentile(t_torch, 90)},
                "ort_ms": {"median": 1e3 * statistics.median(t_ort),
                           "p10": 1e3 * percentile(t_ort, 10), "p90": 1e3 * percentile(t_ort, 90)},
                "speedup": {"median": statistics.median(ratios), "p10": percentile(ratios, 10),
                            "p90": percentile(ratios, 90)},
                "ort_images_per_s": bs / statistics.median(t_ort),
                "torch_images_per_s": bs / statistics.median(t_torch),
            })
        session.close()
    machine = {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "threads": args.threads,
               "load_average_at_start": [round(v, 2) for v in load_avg],
               "python": platform.python_version(),
               **{k: v for k, v in tool_versions().items()
                  if k in ("edgecnn", "torch", "onnxruntime", "onnx", "numpy")}}
    result = {"model": args.model, "input_size": list(size), "weights": "random (seed 0)",
              "machine": machine, "rows": rows,
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    md = to_markdown(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "onnx_vs_torch.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "onnx_vs_torch.md").write_text(md)
    print(md)
    return 0


def to_markdown(r: dict) -> str:
    m = r["machine"]
    c, h, w = r["input_size"]
    lines = [
        f"### {r['model']} {c}x{h}x{w}, PyTorch eager vs ONNX Runtime (edgecnn bundle, fp32)",
        "",
        f"{m['cpu']}, {m['threads']} threads ({m['logical_cpus']} logical CPUs, load average "
        f"{m['load_average_at_start'][0]} at start), Python {m['python']}, torch {m.get('torch')}, "
        f"onnxruntime {m.get('onnxruntime')}; {r['weights']} weights; {r['date']}.",
        "",
        "| batch | torch eager ms (p10..p90) | ONNX Runtime ms (p10..p90) | ORT speed-up (p10..p90) | ORT images/s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        t, o, s = row["torch_ms"], row["ort_ms"], row["speedup"]
        lines.append(f"| {row['batch']} | {t['median']:.2f} ({t['p10']:.2f}..{t['p90']:.2f}) | "
                     f"{o['median']:.2f} ({o['p10']:.2f}..{o['p90']:.2f}) | "
                     f"**{s['median']:.2f}x** ({s['p10']:.2f}..{s['p90']:.2f}) | "
                     f"{row['ort_images_per_s']:.1f} |")
    lines += ["", f"Median of {r['rows'][0]['rounds']} interleaved rounds; each round's value is the "
              f"median per-call latency of its calls. Speed-up = torch / ORT per round.", ""]
    if m["load_average_at_start"][0] > (m["logical_cpus"] or 1):
        lines += ["**The machine was busy** (load average above its CPU count): absolute times are "
                  "inflated and torch's OpenMP threads suffer more from oversubscription than ORT's, "
                  "so the ratio leans towards ORT; rerun on an idle machine for release numbers.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
