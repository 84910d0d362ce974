"""Fleet tests run a real Ray cluster on this machine whose nodes advertise and connect over
loopback (127.0.0.1). Ray's servers still listen on every interface (Ray has no switch for
that); the nodes live only as long as the test module.

Ray resolves 127.0.0.1 to the machine's LAN address when a driver connects unless its cluster
mode is off (a single-machine switch of Ray's), which must be set before Ray is imported; the
nodes inherit it.
"""

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
