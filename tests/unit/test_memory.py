"""edgecnn.memory: the allocator settings of build processes (Linux/glibc; elsewhere no-ops)."""

import subprocess
import sys

import pytest

from edgecnn.memory import release_memory, reuse_large_buffers


def test_release_memory_runs_anywhere():
    release_memory()  # gc + malloc_trim where glibc has it; never raises


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_reuse_large_buffers_cuts_page_faults_of_repeated_big_arrays():
    """A fresh process allocating and freeing a 64 MB array 20 times: with the defaults every
    array is a new mmap whose pages fault in again; with reuse_large_buffers() the heap keeps
    them. Counted in minor page faults, not time (the CPU does not matter)."""
    code = """
import resource, sys, numpy as np
from edgecnn.memory import reuse_large_buffers
tuned = sys.argv[1] == "1" and reuse_large_buffers()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = np.ones(16 << 20, np.float32); del a
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    runs = {}
    for flag in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True,
                             check=True).stdout.split()
        runs[flag] = (out[0] == "True", int(out[1]))
    if not runs["1"][0]:
        pytest.skip("mallopt not available here (not glibc)")
    assert runs["1"][1] * 5 < runs["0"][1], runs  # 20 x 16k faults vs about one array's worth
