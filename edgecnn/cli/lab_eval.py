"""``edgecnn eval BUNDLE --cluster auto|HOST:PORT --devices PROFILE``: accuracy on a device lab.

:func:`lab_eval_options` adds the lab's options to ``edgecnn eval`` and hands the command one
``lab`` argument: None without ``--cluster`` (the command runs as before), else a
:class:`LabEval` whose :meth:`LabEval.evaluate` shards the data across every node of the
profile (:func:`edgecnn.fleet.shard_eval.evaluate_sharded`) and returns the merged result,
which equals one machine's exactly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import click


@dataclass
class LabEval:
    cluster: str
    device: str
    shards: int | None = None
    ran: dict | None = None  # after evaluate: cluster, device, shards and nodes, for the record

    def evaluate(self, model: str, data: str, backend, precision, samples, seed, batch_size,
                 weights=None, setup=None):
        """(result, model name, target, data spec, one line saying where it ran)."""
        from pathlib import Path

        from edgecnn.bench.accuracy import check_bundle_args
        from edgecnn.errors import DataError
        from edgecnn.fleet.resources import device_profile
        from edgecnn.fleet.shard_eval import evaluate_sharded
        from edgecnn.manifest import MANIFEST_NAME

        device_profile(self.device)  # a device profile, or a one-line error naming the choices
        if not Path(model, MANIFEST_NAME).is_file():
            raise DataError(f"{model} is not a bundle: a lab evaluates bundles (the devices run "
                            f"the runtime only); export it first with 'edgecnn export {model}'")
        check_bundle_args(weights, setup)
        done = evaluate_sharded(model, data, self.device, self.cluster, backend, precision,
                                data_limit=samples, seed=seed, shards=self.shards,
                                batch_size=batch_size)
        self.ran = {"cluster": self.cluster, "device": done.device, "shards": done.shards,
                    "nodes": len(done.nodes)}
        where = (f"lab {self.cluster}: {done.shards} shard(s) on {len(done.nodes)} node(s) of "
                 f"{done.device}, merged exactly")
        return done.result, done.name, done.target, done.result.spec, where


def lab_eval_options(fn):
    """Decorator for ``edgecnn eval`` (below its options, above ``handle_errors``)."""

    @click.option("--cluster", default=None, metavar="auto|HOST:PORT",
                  help="Score on a device lab (Ray), sharding the data across every node of "
                       "--devices; 'auto' is the lab started on this machine.")
    @click.option("--devices", default=None, metavar="PROFILE",
                  help="With --cluster: the device profile whose nodes score the shards.")
    @click.option("--shards", type=click.IntRange(min=1), default=None,
                  help="With --cluster: how many shards (default: one per node).")
    @functools.wraps(fn)
    def wrapper(*args, cluster, devices, shards, **kwargs):
        if cluster is None:
            if devices or shards:
                raise click.UsageError("--devices and --shards need --cluster auto|HOST:PORT")
            return fn(*args, lab=None, **kwargs)
        if not devices:
            raise click.UsageError("--cluster needs --devices PROFILE")
        if "," in devices:
            raise click.UsageError("eval --devices takes one profile: its nodes share the data")
        return fn(*args, lab=LabEval(cluster, devices.strip(), shards), **kwargs)

    return wrapper
