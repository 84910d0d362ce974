"""Soak one runtime session in a fresh process: memory, outputs and file handles over time.

    python tests/hardening/_soak_worker.py BUNDLE BACKEND PRECISION SECONDS

One session (threads=1) runs single-image inferences over 16 fixed inputs, round after round,
for SECONDS after a warm-up. Every output must equal the first round's bit for bit. Resident
memory (/proc/self/statm) is sampled every 500 inferences after the warm-up; the slope of a
least-squares line through the samples is reported in MB per 10,000 inferences. Open file
descriptors (/proc/self/fd) are counted before load, after the warm-up, at the end, and after
close and 20 more load/close cycles. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1e6
WARMUP = 2000
SAMPLE_EVERY = 500


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_MB


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def main() -> int:
    bundle, backend, precision, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    import edgecnn.runtime as rt

    fds_before = open_fds()
    session = rt.load(bundle, backend=backend, precision=precision, threads=1)
    shape = [1 if d == -1 else d for d in session.input_shape]
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(shape).astype(np.float32) for _ in range(16)]
    first = [session.run(x) for x in inputs]
    n = 0
    while n < WARMUP:
        session.run(inputs[n % len(inputs)])
        n += 1
    fds_warm = open_fds()
    samples: list[tuple[int, float]] = [(0, rss_mb())]
    mismatches = 0
    done = 0
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        for i, x in enumerate(inputs):
            if not np.array_equal(session.run(x), first[i]):
                mismatches += 1
        done += len(inputs)
        if done % SAMPLE_EVERY < len(inputs):
            samples.append((done, rss_mb()))
    samples.append((done, rss_mb()))
    fds_end = open_fds()
    session.close()
    for _ in range(20):  # loading and closing must not leak either
        rt.load(bundle, backend=backend, precision=precision, threads=1).close()
    fds_closed = open_fds()

    x = np.array([s[0] for s in samples], dtype=np.float64)
    y = np.array([s[1] for s in samples], dtype=np.float64)
    slope = float(np.polyfit(x, y, 1)[0]) * 10_000 if len(samples) > 2 and x[-1] > 0 else 0.0
    print(json.dumps({
        "backend": backend, "precision": precision, "seconds": seconds, "inferences": done,
        "rss_mb_after_warmup": round(y[0], 2), "rss_mb_end": round(y[-1], 2),
        "rss_mb_max": round(float(y.max()), 2), "slope_mb_per_10k": round(slope, 4),
        "mismatches": mismatches, "fds_before_load": fds_before, "fds_after_warmup": fds_warm,
        "fds_end": fds_end, "fds_after_close_and_20_reloads": fds_closed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
