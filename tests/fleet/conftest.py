"""Fleet tests run a real Ray cluster on this machine, bound to loopback.

Ray resolves 127.0.0.1 to the machine's LAN address when it connects unless cluster mode is
off (a single-machine switch of Ray's); it must be set before Ray is imported, and the nodes
inherit it, so nothing here listens beyond loopback.
"""

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
