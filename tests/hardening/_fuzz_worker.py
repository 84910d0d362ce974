"""Fuzz loop run in a child process: damage one file of a bundle, load it, run it.

    python tests/hardening/_fuzz_worker.py BUNDLE KIND CASES SEED

KIND is onnx | tflite | engine | manifest. For artifacts the damaged file is usually
re-signed (sha256 and size_bytes written back into manifest.json, as an attacker can),
so the backend itself parses the damaged bytes. Every case must end in a successful run
or an EdgeCNNError; anything else is recorded as a failure. A crash of the interpreter
ends this process with a negative code, a hang is cut by faulthandler (exit code 1 and
a traceback). Prints one JSON line: counts per outcome and the failures.
"""

from __future__ import annotations

import faulthandler
import hashlib
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from edgecnn.errors import ChecksumError, EdgeCNNError

FILES = {"onnx": ("model.onnx", "onnxruntime", "fp32"),
         "tflite": ("model.fp32.tflite", "tflite", "fp32"),
         "engine": ("model.fp16.engine", "tensorrt", "fp16"),
         "manifest": ("manifest.json", "onnxruntime", "fp32")}
CASE_TIMEOUT_S = 60


def mutate(data: bytes, draw) -> tuple[bytes, str]:
    n = len(data)
    kind = draw(st.sampled_from(["truncate", "bitflip", "bitflip", "overwrite", "append", "zero"]))
    if kind == "truncate":
        k = draw(st.integers(0, max(0, n - 1)))
        return data[:k], f"truncate to {k}"
    if kind == "append":
        extra = draw(st.binary(min_size=1, max_size=64))
        return data + extra, f"append {len(extra)} bytes"
    buf = bytearray(data)
    if kind == "bitflip":
        # bias towards the header and the tail, where flatbuffer/protobuf tables live
        positions = draw(st.lists(st.one_of(st.integers(0, min(n - 1, 255)),
                                            st.integers(max(0, n - 4096), n - 1),
                                            st.integers(0, n - 1)), min_size=1, max_size=16))
        for p in positions:
            buf[p] ^= 1 << draw(st.integers(0, 7))
        return bytes(buf), f"flip {len(positions)} bits at {positions[:4]}..."
    start = draw(st.integers(0, n - 1))
    length = draw(st.integers(1, 64))
    if kind == "zero":
        buf[start:start + length] = bytes(len(buf[start:start + length]))
        return bytes(buf), f"zero {length} bytes at {start}"
    junk = draw(st.binary(min_size=length, max_size=length))
    buf[start:start + length] = junk[:len(buf[start:start + length])]
    return bytes(buf), f"overwrite {length} bytes at {start}"


def resign(bundle: Path, name: str) -> None:
    """What an attacker who can write the folder can do: fix the checksum and size."""
    mpath = bundle / "manifest.json"
    m = json.loads(mpath.read_text())
    data = (bundle / name).read_bytes()
    for a in m["artifacts"]:
        if a["file"] == name:
            a["sha256"] = hashlib.sha256(data).hexdigest()
            a["size_bytes"] = len(data)
    mpath.write_text(json.dumps(m))


def main() -> int:
    src, kind, cases, seed_ = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    name, backend, precision = FILES[kind]
    original = (src / name).read_bytes()
    import edgecnn.runtime as rt

    faulthandler.enable()  # a crash prints where it happened (load or invoke)
    verbose = bool(os.environ.get("EDGECNN_FUZZ_VERBOSE"))

    outcomes: Counter[str] = Counter()
    failures: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="edgecnn-fuzz-"))

    @settings(max_examples=cases, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @seed(seed_)
    @given(st.data())
    def case(data):
        draw = data.draw
        damaged, what = mutate(original, draw)
        signed = kind != "manifest" and draw(st.integers(0, 9)) > 0  # 90% re-signed
        bundle = Path(tempfile.mkdtemp(dir=work)) / "bundle"
        shutil.copytree(src, bundle)
        (bundle / name).write_bytes(damaged)
        if signed:
            resign(bundle, name)
        if verbose:
            print(f"case: {what} signed={signed}", file=sys.stderr, flush=True)
            (work / "last_case.bin").write_bytes(damaged)
        faulthandler.dump_traceback_later(CASE_TIMEOUT_S, exit=True)
        try:
            with rt.load(bundle, backend=backend, precision=precision, threads=1) as s:
                shape = [1 if d == -1 else d for d in s.input_shape]
                out = s.run(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
                assert out.ndim == 2 and out.shape[0] == 1
            outcome = "ran"
            if not signed and kind != "manifest" and damaged != original:
                failures.append({"case": what, "error": "damaged, unsigned file was loaded"})
        except EdgeCNNError as exc:
            outcome = type(exc).__name__
            if not signed and kind != "manifest" and damaged != original \
                    and not isinstance(exc, ChecksumError):
                failures.append({"case": what, "error": f"unsigned damage not caught by the "
                                                        f"checksum: {type(exc).__name__}: {exc}"})
            if not str(exc).strip():
                failures.append({"case": what, "error": f"{type(exc).__name__} with no message"})
        except Exception as exc:  # noqa: BLE001 - exactly what this loop is looking for
            outcome = "raw:" + type(exc).__name__
            failures.append({"case": what, "error": f"{type(exc).__name__}: {exc}",
                             "trace": traceback.format_exc(limit=4)})
        finally:
            faulthandler.cancel_dump_traceback_later()
            shutil.rmtree(bundle.parent, ignore_errors=True)
        prefix = "unchanged " if damaged == original else "signed " if signed else "unsigned "
        outcomes[prefix + outcome] += 1

    case()
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"kind": kind, "cases": sum(outcomes.values()), "outcomes": dict(outcomes),
                      "failures": failures[:20], "n_failures": len(failures)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
