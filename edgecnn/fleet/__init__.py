"""A device lab on Ray: one ``edgecnn bench`` across many boards, one history.

Optional (``pip install 'edgecnn[fleet]'``): nothing outside this package and the CLI imports
Ray, and ``edgecnn.runtime`` never does. The rooms, one job each:

* :mod:`~edgecnn.fleet.resources`  resource and label names a node advertises (Ray-free);
* :mod:`~edgecnn.fleet.node`       ``edgecnn node start``: the ``ray start`` command line;
* :mod:`~edgecnn.fleet.cluster`    connect quietly, list the devices, refuse a missing one;
* :mod:`~edgecnn.fleet.shipping`   a bundle packed for the object store, unpacked and verified
  on the device;
* :mod:`~edgecnn.fleet.device`     the device task: one measurement with the runtime only;
* :mod:`~edgecnn.fleet.scheduler`  one cell at a time per device, timeouts, node loss, retries;
* :mod:`~edgecnn.fleet.build`      the build node's export (torch lives there only);
* :mod:`~edgecnn.fleet.lab`        the whole run: plan, build once, ship, measure, history;
* :mod:`~edgecnn.fleet.plot`       one plot grouped by device;
* :mod:`~edgecnn.fleet.shard_eval` accuracy on a large set, sharded across a profile's nodes.
"""

from edgecnn.errors import EdgeCNNError


class FleetError(EdgeCNNError):
    """A lab that cannot run: no cluster, a device with no node, Ray missing."""
