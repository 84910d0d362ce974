"""Every benchmark run in a local SQLite database, and run-to-run comparison.

The database lives at ``$XDG_DATA_HOME/edgecnn/bench.db`` (``~/.local/share/edgecnn/bench.db``)
unless ``--db`` says otherwise. A run is stored whole (the report's JSON) plus one indexed row
per (target, batch). Two runs are comparable when they benchmarked the same model at the
same input size on the same machine with the same thread count, and on the same device.

Schema 2 adds two columns to ``runs``: ``device`` (the device profile a lab run measured on;
NULL for a run on this machine) and ``lab`` (the id shared by the device runs of one
``bench --cluster`` command). A schema-1 database is migrated in place when opened.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.bench.report import BenchReport, machine_key
from edgecnn.bench.stats import Change, compare_latency
from edgecnn.errors import EdgeCNNError

SCHEMA_VERSION = 2
_TABLES = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    model TEXT NOT NULL,
    input_size TEXT NOT NULL,
    machine_key TEXT NOT NULL,
    data TEXT,
    report TEXT NOT NULL,
    device TEXT,
    lab TEXT
);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    batch INTEGER NOT NULL,
    status TEXT NOT NULL,
    p50_ms REAL, iqr_ms REAL, mad_ms REAL, mean_ms REAL, top1 REAL,
    PRIMARY KEY (run_id, target, batch)
);
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS runs_comparable ON runs (model, input_size, machine_key, id);
CREATE INDEX IF NOT EXISTS runs_lab ON runs (lab, device);
"""
# columns added after schema 1: (name, type); old databases get them on open
_ADDED_COLUMNS = (("device", "TEXT"), ("lab", "TEXT"))


class HistoryError(EdgeCNNError):
    """A history database that cannot be opened, or a run id that is not in it."""


def default_db_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                            "share")
    return Path(base) / "edgecnn" / "bench.db"


