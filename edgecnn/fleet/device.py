"""The device side of one lab cell: runs in a Ray worker on the board, with the runtime only.

The bundle arrives from the object store and is unpacked into the node's cache and verified
(:mod:`edgecnn.fleet.shipping`); a TensorRT target builds its engine here, from the prepared
plan, into a copy keyed by this GPU and TensorRT version (engines are never shipped). The cell
is one :func:`edgecnn.bench.latency.execute_job` in this process (a fresh worker per cell, so
its peak RSS is its own), timed between ``start`` and ``end``. torch must not be imported here:
a board carries numpy and one backend library.
"""

from __future__ import annotations

import re
import socket
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from edgecnn.errors import EdgeCNNError, first_line

TORCH_IN_DEVICE = ("torch was imported in the device task; a device measures with "
                   "edgecnn.runtime only")


@dataclass
class CellOutcome:
    """What a device task returns (plain data, so it pickles without edgecnn classes)."""

    status: str  # ok | failed | skipped
    reason: str | None
    result: str | None  # JobResult JSON
    start: float  # wall clock (time.time) around the measurement
    end: float
    host: str
    machine: dict[str, Any] | None = None  # the bench machine record, when asked for

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _engine_suffix() -> str:
    """'.trt10.3.0-orin': the local copy a TensorRT engine is built into and cached in."""
    from edgecnn.platform_info import probe

    machine = probe()
    gpu = machine.gpu.name if machine.gpu else "nogpu"
    key = f".trt{machine.tensorrt or 'none'}-{gpu}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key)


def _ensure_engine(path, precision: str) -> None:
    """Build the TensorRT engine of ``precision`` into the local copy unless it is there."""
    from edgecnn.bundle import Bundle

    if any(a.backend == "tensorrt" and a.precision == precision
           for a in Bundle.open(path).manifest.artifacts):
        return
    from edgecnn.tensorrt.builder import build_bundle

    build_bundle(path, precision=precision, log=lambda _m: None)


def run_cell(shipped, target: str, job_json: str, want_machine: bool) -> dict[str, Any]:
    """Measure one cell of the shipped bundle here; never raises for a measurement problem."""
    from edgecnn.bench.latency import Job, JobResult, execute_job
    from edgecnn.bench.targets import parse_target, unavailable_reason
    from edgecnn.bundle import Bundle

    host = socket.gethostname()
    job = Job.from_json(job_json)
    now = time.time()
    t = parse_target(target)
    why = unavailable_reason(t)
    if why is not None:
        return CellOutcome("skipped", why, None, now, now, host).to_dict()
    try:
        from edgecnn.fleet.shipping import unpack_bundle

        local = unpack_bundle(shipped, _engine_suffix() if t.backend == "tensorrt" else "")
        if t.backend == "tensorrt":
            _ensure_engine(local, t.precision)
        bundle = Bundle.open(local)
        bundle.artifact_path(bundle.manifest.find(t.backend, t.precision, t.variant or None),
                             verify=True)
    except EdgeCNNError as exc:
        return CellOutcome("failed", str(exc).splitlines()[0], None, now, time.time(),
                           host).to_dict()
    job.bundle = str(local)
    if job.power:
        from edgecnn.bench.measure import tegrastats_available

        job.power = tegrastats_available()
    start = time.time()
    try:
        res = execute_job(job)
    except Exception as exc:  # noqa: BLE001 - reported as this cell's error
        res = JobResult(job.target, job.batch, status="failed",
                        error=first_line(exc) if isinstance(exc, EdgeCNNError)
                        else f"{type(exc).__name__}: {first_line(exc)}")
    end = time.time()
    if "torch" in sys.modules:
        res = JobResult(job.target, job.batch, status="failed", error=TORCH_IN_DEVICE)
    machine = None
    if want_machine:
        from edgecnn.bench.report import collect_machine

        machine = collect_machine(job.threads)
    status = "ok" if res.status == "ok" else "failed"
    return CellOutcome(status, res.error, res.to_json(), start, end, host, machine).to_dict()
