"""``edgecnn bench MODEL --cluster ADDRESS --devices P1,P2``: the whole lab run.

1. checks: the device profiles, the options (``edgecnn.bench.plan``), the cluster and that every
   device has a node (a missing one is an error, not an endless wait);
2. the bundle: a BUNDLE is used as it is; a MODEL is exported once on a build node
   (:mod:`edgecnn.fleet.build`) and saved at ``--out`` like a local bench does;
3. one plan per device (its profile gives the default target, threads and batch), the cells
   still missing (all, or with ``--resume`` those the latest lab run did not finish);
4. the bundle goes into Ray's object store once; the scheduler runs the cells
   (:mod:`edgecnn.fleet.scheduler`);
5. one report per device (the device's own machine record), stored together in the history.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgecnn.bench.latency import JobResult
from edgecnn.bench.measure import Measured, _aggregate, _fill_accuracy, _make_jobs
from edgecnn.bench.plan import BenchOptions, Plan, check_output_paths, check_setup, plan_bench
from edgecnn.bench.report import BenchReport, TargetResult
from edgecnn.bench.targets import BenchTarget
from edgecnn.fleet import FleetError
from edgecnn.fleet.scheduler import Cell, CellRun

TORCH_ON_DEVICES = ("PyTorch is the build machine's reference: devices run bundles only "
                    "(measure torch with a local 'edgecnn bench')")


@dataclass
class LabOptions:
    devices: str | list[str]
    cluster: str = "auto"
    retries: int = 1  # extra attempts for a cell whose node was lost, hung or crashed
    resume: bool = False  # measure only the cells the latest lab run of this model lacks


@dataclass
class LabResult:
    lab: str
    reports: dict[str, BenchReport]  # by device profile
    runs: list[CellRun] = field(default_factory=list)  # this command's cells
    kept: int = 0  # ok cells reused from the lab run being resumed
    interrupted: bool = False  # Ctrl-C: the finished cells are kept
    failure: str | None = None  # the cluster failed mid-run: the finished cells are kept
    bundle: Path | None = None
    shipped_bytes: int = 0
    wall_s: float = 0.0


def parse_devices(devices: str | list[str]) -> dict[str, str]:
    """'a,b' -> {profile name: what the user wrote (a name or a .toml path)}, checked."""
    from edgecnn.fleet.resources import device_profile

    items = devices.split(",") if isinstance(devices, str) else list(devices)
    out: dict[str, str] = {}
    for item in (i.strip() for i in items):
        if item:
            out.setdefault(device_profile(item).name, item)
    if not out:
        raise FleetError("--devices is empty; name device profiles, e.g. --devices "
                         "raspberry-pi-5,jetson-orin-nano")
    return out


def run_lab(model: str, options: BenchOptions, lab: LabOptions,
            log: Callable[[str], None] = print, progress: bool = True,
            on_event=None) -> LabResult:
    """Plan, build once, ship, measure and gather (module doc); stores nothing (see
    :func:`save_lab`)."""
    from edgecnn.fleet.cluster import check_devices, connect

    devices = parse_devices(lab.devices)
    if lab.retries < 0:
        raise FleetError(f"--retries must be >= 0, got {lab.retries}")
    check_setup(model, options.setup)
    check_output_paths(options)
    began = time.perf_counter()
    ray = connect(lab.cluster)
    try:
        check_devices(list(devices))
        bundle = Path(model) if Path(model, "manifest.json").is_file() else \
            _build_on_lab(model, options, devices, log)
        plans = {d: device_plan(bundle, options, spec) for d, spec in devices.items()}
        prior: dict[str, BenchReport] = {}
        if lab.resume:
            from edgecnn.bench.history import History

            first = next(iter(plans.values()))
            with History(options.db) as h:
                prior = h.latest_lab(first.model, first.input_size)
            if not prior:
                log("nothing to resume: no earlier lab run of this model; measuring every cell")
        lab_id = next((r.options.get("lab") for r in prior.values()), None) or _new_lab_id()
        cells = [c for d, plan in plans.items() for c in device_cells(plan, options, d,
                                                                       prior.get(d))]
        from edgecnn.fleet.scheduler import Scheduler
        from edgecnn.fleet.shipping import pack_bundle
        from edgecnn.progress import progress_bar

        shipped = pack_bundle(bundle)
        ref = ray.put(shipped)
        with progress_bar(progress and bool(cells), f"measuring on {len(devices)} device(s)",
                          len(cells)) as advance:
            sched = Scheduler(ref, options.timeout, lab.retries, options.isolate, log, on_event,
                              advance)
            runs = sched.run(cells)
        reports = {d: device_report(plans[d], options, d, lab_id, runs, prior.get(d))
                   for d in devices}
        kept = sum(len(_ok_cells(prior[d])) for d in prior if d in devices)
        return LabResult(lab_id, reports, runs, kept, sched.interrupted, sched.failure, bundle,
                         shipped.size, time.perf_counter() - began)
    finally:
        ray.shutdown()


def _new_lab_id() -> str:
    return time.strftime("lab-%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]


def _ok_cells(report: BenchReport | None) -> set[tuple[str, int]]:
    return {(r.target, r.batch) for r in report.results if r.status == "ok"} if report else set()


# -- the bundle ------------------------------------------------------------------------------
def _build_on_lab(model: str, options: BenchOptions, devices: dict[str, str], log) -> Path:
    """Export once on a build node; save the bundle at --out (default bundles/MODEL)."""
    from edgecnn.bench.targets import parse_targets
    from edgecnn.fleet.cluster import lab_nodes, require_ray
    from edgecnn.fleet.resources import BUILD_RESOURCE
    from edgecnn.fleet.shipping import save_bundle

    ray = require_ray()
    if not any(n.build for n in lab_nodes()):
        raise FleetError(f"no build node in the cluster ({BUILD_RESOURCE}): pass a bundle made by "
                         f"'edgecnn export', or start a node with torch and the export extras")
    wanted: list[str] = []
    for spec in devices.values():
        for t in (parse_targets(options.targets) if options.targets else
                  device_plan_targets(spec)):
            if not t.is_torch and t.name not in wanted:
                wanted.append(t.name)

    @ray.remote(num_cpus=0, max_retries=0, resources={BUILD_RESOURCE: 1})
    def edgecnn_lab_build(model, opts):
        from edgecnn.fleet.build import build_lab_bundle

        return build_lab_bundle(model, opts)

    log(f"building {', '.join(wanted)} on a build node ...")
    ref = edgecnn_lab_build.remote(model, dataclasses.replace(options, targets=wanted))
    try:
        shipped, problems = ray.get(ref)
    except KeyboardInterrupt:
        ray.cancel(ref, force=True)
        raise
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
        from edgecnn.errors import EdgeCNNError, first_line

        if isinstance(cause, EdgeCNNError):
            raise cause from None
        raise FleetError(f"the build node failed: {first_line(cause)}") from None
    for target, why in problems.items():
        log(f"{target}: {why}")
    if shipped is None:
        raise FleetError("the build node wrote no bundle; see the errors above")
    import json

    name = json.loads(shipped.files["manifest.json"])["model"]
    out = Path(options.out) if options.out else Path("bundles") / name
    return save_bundle(shipped, out)


def device_plan_targets(spec: str) -> list[BenchTarget]:
    """A device profile's own target (what it runs when --targets is not given)."""
    from edgecnn import catalog
    from edgecnn.bench.targets import parse_targets
    from edgecnn.targets import resolve_target

    p = resolve_target(spec)
    return parse_targets([f"{catalog.BACKENDS[p.backend].short}:{p.precision}"])


