"""``edgecnn bench MODEL_OR_BUNDLE``: latency and accuracy per target in one run.

Builds what the bundle lacks, measures every target in its own process, prints a table and
writes JSON/CSV/Markdown + a PNG; every run goes into the history database, and
``--compare RUN_ID|latest`` shows the change against the previous comparable run.
"""

from __future__ import annotations

import sys

import click

from edgecnn.cli.lab_bench import lab_options
from edgecnn.cli.main import EXIT_REGRESSION, THREADS, handle_errors
from edgecnn.cli.model_options import model_setup_options
from edgecnn.cli.native_logs import quiet_libraries


def _warmup(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise click.BadParameter("a count (e.g. 10) or 'auto'") from None
    if n < 0:
        raise click.BadParameter("must be >= 0")
    return n


def _batches(ctx, param, value):
    """--batch 1,8: positive integers, a usage error (exit 2) otherwise, as in export."""
    if value is None:
        return None
    from edgecnn.bench.plan import MAX_BATCH

    out = []
    for item in value.split(","):
        try:
            n = int(item)
        except ValueError:
            raise click.BadParameter(f"{value!r}: use positive integers like 1,8") from None
        if not 1 <= n <= MAX_BATCH:
            raise click.BadParameter(f"{value!r}: each batch must be between 1 and {MAX_BATCH}")
        out.append(n)
    return ",".join(str(n) for n in out)


@click.command("bench")
@click.argument("model", required=False, type=click.Path(path_type=str))
@click.option("--targets", default=None,
              help="Comma-separated BACKEND[:PRECISION] list, e.g. torch,onnx:fp32,onnx:int8,"
                   "onnx:int8-trt,tflite:fp32,tflite:int8,tensorrt:fp16,tensorrt:int8 (default: "
                   "all of these, or the --profile's target). onnx:int8 is the CPU-shaped graph, "
                   "onnx:int8-trt the TensorRT-shaped one (an accuracy proxy on a CPU).")
@click.option("--batch", default=None, callback=_batches, help="Batch sizes, e.g. 1,8 (default 1).")
@click.option("--threads", type=THREADS, default=None,
              help="CPU threads for every target (default: the profile's, else all cores).")
@click.option("--data", default=None,
              help="Labelled data for top-1/top-5, e.g. fashion-mnist:test, a folder or .npz.")
@click.option("--data-limit", "data_limit", type=click.IntRange(min=1), default=None,
              help="Score a random subset of this many images.")
@click.option("--profile", default=None,
              help="Device profile from targets/ (its target, threads and batch are defaults).")
@click.option("--weights", default=None, help="Weights / checkpoint for a zoo model.")
@click.option("--input-size", "input_size", default=None, help="CxHxW, e.g. 3x224x224.")
@click.option("--num-classes", "num_classes", type=click.IntRange(min=1), default=None)
@click.option("--calib", default=None, help="Calibration data for int8 builds (passed to export).")
@click.option("--calib-samples", "calib_samples", type=click.IntRange(min=1), default=512,
              show_default=True)
@click.option("--out", default=None, help="Bundle folder for built artifacts (default bundles/MODEL).")
@click.option("--warmup", default="auto", show_default=True,
              help="Warm-up iterations, or 'auto' (until the rolling median settles).")
@click.option("--iterations", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds to time each target per round (replaces --iterations).")
@click.option("--rounds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Interleave all targets this many times (drift hits all alike).")
@click.option("--report-dir", "report_dir", default=None,
              help="Where bench.json/.csv/.md/.png go (default bench_results/MODEL-TIME).")
@click.option("--plot/--no-plot", default=True, show_default=True)
@click.option("--db", default=None,
              help="History database (default $XDG_DATA_HOME/edgecnn/bench.db).")
@click.option("--save/--no-save", default=True, show_default=True,
              help="Store this run in the history database.")
@click.option("--compare", default=None, metavar="RUN_ID|latest",
              help="Compare with the previous comparable run (without MODEL: compare a stored run).")
@click.option("--k", "k", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="Regression threshold in combined robust spreads (and always > 5%).")
@click.option("--fail-on-regression", "fail_on_regression", is_flag=True,
              help="Exit with status 3 when --compare finds a regression (2 is a usage error).")
@click.option("--isolate/--no-isolate", default=True, show_default=True,
              help="Measure each target in a fresh process (per-target peak RSS).")
@click.option("--timeout", type=click.FloatRange(min=1), default=900.0, show_default=True,
              help="Seconds allowed per measurement.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--wide", is_flag=True,
              help="Show every column (load, first run, mean ± std, p90, p99, power); the default "
                   "table fits 100 columns.")
@model_setup_options
@lab_options
@handle_errors
@quiet_libraries
def bench(model, targets, batch, threads, data, data_limit, profile, weights, input_size,
          num_classes, calib, calib_samples, out, warmup, iterations, duration, rounds,
          report_dir, plot, db, save, compare, k, fail_on_regression, isolate, timeout,
          seed, wide, setup) -> None:
    """Benchmark MODEL (zoo name, checkpoint, factory, .pt2) or a BUNDLE on every target.

    The preprocessing flags (--preset, --resize, ...) state how MODEL is fed: its export,
    calibration, accuracy data and the torch target all use them. A BUNDLE's are fixed."""
    from edgecnn.bench.history import History, compare_reports
    from edgecnn.bench.report import print_comparison, print_table
    from edgecnn.bench.runner import BenchOptions, run_bench, save_outputs
    from edgecnn.terminal import console as make_console

    console = make_console()
    warmup = _warmup(warmup)
    if model is None:
        if compare is None:
            raise click.UsageError("give a MODEL or BUNDLE to benchmark, or --compare RUN_ID|latest")
        if not setup.is_empty:
            raise click.UsageError("the preprocessing, --labels and --model-arg flags need a MODEL "
                                   "to benchmark")
        with History(db) as h:
            new = h.get(compare)
            old = h.previous_comparable(new)
            if old is None:
                console.print(f"run {new.run_id} ({new.model}) has no earlier comparable run "
                              f"(same model, input size, machine and threads)")
                return
            cmp = compare_reports(old, new, k=k)
        print_comparison(cmp, console, k=k)
        if fail_on_regression and cmp.regressions:
            sys.exit(EXIT_REGRESSION)
        return

    options = BenchOptions(
        targets=targets, batch=batch, threads=threads, data=data, data_limit=data_limit,
        profile=profile, weights=weights, input_size=input_size, num_classes=num_classes,
        calib=calib, calib_samples=calib_samples, out=out, warmup=warmup,
        iterations=iterations, duration=duration, rounds=rounds, report_dir=report_dir,
        plot=plot, db=db, save=save, isolate=isolate, timeout=timeout, seed=seed, setup=setup)
    if compare is not None and not save:
        raise click.UsageError("--compare needs the run stored; drop --no-save")
    if compare is not None:  # check the run id before the (long) benchmark
        with History(db) as h:
            if compare.strip().lower() != "latest":
                h.get(compare)
    report = run_bench(model, options, log=lambda m: console.print(m, style="dim", markup=False,
                                                           highlight=False, soft_wrap=True))
    paths = save_outputs(report, options)
    print_table(report, console, wide=wide)
    for kind, p in paths.items():  # paths to copy: never wrapped
        click.echo(f"{kind:>4}: {p}")
    if compare is not None:
        with History(db) as h:
            old = h.previous_comparable(report) if compare.strip().lower() == "latest" \
                else h.get(compare)
        if old is None:
            console.print("no earlier comparable run to compare with")
            return
        cmp = compare_reports(old, report, k=k)
        print_comparison(cmp, console, k=k)
        if fail_on_regression and cmp.regressions:
            sys.exit(EXIT_REGRESSION)
