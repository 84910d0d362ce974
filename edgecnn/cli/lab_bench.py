"""``edgecnn bench ... --cluster auto|HOST:PORT --devices P1,P2``: the bench command on a lab.

:func:`lab_options` adds the lab's options to ``edgecnn bench``; without ``--cluster`` the
command runs as before, with it :func:`bench_on_lab` runs it through :mod:`edgecnn.fleet`.
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import click

from edgecnn.cli.main import EXIT_REGRESSION, handle_errors
from edgecnn.cli.native_logs import quiet_libraries


def lab_options(fn):
    """Decorator for ``edgecnn bench`` (below its options, above ``handle_errors``)."""

    @click.option("--cluster", default=None, metavar="auto|HOST:PORT",
                  help="Run on a device lab (Ray): 'auto' is the lab started on this machine.")
    @click.option("--devices", default=None, metavar="PROFILE[,PROFILE...]",
                  help="Lab devices to measure on (with --cluster); each runs its profile's "
                       "target unless --targets is given.")
    @click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True,
                  help="With --cluster: retries of a cell whose node was lost or hung.")
    @click.option("--resume", is_flag=True,
                  help="With --cluster: measure only the cells the latest lab run lacks.")
    @functools.wraps(fn)
    def wrapper(*args, cluster, devices, retries, resume, **kwargs):
        if cluster is None:
            if devices or resume:
                raise click.UsageError("--devices and --resume need --cluster auto|HOST:PORT")
            return fn(*args, **kwargs)
        if not devices:
            raise click.UsageError("--cluster needs --devices PROFILE[,PROFILE...]")
        if kwargs.get("model") is None:
            raise click.UsageError("--cluster needs a MODEL or BUNDLE to benchmark")
        compare = kwargs.get("compare")
        if compare is not None and compare.strip().lower() != "latest":
            raise click.UsageError("with --cluster, --compare takes 'latest' (each device is "
                                   "compared with its own previous run)")
        from edgecnn.fleet.lab import LabOptions

        return bench_on_lab(LabOptions(devices, cluster, retries, resume), **kwargs)

    return wrapper


def _bench_options(kwargs: dict):
    from edgecnn.bench.plan import BenchOptions

    names = {f.name for f in dataclasses.fields(BenchOptions)}
    opts = BenchOptions(**{k: v for k, v in kwargs.items() if k in names})
    if opts.warmup != "auto":
        try:
            opts.warmup = int(opts.warmup)
        except ValueError:
            raise click.BadParameter("a count (e.g. 10) or 'auto'", param_hint="--warmup") from None
    return opts


@handle_errors
@quiet_libraries
def bench_on_lab(lab, model, compare=None, k=3.0, fail_on_regression=False, **kwargs) -> None:
    from rich.console import Console
    from rich.markup import escape

    from edgecnn.bench.report import print_table
    from edgecnn.fleet.lab import run_lab, save_lab

    console = Console()
    options = _bench_options(kwargs)
    if compare is not None and not options.save:
        raise click.UsageError("--compare needs the run stored; drop --no-save")
    result = run_lab(model, options, lab, log=lambda m: console.print(f"[dim]{escape(m)}[/]"))
    paths = save_lab(result, options)
    for device, report in result.reports.items():
        nodes = ", ".join(report.machine.get("nodes") or []) or "no node finished a cell"
        console.rule(f"device {device} ({nodes})")
        print_table(report, console)
    count = {s: sum(1 for r in result.runs if r.status == s) for s in ("ok", "skipped", "failed")}
    failed = count["failed"]
    console.print(f"lab {result.lab}: {count['ok']} cell(s) measured, {count['skipped']} "
                  f"skipped, {failed} failed, {result.kept} kept from the earlier run; bundle "
                  f"{result.shipped_bytes / 1e6:.2f} MB through Ray's object store, "
                  f"{result.wall_s:.1f} s")
    for kind, p in paths.items():
        console.print(f"{kind}: {p}")
    if result.interrupted:
        console.print("interrupted: the finished cells are saved; rerun with --resume to "
                      "measure the rest")
        sys.exit(130)
    if result.failure:
        console.print(f"{result.failure}: the finished cells are saved; rerun with --resume")
        sys.exit(1)
    if failed:
        console.print("some cells failed; rerun with --resume to measure only those")
    if compare is not None:
        _compare(result, options, k, fail_on_regression, console)


def _compare(result, options, k, fail_on_regression, console) -> None:
    from edgecnn.bench.history import History, compare_reports
    from edgecnn.bench.report import print_comparison

    regressions = 0
    with History(options.db) as h:
        for device, report in result.reports.items():
            old = h.previous_comparable(report)
            if old is None:
                console.print(f"{device}: no earlier comparable run to compare with")
                continue
            cmp = compare_reports(old, report, k=k)
            console.print(f"device {device}:")
            print_comparison(cmp, console, k=k)
            regressions += len(cmp.regressions)
    if fail_on_regression and regressions:
        sys.exit(EXIT_REGRESSION)
