"""What edgecnn's LiteRT session costs on top of LiteRT itself (resnet18, batch 1).

    python benchmarks/litert_overhead.py [--bundle DIR] [--threads 2] [--rounds 41] [--runs 20]

One bundle with model.fp32.tflite and model.int8.tflite (resnet18 3x224x224, random weights;
exported into ``--bundle`` when missing). Per precision, in one process, these ways:

- ``edgecnn float``: ``Session.run`` on float32 NCHW, float32 logits out (what every caller
  does). The session runs a copy of the model that takes NCHW float (a TRANSPOSE in front;
  at int8 a QUANTIZE op too: litert_float_input.py);
- ``edgecnn native`` (int8 only): ``Session.run`` on the model's own int8 NHWC tensor, already
  quantised by the caller (the tool's input; no conversion in the session);
- ``raw CompiledModel``: ``write`` / ``run_by_index`` / ``read`` on buffers made once, the
  input already NHWC (and quantised): LiteRT with nothing around it, new input every call;
- ``LiteRT run only``: ``run_by_index`` back to back on the CompiledModel of the file, the
  input written once: the very loop ``benchmark_litert_model`` times, without its reload;
- ``<way>: its CompiledModel, run only``: the same loop on the CompiledModel an edgecnn way
  runs. Two CompiledModels of one file can differ by a few percent (where LiteRT placed
  their packed weights), so ``wrapper`` (a way over its own CompiledModel's loop) is the
  session's own cost, and that loop over the tool is LiteRT's placement;
- ``benchmark_litert_model``: LiteRT's own tool (``ai_edge_litert.tools``), in this process,
  which compiles the model anew each round.

Each round runs every way once (5 untimed calls, then ``--runs`` timed; the order rotated from
round to round) and takes its median. A shared VM drifts by more than the few percent measured
here between minutes, so the figures are **per-round ratios**: each way over the tool's median
of the same round (and over ``LiteRT run only``), then the median and quartiles of those ratios
over ``--rounds`` rounds.

Writes benchmarks/results/litert_overhead[-<tag>].json with the CPU, its flags and the load
average. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # tflite.py's helpers; edgecnn comes from PYTHONPATH / the venv
TOOL, RUN_ONLY = "benchmark_litert_model", "LiteRT run only"
OWN_RUN = "{}: its CompiledModel, run only"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="/tmp/edgecnn-litert-overhead/resnet18")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=41)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--tag", default="")
    args = ap.parse_args()

    import edgecnn
    import edgecnn.runtime as rt
    from edgecnn.platform_info import cpu_facts
    from tflite import _random_calib, _times, export_bundle, tool_latency

    out = Path(args.bundle)
    chw = (3, 224, 224)
    for prec in ("fp32", "int8"):
        if not (out / f"model.{prec}.tflite").exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            opts = {}
            if prec == "int8":
                opts = dict(calib=_random_calib(out.parent / "calib.npz", chw, n=32),
                            calib_samples=32)
            export_bundle("resnet18", out, prec, args.threads, **opts)
    x = np.random.default_rng(0).standard_normal((1, *chw)).astype(np.float32)
    ways: dict[str, dict] = {}
    sessions = []
    for prec in ("fp32", "int8"):
        s = rt.load(out, backend="tflite", precision=prec, threads=args.threads, api="compiled")
        sessions.append(s)
        xn = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        native = xn if s._in["dtype"] == np.float32 else s._quantize(xn, s._in)
        cm, ins, outs = _compiled(out / f"model.{prec}.tflite", args.threads)
        n_out = int(np.prod(outs[0].get_tensor_details()["shape"]))
        out_dtype = s._out["dtype"]

        def raw(cm=cm, ins=ins, outs=outs, native=native, n_out=n_out, out_dtype=out_dtype):
            ins[0].write(native)
            cm.run_by_index(0, ins, outs)
            return outs[0].read(n_out, out_dtype)

        raw()  # the input is in the buffer from here on
        w = {"edgecnn float": lambda s=s: s.run(x)}
        s.run(x)
        float_runner = s._float_runner or s._runner
        print(f"{prec}: edgecnn float runs "
              f"{'a copy taking NCHW float' if float_runner.takes_nchw else 'the file'}"
              f"{f' ({s.float_input_note})' if s.float_input_note else ''}")
        w[OWN_RUN.format("edgecnn float")] = _run_only(float_runner)
        if s._in["dtype"] != np.float32:
            s.run(native)
            w["edgecnn native"] = lambda s=s, native=native: s.run(native)
            w[OWN_RUN.format("edgecnn native")] = _run_only(s._runner)
        w["raw CompiledModel"] = raw
        w[RUN_ONLY] = lambda cm=cm, ins=ins, outs=outs: cm.run_by_index(0, ins, outs)
        ways[prec] = w
    for w in ways.values():
        for fn in w.values():
            _times(fn, 10)
    load_before = os.getloadavg()
    per = {p: {k: [] for k in (*w, TOOL)} for p, w in ways.items()}
    for r in range(args.rounds):
        for p, w in ways.items():
            items = list(w.items())
            k = r % len(items)
            for name, fn in items[k:] + items[:k]:
                _times(fn, 5)  # settle: the other CompiledModel's threads may still spin
                per[p][name].append(statistics.median(_times(fn, args.runs)))
            per[p][TOOL].append(
                tool_latency(out / f"model.{p}.tflite", args.threads, args.runs, 5)["median_ms"])
        print(f"round {r + 1}: " + "; ".join(f"{p} " + ", ".join(
            f"{k} {v[-1]:.3f}" for k, v in d.items()) for p, d in per.items()), flush=True)
    load_after = os.getloadavg()
    result = {"model": "resnet18 3x224x224 random weights", "batch": 1, "threads": args.threads,
              "rounds": args.rounds, "runs_per_round": args.runs, "edgecnn": edgecnn.__file__,
              "api": sessions[0].api, **cpu_facts(), "loadavg_before": load_before,
              "loadavg_after": load_after,
              "statistic": "per-round ratio (way / tool median in the same round): median and "
                           "quartiles over rounds"}
    for p, d in per.items():
        result[p] = {}
        for k, v in d.items():
            vs_tool = ratio_stats(v, d[TOOL])
            vs_run = ratio_stats(v, d[RUN_ONLY])
            result[p][k] = {"median_ms": round(statistics.median(v), 3), "vs_tool": vs_tool,
                            "vs_run_only": vs_run, "rounds_ms": [round(t, 3) for t in v]}
            if OWN_RUN.format(k) in d:  # the session's own cost: over its CompiledModel
                result[p][k]["wrapper"] = ratio_stats(v, d[OWN_RUN.format(k)])
            print(f"{p:5s} {k:45s} {statistics.median(v):7.3f} ms  vs tool "
                  f"{_pct(vs_tool['median'])} ({_pct(vs_tool['q1'])} .. "
                  f"{_pct(vs_tool['q3'])})  vs run only {_pct(vs_run['median'])}"
                  + (f"  wrapper {_pct(result[p][k]['wrapper']['median'])}"
                     if "wrapper" in result[p][k] else ""))
    tag = f"-{args.tag}" if args.tag else ""
    dest = HERE / "results" / f"litert_overhead{tag}.json"
    dest.write_text(json.dumps(result, indent=1) + "\n")
    print(f"load average {load_before} -> {load_after}; wrote {dest}")
    for s in sessions:
        s.close()


def _compiled(path: Path, threads: int):
    """A CompiledModel of ``path`` on the CPU accelerator, with its input and output buffers."""
    from ai_edge_litert.compiled_model import CompiledModel, CpuOptions, HardwareAccelerator
    from ai_edge_litert.compiled_model import Options

    from edgecnn.runtime.litert import _environment

    cm = CompiledModel.from_file(
        str(path), environment=_environment(),
        options=Options(hardware_accelerators=HardwareAccelerator.CPU,
                        cpu_options=CpuOptions(num_threads=threads)))
    return cm, cm.create_input_buffers(0), cm.create_output_buffers(0)


def _run_only(runner):
    """``run_by_index`` back to back on a session's own CompiledModel (its input written)."""
    return lambda r=runner: r.raw.run_by_index(0, r._ins, r._outs)


def ratio_stats(times: list[float], base: list[float]) -> dict:
    """Per-round ratios times[i] / base[i]: their median and quartiles (4 decimals)."""
    ratios = sorted(t / b for t, b in zip(times, base))
    q1, med, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return {"median": round(med, 4), "q1": round(q1, 4), "q3": round(q3, 4)}


def _pct(ratio: float) -> str:
    return f"{100 * (ratio - 1):+5.1f} %"


if __name__ == "__main__":
    main()
