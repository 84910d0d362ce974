"""Process memory of long builds: freed memory handed back, big buffers reused.

An export of many artifacts allocates and frees large arrays (calibration batches, every
intermediate tensor of a calibration pass, conversion graphs). glibc's defaults serve each
array above 128 KiB-32 MiB with a fresh ``mmap`` (every page faulted in again: 2.3 million
faults and 11 s of system time in one resnet18 export to six artifacts) and keep other freed
heap until trimmed. :func:`reuse_large_buffers` lets the heap reuse big blocks instead;
:func:`release_memory` hands what is free back to the system between jobs, so the peak stays
near the largest job rather than their sum.
"""

from __future__ import annotations

import gc
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (musl): nothing to tune
        return None


def release_memory() -> None:
    """Collect garbage and return the free heap to the system (glibc's malloc_trim)."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def reuse_large_buffers(mmap_threshold: int = 256 << 20) -> bool:
    """Serve allocations below ``mmap_threshold`` bytes from the heap and trim it only when
    asked (:func:`release_memory`). For a process that builds and exits (the CLI), not for a
    long-lived app: the setting stays for the life of the process. False where it cannot be
    set (not glibc)."""
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    return bool(libc.mallopt(_M_TRIM_THRESHOLD, 4 * int(mmap_threshold)) == 1 and ok)
