"""Runtime soak: one session per backend and precision runs for a fixed time; resident memory
after the warm-up stays flat, every output equals the first run's, no file handle leaks.

`make test` soaks each session for EDGECNN_SOAK_SECONDS=3; `make test-long` for 120 s. Each
session runs in its own process (tests/hardening/_soak_worker.py), so pytest's own memory
does not count. Figures: docs/hardening.md ("Runtime soak").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _hardening_lib import child_env

WORKER = Path(__file__).with_name("_soak_worker.py")
SECONDS = float(os.environ.get("EDGECNN_SOAK_SECONDS", "3"))
# A leak of one small object per inference (about 100 bytes) is 1 MB per 10,000 inferences.
# Short runs sample allocator noise as well, so they get a looser bound on the slope and are
# held to the total growth instead.
MAX_SLOPE_MB_PER_10K = 0.1 if SECONDS >= 60 else 2.0
MAX_GROWTH_MB = 8.0
SESSIONS = [("onnxruntime", "fp32", "model.onnx"), ("onnxruntime", "int8", "model.int8.cpu.onnx"),
            ("tflite", "fp32", "model.fp32.tflite"), ("tflite", "int8", "model.int8.tflite")]


@pytest.mark.parametrize("backend,precision,file", SESSIONS,
                         ids=[f"{b}-{p}" for b, p, _ in SESSIONS])
def test_session_soak(full_bundle, backend, precision, file):
    if not (full_bundle / file).is_file():
        pytest.skip(f"{file} is not made on this machine (no LiteRT export)")
    proc = subprocess.run([sys.executable, str(WORKER), str(full_bundle), backend, precision,
                           str(SECONDS)], capture_output=True, text=True, env=child_env(),
                          timeout=300 + 2 * SECONDS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    print(f"soak {backend}:{precision}: {json.dumps(r)}")  # the figures for the docs
    assert r["inferences"] > 0
    assert r["mismatches"] == 0, r
    assert r["slope_mb_per_10k"] < MAX_SLOPE_MB_PER_10K, r
    assert r["rss_mb_max"] - r["rss_mb_after_warmup"] < MAX_GROWTH_MB, r
    assert r["fds_end"] == r["fds_after_warmup"], r
    # LiteRT opens its delegate libraries once per process; after that nothing may accumulate
    assert r["fds_after_close_and_20_reloads"] <= r["fds_after_warmup"], r
