"""Fuzzed bundles: truncated / bit-flipped / overwritten artifacts and manifests.

Each kind runs in a child process (tests/hardening/_fuzz_worker.py) so that an interpreter
crash shows as a negative return code and a hang as a timeout instead of killing pytest.
Most damaged artifacts are re-signed (sha256 + size_bytes rewritten, as an attacker who can
write the folder could), so the backend itself parses the damage. Every case must end in a
run or an EdgeCNNError with a message (_hardening_lib.is_correct_outcome). The long run,
5,000 cases per kind: `make test-long`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _hardening_lib import child_env, has_tflite, is_correct_outcome

WORKER = Path(__file__).with_name("_fuzz_worker.py")
CASES = int(os.environ.get("EDGECNN_FUZZ_CASES", "200"))
SEED = int(os.environ.get("EDGECNN_FUZZ_SEED", "20261127"))


def run_worker(bundle: Path, kind: str) -> dict:
    timeout = 120 + CASES  # generous: a hang is a few minutes, not a slow case
    proc = subprocess.run([sys.executable, str(WORKER), str(bundle), kind, str(CASES), str(SEED)],
                          capture_output=True, text=True, timeout=timeout,
                          env=child_env())
    assert proc.returncode >= 0, (f"the fuzz loop crashed the interpreter (signal "
                                  f"{-proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from the fuzz worker (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    result = json.loads(lines[-1])
    print(f"fuzz {kind}: {json.dumps(result['outcomes'], sort_keys=True)}")  # counts for the docs
    assert proc.returncode == 0 and result["n_failures"] == 0, json.dumps(result, indent=1)
    assert result["cases"] == CASES, result
    return result


@pytest.mark.parametrize("kind", ["onnx", "tflite", "manifest"])
def test_fuzzed_bundle_files_fail_cleanly(tiny_bundle, kind):
    if kind == "tflite" and not has_tflite(tiny_bundle):
        pytest.skip("no LiteRT/TFLite export on this machine")
    result = run_worker(tiny_bundle, kind)
    outcomes = result["outcomes"]
    # a mutated manifest may also name another file (BundleError) or change a digit of a
    # checksum or size (ChecksumError): every clean edgecnn error is a correct outcome
    assert all(is_correct_outcome(k) for k in outcomes), outcomes
    if kind != "manifest":
        # re-signed damage reached the backend and was refused there with our error type
        assert sum(v for k, v in outcomes.items() if k.startswith("signed ") and
                   not k.endswith(" ran")) > 0, outcomes
        # damage that was not re-signed never got past the checksum
        assert all(k == "unsigned ChecksumError" or k.startswith(("signed ", "unchanged "))
                   for k in outcomes), outcomes


def test_fuzzed_engine_stops_at_size_sha_and_metadata(engine_bundle):
    """Without TensorRT, the checks before deserialisation are what runs (size, sha256,
    engine metadata); with it, the platform check refuses the recorded RTX 4090 engine."""
    result = run_worker(engine_bundle, "engine")
    assert "signed ran" not in result["outcomes"]
    assert all(is_correct_outcome(k) for k in result["outcomes"]), result["outcomes"]
