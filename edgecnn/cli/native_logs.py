"""Keep native library logs (LiteRT, TensorFlow, absl, oneDNN) out of the user's terminal.

LiteRT's C++ INFO/WARNING lines (accelerator registry, vendor plugins that cannot load) and
TensorFlow's oneDNN notice are written straight to file descriptor 2 by C++ code, so neither
``-q`` nor ``TF_CPP_MIN_LOG_LEVEL`` / ``GLOG_minloglevel`` reach them. :class:`hide_native_logs`
redirects file descriptors 1 and 2 to a temporary file while a load or a conversion runs:

* edgecnn's own output survives: ``sys.stdout`` / ``sys.stderr`` (when they write to fd 1 / 2)
  are pointed at duplicates of the original descriptors, so click, rich tables and progress
  bars reach the terminal as before;
* Python-level library chatter goes to the same file: records reaching the root logger
  (``WARNING:root:...``) and ``warnings.warn`` messages;
* an :class:`~edgecnn.errors.EdgeCNNError` raised inside the block gets the tail of the
  captured text appended to its message (the CLI prints it on its one line);
* ``EDGECNN_VERBOSE=1`` (``edgecnn --verbose``) turns it off: everything is shown as it comes.

Opt-in: the CLI commands use it (:func:`quiet_libraries`); the embedded runtime
(``edgecnn.runtime``) never does, because an application's stderr belongs to the application.
Enter it around a load or a conversion, never around each inference.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import sys
import tempfile
import threading
import warnings

VERBOSE_ENV = "EDGECNN_VERBOSE"
TAIL_LINES = 3
TAIL_CHARS = 300


def verbose() -> bool:
    """``EDGECNN_VERBOSE`` is set to something other than '', '0', 'false' or 'no'."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


class _CaptureHandler(logging.Handler):
    def __init__(self, fd: int):
        super().__init__(logging.NOTSET)
        self.fd = fd
        self.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            os.write(self.fd, (self.format(record) + "\n").encode("utf-8", "replace"))
        except Exception:  # never let a log line break a conversion
            pass