# -- per device ------------------------------------------------------------------------------
def device_plan(bundle: Path, options: BenchOptions, spec: str) -> Plan:
    """The bench plan with the device's profile as defaults. Whether a target can run is the
    device's to say (its task reports it), so only torch and what the bundle lacks are skipped
    here."""
    from edgecnn.fleet.build import prepared_for_tensorrt

    # the bundle fixes preprocessing and labels (a MODEL's setup went into its export)
    plan = plan_bench(str(bundle), dataclasses.replace(options, profile=spec, setup=None),
                      log=lambda _m: None)
    plan.skipped = {}
    for t in plan.targets:
        if t.is_torch:
            plan.skipped[t] = TORCH_ON_DEVICES
        elif not plan.has_artifact(t) and not (
                t.backend == "tensorrt" and prepared_for_tensorrt(plan.opened.manifest, t.precision)):
            plan.skipped[t] = (f"bundle has no {t.name} artifact; build it with 'edgecnn export "
                               f"MODEL --target {t.export_target} --precision {t.precision} "
                               f"--out {bundle}' or pass MODEL to build it on a build node")
    return plan


def _fixed_batch(plan: Plan, t: BenchTarget) -> int | None:
    return plan.fixed_batch(t) if plan.has_artifact(t) else None


def device_cells(plan: Plan, options: BenchOptions, device: str,
                 prior: BenchReport | None) -> list[Cell]:
    """The device's cells still to measure (all but the ok ones of ``prior``), in rounds."""
    done = _ok_cells(prior)
    todo = {(t, b) for t in plan.targets if t not in plan.skipped for b in plan.batches
            if (t.name, b) not in done and _fixed_batch(plan, t) in (None, b)}
    runnable = [t for t in plan.targets if any((t, b) in todo for b in plan.batches)]
    jobs = _make_jobs(plan, options, runnable, None, options.power is not False, todo)
    return [Cell(device, job.target, job.batch, r, job.to_json()) for r, job in jobs]