class History:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_db_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path)
            self.conn.execute("PRAGMA foreign_keys = ON")
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryError(f"{self.path} was written by a newer edgecnn (schema "
                                   f"{version}); upgrade edgecnn or pass another --db")
            self.conn.executescript(_TABLES)
            have = {row[1] for row in self.conn.execute("PRAGMA table_info(runs)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in have:
                    self.conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
            self.conn.executescript(_INDEXES)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.conn.commit()
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(f"cannot open the benchmark history {self.path}: {exc}; pass "
                               f"another file with --db") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------
    def store(self, report: BenchReport) -> int:
        """Add ``report`` as a new run; sets and returns ``report.run_id``."""
        with self.conn:
            return self._insert(report)

    def store_all(self, reports: list[BenchReport]) -> list[int]:
        """Add several runs in one transaction (a lab's device runs): all of them or none."""
        with self.conn:
            return [self._insert(r) for r in reports]

    def replace(self, report: BenchReport) -> None:
        """Rewrite stored run ``report.run_id`` (a lab run completed by ``--resume``)."""
        with self.conn:
            self.conn.execute("UPDATE runs SET report = ? WHERE id = ?",
                              (report.to_json(), report.run_id))
            self.conn.execute("DELETE FROM results WHERE run_id = ?", (report.run_id,))
            self._insert_results(report)

    def _insert(self, report: BenchReport) -> int:
        cur = self.conn.execute(
            "INSERT INTO runs (created, model, input_size, machine_key, data, report, device, lab) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (report.created, report.model, _size_key(report.input_size),
             machine_key(report.machine), report.data, "{}", report_device(report),
             report.options.get("lab")))
        run_id = int(cur.lastrowid)
        report.run_id = run_id
        self.conn.execute("UPDATE runs SET report = ? WHERE id = ?", (report.to_json(), run_id))
        self._insert_results(report)
        return run_id

    def _insert_results(self, report: BenchReport) -> None:
        for r in report.results:
            lat = r.latency
            self.conn.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (report.run_id, r.target, r.batch, r.status, lat.p50 if lat else None,
                 lat.iqr if lat else None, lat.mad if lat else None,
                 lat.mean if lat else None, r.top1))

    # -- reading ----------------------------------------------------------------------
    def get(self, run: int | str) -> BenchReport:
        """A stored run by id, or 'latest'."""
        if isinstance(run, str) and run.strip().lower() == "latest":
            row = self.conn.execute("SELECT report FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                raise HistoryError(f"the benchmark history {self.path} is empty; run "
                                   f"'edgecnn bench MODEL' first")
            return BenchReport.from_dict(json.loads(row[0]))
        try:
            run_id = int(run)
        except (TypeError, ValueError):
            raise HistoryError(f"--compare takes a run id or 'latest', got {run!r}") from None
        row = self.conn.execute("SELECT report FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            last = self.conn.execute("SELECT max(id) FROM runs").fetchone()[0]
            raise HistoryError(f"run {run_id} is not in {self.path} (runs go up to "
                               f"{last if last is not None else 'none'})")
        return BenchReport.from_dict(json.loads(row[0]))

    def previous_comparable(self, report: BenchReport) -> BenchReport | None:
        """The latest earlier run of the same model, input size, machine, threads and device."""
        before = report.run_id if report.run_id is not None else 1 << 62
        row = self.conn.execute(
            "SELECT report FROM runs WHERE model = ? AND input_size = ? AND machine_key = ? "
            "AND device IS ? AND id < ? ORDER BY id DESC LIMIT 1",
            (report.model, _size_key(report.input_size), machine_key(report.machine),
             report_device(report), before)).fetchone()
        return BenchReport.from_dict(json.loads(row[0])) if row else None

    def latest_lab(self, model: str, input_size) -> dict[str, BenchReport]:
        """The device runs of the latest lab run of ``model`` at ``input_size``, by device
        ({} when there is none)."""
        row = self.conn.execute(
            "SELECT lab FROM runs WHERE lab IS NOT NULL AND model = ? AND input_size = ? "
            "ORDER BY id DESC LIMIT 1", (model, _size_key(input_size))).fetchone()
        if row is None:
            return {}
        rows = self.conn.execute("SELECT device, report FROM runs WHERE lab = ? ORDER BY id",
                                 (row[0],)).fetchall()
        return {device: BenchReport.from_dict(json.loads(text)) for device, text in rows}

    def runs(self, limit: int = 20) -> list[tuple[int, str, str, str, str | None]]:
        return self.conn.execute(
            "SELECT id, created, model, machine_key, device FROM runs ORDER BY id DESC LIMIT ?",
            (limit,)).fetchall()


def report_device(report: BenchReport) -> str | None:
    """The device profile a lab run measured on (None: a run on this machine)."""
    return report.options.get("device")


def _size_key(size) -> str:
    return "x".join(str(int(s)) for s in size)


# -- comparison -----------------------------------------------------------------------------
@dataclass
class RowChange:
    target: str
    batch: int
    status: str  # compared | new | gone | not-ok
    change: Change | None = None
    top1_delta: float | None = None
    note: str = ""


@dataclass
class Comparison:
    old_run: int | None
    new_run: int | None
    rows: list[RowChange] = field(default_factory=list)

    @property
    def regressions(self) -> list[RowChange]:
        return [r for r in self.rows if r.change and r.change.verdict == "regression"]


def compare_reports(old: BenchReport, new: BenchReport, k: float = 3.0,
                    min_rel: float = 0.05) -> Comparison:
    """Per (target, batch): the p50 change and whether it exceeds the runs' own spread."""
    olds = {(r.target, r.batch): r for r in old.results}
    out = Comparison(old.run_id, new.run_id)
    for r in new.results:
        o = olds.pop((r.target, r.batch), None)
        if o is None:
            out.rows.append(RowChange(r.target, r.batch, "new", note="not in the earlier run"))
            continue
        if r.latency is None or o.latency is None:
            out.rows.append(RowChange(r.target, r.batch, "not-ok",
                                      note=f"status {o.status} -> {r.status}"))
            continue
        top1 = r.top1 - o.top1 if r.top1 is not None and o.top1 is not None else None
        out.rows.append(RowChange(r.target, r.batch, "compared",
                                  compare_latency(o.latency, r.latency, k, min_rel), top1))
    for (target, batch), o in olds.items():
        out.rows.append(RowChange(target, batch, "gone", note="not in this run"))
    return out

