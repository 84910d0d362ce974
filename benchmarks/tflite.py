"""TFLite / LiteRT: speed, runtime overhead, conversion cost and INT8 accuracy on this CPU.

    python benchmarks/tflite.py [--only speed,convert,accuracy] [--threads 2] [--runs 100]
        [--convert-models lenet5 resnet8 resnet18 ...] [--accuracy-models lenet5 resnet8]
        [--test fashion-mnist:test] [--limit N]

1. speed: resnet18 at 3x224x224 (random weights), batch 1, ``--threads`` threads:
   TFLite fp32 vs int8 (full-integer), each timed three ways on the same file, in one
   process, interleaved rounds: edgecnn's ``Session.run`` on its default CompiledModel path
   (NCHW float32 in, float32 logits out: transpose + quantise included), the ``Interpreter``
   called directly (input already NHWC and quantised) and LiteRT's own tool
   ``ai_edge_litert.tools.benchmark_litert_model`` (CompiledModel API, its run_benchmark
   called in this process each round). The load average is recorded with the numbers.
2. convert: per model, conversion time and peak memory of each precision, each export in a
   fresh process (the pipeline: model.onnx, then the .tflite, parity included).
3. accuracy: Fashion-MNIST test top-1 of PyTorch fp32 vs TFLite int8 for the trained
   ``weights/<model>_fmnist.pt`` (skipped with a note while the weights do not exist yet);
   calibration on 512 training images; the observer is chosen on ``fashion-mnist:val``.

Writes benchmarks/results/tflite.{json,md}. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
CONVERT_MODELS = ["lenet5", "resnet8", "resnet20", "resnet18", "efficientnet_b0", "googlenet",
                  "vit_tiny_16"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default="speed,convert,accuracy")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=50, help="timed calls per round and way")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--convert-models", nargs="+", default=CONVERT_MODELS)
    p.add_argument("--convert-precisions", nargs="+", default=["fp32", "fp16", "int8"])
    p.add_argument("--accuracy-models", nargs="+", default=["lenet5", "resnet8"])
    p.add_argument("--test", default="fashion-mnist:test")
    p.add_argument("--eval", default="fashion-mnist:val", help="held-out data for the observer")
    p.add_argument("--calib", default="fashion-mnist:train")
    p.add_argument("--calib-speed", default=None,
                   help="calibration data for the resnet18 speed run (default: 32 random images)")
    p.add_argument("--limit", type=int, default=None, help="first N test images only")
    p.add_argument("--budget", type=float, default=None,
                   help="--max-accuracy-drop for the accuracy exports (measured on --eval)")
    p.add_argument("--weights-dir", default=str(ROOT / "weights"))
    p.add_argument("--workdir", default=None, help="keep bundles here (default: a temp folder)")
    p.add_argument("--_convert", nargs=4, metavar=("MODEL", "PRECISION", "OUT", "CALIB"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- exporting ------------------------------------------------------------------------------

def _random_calib(path: Path, chw, n=64, seed=0) -> str:
    """Calibration images for random-weight speed runs (their content does not matter)."""
    c, h, w = chw
    rng = np.random.default_rng(seed)
    np.savez(path, images=rng.integers(0, 256, (n, h, w) if c == 1 else (n, h, w, 3),
                                       dtype=np.uint8))
    return str(path)


def export_bundle(model, out: Path, precision: str, threads: int, **opts):
    from edgecnn.options import ExportOptions
    from edgecnn.pipeline import export

    options = ExportOptions(target="tflite", precision=precision, out=out, threads=threads,
                            **opts)
    res = export(model, options, log=None)
    return next(a for a in res.artifacts if a.backend == "tflite")


def _random_model(name: str):
    """The zoo model with random weights, as `edgecnn export NAME` loads it (efficientnet_b0
    and googlenet with settled BatchNorm: otherwise logits of about 1e-11, which INT8 zeroes)."""
    from edgecnn.models.loading import load_model

    return load_model(name)  # settles BatchNorm where random-init logits vanish


def _convert_child(model: str, precision: str, out: str, calib: str) -> None:
    """One export in this fresh process; prints its artifact details as JSON."""
    import resource

    from edgecnn.models import get_model_info

    t0 = time.perf_counter()
    opts = {}
    if precision == "int8":
        if calib == "-":
            calib = _random_calib(Path(out).parent / f"{model}.calib.npz",
                                  get_model_info(model).input_size)
        opts = dict(calib=calib, calib_samples=64)
    art = export_bundle(_random_model(model), Path(out), precision, threads=2, **opts)
    print("RESULT " + json.dumps({
        "model": model, "precision": precision, "size_mb": round(art.size_bytes / 1e6, 3),
        "tflite_seconds": art.details["conversion_seconds"],
        "export_seconds": round(time.perf_counter() - t0, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "parity": {k: art.details["parity"][k] for k in ("max_abs_diff", "cosine",
                                                         "top1_agreement")}}))


def bench_convert(args, work: Path) -> list[dict]:
    rows = []
    for model in args.convert_models:
        for prec in args.convert_precisions:
            out = work / f"convert-{model}-{prec}"
            cmd = [sys.executable, __file__, "--_convert", model, prec, str(out), "-"]
            t0 = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
            if res.returncode != 0 or not line:
                err = (res.stderr.strip().splitlines() or ["?"])[-1][:300]
                row = {"model": model, "precision": prec, "error": err}
            else:
                row = json.loads(line[0][7:])
            row["wall_seconds"] = round(time.perf_counter() - t0, 1)
            print(f"convert {model:16s} {prec}: " + (
                f"{row['tflite_seconds']:.1f} s tflite / {row['export_seconds']:.1f} s export, "
                f"peak {row['peak_rss_mb']:.0f} MB, {row['size_mb']:.2f} MB"
                if "error" not in row else f"FAILED {row['error']}"), flush=True)
            rows.append(row)
    return rows


# -- latency --------------------------------------------------------------------------------

def _times(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _tool_args(path: Path, threads: int, runs: int, warmup: int):
    """The arguments ``benchmark_litert_model`` parses from its command line (CPU only)."""
    return argparse.Namespace(
        model=str(path), signature="", use_cpu=True, no_cpu=False, use_gpu=False, use_npu=False,
        require_full_delegation=False, dispatch_library_path="", compiler_plugin_path="",
        runtime_path="", num_runs=runs, warmup_runs=warmup, num_threads=threads,
        result_json="", verbose=False)


def tool_latency(path: Path, threads: int, runs: int, warmup: int = 5) -> dict:
    """One run of LiteRT's own tool (``ai_edge_litert.tools.benchmark_litert_model``:
    CompiledModel, CPU accelerator, its own buffers) in this process; its ``latency`` dict."""
    import contextlib
    import io
    import logging

    from ai_edge_litert.tools import benchmark_litert_model as tool

    logging.getLogger("benchmark_litert_model").setLevel(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its own report
        return tool.run_benchmark(_tool_args(path, threads, runs, warmup))["latency"]


def bench_speed(args, work: Path) -> dict:
    """fp32 vs int8 on the same two files, three ways, in one process, interleaved rounds
    (drift on a shared CPU hits every column alike): edgecnn's Session.run through the
    CompiledModel (NCHW float32 in, float32 logits out: transpose and quantisation included),
    the TFLite Interpreter called directly (input already NHWC and quantised) and LiteRT's
    ``benchmark_litert_model`` (CompiledModel on random input, nothing around the run)."""
    import edgecnn.runtime as rt
    from edgecnn.runtime.litert import interpreter_class

    chw = (3, 224, 224)
    out = work / "resnet18"
    calib = args.calib_speed or _random_calib(work / "resnet18.calib.npz", chw, n=32)
    for prec in ("fp32", "int8"):
        if not (out / f"model.{prec}.tflite").exists():
            opts = dict(calib=calib, calib_samples=32) if prec == "int8" else {}
            export_bundle("resnet18", out, prec, args.threads, **opts)
    files = {p: out / f"model.{p}.tflite" for p in ("fp32", "int8")}
    x = np.random.default_rng(0).standard_normal((1, *chw)).astype(np.float32)
    sessions = {p: rt.load(out, backend="tflite", precision=p, threads=args.threads,
                           api="compiled") for p in files}
    raws = {}
    for p, s in sessions.items():
        it = interpreter_class()(model_path=str(files[p]), num_threads=args.threads)
        it.allocate_tensors()
        i, o = it.get_input_details()[0], it.get_output_details()[0]
        xin = s._quantize(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), i)

        def raw(it=it, i=i, o=o, xin=xin):
            it.set_tensor(i["index"], xin)
            it.invoke()
            return it.get_tensor(o["index"])
        raws[p] = raw
    ways = {p: {"edgecnn": lambda s=sessions[p]: s.run(x), "interpreter": raws[p]}
            for p in files}
    for p in files:  # warm-up
        for fn in ways[p].values():
            for _ in range(5):
                fn()
    load = [round(v, 2) for v in os.getloadavg()]
    per = {p: {"edgecnn": [], "interpreter": [], "tool": []} for p in files}
    for r in range(args.rounds):
        for p in files:
            for way, fn in ways[p].items():
                per[p][way].append(statistics.median(_times(fn, args.runs)))
            per[p]["tool"].append(tool_latency(files[p], args.threads, args.runs, 3)["median_ms"])
        print(f"speed round {r + 1}/{args.rounds}: " + ", ".join(
            f"{p} {w} {v[-1]:.2f}" for p in files for w, v in per[p].items()), flush=True)
    result = {"model": "resnet18", "input": "1x3x224x224", "threads": args.threads,
              "runs_per_round": args.runs, "rounds": args.rounds,
              "edgecnn_api": sessions["int8"].api,
              "load_average_before": load,
              "load_average_after": [round(v, 2) for v in os.getloadavg()]}
    for p in files:
        med = {w: statistics.median(v) for w, v in per[p].items()}
        result[p] = {"edgecnn_ms": round(med["edgecnn"], 3),
                     "interpreter_ms": round(med["interpreter"], 3),
                     "tool_median_ms": round(med["tool"], 3),
                     "edgecnn_vs_interpreter": round(med["edgecnn"] / med["interpreter"], 3),
                     "edgecnn_vs_tool": round(med["edgecnn"] / med["tool"], 3),
                     "rounds_ms": {w: [round(v, 3) for v in vs] for w, vs in per[p].items()},
                     "size_mb": round(files[p].stat().st_size / 1e6, 2)}
    result["int8_speedup"] = {k: round(result["fp32"][k] / result["int8"][k], 2)
                              for k in ("edgecnn_ms", "interpreter_ms", "tool_median_ms")}
    for p in files:
        r = result[p]
        print(f"speed resnet18 {p}: edgecnn ({result['edgecnn_api']}) {r['edgecnn_ms']:.2f} ms, "
              f"interpreter {r['interpreter_ms']:.2f} ms, benchmark tool {r['tool_median_ms']:.2f}"
              f" ms (edgecnn/tool {r['edgecnn_vs_tool']})", flush=True)
    print(f"speed resnet18 int8 speed-up over fp32: {result['int8_speedup']}; load average "
          f"{result['load_average_before']} -> {result['load_average_after']}", flush=True)
    for s in sessions.values():
        s.close()
    return result


# -- accuracy -------------------------------------------------------------------------------

def bench_accuracy(args, work: Path) -> list[dict]:
    import edgecnn.runtime as rt
    from edgecnn.data.accuracy import evaluate
    from edgecnn.data.datasets import load_dataset
    from edgecnn.export.parity import torch_outputs
    from edgecnn.models.loading import load_model

    rows = []
    test = load_dataset(args.test)
    if args.limit:
        test = test.head(args.limit)
    for model in args.accuracy_models:
        weights = Path(args.weights_dir) / f"{model}_fmnist.pt"
        if not weights.exists():
            print(f"accuracy {model}: skipped, {weights} does not exist yet", flush=True)
            rows.append({"model": model, "skipped": f"{weights} missing"})
            continue
        loaded = load_model(model, weights=str(weights))
        out = work / f"acc-{model}"
        art = export_bundle(loaded, out, "int8", args.threads, calib=args.calib,
                            calib_samples=512, eval=args.eval, max_accuracy_drop=args.budget)
        ref = evaluate(lambda x: torch_outputs(loaded.module, [x]), test, loaded.preprocess,
                       progress=False)
        with rt.load(out, backend="tflite", precision="int8", threads=args.threads) as s:
            got = evaluate(s.run, test, loaded.preprocess, progress=False)
        row = {"model": model, "test": args.test, "n": got.n,
               "torch_fp32_top1": round(ref.top1, 2), "tflite_int8_top1": round(got.top1, 2),
               "drop": round(ref.top1 - got.top1, 2), "agreement": round(got.agreement(ref), 2),
               "observer": art.details["observer"], "observer_choice": art.details["observer_choice"],
               "float_layers": art.details["float_layers"], "budget": args.budget,
               "trials": art.details["accuracy"]["trials"],
               "eval_fp32_top1": art.details["accuracy"]["fp32_top1"],
               "size_mb": round(art.size_bytes / 1e6, 3)}
        print(f"accuracy {model}: fp32 {row['torch_fp32_top1']:.2f} -> tflite int8 "
              f"{row['tflite_int8_top1']:.2f} (drop {row['drop']:.2f} pt, agreement "
              f"{row['agreement']:.2f}%, observer {row['observer']})", flush=True)
        rows.append(row)
    return rows


# -- report ---------------------------------------------------------------------------------

def markdown(results: dict) -> str:
    lines = [f"# TFLite / LiteRT on {results['cpu']} ({results['threads']} threads)", ""]
    sp = results.get("speed")
    if sp:
        lines += ["## resnet18 3x224x224, batch 1 (random weights)", "",
                  f"Medians of {sp.get('rounds')} interleaved rounds x {sp.get('runs_per_round')} "
                  f"runs, one process; load average {sp.get('load_average_before')} before, "
                  f"{sp.get('load_average_after')} after.", "",
                  f"| precision | edgecnn Session.run ({sp.get('edgecnn_api')}) | Interpreter "
                  "direct | benchmark_litert_model | edgecnn / tool | size |",
                  "|---|---|---|---|---|---|"]
        for p in ("fp32", "int8"):
            r = sp[p]
            lines.append(f"| {p} | {r['edgecnn_ms']:.2f} ms | {r['interpreter_ms']:.2f} ms | "
                         f"{r['tool_median_ms']} ms | {r['edgecnn_vs_tool']} | {r['size_mb']} MB |")
        lines += ["", "int8 speed-up over fp32: " + ", ".join(
            f"{k.replace('_median_ms', '').replace('_ms', '')} {v}x"
            for k, v in sp["int8_speedup"].items()), ""]
    conv = results.get("convert")
    if conv:
        lines += ["## Conversion (fresh process per export; pipeline incl. model.onnx)", "",
                  "| model | precision | tflite s | export s | peak RSS MB | size MB | parity cos |",
                  "|---|---|---|---|---|---|---|"]
        for r in conv:
            if "error" in r:
                lines.append(f"| {r['model']} | {r['precision']} | failed: {r['error']} |||||")
            else:
                lines.append(f"| {r['model']} | {r['precision']} | {r['tflite_seconds']} | "
                             f"{r['export_seconds']} | {r['peak_rss_mb']} | {r['size_mb']} | "
                             f"{r['parity']['cosine']:.5f} |")
        lines.append("")
    acc = results.get("accuracy")
    if acc:
        lines += ["## Fashion-MNIST test, PyTorch fp32 vs TFLite int8", "",
                  "| model | fp32 top-1 | int8 top-1 | drop (pt) | agreement | observer | budget "
                  "| layers in float |", "|---|---|---|---|---|---|---|---|"]
        for r in acc:
            if "skipped" in r:
                lines.append(f"| {r['model']} | skipped: {r['skipped']} |||||||")
            else:
                plain = [t for t in r.get("trials", []) if not t["float_layers"]]
                plain_txt = ("; plain int8: " + ", ".join(
                    f"{t['observer']} {r['eval_fp32_top1'] - t['top1']:.2f} pt on eval"
                    for t in plain)) if r.get("float_layers") else ""
                lines.append(f"| {r['model']} | {r['torch_fp32_top1']} | {r['tflite_int8_top1']} "
                             f"| {r['drop']} | {r['agreement']} | {r['observer']} "
                             f"| {r.get('budget') or '-'} "
                             f"| {', '.join(r.get('float_layers', [])) or '-'}{plain_txt} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._convert:
        _convert_child(*args._convert)
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from edgecnn.platform_info import probe

    only = set(args.only.split(","))
    tmp = None
    if args.workdir:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="edgecnn-tflite-bench-")
        work = Path(tmp.name)
    info = probe()
    results: dict = {}
    previous = RESULTS / "tflite.json"
    if previous.is_file():  # sections not run this time keep their last numbers
        try:
            results = json.loads(previous.read_text())
        except ValueError:
            results = {}
    results.update({"cpu": info.cpu_model or platform.processor(), "threads": args.threads,
                    "python": platform.python_version(), "load_average": os.getloadavg()[0]})
    try:
        import importlib.metadata as md
        results["versions"] = {d: md.version(d) for d in ("litert-torch", "ai-edge-litert", "torch")}
        if "speed" in only:
            results["speed"] = bench_speed(args, work)
        if "convert" in only:  # rows of models not converted this time are kept
            new = bench_convert(args, work)
            done = {(r["model"], r["precision"]) for r in new}
            rows = [r for r in results.get("convert", [])
                    if (r["model"], r["precision"]) not in done] + new
            models = list(dict.fromkeys([*CONVERT_MODELS, *(r["model"] for r in rows)]))
            precisions = ["fp32", "fp16", "int8"]
            results["convert"] = sorted(rows, key=lambda r: (models.index(r["model"]),
                                                             precisions.index(r["precision"])))
        if "accuracy" in only:  # rows of models not measured this time are kept
            new_rows = bench_accuracy(args, work)
            done = {r["model"] for r in new_rows}
            results["accuracy"] = [r for r in results.get("accuracy", [])
                                   if r["model"] not in done] + new_rows
    finally:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "tflite.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / "tflite.md").write_text(markdown(results) + "\n")
        if tmp is not None:
            tmp.cleanup()
    print(f"wrote {RESULTS / 'tflite.json'} and tflite.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
