"""The ``edgecnn`` command group.

Commands live one per module in this package and are imported only when invoked
(like optimum's thin commands), so ``edgecnn --help`` works with no extra installed.
"""

from __future__ import annotations

import functools
import importlib
import sys

import click

# command name -> "module:function"; the module is imported only when the command runs
COMMANDS: dict[str, str] = {
    "models": "edgecnn.cli.models_cmd:models",
    "targets": "edgecnn.cli.targets_cmd:targets",
    "export": "edgecnn.cli.export_cmd:export",
    "info": "edgecnn.cli.info_cmd:info",
    "predict": "edgecnn.cli.predict_cmd:predict",
    "doctor": "edgecnn.cli.doctor_cmd:doctor",
    "train": "edgecnn.cli.train_cmd:train",
    "eval": "edgecnn.cli.eval_cmd:eval_",
    "check": "edgecnn.cli.check_cmd:check",
    "build": "edgecnn.cli.build_cmd:build",
    "bench": "edgecnn.cli.bench_cmd:bench",
    "demo": "edgecnn.cli.demo_cmd:demo",
    "node": "edgecnn.cli.node_cmd:node",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


# exit statuses (documented in the group's help and the README)
EXIT_FAILURE = 1
EXIT_USAGE = 2  # click's own
EXIT_REGRESSION = 3  # bench --fail-on-regression found a regression

# every --threads option: the libraries behind it (torch, ONNX Runtime, LiteRT) take a C int and
# fail with a raw overflow error above that
THREADS = click.IntRange(min=1, max=1024)


def handle_errors(fn):
    """Turn edgecnn errors into one clean line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from edgecnn.errors import EdgeCNNError

        try:
            return fn(*args, **kwargs)
        except EdgeCNNError as exc:
            raise click.ClickException(" ".join(str(exc).split("\n"))) from None
        except KeyboardInterrupt:
            click.echo("interrupted; nothing was written", err=True)
            sys.exit(130)

    return wrapper


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgecnn")
@click.option("--verbose", is_flag=True,
              help="Show native library logs (LiteRT, TensorFlow) too; same as EDGECNN_VERBOSE=1.")
def cli(verbose):
    """edgecnn: export PyTorch CNNs to ONNX, TensorRT and LiteRT; quantize; run; benchmark.

    Exit status: 0 success; 1 the command failed (a missing file, bad data, an export or
    check that failed); 2 a usage error (unknown option, malformed or out-of-range value);
    3 'bench --fail-on-regression' found a regression; 130 interrupted.
    """
    if verbose:
        import os

        os.environ["EDGECNN_VERBOSE"] = "1"


def main() -> None:
    from edgecnn.cli.native_logs import hide_native_logs_at_exit

    hide_native_logs_at_exit()
    try:
        cli(prog_name="edgecnn")
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)


def exit_now(code) -> None:
    """End the ``edgecnn`` process with ``code`` once Python's exit handlers have run, skipping
    the interpreter's teardown: 1.3 s after an export (torch's and LiteRT's modules and native
    destructors) that a process about to end does not need. Every file edgecnn writes is
    closed by then. The normal way (``SystemExit``) while another non-daemon thread runs (it
    must be waited for), for a non-integer code, or with EDGECNN_VERBOSE=1 (the teardown's own
    messages then show)."""
    import atexit
    import os
    import threading

    from edgecnn.cli.native_logs import verbose

    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if code is None:
        code = 0
    if verbose() or others or not isinstance(code, int):
        raise SystemExit(code)
    atexit._run_exitfuncs()  # what Python runs at exit: library hooks, our log silencing
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(code & 0xFF)


if __name__ == "__main__":
    main()
