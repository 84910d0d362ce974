"""Accuracy on a large labelled set, sharded across the lab nodes of one device profile.

The dataset (a spec every node resolves the same way, e.g. ``fashion-mnist:test``) is cut into
contiguous shards; each node scores its shards with the runtime (:func:`edgecnn.data.accuracy.
evaluate`, the code ``edgecnn eval`` runs) and returns its confusion matrix, top-5 hits and
top-1 predictions. The merge is exact: confusion matrices add, hits add, predictions
concatenate in shard order, so top-1, top-5, per-class accuracy and the confusion matrix equal
one machine's result over the whole set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecnn.fleet import FleetError


@dataclass
class LabEvaluation:
    """What a sharded evaluation returns: the merged result and where it ran."""

    result: Any  # edgecnn.data.accuracy.AccuracyResult, equal to one machine's
    device: str  # the device profile
    name: str  # the bundle's model name
    target: str  # the artifact scored, e.g. 'onnxruntime:fp32' (as 'edgecnn eval' names it)
    shards: int
    nodes: list[str] = field(default_factory=list)  # ids of the nodes that scored a shard


def score_shard(shipped, data: str, start: int, stop: int, backend: str | None,
                precision: str | None, data_limit: int | None, seed: int,
                batch_size: int) -> dict[str, Any]:
    """Device side: images [start:stop) of ``data`` (after the seeded ``data_limit`` subset)."""
    from edgecnn.bench.accuracy import evaluate, load_predictor
    from edgecnn.data.datasets import load_dataset
    from edgecnn.fleet.shipping import unpack_bundle

    local = unpack_bundle(shipped)
    ds = load_dataset(data).subset(data_limit, seed=seed)
    part = ds._take(np.arange(start, min(stop, len(ds))), f"[{start}:{stop}]")
    predictor = load_predictor(str(local), backend=backend, precision=precision)
    from edgecnn.data.classes import align_classes

    part = align_classes(part, predictor.labels)  # as 'edgecnn eval' does: wnid/index folders
    try:
        res = evaluate(predictor.predict_fn, part, predictor.preprocess, batch_size=batch_size,
                       progress=False)
    finally:
        predictor.close()
    return {"start": start, "n": res.n, "confusion": res.confusion,
            "top5_hits": int(round(res.top5 * res.n / 100.0)), "predictions": res.predictions,
            "classes": res.classes, "spec": ds.spec}


def merge_shards(parts: list[dict[str, Any]]):
    """One :class:`~edgecnn.data.accuracy.AccuracyResult` from the shards' counts (exact)."""
    from edgecnn.data.accuracy import AccuracyResult

    parts = sorted(parts, key=lambda p: p["start"])
    confusion = sum(p["confusion"] for p in parts)
    n = int(confusion.sum())
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(totals > 0, 100.0 * np.diag(confusion) / totals, np.nan)
    return AccuracyResult(top1=float(100.0 * np.trace(confusion) / n),
                          top5=float(100.0 * sum(p["top5_hits"] for p in parts) / n),
                          per_class=per_class.tolist(), confusion=confusion, n=n,
                          classes=list(parts[0]["classes"]),
                          predictions=np.concatenate([p["predictions"] for p in parts]),
                          spec=parts[0]["spec"])


def evaluate_on_lab(bundle: str, data: str, device: str, cluster: str = "auto",
                    backend: str | None = None, precision: str | None = None,
                    data_limit: int | None = None, seed: int = 0, shards: int | None = None,
                    batch_size: int = 256):
    """Score ``bundle`` on ``data`` across every node of ``device``; returns the merged
    AccuracyResult (the single-machine result, exactly)."""
    return evaluate_sharded(bundle, data, device, cluster, backend, precision, data_limit, seed,
                            shards, batch_size).result


def evaluate_sharded(bundle: str, data: str, device: str, cluster: str = "auto",
                     backend: str | None = None, precision: str | None = None,
                     data_limit: int | None = None, seed: int = 0, shards: int | None = None,
                     batch_size: int = 256) -> LabEvaluation:
    """:func:`evaluate_on_lab` with where it ran (``edgecnn eval --cluster``). Every argument is
    checked before the cluster is reached; a profile without a node is an error, not a wait."""
    from edgecnn import catalog
    from edgecnn.bundle import Bundle
    from edgecnn.data.datasets import load_dataset
    from edgecnn.fleet.cluster import check_devices, connect
    from edgecnn.fleet.resources import device_profile, device_resource
    from edgecnn.fleet.scheduler import pin_to_node
    from edgecnn.fleet.shipping import pack_bundle

    name = device_profile(device).name
    if shards is not None and shards < 1:
        raise FleetError(f"--shards must be >= 1, got {shards}")
    if batch_size < 1:
        raise FleetError(f"--batch-size must be >= 1, got {batch_size}")
    opened = Bundle.open(bundle)  # a bundle, and the artifact the shards will load
    if backend is not None and catalog.is_backend_name(backend):
        backend = catalog.canonical(backend)
    artifact = opened.manifest.find(backend, precision)
    total = len(load_dataset(data).subset(data_limit, seed=seed))  # checks the spec here first
    ray = connect(cluster)
    try:
        nodes = check_devices([name])[name]
        count = shards or len(nodes)
        bounds = np.linspace(0, total, count + 1).astype(int)
        shipped = ray.put(pack_bundle(bundle))

        @ray.remote(num_cpus=0, max_retries=1, resources={device_resource(name): 1})
        def edgecnn_eval_shard(*args):
            out = score_shard(*args)
            out["node"] = ray.get_runtime_context().get_node_id()
            return out

        refs = [edgecnn_eval_shard.options(scheduling_strategy=pin_to_node(nodes[i % len(nodes)]))
                .remote(shipped, data, int(a), int(b), backend, precision, data_limit, seed,
                        batch_size)
                for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])) if b > a]
        try:
            parts = ray.get(refs)
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
        except ray.exceptions.RayError as exc:
            from edgecnn.errors import first_line

            raise FleetError(f"a shard failed on {name}: {first_line(exc)}; run again") from None
        return LabEvaluation(merge_shards(parts), name, opened.manifest.model, artifact.key,
                             len(parts), sorted({p["node"] for p in parts}))
    finally:
        ray.shutdown()
