"""Fraction of the int8 limit: resnet18's achieved int8 GMAC/s against the CPU's int8 GEMM rate.

    python benchmarks/int8_limit_fraction.py [--bench benchmarks/results/resnet18-cpu-int8/bench.json]
        [--limit-runs 3]

Reads an ``edgecnn bench resnet18 --batch 1`` report (p50 latency per target), counts
resnet18's MACs at its input size (edgecnn.models.profile.count_macs: convolutions and linear
layers), and runs ../shared/tools/cpu_limits.py ``--limit-runs`` times (the best int8 and fp32
GEMM rates ONNX Runtime reaches on this CPU). Achieved GMAC/s = MACs / p50; the fraction is
achieved / limit, int8 targets against the int8 rate, fp32 ones against the fp32 rate.
Writes benchmarks/results/int8_limit_fraction.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=str(HERE / "results" / "resnet18-cpu-int8" / "bench.json"))
    ap.add_argument("--limits", default=str(ROOT.parent / "shared" / "tools" / "cpu_limits.py"))
    ap.add_argument("--limit-runs", type=int, default=3)
    args = ap.parse_args()

    from edgecnn.models.loading import load_model
    from edgecnn.models.profile import count_macs

    bench = json.loads(Path(args.bench).read_text())
    chw = tuple(bench["input_size"])
    macs = count_macs(load_model(bench["model"]).module, chw)
    runs = []
    for _ in range(args.limit_runs):
        out = subprocess.run([sys.executable, args.limits], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
        runs.append(json.loads(out))
    best = {k: max(r[k] for r in runs) for k in ("int8_gmacs", "fp32_gmacs")}
    rows = []
    for r in bench["results"]:
        if r["status"] != "ok" or r["batch"] != 1:
            continue
        p50 = r["latency"]["p50"]
        achieved = macs / (p50 / 1e3) / 1e9
        limit = best["int8_gmacs"] if r["precision"] == "int8" else best["fp32_gmacs"]
        rows.append({"target": r["target"], "p50_ms": round(p50, 3),
                     "achieved_gmacs": round(achieved, 1),
                     "limit_gmacs": limit, "fraction": round(achieved / limit, 3)})
        print(f"{r['target']:14s} p50 {p50:7.3f} ms  {achieved:7.1f} GMAC/s  of {limit} "
              f"= {achieved / limit:6.1%}")
    result = {"model": bench["model"], "input": list(chw), "macs": macs,
              "bench": str(Path(args.bench).relative_to(ROOT)) if Path(args.bench).is_relative_to(ROOT)
              else args.bench, "cpu_limits_runs": runs, "best": best, "rows": rows}
    dest = HERE / "results" / "int8_limit_fraction.json"
    dest.write_text(json.dumps(result, indent=1) + "\n")
    print(f"resnet18 {macs / 1e9:.3f} GMAC per image; best limits {best}; wrote {dest}")


if __name__ == "__main__":
    main()
