"""Simulate a device lab on this machine: a Ray head plus N device nodes (one per profile in
targets/), resnet8 onnx:fp32 measured K times on every node, to see how many nodes fit and what
a lab cell costs beyond its measurement (scheduling, a fresh worker, unpacking the bundle).
With more nodes than profiles, nodes share profiles (pools); K is then per profile.

    python benchmarks/fleet_sim.py --nodes 6 --cells 4 [--bundle BUNDLE]

Writes benchmarks/results/fleet_sim.json and prints a summary. Everything binds to loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep Ray on 127.0.0.1
ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def ray_rss_mb() -> float:
    """Resident memory of every process this script started (Ray's GCS, raylets, agents)."""
    import psutil

    total = 0
    for p in psutil.Process().children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / MB


def make_bundle(out: Path) -> Path:
    from edgecnn.options import ExportOptions
    from edgecnn.pipeline import export

    export("resnet8", ExportOptions(out=out, weights=str(ROOT / "weights" / "resnet8_fmnist.pt")),
           log=None)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--cells", type=int, default=4, help="measurements per node")
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--no-isolate", dest="isolate", action="store_false",
                    help="reuse each board's worker (bench --no-isolate) instead of one per cell")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fleet_sim.json"))
    args = ap.parse_args(argv)

    import ray
    from ray.cluster_utils import Cluster

    from edgecnn.bench.plan import BenchOptions
    from edgecnn.fleet.lab import LabOptions, run_lab
    from edgecnn.fleet.resources import node_labels, node_resources
    from edgecnn.fleet.shipping import CACHE_ENV
    from edgecnn.platform_info import cpu_facts
    from edgecnn.targets import PROFILE_DIR

    tmp = Path(tempfile.mkdtemp(prefix="edgecnn-fleet-sim-"))
    os.environ[CACHE_ENV] = str(tmp / "cache")
    bundle = Path(args.bundle) if args.bundle else make_bundle(tmp / "resnet8")
    names = sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))
    # beyond one node per profile, nodes share profiles (a pool of identical boards)
    node_profiles = [names[i % len(names)] for i in range(args.nodes)]
    profiles = list(dict.fromkeys(node_profiles))
    t0 = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args=dict(
        num_cpus=1, object_store_memory=100 * MB, node_ip_address="127.0.0.1",
        include_dashboard=False))
    head_s = time.perf_counter() - t0
    rss_head = ray_rss_mb()
    starts = []
    try:
        for p in node_profiles:
            t = time.perf_counter()
            cluster.add_node(num_cpus=1, object_store_memory=80 * MB, node_ip_address="127.0.0.1",
                             resources=node_resources(p, build=False), labels=node_labels(p))
            starts.append(time.perf_counter() - t)
        rss_nodes = ray_rss_mb() - rss_head
        opts = BenchOptions(targets="onnx:fp32", batch="1", threads=1, warmup=0, iterations=20,
                            rounds=args.cells, plot=False, save=False, timeout=300,
                            isolate=args.isolate,
                            report_dir=str(tmp / "reports"))
        result = run_lab(str(bundle), opts, LabOptions(profiles, cluster=cluster.address,
                                                       retries=0), log=print, progress=False)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    over = sorted(r.overhead_s for r in result.runs if r.overhead_s is not None)
    measured = [r.outcome["end"] - r.outcome["start"] for r in result.runs if r.outcome]
    ok = sum(1 for r in result.runs if r.status == "ok")
    summary = {
        "cpu": cpu_facts(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "nodes": len(node_profiles), "profiles": profiles, "isolate": args.isolate, "cells": len(result.runs), "ok": ok,
        "head_start_s": round(head_s, 1),
        "node_start_s_median": round(statistics.median(starts), 1),
        "head_rss_mb": round(rss_head), "rss_per_device_node_mb": round(rss_nodes / len(node_profiles)),
        "bundle_shipped_mb": round(result.shipped_bytes / 1e6, 3),
        "lab_wall_s": round(result.wall_s, 1),
        "measurement_s_median": round(statistics.median(measured), 3),
        "overhead_s_median": round(statistics.median(over), 2),
        "overhead_s_p90": round(over[int(0.9 * (len(over) - 1))], 2),
        "python": sys.version.split()[0], "ray": ray.__version__,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if ok == len(result.runs) else 1


if __name__ == "__main__":
    sys.exit(main())
