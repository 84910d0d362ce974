"""What edgecnn's LiteRT session costs on top of LiteRT itself (resnet18, batch 1).

    python benchmarks/litert_overhead.py [--bundle DIR] [--threads 2] [--rounds 7] [--runs 30]

One bundle with model.fp32.tflite and model.int8.tflite (resnet18 3x224x224, random weights;
exported into ``--bundle`` when missing). Per precision, in one process, interleaved rounds
(every way once per round, the order rotated), the median per round, then the median over rounds:

- ``edgecnn float``: ``Session.run`` on float32 NCHW (what every caller does: the layout
  change and, at int8, the quantisation of the input included; float32 logits out); at int8
  the session runs a copy of the model with a QUANTIZE op in front (float input);
- ``edgecnn float, numpy quantisation`` (int8): the same, quantising in numpy instead;
- ``raw CompiledModel, float in (QUANTIZE op)`` (int8): that float-input copy, raw;
- ``edgecnn native`` (int8 only): ``Session.run`` on the model's own int8 NHWC tensor,
  already quantised by the caller (no quantisation in the session);
- ``raw CompiledModel``: ``write`` / ``run_by_index`` / ``read`` on buffers made once, the
  input already NHWC and quantised: LiteRT with nothing around it;
- ``benchmark_litert_model``: LiteRT's own tool (``ai_edge_litert.tools``), in this process.

Then, because a shared VM drifts by more than the few percent being measured between rounds,
the headline figures are **paired**: every way alternates call by call with ``LiteRT run only``
(``run_by_index`` on the very CompiledModel that way calls, its input already written: exactly
the region ``benchmark_litert_model`` times; two CompiledModels alternating call by call slow
each other by 3-5 %, their thread pools still spinning), ``--pairs`` times, the order swapped every other pair; the
overhead is median(way - run only) / median(run only). The tool's own medians, taken
unpaired, say how far that region is from the tool's figure.

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="/tmp/edgecnn-litert-overhead/resnet18")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--pairs", type=int, default=1000)
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
    run_onlys: dict[str, object] = {}
    sessions = []
    for prec in ("fp32", "int8"):
        s = rt.load(out, backend="tflite", precision=prec, threads=args.threads, api="compiled")
        sessions.append(s)
        det = s._in
        xn = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        native = xn if det["dtype"] == np.float32 else s._quantize(xn, det)
        from ai_edge_litert.compiled_model import CompiledModel, CpuOptions, HardwareAccelerator
        from ai_edge_litert.compiled_model import Options

        from edgecnn.runtime.litert import _environment

        cm = CompiledModel.from_file(
            str(out / f"model.{prec}.tflite"), environment=_environment(),
            options=Options(hardware_accelerators=HardwareAccelerator.CPU,
                            cpu_options=CpuOptions(num_threads=args.threads)))
        ins, outs = cm.create_input_buffers(0), cm.create_output_buffers(0)
        n_out = int(np.prod(outs[0].get_tensor_details()["shape"]))
        out_dtype = s._out["dtype"]

        def raw(cm=cm, ins=ins, outs=outs, native=native, n_out=n_out, out_dtype=out_dtype):
            ins[0].write(native)
            cm.run_by_index(0, ins, outs)
            return outs[0].read(n_out, out_dtype)

        raw()  # the input is in the buffer from here on

        def run_only(cm=cm, ins=ins, outs=outs):
            cm.run_by_index(0, ins, outs)

        run_onlys[prec] = run_only
        w = {"edgecnn float": lambda s=s: s.run(x), "raw CompiledModel": raw}
        if det["dtype"] != np.float32 and hasattr(s, "_float_runner"):
            # the two ways to hand float to an int8-input model: LiteRT's QUANTIZE op in front
            # of the graph (the session's default) and numpy quantisation into the int8 buffer
            s.run(x)
            print(f"{prec}: edgecnn float runs through "
                  f"{'the QUANTIZE op' if s._float_runner else s.float_input_note}")
            sn = rt.load(out, backend="tflite", precision=prec, threads=args.threads,
                         api="compiled")
            sn._float_runner = False  # numpy quantisation
            sessions.append(sn)
            w["edgecnn float, numpy quantisation"] = lambda sn=sn: sn.run(x)
            from edgecnn.runtime.litert_float_input import float_input_model

            cmf = CompiledModel.from_buffer(
                float_input_model((out / f"model.{prec}.tflite").read_bytes()),
                environment=_environment(),
                options=Options(hardware_accelerators=HardwareAccelerator.CPU,
                                cpu_options=CpuOptions(num_threads=args.threads)))
            insf, outsf = cmf.create_input_buffers(0), cmf.create_output_buffers(0)

            def raw_float(cm=cmf, ins=insf, outs=outsf, xn=xn, n_out=n_out, out_dtype=out_dtype):
                ins[0].write(xn)
                cm.run_by_index(0, ins, outs)
                return outs[0].read(n_out, out_dtype)

            w["raw CompiledModel, float in (QUANTIZE op)"] = raw_float
        if det["dtype"] != np.float32:
            try:
                s.run(native)
                w["edgecnn native"] = lambda s=s, native=native: s.run(native)
            except Exception as exc:  # noqa: BLE001 - an older edgecnn takes float32 only
                print(f"{prec}: edgecnn native input not supported here ({exc})")
        ways[prec] = w
    for w in ways.values():
        for fn in w.values():
            _times(fn, 10)
    load_before = os.getloadavg()
    per = {p: {k: [] for k in (*w, "benchmark_litert_model")} for p, w in ways.items()}
    for r in range(args.rounds):
        for p, w in ways.items():
            items = list(w.items())
            k = r % len(items)
            for name, fn in items[k:] + items[:k]:
                per[p][name].append(statistics.median(_times(fn, args.runs)))
            per[p]["benchmark_litert_model"].append(
                tool_latency(out / f"model.{p}.tflite", args.threads, args.runs, 3)["median_ms"])
        print(f"round {r + 1}: " + "; ".join(f"{p} " + ", ".join(
            f"{k} {v[-1]:.3f}" for k, v in d.items()) for p, d in per.items()), flush=True)
    load_after = os.getloadavg()
    result = {"model": "resnet18 3x224x224 random weights", "batch": 1, "threads": args.threads,
              "rounds": args.rounds, "runs_per_round": args.runs, "edgecnn": edgecnn.__file__,
              "api": sessions[1].api, **cpu_facts(), "loadavg_before": load_before,
              "loadavg_after": load_after}
    for p, d in per.items():
        med = {k: statistics.median(v) for k, v in d.items()}
        raw_ms = med["raw CompiledModel"]
        result[p] = {k: {"median_ms": round(v, 3), "vs_raw": round(v / raw_ms, 4),
                         "vs_tool": round(v / med["benchmark_litert_model"], 4),
                         "rounds_ms": [round(x, 3) for x in d[k]]} for k, v in med.items()}
        for k, v in med.items():
            print(f"{p:5s} {k:24s} {v:8.3f} ms  vs raw {v / raw_ms:6.3f}  vs tool "
                  f"{v / med['benchmark_litert_model']:6.3f}")
    for p, w in ways.items():
        paired = {}
        for name, fn in w.items():
            d = paired_overhead(fn, own_run_only(name, fn, run_onlys[p]), args.pairs)
            paired[name] = d
            print(f"{p:5s} paired  {name:40s} +{d['overhead_ms'] * 1e3:7.1f} us "
                  f"({d['overhead_pct']:+.2f} % of run only {d['run_only_ms']:.3f} ms)")
        tool = result[p]["benchmark_litert_model"]["median_ms"]
        ro = statistics.median(d["run_only_ms"] for d in paired.values())
        result[p]["paired"] = {"pairs": args.pairs, "run_only_ms": round(ro, 4),
                               "tool_median_ms": tool, "ways": paired}
        print(f"{p:5s} LiteRT run only {ro:.3f} ms (paired runs), benchmark_litert_model "
              f"{tool:.3f} ms (unpaired rounds)")
    tag = f"-{args.tag}" if args.tag else ""
    dest = HERE / "results" / f"litert_overhead{tag}.json"
    dest.write_text(json.dumps(result, indent=1) + "\n")
    print(f"load average {load_before} -> {load_after}; wrote {dest}")
    for s in sessions:
        s.close()


def own_run_only(name: str, fn, raw_run_only):
    """``run_by_index`` alone on the CompiledModel that way ``fn`` runs (a session's own
    runner, the float-input copy for a float call to an int8 model), input already written."""
    session = getattr(fn, "__defaults__", None) and fn.__defaults__[0]
    runner = None
    if session is not None and hasattr(session, "_runner"):
        float_runner = getattr(session, "_float_runner", None)
        runner = float_runner if (float_runner and "native" not in name) else session._runner
    if runner is None and hasattr(session, "run_by_index"):  # a raw way: (cm, ins, outs, ...)
        cm, ins, outs = fn.__defaults__[:3]
        return lambda: cm.run_by_index(0, ins, outs)
    if runner is None or not hasattr(runner, "_ins"):
        return raw_run_only
    return lambda r=runner: r.raw.run_by_index(0, r._ins, r._outs)


def paired_overhead(fn, base, pairs: int) -> dict:
    """``fn`` against ``base`` call by call (order swapped every other pair): the median extra
    time of ``fn`` over ``base`` and ``base``'s median, in ms."""
    import time

    diffs, bases = [], []
    for _ in range(10):
        fn(), base()
    for i in range(pairs):
        first, second = (fn, base) if i % 2 else (base, fn)
        t0 = time.perf_counter()
        first()
        t1 = time.perf_counter()
        second()
        t2 = time.perf_counter()
        tf, tb = (t1 - t0, t2 - t1) if first is fn else (t2 - t1, t1 - t0)
        diffs.append((tf - tb) * 1e3)
        bases.append(tb * 1e3)
    ro = statistics.median(bases)
    extra = statistics.median(diffs)
    return {"overhead_ms": round(extra, 5), "run_only_ms": round(ro, 4),
            "overhead_pct": round(100 * extra / ro, 3)}


if __name__ == "__main__":
    main()