class _State:
    """The one process-wide redirect, shared by every (nested, or concurrent) block."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.depth = 0
        self.capture = None  # the temporary file fds 1 and 2 point at
        self.saved: dict[int, int] = {}  # fd -> duplicate of the original
        self.streams: list[tuple[str, object, io.TextIOBase]] = []  # (sys attr, old, new)
        self.root_handlers: list[logging.Handler] = []
        self.handler: _CaptureHandler | None = None
        self.showwarning = None


_STATE = _State()


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


class hide_native_logs:
    """Redirect fds 1/2 to a temporary file for the block (see the module doc).

    Reentrant: nested blocks share the outermost redirect, which the last block to exit undoes.
    Threads: the redirect is process-wide. While any block is open, every thread's writes to
    fd 1 and fd 2 (native code, ``os.write``, child processes started meanwhile) go to the
    capture file, and every thread's ``sys.stdout``/``sys.stderr`` writes go to the terminal.
    Blocks entered from several threads share one redirect; the tail attached to an error is
    the captured text since that block began, so it may hold other threads' lines.
    """

    def __init__(self, enabled: bool | None = None):
        self.enabled = (not verbose()) if enabled is None else enabled
        self._active = False
        self._start = 0

    def __enter__(self) -> "hide_native_logs":
        if not self.enabled:
            return self
        s = _STATE
        with s.lock:
            if s.depth == 0:
                _redirect(s)
            s.depth += 1
            self._active = True
            self._start = os.fstat(s.capture.fileno()).st_size
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self._active:
            return False
        s = _STATE
        with s.lock:
            try:
                if exc is not None and _is_edgecnn_error(exc):
                    _attach_tail(exc, self.captured())
            finally:
                self._active = False
                s.depth -= 1
                if s.depth == 0:
                    _restore(s)
        return False

    def captured(self) -> str:
        """What the libraries wrote since this block began (while it is open)."""
        s = _STATE
        if not self._active or s.capture is None:
            return ""
        fd = s.capture.fileno()
        end = os.fstat(fd).st_size
        return os.pread(fd, max(0, end - self._start), self._start).decode("utf-8", "replace")


def _redirect(s: _State) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    s.capture = tempfile.TemporaryFile(prefix="edgecnn-native-log-")
    cap = s.capture.fileno()
    for fd, attr in ((1, "stdout"), (2, "stderr")):
        try:
            s.saved[fd] = os.dup(fd)
        except OSError:  # no such descriptor (a daemon): nothing to hide there
            continue
        old = getattr(sys, attr)
        if _fileno(old) == fd:  # Python's own stream on this fd: keep it on the terminal
            new = io.TextIOWrapper(io.FileIO(os.dup(s.saved[fd]), "w", closefd=True),
                                   encoding=getattr(old, "encoding", None) or "utf-8",
                                   errors=getattr(old, "errors", None) or "replace",
                                   line_buffering=True, write_through=True)
            s.streams.append((attr, old, new))
            setattr(sys, attr, new)
        os.dup2(cap, fd)
    root = logging.getLogger()
    s.root_handlers = list(root.handlers)
    s.handler = _CaptureHandler(cap)
    for h in s.root_handlers:
        root.removeHandler(h)
    root.addHandler(s.handler)  # also keeps logging.warning() from calling basicConfig
    s.showwarning = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        text = warnings.formatwarning(message, category, filename, lineno, line)
        try:
            os.write(cap, text.encode("utf-8", "replace"))
        except OSError:
            pass

    warnings.showwarning = showwarning


def _restore(s: _State) -> None:
    import gc

    gc.collect()  # library objects freed now log their teardown while still redirected
    warnings.showwarning = s.showwarning
    root = logging.getLogger()
    if s.handler is not None:
        root.removeHandler(s.handler)
    for h in s.root_handlers:
        root.addHandler(h)
    s.root_handlers, s.handler = [], None
    for attr, old, new in reversed(s.streams):
        try:
            new.flush()
        except (OSError, ValueError):
            pass
        if getattr(sys, attr) is new:
            setattr(sys, attr, old)
        new.close()
    s.streams = []
    for fd, dup in s.saved.items():
        os.dup2(dup, fd)
        os.close(dup)
    s.saved = {}
    s.capture.close()
    s.capture = None


def _is_edgecnn_error(exc: BaseException) -> bool:
    from edgecnn.errors import EdgeCNNError

    return isinstance(exc, EdgeCNNError)


def _attach_tail(exc: BaseException, text: str) -> None:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or not exc.args:
        return
    tail = " | ".join(lines[-TAIL_LINES:])
    if len(tail) > TAIL_CHARS:
        tail = "..." + tail[-TAIL_CHARS:]
    exc.args = (f"{exc.args[0]} [library log: {tail}; --verbose shows all of it]",
                *exc.args[1:])
    exc.native_log = lines


def quiet_libraries(fn):
    """Decorator for a click command: its body runs inside :class:`hide_native_logs`.
    Put it below ``@handle_errors`` so an error carries the library's last lines."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with hide_native_logs():
            return fn(*args, **kwargs)

    return wrapper


def hide_native_logs_at_exit() -> None:
    """For the ``edgecnn`` process itself: hide what native libraries print while the process
    ends (LiteRT's 'DestroyAccelerator' lines come from its teardown, after every command has
    returned). Registers an atexit hook that flushes Python's streams and then points fds 1/2
    at /dev/null. Call it only from a process's entry point; a no-op with EDGECNN_VERBOSE=1."""
    import atexit

    if verbose():
        return

    def silence() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        try:
            null = os.open(os.devnull, os.O_WRONLY)
        except OSError:
            return
        for fd in (1, 2):
            try:
                os.dup2(null, fd)
            except OSError:
                pass
        os.close(null)

    atexit.register(silence)
