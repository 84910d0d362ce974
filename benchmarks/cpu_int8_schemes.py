"""Which Q/DQ shape makes ONNX Runtime's CPU kernels fast? (how edgecnn's CPU_QDQ was chosen)

One fp32 model.onnx, one calibration (edgecnn's own ranges, minmax, every tensor any candidate
quantizes), one INT8 graph per candidate scheme, then interleaved rounds: in each round every
graph (fp32 first) is timed for ``--runs`` runs at batch 1 on ``--threads`` intra-op threads;
the figure is the median over all rounds. Writes benchmarks/results/cpu_int8_schemes-<model>.json
with the CPU, its int8 flags and the load average.

    python benchmarks/cpu_int8_schemes.py /tmp/r18/model.onnx --rounds 5

Not a test: latency depends on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgecnn.quantize.int8 import CPU_LADDER, CPU_QDQ, TENSORRT_QDQ, quantize_onnx  # noqa: E402
from edgecnn.quantize.ranges import collect_ranges, scheme_tensors  # noqa: E402
from edgecnn.platform_info import cpu_facts  # noqa: E402
from edgecnn.runtime.ort import inference_session  # noqa: E402

_CONV = ("Conv", "Gemm", "MatMul")
CANDIDATES = {
    "tensorrt (S8S8 sym, Q/DQ on Conv/Gemm inputs, float bias)": TENSORRT_QDQ,
    "S8S8 sym, Conv/Gemm, outputs quantized, int32 bias": dataclasses.replace(
        TENSORRT_QDQ, name="s8s8-conv-out", quantize_bias=True, unquantized_outputs=()),
    "U8S8, Conv/Gemm only, outputs quantized, int32 bias": dataclasses.replace(
        CPU_QDQ, name="u8s8-conv", op_types=_CONV),
    "U8S8, Conv/Gemm only, float bias": dataclasses.replace(
        CPU_QDQ, name="u8s8-conv-fbias", op_types=_CONV, quantize_bias=False),
    "U8S8, Conv/Gemm/Add/Relu/pools/Concat/Flatten/Reshape, int32 bias (CPU_QDQ)": CPU_QDQ,
    "U8S8, CPU_QDQ ops, float bias": dataclasses.replace(CPU_QDQ, name="u8s8-fbias",
                                                         quantize_bias=False),
    "U8S8, CPU_QDQ ops without Add": dataclasses.replace(
        CPU_QDQ, name="u8s8-noadd", op_types=tuple(o for o in CPU_QDQ.op_types if o != "Add")),
    "U8S8, CPU_QDQ ops, per-tensor weights": dataclasses.replace(CPU_QDQ, name="u8s8-pt",
                                                                 per_channel=False),
    "S8S8 sym, CPU_QDQ ops": dataclasses.replace(CPU_QDQ, name="s8s8-all", activation_type="QInt8",
                                                 activation_symmetric=True),
    "U8S8, CPU_QDQ ops, 7-bit weights (CPU_LADDER[1], cpu-7bit)": CPU_LADDER[1],
    "U8S8, CPU_QDQ ops, Add/Concat/Mul/Sigmoid in float, 7-bit weights (cpu-float-merges)":
        CPU_LADDER[2],
    "U8S8, Conv/Gemm/MatMul only, 7-bit weights (cpu-weighted-only)": CPU_LADDER[3],
    "U8S8, CPU_QDQ ops, logits Q/DQ kept": dataclasses.replace(
        CPU_QDQ, name="u8s8-qlogits", float_graph_outputs=False),
    "U8S8, CPU_QDQ ops, depthwise Conv in float": dataclasses.replace(
        CPU_QDQ, name="u8s8-float-dw", float_depthwise=True),
    "U8S8, CPU_QDQ ops + Mul/Sigmoid (SiLU, squeeze-excitation in int8)": dataclasses.replace(
        CPU_QDQ, name="u8s8-mul-sigmoid", op_types=(*CPU_QDQ.op_types, "Mul", "Sigmoid")),
    "U8S8, CPU_QDQ ops + Mul/Sigmoid, depthwise Conv in float": dataclasses.replace(
        CPU_QDQ, name="u8s8-mul-sigmoid-float-dw", op_types=(*CPU_QDQ.op_types, "Mul", "Sigmoid"),
        float_depthwise=True),
    "U8S8, every op type ONNX Runtime quantizes (its defaults)": dataclasses.replace(
        CPU_QDQ, name="u8s8-ortall", op_types=tuple(sorted(
            {"AveragePool", "Clip", "Concat", "Conv", "Flatten", "Gemm", "GlobalAveragePool",
             "MatMul", "MaxPool", "Relu", "Reshape", "Add", "Mul", "Squeeze", "Unsqueeze",
             "Transpose", "Resize", "Pad", "Split", "Sigmoid", "Softmax", "LeakyRelu",
             "Gather", "Where", "Slice"}))),
}


def time_runs(sess, x, runs: int) -> list[float]:
    name = sess.get_inputs()[0].name
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx", help="fp32 model.onnx (e.g. from edgecnn export resnet18 --target onnx)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--calib-samples", type=int, default=32)
    ap.add_argument("--only", default=None, help="comma-separated candidate names (scheme.name)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import onnx

    fp32 = Path(args.onnx)
    cands = dict(CANDIDATES)
    if args.only:
        keep = set(args.only.split(","))
        cands = {k: v for k, v in cands.items() if v.name in keep}
    m = onnx.load(str(fp32), load_external_data=False)
    shape = [d.dim_value or 1 for d in m.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((args.calib_samples, *shape[1:]), dtype=np.float32)
    tensors = scheme_tensors(m, [s.tensors for s in cands.values()])
    t0 = time.perf_counter()
    ranges = collect_ranges(fp32, [calib[i:i + 8] for i in range(0, len(calib), 8)], "minmax",
                            progress=False, threads=args.threads, tensors=tensors)
    print(f"calibrated {len(tensors)} tensors in {time.perf_counter() - t0:.1f}s", flush=True)
    x = rng.standard_normal((1, *shape[1:]), dtype=np.float32)
    sessions = {"fp32 (model.onnx)": inference_session(fp32, args.threads)}
    ref = sessions["fp32 (model.onnx)"].run(None, {m.graph.input[0].name: calib})[0]
    agreement = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, scheme in cands.items():
            path = Path(tmp) / f"{scheme.name}.onnx"
            quantize_onnx(fp32, path, ranges, scheme=scheme)
            s = inference_session(path, args.threads)
            sessions[label] = s
            out = s.run(None, {m.graph.input[0].name: calib})[0]
            cos = (ref * out).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1))
            agreement[label] = {"top1_agreement": float(np.mean(ref.argmax(1) == out.argmax(1))),
                                "min_cosine": float(cos.min())}
        samples: dict[str, list[float]] = {k: [] for k in sessions}
        for s in sessions.values():
            time_runs(s, x, 5)  # warm-up
        load_before = os.getloadavg()
        for r in range(args.rounds):
            for label, s in sessions.items():
                samples[label].extend(time_runs(s, x, args.runs))
        load_after = os.getloadavg()
    fp32_ms = float(np.median(samples["fp32 (model.onnx)"]))
    rows = []
    for label in sessions:
        ms = float(np.median(samples[label]))
        rows.append({"graph": label, "median_ms": round(ms, 3), "vs_fp32": round(fp32_ms / ms, 2),
                     **agreement.get(label, {})})
        print(f"{label:80s} {ms:8.2f} ms  {fp32_ms / ms:5.2f}x  {agreement.get(label, '')}")
    result = {"model": str(fp32), "batch": 1, "threads": args.threads, "rounds": args.rounds,
              "runs_per_round": args.runs, **cpu_facts(),
              "loadavg_before": load_before, "loadavg_after": load_after,
              "calibration": f"{args.calib_samples} N(0,1) inputs, minmax", "rows": rows}
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / \
        f"cpu_int8_schemes-{fp32.parent.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"load average {load_before} -> {load_after}; wrote {out}")


if __name__ == "__main__":
    main()