def device_report(plan: Plan, options: BenchOptions, device: str, lab_id: str,
                  runs: list[CellRun], prior: BenchReport | None) -> BenchReport:
    """One device's report: this command's cells, plus the ok rows of ``prior`` it completes."""
    from edgecnn.bench.outputs import make_report

    mine: dict[tuple[str, int], list[CellRun]] = {}
    for r in runs:
        if r.cell.device == device:
            mine.setdefault((r.cell.target, r.cell.batch), []).append(r)
    kept = {(r.target, r.batch): r for r in prior.results} if prior else {}
    rows: list[TargetResult] = []
    acc: dict[str, JobResult] = {}
    for t in plan.targets:
        for b in plan.batches:
            rows.append(_row(plan, t, b, mine.get((t.name, b)), kept.get((t.name, b)), acc))
    ref = acc.get("onnx:fp32")
    _fill_accuracy([r for r in rows if (r.target, r.batch) in mine], acc, ref)
    outcomes = [r.outcome for rs in mine.values() for r in rs if r.outcome]
    machine = next((o["machine"] for o in outcomes if o.get("machine")), None) or \
        (dict(prior.machine) if prior else {"hostname": "?", "cpu_model": "?",
                                              "threads": plan.threads})
    machine["device"] = device
    machine["nodes"] = sorted({o["host"] for o in outcomes} | set(machine.get("nodes") or []))
    reference = BenchTarget("onnxruntime", "fp32") if ref else None
    report = make_report(plan, options, machine,
                         Measured(rows, reference, ref.top1 if ref else None))
    report.options.update(device=device, lab=lab_id, profile=device)
    if prior is not None:
        report.run_id = prior.run_id
        if report.reference_top1 is None:
            report.reference, report.reference_top1 = prior.reference, prior.reference_top1
    return report


def _row(plan: Plan, t: BenchTarget, b: int, runs: list[CellRun] | None,
         kept: TargetResult | None, acc: dict[str, JobResult]) -> TargetResult:
    def plain(status: str, reason: str | None) -> TargetResult:
        return TargetResult(t.name, t.backend, t.precision, b, status, reason,
                            threads=plan.threads, artifact=t.artifact_file)

    if t in plan.skipped:
        return plain("skipped", plan.skipped[t])
    if not runs:
        if kept is not None and kept.status == "ok":
            return kept
        fixed = _fixed_batch(plan, t)
        return plain("skipped", f"the artifact has a fixed batch of {fixed}")
    for status in ("skipped", "failed"):
        bad = [r for r in runs if r.status == status]
        if bad:
            return plain(status, bad[0].reason)
    results = [JobResult.from_json(r.outcome["result"]) for r in runs]
    for res in results:
        if res.top1 is not None:
            acc[t.name] = res
    return _aggregate(t, b, results, plan)


# -- where it goes ---------------------------------------------------------------------------
def save_lab(result: LabResult, options: BenchOptions) -> dict[str, Path]:
    """The device runs into the history (new ones in one transaction, resumed ones rewritten),
    then per-device report files and one plot grouped by device."""
    from edgecnn.bench.outputs import default_report_dir
    from edgecnn.bench.report import write_reports

    reports = list(result.reports.values())
    paths: dict[str, Path] = {}
    if options.save and reports:
        from edgecnn.bench.history import History

        new = [r for r in reports if r.run_id is None]
        resumed = [r for r in reports if r.run_id is not None]
        with History(options.db) as h:
            h.store_all(new)
            for r in resumed:
                h.replace(r)
            paths["db"] = h.path
    if not reports:
        return paths
    out = Path(options.report_dir) if options.report_dir else default_report_dir(reports[0])
    for device, report in result.reports.items():
        paths[device] = write_reports(report, out / device)["md"]
    if options.plot:
        from edgecnn.fleet.plot import plot_lab

        paths["png"] = plot_lab(result.reports, out / "lab.png")
    return paths
