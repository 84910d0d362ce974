"""The build node's job: export and prepare every artifact the lab's targets need, once.

Runs in a Ray task on a node that advertises ``edgecnn/build`` (torch and the export extras).
Which targets can *run* is each device's question, so nothing is skipped here for lack of a
runtime or a GPU; TensorRT targets are only prepared (plan + TensorRT-ready ONNX): each device
builds its own engine.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path


def prepared_for_tensorrt(manifest, precision: str) -> bool:
    from edgecnn.tensorrt.plan import PREPARED_KEY

    return bool((manifest.source or {}).get(PREPARED_KEY, {}).get(precision))


def build_lab_bundle(model: str, options) -> tuple[object, dict[str, str]]:
    """(the packed bundle, {target: why its build failed}) for ``options.targets``."""
    from edgecnn.bench.build import build_missing
    from edgecnn.bench.plan import plan_bench
    from edgecnn.fleet.shipping import pack_bundle

    with tempfile.TemporaryDirectory(prefix="edgecnn-lab-build-") as tmp:
        opts = dataclasses.replace(options, out=str(Path(tmp) / "bundle"), report_dir=tmp,
                                   profile=None, data=None, save=False)
        plan = plan_bench(model, opts, log=lambda _m: None)
        plan.skipped = {t: why for t, why in plan.skipped.items() if t.is_torch}
        failed = build_missing(plan, opts, log=lambda _m: None)
        if plan.opened is None:
            plan.refresh()
        manifest = plan.opened.manifest if plan.opened else None
        problems = {t.name: why for t, why in failed.items()
                    if not (t.backend == "tensorrt" and manifest is not None
                            and prepared_for_tensorrt(manifest, t.precision))}
        if manifest is None:
            return None, problems
        return pack_bundle(plan.bundle), problems
