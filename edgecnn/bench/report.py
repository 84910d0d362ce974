"""The benchmark report: typed results, the machine record, and its writers.

One :class:`BenchReport` becomes a rich table in the terminal and JSON, CSV and Markdown
files; the JSON is also what the history database stores, so a report read back from
there is the same object.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.bench.jetson import PARTIAL_SUM  # a lower bound, not module power
from edgecnn.bench.stats import LatencyStats

STATUSES = ("ok", "skipped", "failed")


@dataclass
class TargetResult:
    """One row of the report: one target at one batch size."""

    target: str  # 'onnx:int8'
    backend: str
    precision: str
    batch: int
    status: str = "ok"  # ok | skipped | failed
    reason: str | None = None  # why skipped / the error when failed
    threads: int | None = None
    artifact: str | None = None
    artifact_bytes: int | None = None
    rounds: int = 0
    load_ms: float | None = None  # median over rounds
    first_ms: float | None = None  # median over rounds
    warmup_iterations: int | None = None
    latency: LatencyStats | None = None  # pooled over rounds
    round_p50s: list[float] = field(default_factory=list)
    throughput: float | None = None  # images / s
    peak_rss_mb: float | None = None  # max over rounds, of a fresh worker process
    rss_delta_mb: float | None = None  # peak - the worker's RSS before loading
    top1: float | None = None
    top5: float | None = None
    top1_drop: float | None = None  # reference top-1 minus this top-1, points
    agreement: float | None = None  # % of images with the reference's top-1 class
    eval_n: int | None = None
    power: dict[str, Any] | None = None  # PowerSummary.to_dict() on Jetson
    warnings: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.target}@b{self.batch}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["latency"] = self.latency.to_dict() if self.latency else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TargetResult":
        d = dict(d)
        lat = d.get("latency")
        d["latency"] = LatencyStats.from_dict(lat) if lat else None
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class BenchReport:
    model: str
    input_size: list[int]
    results: list[TargetResult]
    machine: dict[str, Any]
    options: dict[str, Any]
    created: str = ""
    bundle: str | None = None
    reference: str | None = None  # the target the accuracy drop is measured against
    reference_top1: float | None = None
    data: str | None = None
    warnings: list[str] = field(default_factory=list)
    run_id: int | None = None
    schema: int = 1

    def ok(self) -> list[TargetResult]:
        return [r for r in self.results if r.status == "ok"]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["results"] = [r.to_dict() for r in self.results]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_json_default) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> "BenchReport":
        d = dict(d)
        d["results"] = [TargetResult.from_dict(r) for r in d.get("results", [])]
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def flag_slow_int8(rows: list[TargetResult]) -> None:
    """Warn on an ``onnx:int8`` row that is no faster than ``onnx:fp32`` at the same batch: the
    CPU int8 graph does not pay off for every family on every CPU (depthwise and attention nets
    on CPUs without VNNI), and a table should say so rather than let the int8 row pass as a win."""
    ok = {(r.target, r.batch): r for r in rows if r.status == "ok" and r.latency is not None}
    for (target, batch), int8 in ok.items():
        fp32 = ok.get(("onnx:fp32", batch))
        if target != "onnx:int8" or fp32 is None:
            continue
        ratio = fp32.latency.p50 / int8.latency.p50
        if ratio <= 1.0:
            int8.warnings.append(
                f"no faster than onnx:fp32 here ({ratio:.2f}x at batch {batch}: p50 "
                f"{int8.latency.p50:.3g} vs {fp32.latency.p50:.3g} ms): the CPU int8 graph does "
                f"not pay off for this model on this CPU")


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


# -- the machine record ---------------------------------------------------------------------
def collect_machine(threads: int | None) -> dict[str, Any]:
    """CPU, threads, OS, library versions; GPU/CUDA/TensorRT and Jetson facts where present.

    The machine facts are ``edgecnn.platform_info.probe()``'s; this adds what a benchmark
    needs beside them (host name, load, threads, library versions, Jetson power mode/clocks).
    """
    from edgecnn import platform_info

    out: dict[str, Any] = {}
    try:
        out.update(platform_info.probe().to_dict())
    except Exception as exc:  # noqa: BLE001 - a probe must never stop a benchmark
        out["platform_probe_error"] = f"{type(exc).__name__}: {exc}"
    if "cpu_model" not in out:  # only when probe() failed
        out["cpu_model"] = platform_info.cpu_model() or platform.machine()
    out.setdefault("cpu_count", len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count())
    out.setdefault("os", platform.platform())
    out.setdefault("hostname", platform.node())
    out["machine"] = platform.machine()
    try:  # a busy machine inflates every latency; the report says how busy it was
        out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        out["load_avg_1m"] = None
    out["python"] = platform.python_version()
    out["threads"] = threads
    libs = platform_info.package_versions()
    out["libraries"] = libs
    if "tensorrt" in libs:
        out.setdefault("tensorrt", libs["tensorrt"])
    from edgecnn.bench.jetson import probe_jetson

    jet = probe_jetson()
    out["jetson"] = jet.to_dict() if jet else None
    return out


def machine_key(machine: dict[str, Any]) -> str:
    """What makes two runs comparable: same CPU, same host, same thread count."""
    return f"{machine.get('hostname', '?')}|{machine.get('cpu_model', '?')}|t{machine.get('threads')}"


# -- writers --------------------------------------------------------------------------------
CSV_COLUMNS = [
    "target", "backend", "precision", "batch", "status", "reason", "threads", "rounds",
    "load_ms", "first_ms", "n", "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms",
    "p99_ms", "max_ms", "iqr_ms", "mad_ms", "throughput_ips", "peak_rss_mb", "rss_delta_mb",
    "artifact", "artifact_mb", "top1", "top5", "top1_drop", "agreement", "eval_n",
    "avg_power_w", "energy_mj_per_inference", "power_kind", "power_rails",
]


def _power_label(p: dict[str, Any], text: str) -> str:
    """A power or energy cell; a partial sum of rails is a lower bound and shown as one."""
    return f"≥{text}" if text != "–" and p.get("power_kind") == PARTIAL_SUM else text


def power_lines(report: "BenchReport") -> list[str]:
    """How each distinct power figure was made: which rails, module input or a partial sum."""
    seen: dict[tuple[str, str], None] = {}
    for r in report.results:
        p = r.power or {}
        if p:
            seen[(p.get("power_kind") or "module input", p.get("source") or "?")] = None
    notes = []
    for kind, source in seen:
        tail = (" — a lower bound: tegrastats printed no module input rail, so this is not "
                "module power or module energy (shown as ≥)") if kind == PARTIAL_SUM else ""
        notes.append(f"power: {kind}, {source}{tail}")
    return notes


def _row(r: TargetResult) -> dict[str, Any]:
    lat = r.latency
    p = r.power or {}
    row = {
        "target": r.target, "backend": r.backend, "precision": r.precision, "batch": r.batch,
        "status": r.status, "reason": r.reason or "", "threads": r.threads, "rounds": r.rounds,
        "load_ms": r.load_ms, "first_ms": r.first_ms, "n": lat.n if lat else None,
        "throughput_ips": r.throughput, "peak_rss_mb": r.peak_rss_mb,
        "rss_delta_mb": r.rss_delta_mb, "artifact": r.artifact,
        "artifact_mb": r.artifact_bytes / 1e6 if r.artifact_bytes else None,
        "top1": r.top1, "top5": r.top5, "top1_drop": r.top1_drop, "agreement": r.agreement,
        "eval_n": r.eval_n,
        "avg_power_w": p.get("avg_input_mw") / 1000.0 if p.get("avg_input_mw") else None,
        "energy_mj_per_inference": p.get("energy_per_inference_mj"),
        "power_kind": p.get("power_kind") or ("module input" if p else None),
        "power_rails": "+".join(p.get("total_rails") or []) or None,
    }
    for k in ("mean", "std", "min", "p50", "p90", "p95", "p99", "max", "iqr", "mad"):
        row[f"{k}_ms"] = getattr(lat, k) if lat else None
    return row


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def to_csv(report: BenchReport) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in report.results:
        w.writerow({k: _fmt(v, 4) for k, v in _row(r).items()})
    return buf.getvalue()


def _cell_ms(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.3f}" if v < 10 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def _cell(v: float | None, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def summary_rows(report: BenchReport) -> tuple[list[str], list[list[str]]]:
    """The columns both the terminal table and the Markdown table show."""
    has_acc = any(r.top1 is not None for r in report.results)
    has_power = any(r.power for r in report.results)
    head = ["target", "batch", "status", "load ms", "first ms", "p50 ms (IQR)", "mean ± std",
            "p90", "p99", "img/s", "peak RSS MB", "size MB"]
    if has_acc:
        head += ["top-1 %", "top-5 %", "drop pt", "agree %"]
    if has_power:
        head += ["power W", "mJ/inf"]
    rows = []
    for r in report.results:
        lat = r.latency
        row = [r.target, str(r.batch), r.status,
               _cell(r.load_ms, ".1f"), _cell(r.first_ms, ".2f"),
               f"{_cell_ms(lat.p50)} ({_cell_ms(lat.iqr)})" if lat else "–",
               f"{_cell_ms(lat.mean)} ± {_cell_ms(lat.std)}" if lat else "–",
               _cell_ms(lat.p90) if lat else "–", _cell_ms(lat.p99) if lat else "–",
               _cell(r.throughput, ".1f"), _cell(r.peak_rss_mb, ".0f"),
               _cell(r.artifact_bytes / 1e6 if r.artifact_bytes else None, ".2f")]
        if has_acc:
            row += [_cell(r.top1, ".2f"), _cell(r.top5, ".2f"), _cell(r.top1_drop, "+.2f"),
                    _cell(r.agreement, ".2f")]
        if has_power:
            p = r.power or {}
            row += [_power_label(p, _cell(p.get("avg_input_mw") / 1000
                                          if p.get("avg_input_mw") else None, ".2f")),
                    _power_label(p, _cell(p.get("energy_per_inference_mj"), ".2f"))]
        rows.append(row)
    return head, rows


def machine_line(report: BenchReport) -> str:
    m = report.machine
    libs = m.get("libraries", {})
    flags = f" [{' '.join(m['cpu_flags'])}]" if m.get("cpu_flags") else ""
    parts = [f"CPU {m.get('cpu_model', '?')}{flags} ({m.get('cpu_count', '?')} cores, "
             f"{m.get('threads') or 'default'} threads)", f"OS {m.get('os', '?')}",
             "; ".join(f"{k} {v}" for k, v in libs.items())]
    if m.get("load_avg_1m") is not None:
        parts.insert(1, f"load {m['load_avg_1m']}")
    gpus = m.get("gpus")
    if gpus:
        parts.append(f"GPU {gpus}")
    for key in ("cuda_runtime", "cuda_driver", "tensorrt"):
        if m.get(key):
            parts.append(f"{key} {m[key]}")
    jet = m.get("jetson")
    if jet:
        parts.append(f"Jetson {jet.get('module')} L4T {jet.get('l4t')} JetPack "
                     f"{jet.get('jetpack')} mode {jet.get('power_mode')} clocks "
                     f"{'locked' if jet.get('clocks_locked') else 'not locked'}")
    return " | ".join(parts)


def to_markdown(report: BenchReport) -> str:
    head, rows = summary_rows(report)
    out = [f"# edgecnn bench: {report.model}", "",
           f"- run: {report.run_id if report.run_id is not None else '(not stored)'}, "
           f"{report.created}",
           f"- input: {'x'.join(map(str, report.input_size))}"
           + (f", bundle `{report.bundle}`" if report.bundle else ""),
           f"- machine: {machine_line(report)}",
           f"- timing: {_timing_line(report.options)}"]
    out += [f"- {line}" for line in power_lines(report)]
    if report.data:
        out.append(f"- data: {report.data}; accuracy drop and agreement vs "
                   f"`{report.reference}` (top-1 {_cell(report.reference_top1, '.2f')} %)")
    out += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    notes = [r for r in report.results if r.status != "ok" or r.warnings]
    if notes or report.warnings:
        out += ["", "## Notes", ""]
        for w in report.warnings:
            out.append(f"- {w}")
        for r in notes:
            if r.status != "ok":
                out.append(f"- `{r.target}` batch {r.batch} {r.status}: {r.reason}")
            for w in r.warnings:
                out.append(f"- `{r.target}` batch {r.batch}: {w}")
    out += ["", "p50 (IQR): median latency and its interquartile range; mean ± std over all "
            "timed iterations (all rounds pooled). Peak RSS is the high-water mark of a fresh "
            "worker process that loaded and ran only that target.", ""]
    return "\n".join(out)


def _timing_line(o: dict[str, Any]) -> str:
    meas = f"{o.get('duration')} s" if o.get("duration") else f"{o.get('iterations')} iterations"
    return (f"warm-up {o.get('warmup')}, {meas} per round, {o.get('rounds', 1)} round(s)"
            f"{' interleaved' if (o.get('rounds') or 1) > 1 else ''}, threads "
            f"{o.get('threads') or 'default'}")


def compact_rows(report: BenchReport) -> tuple[list[str], list[list[str]]]:
    """The terminal's default columns, chosen to fit 100 columns: a row that did not run says
    so in its p50 cell (its reason follows the table); batch is a column only when several
    batch sizes ran; load, first run, mean, p90, p99 and power are in ``--wide`` and the files."""
    head, rows = summary_rows(report)
    keep = ["target", "batch", "p50 ms (IQR)", "img/s", "peak RSS MB", "size MB", "top-1 %",
            "drop pt", "agree %", "mJ/inf"]
    short = {"peak RSS MB": "RSS MB", "size MB": "MB", "drop pt": "drop"}  # a gain is negative
    if len({r.batch for r in report.results}) <= 1:
        keep.remove("batch")
    cols = [head.index(k) for k in keep if k in head]
    p50, status = head.index("p50 ms (IQR)"), head.index("status")
    out = []
    for r, row in zip(report.results, rows):
        cells = [row[i] for i in cols]
        if r.status != "ok":
            cells = [row[status] if i == p50 else ("" if c == "–" else c)
                     for i, c in zip(cols, cells)]
        out.append(cells)
    return [short.get(head[i], head[i]) for i in cols], out


def print_table(report: BenchReport, console=None, wide: bool = False) -> None:
    """The report as a rich table that fits 100 columns (``wide``: every column; a table wider
    than the terminal is printed whole, never cut), then its notes and the machine line."""
    from rich.markup import escape
    from rich.table import Table

    from edgecnn.terminal import console as make_console, print_table as print_fitted

    console = console or make_console()
    head, rows = summary_rows(report) if wide else compact_rows(report)
    batches = sorted({r.batch for r in report.results})
    size = "x".join(map(str, report.input_size))
    title = f"edgecnn bench: {report.model} ({size}" + (
        f", batch {batches[0]})" if len(batches) == 1 and not wide else ")")
    table = Table(title=title)
    for i, h in enumerate(head):
        table.add_column(h, justify="left" if h in ("target", "status") else "right",
                         no_wrap=True)
    style = {"ok": None, "skipped": "dim", "failed": "red"}
    for r, row in zip(report.results, rows):
        table.add_row(*(escape(c) for c in row), style=style[r.status])
    print_fitted(console, table)
    for r in report.results:  # a reason may end with a command to copy: never wrapped by rich
        if r.status != "ok":
            console.print(f"[{'red' if r.status == 'failed' else 'dim'}]{r.target} "
                          f"(batch {r.batch}) {r.status}: {escape(r.reason or '')}[/]",
                          soft_wrap=True)
        for w in r.warnings:
            console.print(f"[yellow]warning[/] {r.target}: {escape(w)}")
    for w in report.warnings:
        console.print(f"[yellow]warning[/] {escape(w)}")
    for line in power_lines(report):
        console.print(f"[dim]{escape(line)}[/]")
    if not wide:
        console.print("[dim]bench --wide: every column (load, first run, mean ± std, p90, p99)[/]")
    console.print(f"[dim]{escape(machine_line(report))}[/]")


def verdict_reason(change, k: float, min_rel: float) -> str:
    """Why a change got its verdict: a 'same' that moved more than ``min_rel`` is noise (within
    ``k`` x the runs' combined spread); one beyond the spread but under ``min_rel`` is too small."""
    if change.verdict != "same":
        return change.verdict
    if abs(change.delta_pct) > 100.0 * min_rel:
        return "same (noise)"
    if abs(change.delta_ms) > change.threshold_ms:
        return f"same (<{100.0 * min_rel:g}%)"
    return "same"


def print_comparison(cmp, console=None, k: float = 3.0, min_rel: float = 0.05) -> None:
    """A history comparison (``bench.history.Comparison``) as a table that fits 100 columns,
    with the rule behind each verdict and, for a large change called noise, its numbers."""
    from rich.markup import escape
    from rich.table import Table

    from edgecnn.terminal import console as make_console, print_table as print_fitted

    console = console or make_console()
    several = len({row.batch for row in cmp.rows}) > 1
    table = Table(title=f"run {cmp.new_run} vs run {cmp.old_run} (p50 in ms)")
    for h in ("target", "batch", "old p50", "new p50", "change", "threshold", "verdict",
              "Δ top-1"):
        if h != "batch" or several:
            table.add_column(h, justify="left" if h in ("target", "verdict") else "right",
                             no_wrap=True)
    colors = {"regression": "red", "improvement": "green", "same": ""}
    noisy = []
    for row in cmp.rows:
        c = row.change
        lead = [row.target] + ([str(row.batch)] if several else [])
        if c is None:  # new: not in the earlier run; gone: not in this one; else 'ok -> failed'
            what = row.status if row.status in ("new", "gone") else \
                row.note.removeprefix("status ")
            table.add_row(*lead, "–", "–", "–", "–", escape(what), "–", style="dim")
            continue
        verdict = verdict_reason(c, k, min_rel)
        if verdict == "same (noise)":
            noisy.append((row, c))
        style = colors[c.verdict]
        table.add_row(*lead, _cell_ms(c.old_p50), _cell_ms(c.new_p50),
                      f"{c.delta_ms:+.3f} ({c.delta_pct:+.0f}%)", f"±{c.threshold_ms:.3f}",
                      f"[{style}]{verdict}[/]" if style else verdict,
                      "–" if row.top1_delta is None else f"{row.top1_delta:+.2f}")
    print_fitted(console, table)
    console.print(f"[dim]verdict: a regression or improvement when the p50 moved by more than "
                  f"the threshold (k={k:g} x the two runs' combined robust spread) and by more "
                  f"than {100.0 * min_rel:g}%; 'same (noise)': a larger change within the "
                  f"threshold; new / gone: a row only this run / only the earlier run has[/]")
    for row, c in noisy:  # k > 0 here: with k = 0 every change beyond the floor counts
        console.print(f"{row.target} batch {row.batch}: {c.delta_pct:+.0f}% ({c.delta_ms:+.3f} "
                      f"ms) is noise: within the threshold of {c.threshold_ms:.3f} ms = {k:g} x "
                      f"the combined spread of {c.threshold_ms / k:.3f} ms; more --iterations "
                      f"or --rounds narrow the spread")
    if cmp.regressions:
        console.print(f"[red]{len(cmp.regressions)} regression(s)[/]: p50 rose by more than "
                      f"k x the runs' combined spread and by more than {100.0 * min_rel:g}%")


def write_reports(report: BenchReport, out_dir: str | os.PathLike, stem: str = "bench"
                  ) -> dict[str, Path]:
    """Write ``<stem>.json``, ``.csv`` and ``.md`` into ``out_dir`` (each atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext, text in (("json", report.to_json()), ("csv", to_csv(report)),
                      ("md", to_markdown(report))):
        p = out / f"{stem}.{ext}"
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
        paths[ext] = p
    return paths


def read_report(path: str | os.PathLike) -> BenchReport:
    return BenchReport.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
