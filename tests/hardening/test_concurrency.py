"""Concurrency: one Session shared by 8 threads, and 8 Sessions of one bundle in one process.

Every thread runs 1,000 single-image inferences on its own inputs and must get exactly the
outputs a single thread gets. ONNX Runtime's InferenceSession.run is thread-safe; a TFLite
Interpreter is not, so LiteRTSession serialises run() with a lock (see docs/hardening.md).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from _hardening_lib import has_tflite

import edgecnn.runtime as rt

THREADS = 8
RUNS = 1000
DISTINCT = 97  # distinct inputs; thread t runs inputs (t * 13 + i) % DISTINCT


def _backends(bundle):
    out = [("onnxruntime", "fp32")]
    if has_tflite(bundle):
        out.append(("tflite", "fp32"))
    return out


def _inputs(session) -> np.ndarray:
    shape = [1 if d == -1 else d for d in session.input_shape]
    rng = np.random.default_rng(7)
    return rng.standard_normal((DISTINCT, *shape), dtype=np.float32)


def _hammer(sessions, xs, reference) -> list[str]:
    """Run RUNS inferences in each of THREADS threads; return mismatches and errors."""
    problems: list[str] = []
    start = threading.Barrier(THREADS)

    def work(t: int) -> None:
        s = sessions[t % len(sessions)]
        try:
            start.wait()
            for i in range(RUNS):
                k = (t * 13 + i) % DISTINCT
                y = s.run(xs[k])
                if not np.array_equal(y, reference[k]):
                    problems.append(f"thread {t} run {i} input {k}: max diff "
                                    f"{float(np.abs(y - reference[k]).max())}")
                    return
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            problems.append(f"thread {t}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "a worker thread hung"
    return problems


@pytest.mark.parametrize("mode", ["one_session_8_threads", "8_sessions_8_threads"])
def test_threads_get_single_threaded_outputs(tiny_bundle, mode):
    for backend, precision in _backends(tiny_bundle):
        first = rt.load(tiny_bundle, backend=backend, precision=precision, threads=1)
        xs = _inputs(first)
        reference = [first.run(x) for x in xs]  # single-threaded truth
        assert len({r.tobytes() for r in reference}) > DISTINCT // 2, "inputs are not distinct"
        if mode == "one_session_8_threads":
            sessions = [first]
        else:
            sessions = [rt.load(tiny_bundle, backend=backend, precision=precision, threads=1)
                        for _ in range(THREADS)]
        try:
            problems = _hammer(sessions, xs, reference)
        finally:
            for s in {id(s): s for s in [first, *sessions]}.values():
                s.close()
        assert not problems, f"{backend}: {problems[:5]}"
