"""Step 2 of a benchmark: build the artifacts the bundle lacks, then verify every checksum once.

Each missing target is exported on its own (``edgecnn.pipeline.export``) with the options the
plan made for it (:func:`edgecnn.bench.plan.export_options`, checked by the export backends
during planning): a target whose build fails is reported with its error and the rest go on.
"""

from __future__ import annotations

from typing import Callable

from edgecnn.bench.plan import BenchOptions, Plan, export_options
from edgecnn.bench.targets import BenchTarget
from edgecnn.errors import BundleError, EdgeCNNError


def build_missing(plan: Plan, options: BenchOptions, log: Callable[[str], None] = print
                  ) -> dict[BenchTarget, str]:
    """Export every runnable target the bundle lacks; returns {target: error} for failures.
    The plan's bundle is re-read once after the builds."""
    failed: dict[BenchTarget, str] = {}
    todo = [t for t in plan.targets if not t.is_torch and t not in plan.skipped
            and not plan.has_artifact(t)]
    if not todo:
        return failed
    if plan.loaded is None:
        for t in todo:
            what = f" ({t.title})" if t.title else ""
            plan.skipped[t] = (f"bundle has no {t.backend}:{t.spec} artifact{what}; build it with "
                               f"'edgecnn export MODEL --target {t.export_target} "
                               f"--precision {t.precision} --out {plan.bundle}'")
        return failed
    from edgecnn.pipeline import export

    before = set() if plan.stale else _files(plan.bundle)  # a replaced bundle: every file
    names = ", ".join(t.name for t in todo)
    if plan.opened is not None and not plan.stale:
        log(f"adding {names} to the existing bundle {plan.bundle} (--out DIR: another folder)")
    elif plan.stale:
        log(f"replacing the bundle {plan.bundle} (it holds another model) with {names}")
    built: dict[tuple[str, str], BenchTarget] = {}
    for t in todo:
        first = built.setdefault((t.backend, t.precision), t)
        if first is not t:  # one export writes every variant of a precision (onnx int8)
            if first in failed:
                failed[t] = failed[first]
            continue
        log(f"building {t.name} into {plan.bundle} ...")
        try:
            export(plan.loaded, export_options(plan, options, t), log=None)
            plan.stale = False  # the export replaced any other model's bundle
        except EdgeCNNError as exc:
            failed[t] = f"build failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - one target's build must not stop the rest
            failed[t] = f"build failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    if any(t not in failed for t in todo):
        plan.refresh()
        added = sorted(_files(plan.bundle) - before)
        if added:
            log(f"wrote {len(added)} file(s) into {plan.bundle}: {', '.join(added)}")
    for t in todo:
        if t not in failed and not plan.has_artifact(t):
            failed[t] = (f"the export finished but wrote no {t.backend}:{t.spec} artifact "
                         f"(on this machine the backend only prepares the build)")
    return failed


def _files(folder) -> set[str]:
    """Names of the files in ``folder`` (none when it does not exist)."""
    if folder is None or not folder.is_dir():
        return set()
    return {f.name for f in folder.iterdir() if f.is_file()}


def verify_artifacts(plan: Plan, failed: dict[BenchTarget, str]) -> None:
    """Checksums once here, so the workers' load time is the backend's alone; a damaged
    artifact fails its own target (added to ``failed``)."""
    for t in plan.targets:
        if t.is_torch or t in plan.skipped or t in failed:
            continue
        try:
            b = plan.opened
            if b is None:
                raise BundleError(f"bundle folder {plan.bundle} has no manifest.json")
            b.artifact_path(b.manifest.find(t.backend, t.precision, t.variant or None),
                            verify=True)
        except EdgeCNNError as exc:
            failed[t] = str(exc)
