"""Resident memory of the current process. Standard library only.

The benchmark measures each target in a fresh subprocess (see :mod:`edgecnn.bench.latency`),
so the peak RSS of that process is the memory one target needs to load and run, without
the parent's torch, datasets or other targets' arenas. ``VmHWM`` (Linux) is the kernel's
high-water mark of resident memory; elsewhere ``ru_maxrss`` is the same figure.
"""

from __future__ import annotations

import sys


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])  # "VmHWM:   123456 kB"
    except (OSError, ValueError, IndexError):
        return None
    return None


def current_rss_mb() -> float | None:
    """Resident memory now, in MiB (None where the platform does not say)."""
    kb = _proc_status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB."""
    kb = _proc_status_kb("VmHWM")
    if kb is not None:
        return kb / 1024.0
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
