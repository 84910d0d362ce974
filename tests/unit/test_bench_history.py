"""The SQLite history: storing runs, finding the previous comparable run, comparisons."""

import copy

import pytest

from edgecnn.bench.history import History, HistoryError, compare_reports, default_db_path
from edgecnn.bench.report import BenchReport, TargetResult
from edgecnn.bench.stats import LatencyStats


def report(p50s, host="box", threads=2, model="resnet8"):
    rows = []
    for target, center in p50s.items():
        samples = [center * (1 + 0.002 * ((i % 5) - 2)) for i in range(50)]
        rows.append(TargetResult(target, "onnxruntime", "fp32", 1,
                                 latency=LatencyStats.from_samples(samples), top1=90.0))
    return BenchReport(model=model, input_size=[1, 28, 28], results=rows,
                       machine={"hostname": host, "cpu_model": "cpu", "threads": threads},
                       options={}, created="2026-01-01T00:00:00+00:00")


def test_default_path_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "edgecnn" / "bench.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_db_path().parts[-4:] == (".local", "share", "edgecnn", "bench.db")


def test_store_get_latest_and_previous_comparable(tmp_path):
    with History(tmp_path / "h.db") as h:
        a = report({"onnx:fp32": 1.0})
        other_machine = report({"onnx:fp32": 5.0}, host="elsewhere")
        other_threads = report({"onnx:fp32": 3.0}, threads=1)
        b = report({"onnx:fp32": 1.2})
        ids = [h.store(r) for r in (a, other_machine, other_threads, b)]
        assert ids == sorted(ids) and b.run_id == ids[-1]
        assert h.get("latest").run_id == ids[-1]
        assert h.get(str(ids[0])).results[0].latency.p50 == pytest.approx(1.0)
        prev = h.previous_comparable(h.get("latest"))
        assert prev.run_id == ids[0]  # skips the other machine and the other thread count
        assert h.previous_comparable(h.get(ids[0])) is None
    # the file persists across opens
    with History(tmp_path / "h.db") as h:
        assert len(h.runs()) == 4


def test_errors_name_the_problem(tmp_path):
    with History(tmp_path / "h.db") as h:
        with pytest.raises(HistoryError, match="empty"):
            h.get("latest")
        h.store(report({"onnx:fp32": 1.0}))
        with pytest.raises(HistoryError, match="run 99 is not in"):
            h.get(99)
        with pytest.raises(HistoryError, match="run id or 'latest'"):
            h.get("yesterday")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(HistoryError, match="--db"):
        History(tmp_path / "dir.db")


def test_compare_flags_regressions_beyond_spread():
    old = report({"torch": 4.0, "onnx:fp32": 1.0, "onnx:int8": 0.8, "gone": 1.0})
    old.run_id = 1
    new = report({"torch": 4.02, "onnx:fp32": 1.3, "onnx:int8": 0.6, "tflite:fp32": 2.0})
    new.run_id = 2
    new.results[0].top1 = 89.5
    cmp = compare_reports(old, new)
    by = {r.target: r for r in cmp.rows}
    assert by["onnx:fp32"].change.verdict == "regression"
    assert by["onnx:int8"].change.verdict == "improvement"
    assert by["torch"].change.verdict == "same"  # +0.5%: under the 5% floor
    assert by["torch"].top1_delta == pytest.approx(-0.5)
    assert by["tflite:fp32"].status == "new" and by["gone"].status == "gone"
    assert [r.target for r in cmp.regressions] == ["onnx:fp32"]


def test_skipped_rows_are_not_compared():
    old, new = report({"onnx:fp32": 1.0}), copy.deepcopy(report({"onnx:fp32": 1.0}))
    new.results[0] = TargetResult("onnx:fp32", "onnxruntime", "fp32", 1, "failed", "boom")
    row = compare_reports(old, new).rows[0]
    assert row.status == "not-ok" and row.change is None and "failed" in row.note


SCHEMA_1 = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL,
    model TEXT NOT NULL, input_size TEXT NOT NULL, machine_key TEXT NOT NULL, data TEXT,
    report TEXT NOT NULL);
CREATE TABLE results (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    target TEXT NOT NULL, batch INTEGER NOT NULL, status TEXT NOT NULL,
    p50_ms REAL, iqr_ms REAL, mad_ms REAL, mean_ms REAL, top1 REAL,
    PRIMARY KEY (run_id, target, batch));
CREATE INDEX runs_comparable ON runs (model, input_size, machine_key, id);
PRAGMA user_version = 1;
"""


def test_a_schema_1_database_opens_and_gains_the_device_column(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    old = report({"onnx:fp32": 1.0})
    old.run_id = 1
    con = sqlite3.connect(db)
    con.executescript(SCHEMA_1)
    con.execute("INSERT INTO runs (created, model, input_size, machine_key, data, report) "
                "VALUES (?, ?, ?, ?, ?, ?)", (old.created, "resnet8", "1x28x28", "box|cpu|t2",
                                              None, old.to_json()))
    con.commit()
    con.close()
    with History(db) as h:
        assert h.get(1).results[0].latency.p50 == pytest.approx(1.0)
        local = report({"onnx:fp32": 1.1})
        h.store(local)
        assert h.previous_comparable(local).run_id == 1  # an old run is a run on this machine
        on_board = report({"onnx:fp32": 1.2})
        on_board.options = {"device": "raspberry-pi-5", "lab": "lab-1"}
        h.store(on_board)
        assert h.previous_comparable(on_board) is None  # the first run on that device
        assert h.runs()[0][4] == "raspberry-pi-5"
        assert set(h.latest_lab("resnet8", [1, 28, 28])) == {"raspberry-pi-5"}
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    assert con.execute("SELECT device FROM runs ORDER BY id").fetchall() == \
        [(None,), (None,), ("raspberry-pi-5",)]


def test_compare_is_per_device_and_resume_rewrites_a_run_in_place(tmp_path):
    with History(tmp_path / "h.db") as h:
        runs = {}
        for device, p50 in (("x86-cpu", 1.0), ("raspberry-pi-5", 9.0)):
            runs[device] = report({"onnx:fp32": p50})
            runs[device].options = {"device": device, "lab": "lab-1"}
        h.store_all(list(runs.values()))
        later = report({"onnx:fp32": 9.1})
        later.options = {"device": "raspberry-pi-5", "lab": "lab-2"}
        h.store(later)
        assert h.previous_comparable(later).run_id == runs["raspberry-pi-5"].run_id
        assert set(h.latest_lab("resnet8", [1, 28, 28])) == {"raspberry-pi-5"}  # lab-2
        pi = h.get(runs["raspberry-pi-5"].run_id)
        pi.results[0].status = "failed"
        h.replace(pi)
        assert h.get(pi.run_id).results[0].status == "failed"
        assert len(h.runs()) == 3
