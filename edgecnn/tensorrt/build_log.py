"""What TensorRT's builder says, kept: an ``ILogger`` subclass that records errors and warnings.

TensorRT's default ``trt.Logger`` writes from C++ to stderr, where the build's progress display
redraws over it, so the reason a build failed was lost. :func:`make_logger` returns a
``trt.ILogger`` subclass whose ``log(severity, msg)`` keeps ERROR / INTERNAL_ERROR / WARNING lines
in a :class:`BuildLog`; the builder puts the errors into its exception and the warnings into the
engine's build record. The class is made inside a function because ``trt`` is imported on the
device only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

MAX_KEPT = 200  # lines; a pathological build must not fill memory


@dataclass
class BuildLog:
    """Lines TensorRT logged, by level ('error' or 'warning'). Thread-safe (the builder logs from
    its own threads)."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, level: str, message: str) -> None:
        with self._lock:
            if len(self.lines) < MAX_KEPT:
                self.lines.append((level, str(message).strip()))

    @property
    def errors(self) -> list[str]:
        return [m for lvl, m in self.lines if lvl == "error"]

    @property
    def warnings(self) -> list[str]:
        return [m for lvl, m in self.lines if lvl == "warning"]

    def failure_text(self, limit: int = 10) -> str:
        """The errors for an exception message, newest last; '' when TensorRT logged none."""
        errs = self.errors[-limit:]
        return "\n".join(f"  TensorRT: {e}" for e in errs)


def make_logger(trt, build_log: BuildLog):
    """A ``trt.ILogger`` that keeps errors and warnings in ``build_log`` (info and verbose dropped)."""
    sev = trt.ILogger.Severity
    levels = {sev.INTERNAL_ERROR: "error", sev.ERROR: "error", sev.WARNING: "warning"}

    class KeepingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            level = levels.get(severity)
            if level is not None:
                build_log.record(level, msg)

    return KeepingLogger()
