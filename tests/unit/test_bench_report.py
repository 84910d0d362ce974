"""Report writers (JSON, CSV, Markdown, terminal table) and the plot, on a hand-built report."""

import csv
import io
import json

import pytest

from edgecnn.bench.report import (BenchReport, TargetResult, collect_machine, flag_slow_int8,
                                  print_table, read_report, to_csv, to_markdown, write_reports)
from edgecnn.bench.stats import LatencyStats


def make_report(with_accuracy=True):
    def ok(target, backend, precision, samples, top1=None, rss=120.0):
        lat = LatencyStats.from_samples(samples)
        return TargetResult(target, backend, precision, 1, threads=2, rounds=1, load_ms=12.5,
                            first_ms=3.0, latency=lat, throughput=lat.throughput(1),
                            peak_rss_mb=rss, rss_delta_mb=40.0, artifact_bytes=2_000_000,
                            artifact="model.onnx" if backend == "onnxruntime" else None,
                            top1=top1, top5=99.0 if top1 else None,
                            top1_drop=(91.0 - top1) if top1 else None,
                            agreement=98.5 if top1 else None, eval_n=1000 if top1 else None)
    rows = [ok("torch", "torch", "fp32", [4.0, 4.2, 4.1], 91.0 if with_accuracy else None, 400),
            ok("onnx:fp32", "onnxruntime", "fp32", [1.0, 1.1, 1.2], 91.0 if with_accuracy else None),
            ok("onnx:int8", "onnxruntime", "int8", [0.8, 0.9, 0.85], 90.6 if with_accuracy else None),
            TargetResult("tensorrt:fp16", "tensorrt", "fp16", 1, "skipped",
                         "no NVIDIA GPU on this machine"),
            TargetResult("tflite:int8", "tflite", "int8", 1, "failed",
                         "RuntimeError: bad | pipe [x]")]
    return BenchReport(model="resnet8", input_size=[1, 28, 28], results=rows,
                       machine={"cpu_model": "Test CPU", "cpu_count": 2, "threads": 2,
                                "os": "Linux", "libraries": {"numpy": "2.0"}},
                       options={"warmup": "auto", "iterations": 3, "rounds": 1, "threads": 2},
                       created="2026-01-01T00:00:00+00:00", reference="torch",
                       reference_top1=91.0 if with_accuracy else None,
                       data="fashion-mnist:test" if with_accuracy else None)


def test_json_roundtrip(tmp_path):
    rep = make_report()
    paths = write_reports(rep, tmp_path)
    back = read_report(paths["json"])
    assert back.to_dict() == rep.to_dict()
    assert back.results[1].latency.p50 == pytest.approx(1.1)
    assert json.loads(paths["json"].read_text())["results"][3]["status"] == "skipped"


def test_csv_has_one_row_per_result_and_numbers():
    rows = list(csv.DictReader(io.StringIO(to_csv(make_report()))))
    assert [r["target"] for r in rows] == ["torch", "onnx:fp32", "onnx:int8", "tensorrt:fp16",
                                           "tflite:int8"]
    assert float(rows[1]["p50_ms"]) == pytest.approx(1.1)
    assert float(rows[2]["top1_drop"]) == pytest.approx(0.4)
    assert rows[3]["status"] == "skipped" and rows[3]["p50_ms"] == ""
    assert rows[4]["reason"] == "RuntimeError: bad | pipe [x]"


def test_markdown_table_and_notes():
    md = to_markdown(make_report())
    lines = md.splitlines()
    header = next(ln for ln in lines if ln.startswith("| target"))
    table = [ln for ln in lines if ln.startswith("| ") and ln != header]
    assert len(table) == 5
    assert all(ln.count(" | ") == header.count(" | ") for ln in table)  # '|' in text is escaped
    assert "top-1 %" in header and "agree %" in header
    assert "`tensorrt:fp16` batch 1 skipped: no NVIDIA GPU" in md
    assert "Test CPU" in md and "fashion-mnist:test" in md
    assert "top-1 %" not in to_markdown(make_report(with_accuracy=False))


def test_terminal_table_prints_every_target():
    from rich.console import Console

    buf = io.StringIO()
    print_table(make_report(), Console(file=buf, width=250))
    out = buf.getvalue()
    for t in ("torch", "onnx:fp32", "onnx:int8", "tensorrt:fp16", "tflite:int8"):
        assert t in out
    assert "bad | pipe [x]" in out  # markup characters in errors are shown, not eaten


@pytest.mark.parametrize("with_accuracy", [True, False])
def test_plot_writes_png(tmp_path, with_accuracy):
    from edgecnn.bench.plot import plot_report

    p = plot_report(make_report(with_accuracy), tmp_path / "bench.png")
    data = p.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_machine_record_has_the_essentials():
    m = collect_machine(2)
    assert m["threads"] == 2 and m["cpu_model"] and m["os"] and m["python"]
    assert "numpy" in m["libraries"]
    assert "jetson" in m


def test_int8_row_no_faster_than_fp32_says_so():
    def row(target, p50, batch=1):
        return TargetResult(target=target, backend="onnxruntime", precision=target[5:], batch=batch,
                            latency=LatencyStats.from_samples([p50] * 5))

    slow, fast = row("onnx:int8", 12.0), row("onnx:int8", 4.0, batch=8)
    rows = [row("onnx:fp32", 10.0), slow, row("onnx:fp32", 10.0, batch=8), fast]
    flag_slow_int8(rows)
    assert len(slow.warnings) == 1 and "no faster than onnx:fp32" in slow.warnings[0]
    assert "0.83x at batch 1" in slow.warnings[0]
    assert fast.warnings == []
    lone = row("onnx:int8", 12.0, batch=4)  # no fp32 row at that batch: nothing to say
    flag_slow_int8([lone])
    assert lone.warnings == []
