"""Run lab cells on the devices: one cell at a time per device node, with timeouts, node loss
and retries, and Ctrl-C that cancels what runs and keeps what finished.

Each cell is one Ray task pinned to one node (hard node affinity) that also takes the node's
device resource (capacity 1), so two measurements never overlap on a board, even with a second
lab driver. The driver keeps each device's queue itself and submits only to nodes that are
alive: a node that leaves fails its running cell at once (``node lost``), and the cells still
queued for a device with no node left fail instead of waiting forever.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from edgecnn.fleet.cluster import device_nodes, require_ray
from edgecnn.fleet.resources import device_resource

POLL_S = 0.25


@dataclass
class Cell:
    """One measurement: a target at a batch on a device (one round of it)."""

    device: str
    target: str
    batch: int
    round: int
    job_json: str
    attempts: int = 0
    last_error: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.device, self.target, self.batch)

    def __str__(self) -> str:
        return f"{self.device} {self.target} batch {self.batch}"


@dataclass
class CellRun:
    cell: Cell
    status: str  # ok | failed | skipped
    reason: str | None = None
    outcome: dict[str, Any] = field(default_factory=dict)  # device.CellOutcome.to_dict()
    submitted: float | None = None  # driver wall clock: the task went to its node
    received: float | None = None  # driver wall clock: its result came back

    @property
    def overhead_s(self) -> float | None:
        """Driver round trip minus the measurement itself: scheduling, worker start, unpacking."""
        if self.submitted is None or self.received is None or not self.outcome:
            return None
        return (self.received - self.submitted) - (self.outcome["end"] - self.outcome["start"])


@dataclass
class _Running:
    ref: Any
    cell: Cell
    since: float
    submitted: float  # wall clock


def _cell_task(isolate: bool):
    """The Ray task of one cell. ``isolate`` (bench's --isolate, the default): a fresh worker
    process per cell, so its peak RSS is its own and nothing leaks between cells; without it a
    board's worker is reused (cheaper per cell, RSS then accumulates)."""
    ray = require_ray()

    @ray.remote(num_cpus=0, max_retries=0, max_calls=1 if isolate else 0)
    def edgecnn_lab_cell(shipped, target, job_json, want_machine):
        from edgecnn.fleet.device import run_cell

        return run_cell(shipped, target, job_json, want_machine)

    return edgecnn_lab_cell


class Scheduler:
    """``run(cells)`` -> one :class:`CellRun` per cell (retried cells once, finally)."""

    def __init__(self, shipped_ref, timeout: float, retries: int = 1, isolate: bool = True,
                 log: Callable[[str], None] = print,
                 on_event: Callable[[str, Cell, str], None] | None = None,
                 advance: Callable[[int], None] = lambda n=1: None):
        self.shipped_ref, self.timeout, self.retries = shipped_ref, timeout, retries
        self.isolate = isolate
        self.log, self.on_event, self.advance = log, on_event, advance
        self.interrupted = False  # Ctrl-C
        self.failure: str | None = None  # the cluster failed mid-run (finished cells kept)
        self._probed: set[str] = set()  # nodes whose machine record was asked for

    def run(self, cells: list[Cell]) -> list[CellRun]:
        ray = require_ray()
        task = _cell_task(self.isolate)
        queues: dict[str, deque[Cell]] = {}
        for c in cells:
            queues.setdefault(c.device, deque()).append(c)
        running: dict[str, _Running] = {}  # node id -> its one running cell
        done: list[CellRun] = []
        try:
            while any(queues.values()) or running:
                nodes = device_nodes()
                alive = {n for ids in nodes.values() for n in ids}
                self._check_running(ray, running, alive, queues, done)
                self._submit(task, queues, nodes, running, done)
                if not running:
                    continue
                refs = [r.ref for r in running.values()]
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=POLL_S)
                for ref in ready:
                    node = next(n for n, r in running.items() if r.ref == ref)
                    self._collect(ray, running.pop(node), node, queues, done)
        except KeyboardInterrupt:
            self.interrupted = True
            self._stop(ray, running, queues, done, "interrupted (Ctrl-C)")
        except Exception as exc:  # noqa: BLE001 - the cluster itself failed (e.g. the head died)
            self.failure = f"the lab failed ({type(exc).__name__}: {_first(exc)})"
            self._stop(ray, running, queues, done, self.failure)
        return done

    def _stop(self, ray, running, queues, done, why: str) -> None:
        """Cancel what runs; keep what finished; the rest fail with ``why``."""
        for r in running.values():
            _cancel(ray, r.ref)
            done.append(CellRun(r.cell, "failed", f"{why} while measuring"))
        for q in queues.values():
            done.extend(CellRun(c, "failed", f"{why} before it ran") for c in q)

    # -- steps ------------------------------------------------------------------------------
    def _submit(self, task, queues, nodes, running, done) -> None:
        for device, q in queues.items():
            ids = nodes.get(device, [])
            if q and not ids:  # the device's last node left: nothing will ever run these
                while q:
                    c = q.popleft()
                    why = f"node lost: no node advertises {device_resource(device)} any more"
                    if c.last_error:
                        why = f"{c.last_error}; no {device} node left to retry on"
                    done.append(CellRun(c, "failed", why))
                    self.advance(1)
            for node in ids:
                if not q:
                    break
                if node in running:
                    continue
                c = q.popleft()
                want_machine = node not in self._probed
                self._probed.add(node)
                ref = task.options(
                    resources={device_resource(device): 1},
                    scheduling_strategy=pin_to_node(node)).remote(self.shipped_ref, c.target,
                                                           c.job_json, want_machine)
                running[node] = _Running(ref, c, time.monotonic(), time.time())
                if self.on_event:
                    self.on_event("submitted", c, node)

    def _check_running(self, ray, running, alive, queues, done) -> None:
        now = time.monotonic()
        for node, r in list(running.items()):
            if node not in alive:
                why = f"node lost: the {r.cell.device} node {node[:8]} left the cluster mid-run"
            elif now - r.since > self.timeout:
                why = f"timeout: no result after {self.timeout:.0f} s (the device hung)"
            else:
                continue
            _cancel(ray, r.ref)
            del running[node]
            self._failed(r.cell, why, queues, done)

    def _collect(self, ray, r: _Running, node: str, queues, done) -> None:
        from ray.exceptions import RayTaskError, WorkerCrashedError

        try:
            out = ray.get(r.ref)
        except RayTaskError as exc:  # a bug in the device task: not worth a retry
            done.append(CellRun(r.cell, "failed", f"device task error: {_first(exc)}"))
            self.advance(1)
            return
        except Exception as exc:  # noqa: BLE001 - Ray lost the task: node, worker or scheduling
            if not any(node in ids for ids in device_nodes().values()):
                why = f"node lost: the {r.cell.device} node {node[:8]} left the cluster mid-run"
            elif isinstance(exc, WorkerCrashedError):
                why = "the device's worker process died (killed or out of memory)"
            else:
                why = f"{type(exc).__name__}: {_first(exc)}"
            self._failed(r.cell, why, queues, done)
            return
        done.append(CellRun(r.cell, out["status"], out["reason"], out, r.submitted, time.time()))
        self.advance(1)
        if self.on_event:
            self.on_event("finished", r.cell, node)

    def _failed(self, cell: Cell, why: str, queues, done) -> None:
        """Retry an infrastructure failure (node lost, timeout, crash) while --retries allow."""
        cell.last_error = why
        if cell.attempts < self.retries:
            cell.attempts += 1
            self.log(f"{cell}: {why}; retry {cell.attempts} of {self.retries}")
            queues.setdefault(cell.device, deque()).appendleft(cell)
            return
        tries = f" (after {cell.attempts} retries)" if cell.attempts else ""
        done.append(CellRun(cell, "failed", why + tries))
        self.advance(1)


def pin_to_node(node_id: str):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


def _cancel(ray, ref) -> None:
    try:
        ray.cancel(ref, force=True)
    except Exception:  # noqa: BLE001 - the task or its node may be gone already
        pass


def _first(exc: BaseException) -> str:
    from edgecnn.errors import first_line

    return first_line(exc, 200)
