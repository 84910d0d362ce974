"""INT8 top-1 drop of both INT8 ONNX graphs on the 10,000 Fashion-MNIST test images.

    python benchmarks/cpu_int8_accuracy.py [--models lenet5 resnet8] [--calib fashion-mnist:train]
        [--calib-samples 512] [--calib-method minmax] [--limit N] [--threads 2]

For each model with trained weights (``weights/<model>_fmnist.pt``): one ``edgecnn export
--target onnx --precision int8`` (one calibration, both graphs: model.int8.cpu.onnx and
model.int8.onnx), then fp32, the CPU graph (``onnx:int8``) and the TensorRT-shaped graph
(``onnx:int8-trt``) scored on the test set through the edgecnn runtime. The test set is never
used to calibrate. Writes benchmarks/results/cpu_int8_accuracy.{json,md}. Numbers are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["lenet5", "resnet8"])
    ap.add_argument("--calib", default="fashion-mnist:train")
    ap.add_argument("--calib-samples", type=int, default=512)
    ap.add_argument("--calib-method", default="minmax")
    ap.add_argument("--test", default="fashion-mnist:test")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "cpu_int8_accuracy"))
    args = ap.parse_args()

    from edgecnn.bench.accuracy import evaluate, load_predictor
    from edgecnn.data.datasets import load_dataset
    from edgecnn.platform_info import cpu_facts
    from edgecnn.options import ExportOptions
    from edgecnn.pipeline import export

    ds = load_dataset(args.test)
    if args.limit:
        ds = ds.subset(args.limit, seed=0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgecnn-cpu-int8-acc-") as tmp:
        for name in args.models:
            weights = ROOT / "weights" / f"{name}_fmnist.pt"
            if not weights.is_file():
                print(f"{name}: no trained weights at {weights}; skipped")
                continue
            out = Path(tmp) / name
            t0 = time.perf_counter()
            export(str(weights), ExportOptions(target="onnx", precision="int8", calib=args.calib,
                                               calib_samples=args.calib_samples,
                                               calib_method=args.calib_method, out=out,
                                               threads=args.threads), log=None)
            export_s = time.perf_counter() - t0
            res = {}
            for spec in ("fp32", "int8", "int8-trt"):
                p = load_predictor(str(out), backend="onnxruntime", precision=spec,
                                   threads=args.threads)
                try:
                    res[spec] = evaluate(p.predict_fn, ds, p.preprocess, batch_size=500,
                                         description=f"{name} {spec}")
                finally:
                    p.close()
            manifest = json.loads((out / "manifest.json").read_text())
            parity = {a["file"]: a["details"].get("parity", {}) for a in manifest["artifacts"]}
            ref = res["fp32"]
            for spec, file in (("int8", "model.int8.cpu.onnx"), ("int8-trt", "model.int8.onnx")):
                r = res[spec]
                rows.append({
                    "model": name, "target": f"onnx:{spec}", "file": file,
                    "fp32_top1": round(ref.top1, 2), "int8_top1": round(r.top1, 2),
                    "drop_pt": round(ref.top1 - r.top1, 2),
                    "agreement_pct": round(r.agreement(ref), 2),
                    "calib_cosine": round(parity[file].get("cosine") or 0, 5),
                    "calib_top1_agreement": parity[file].get("top1_agreement"),
                    "size_bytes": (out / file).stat().st_size,
                    "export_s_both_graphs": round(export_s, 1), "images": ref.n})
                print(json.dumps(rows[-1]))
    result = {"test": args.test, "calib": f"{args.calib} ({args.calib_samples}, "
              f"{args.calib_method})", "threads": args.threads, **cpu_facts(), "rows": rows}
    Path(args.out + ".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| model | target | fp32 top-1 % | INT8 top-1 % | drop (pt) | agreement % |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | `{r['target']}` | {r['fp32_top1']:.2f} | {r['int8_top1']:.2f} "
              f"| {r['drop_pt']:+.2f} | {r['agreement_pct']:.2f} |" for r in rows]
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
