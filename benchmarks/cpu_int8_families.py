"""What `edgecnn export --target onnx --precision int8` gives each zoo family on this CPU.

    python benchmarks/cpu_int8_families.py [--models resnet18,mobilenet_v2,efficientnet_b0,vit_tiny_16]
        [--calib fashion-mnist:train] [--calib-samples 128] [--rounds 7] [--runs 10] [--tag T]

Per model (random weights at its own input size): one export of model.onnx and both INT8 graphs,
exactly as a user runs it, then the CPU graph's rung of the ladder and weight bits as the
manifest records them, and model.onnx / model.int8.cpu.onnx / model.int8.onnx timed at batch 1
in interleaved rounds (every graph once per round: 5 settling runs, then ``--runs`` timed;
medians over all rounds).
Writes benchmarks/results/cpu_int8_families[-<tag>].json with the CPU, its flags and the load
average. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgecnn.platform_info import cpu_facts  # noqa: E402
from edgecnn.quantize.report import interleaved_latency_ms  # noqa: E402
from edgecnn.runtime.ort import inference_session  # noqa: E402

GRAPHS = {"onnx:fp32": "model.onnx", "onnx:int8": "model.int8.cpu.onnx",
          "onnx:int8-trt": "model.int8.onnx"}


def export(model: str, out: Path, args) -> dict:
    cmd = [str(Path(sys.executable).with_name("edgecnn")), "export", model, "--target", "onnx",
           "--precision", "fp32,int8", "--calib", args.calib, "--calib-samples",
           str(args.calib_samples), "--threads", str(args.threads), "--out", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = json.loads((out / "manifest.json").read_text())
    cpu = next(a for a in manifest["artifacts"] if a["file"] == GRAPHS["onnx:int8"])
    d = cpu["details"]
    return {"export_s": round(time.perf_counter() - t0, 1), "scheme": d["scheme"],
            "weight_bits": d.get("weight_bits"), "shape_speed": d.get("shape_speed"),
            "parity": {k: d["parity"].get(k) for k in ("cosine", "top1_agreement", "gated")}}


def time_graphs(bundle: Path, args) -> dict:
    """The three graphs at batch 1 in interleaved rounds, each settled after the switch
    (edgecnn.quantize.report.interleaved_latency_ms, what the export's shape search uses)."""
    sessions = {t: inference_session(bundle / f, args.threads) for t, f in GRAPHS.items()}
    first = sessions["onnx:fp32"].get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in first.shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    med = interleaved_latency_ms(sessions, x, rounds=args.rounds, runs=args.runs)
    return {t: {"median_ms": round(m, 3), "vs_fp32": round(med["onnx:fp32"] / m, 2)}
            for t, m in med.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet18,mobilenet_v2,efficientnet_b0,vit_tiny_16")
    ap.add_argument("--calib", default="fashion-mnist:train")
    ap.add_argument("--calib-samples", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    result = {"batch": 1, "threads": args.threads, "rounds": args.rounds, "runs": args.runs,
              "calibration": f"{args.calib}, {args.calib_samples} samples", **cpu_facts(),
              "loadavg_before": os.getloadavg(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="edgecnn-families-") as tmp:
        for model in args.models.split(","):
            out = Path(tmp) / model
            row = export(model, out, args)
            row["latency"] = time_graphs(out, args)
            result["models"][model] = row
            lat = row["latency"]
            print(f"{model:16s} {row['scheme']:18s} {row['weight_bits']}-bit  fp32 "
                  f"{lat['onnx:fp32']['median_ms']:7.2f} ms  int8 "
                  f"{lat['onnx:int8']['median_ms']:7.2f} ms ({lat['onnx:int8']['vs_fp32']:.2f}x)"
                  f"  int8-trt {lat['onnx:int8-trt']['median_ms']:7.2f} ms "
                  f"({lat['onnx:int8-trt']['vs_fp32']:.2f}x)  parity {row['parity']}", flush=True)
    result["loadavg_after"] = os.getloadavg()
    tag = f"-{args.tag}" if args.tag else ""
    dest = HERE / "results" / f"cpu_int8_families{tag}.json"
    dest.write_text(json.dumps(result, indent=1) + "\n")
    print(f"load average {result['loadavg_before']} -> {result['loadavg_after']}; wrote {dest}")


if __name__ == "__main__":
    main()
