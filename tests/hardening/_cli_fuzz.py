"""Fuzz every option of every ``edgecnn`` command, read from click's own parameter lists.

The commands are found by walking the ``edgecnn.cli.main`` group (lazy commands included), so
an option added tomorrow is fuzzed without a change here. Each case is one valid base command
line with one or more parameters replaced by a random or boundary value (empty, negative, huge,
NaN, wrong type, paths that are files / folders / missing / symlinks / FIFOs, names with spaces
and unicode, comma lists with gaps). A case runs in process under click's CliRunner, in a fresh
folder holding a copy of the assets (so no case can damage another's inputs), and must end in

* exit status 0 (it ran), or 1 / 2 with exactly one ``Error:`` line and no ``Traceback``;
* or, when valid values make the work long, an interrupt at the per-case time cap (SIGALRM
  raises KeyboardInterrupt, as Ctrl-C would): it counts as a run and must still print one line;
* in every case nothing half-written: no staging / backup folders or ``*.tmp`` files, every
  bundle written verifies, every JSON file written parses.

Options that name network addresses are pinned to loopback. Cases are seeded: a failure is
printed as its command line and ``EDGECNN_CLI_FUZZ_SEED=S EDGECNN_CLI_FUZZ_ONLY=I``, which
replays exactly that case. Unreadable paths mean nothing to root, so as root those cases run in
a child process started without the capabilities that bypass file modes (``setpriv
--bounding-set -dac_override,-dac_read_search``); ``python _cli_fuzz.py CASES.json`` runs a
list of cases.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import numpy as np

FLAG = object()  # "the flag is given" (no value follows)
NETWORK = re.compile(r"(^|_)(address|cluster|host|url|endpoint|port)($|_)", re.I)  # option names
LOOPBACK = ["127.0.0.1", "127.0.0.1:6379", "localhost", "[::1]:1"]
# bundle, image and data assets, relative to the case folder (names with a space and unicode)
BUNDLE = "assets/lenet5 bundle"
IMAGE = "assets/ünï 图.png"
NPZ = "assets/tiny data.npz"

INTS = ["0", "1", "2", "-1", "-2147483649", "7", "2147483648", str(2**63), "9" * 40, "1.5",
        "nan", "inf", "1e3", "0x10", "", " ", "abc", "٣", "1,2"]
FLOATS = ["0", "1", "0.5", "-1", "-0.0", "nan", "NaN", "inf", "-inf", "1e308", "1e309",
          "5e-324", "", "abc", "1,5", "0x1p3"]
BOOLS = ["true", "false", "1", "0", "yes", "", "maybe"]
STRINGS = [
    # valid things some option or argument takes
    BUNDLE, IMAGE, NPZ, "lenet5", "resnet8", "fashion-mnist:test", "fashion-mnist:val",
    "onnx", "tflite", "tensorrt", "onnx:fp32", "onnx:int8", "tflite:fp32", "torch", "latest",
    "1", "8", "1,8", "1,8,32", "3x32x32", "1x28x28", "fp32", "int8", "10.3",
    # paths of the wrong kind
    "assets/empty folder", "assets/plain.txt", "assets/no such file", "assets/link to file",
    "assets/dangling link", "assets/link to folder", "assets/fifo", "assets/damaged bundle",
    "assets/manifest only", "assets/garbage.pt", "assets/garbage.npz", "assets/garbage.toml",
    "assets/garbage.pt2", "assets/garbage.png", "/dev/null", "/", ".", "..", "-", "~",
    "new output", "ünïcødé 名前", "a/b/c/deep", "assets/plain.txt/below",
    # data and model specs that look right but are not
    "fashion-mnist:bogus", "fashion-mnist:", ":", "npz:", "json:dumps", "collections:OrderedDict",
    "no_such_module:factory", "lenet5:", "LENET5", "lenet5 ", "x.toml",
    # comma lists with gaps, numbers as text, sizes
    "1,,2", ",", "1,", ",8", " , ", "onnx:fp32,,tflite:fp32", "onnx:fp32, tflite:fp32",
    "onnx:fp64", "onnx:", "0", "-1", "nan", "inf", "1e999", "0x0x0", "3x0x32", "-3x32x32",
    "3x32", "1,0,1", "8,1,32", "1,8,9999999999",
    # empty, huge, control characters
    "", " ", "x" * 5000, "9" * 400, "\t", "a\nb", "\x1b[31mred",
]


@dataclass
class Case:
    index: int
    args: list[str]
    fuzzed: list[str] = field(default_factory=list)  # which parameters got a fuzz value

    def command_line(self) -> str:
        return "edgecnn " + shlex.join(self.args)


@dataclass
class Outcome:
    index: int
    command: str
    kind: str  # "ran" | "usage" | "failed" | "capped" | "skipped" | "FAIL"
    exit_code: int | None
    seconds: float
    problem: str = ""  # for FAIL: what was wrong
    error_line: str = ""


# -- the commands -------------------------------------------------------------------------------
def walk(group: click.Group, path: tuple[str, ...] = ()):
    """(command path, click command) for every leaf command, recursing into subgroups."""
    ctx = click.Context(group, info_name="edgecnn")
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None:
            continue
        if isinstance(cmd, click.Group):
            yield from walk(cmd, path + (name,))
        else:
            yield path + (name,), cmd


def fuzzable(cmd: click.Command) -> list[click.Parameter]:
    return [p for p in cmd.params if not (isinstance(p, click.Option) and p.name == "help")]


def param_label(p: click.Parameter) -> str:
    return p.opts[0] if isinstance(p, click.Option) else p.name.upper()


def base_args(path: tuple[str, ...], cmd: click.Command) -> dict[str, list]:
    """A valid, small command line as {param name: [values]}: what a fuzzed value replaces.
    Commands it does not know get a plausible value for each required argument."""
    known = {
        ("info",): {"bundle": [BUNDLE]},
        ("predict",): {"bundle": [BUNDLE], "images": [IMAGE], "threads": ["1"]},
        ("check",): {"bundle": [BUNDLE]},
        ("build",): {"bundle": [BUNDLE]},
        ("eval",): {"model": [BUNDLE], "data": [NPZ], "out": ["eval out"], "no_progress": [FLAG],
                    "threads": ["1"]},
        ("export",): {"model": ["lenet5"], "out": ["bundle out"], "parity_samples": ["1"],
                      "threads": ["1"], "quiet": [FLAG]},
        ("bench",): {"model": [BUNDLE], "targets": ["onnx:fp32"], "iterations": ["2"],
                     "warmup": ["0"], "isolate": [False], "plot": [False], "save": [False],
                     "report_dir": ["bench out"], "threads": ["1"]},
        ("train",): {"model": ["lenet5"], "data": [NPZ], "val": [NPZ], "test": [NPZ],
                     "epochs": ["1"], "batch_size": ["32"], "train_samples": ["32"],
                     "out": ["train out"], "no_progress": [FLAG], "threads": ["1"]},
        ("demo",): {"out": ["demo out"], "samples": ["16"], "threads": ["1"]},
    }
    if path in known:
        return dict(known[path])
    out: dict[str, list] = {}
    for p in cmd.params:
        if isinstance(p, click.Argument) and p.required:
            out[p.name] = [BUNDLE]
        elif isinstance(p, click.Option) and p.required:
            out[p.name] = [fuzz_value(p, random.Random(0))]
    return out


def fuzz_value(p: click.Parameter, rng: random.Random):
    """One random or boundary value for parameter ``p``, chosen by its click type."""
    if isinstance(p, click.Option) and NETWORK.search(p.name or ""):
        return rng.choice(LOOPBACK)
    if isinstance(p, click.Option) and p.is_flag:
        if p.secondary_opts:  # --x/--no-x
            return rng.choice([True, False])
        return FLAG
    t = p.type
    if isinstance(t, click.Choice):
        pool = [str(c) for c in t.choices] * 2 + ["", "bogus", str(t.choices[0]).upper(),
                                                  f" {t.choices[0]}", "x" * 300]
    elif isinstance(t, click.types.IntParamType):
        pool = INTS
    elif isinstance(t, click.types.FloatParamType):
        pool = FLOATS
    elif isinstance(t, click.types.BoolParamType):
        pool = BOOLS
    else:
        pool = STRINGS
    return rng.choice(pool)


def render(path: tuple[str, ...], cmd: click.Command, values: dict[str, list]) -> list[str]:
    """The argv of a case: options first (in declaration order), then the arguments."""
    opts: list[str] = []
    positional: list[str] = []
    for p in cmd.params:
        for v in values.get(p.name, []):
            if isinstance(p, click.Argument):
                positional.append(v)
            elif v is FLAG:
                opts.append(p.opts[0])
            elif v is True or v is False:
                opts.append(p.opts[0] if v else p.secondary_opts[0])
            else:
                opts += [p.opts[0], v]
    # "--" keeps a fuzzed argument that starts with "-" an argument, as a careful user would
    return [*path, *opts, *(["--"] if positional else []), *positional]


def plan(seed: int, random_cases: int) -> list[Case]:
    """Every parameter of every command once (with a seeded value), then ``random_cases``
    cases that fuzz one to three parameters of a random command."""
    from edgecnn.cli.main import cli

    commands = [(path, cmd) for path, cmd in walk(cli)]
    rng = random.Random(seed)
    cases: list[Case] = []

    def add(path, cmd, params):
        values = base_args(path, cmd)
        for p in params:
            v = fuzz_value(p, rng)
            if isinstance(p, click.Argument) and p.nargs == -1 and rng.random() < 0.3:
                values[p.name] = [v, fuzz_value(p, rng)]
            else:
                values[p.name] = [v]
        cases.append(Case(len(cases), render(path, cmd, values),
                          [f"{' '.join(path)} {param_label(p)}" for p in params]))

    for p in fuzzable(cli):  # the group's own options, in front of a cheap command
        cases.append(Case(len(cases), [p.opts[0], "targets"] if p.is_flag else ["targets"],
                          [param_label(p)]))
    for path, cmd in commands:
        for p in fuzzable(cmd):
            add(path, cmd, [p])
    for _ in range(random_cases):
        path, cmd = rng.choice(commands)
        params = fuzzable(cmd)
        if params:
            add(path, cmd, rng.sample(params, min(len(params), rng.randint(1, 3))))
    return cases


# -- assets ------------------------------------------------------------------------------------
def make_assets(root: Path, bundle: Path) -> Path:
    """The files a case may name, in ``root/assets``: a real bundle, an image, labelled data,
    and files of every wrong kind."""
    a = root / "assets"
    a.mkdir(parents=True)
    shutil.copytree(bundle, root / BUNDLE)
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(root / IMAGE)
    labels = np.repeat(np.arange(4), 16)
    np.savez(root / NPZ, images=rng.integers(0, 255, (len(labels), 28, 28), dtype=np.uint8),
             labels=labels, classes=np.array(["a", "b", "c", "d"]))
    (a / "empty folder").mkdir()
    (a / "plain.txt").write_text("not what you think\n")
    os.symlink("plain.txt", a / "link to file")
    os.symlink("nowhere", a / "dangling link")
    os.symlink("empty folder", a / "link to folder")
    os.mkfifo(a / "fifo")
    shutil.copytree(bundle, a / "damaged bundle")
    onnx = a / "damaged bundle" / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    (a / "manifest only").mkdir()
    shutil.copy(bundle / "manifest.json", a / "manifest only" / "manifest.json")
    for name in ("garbage.pt", "garbage.npz", "garbage.pt2", "garbage.png"):
        (a / name).write_bytes(bytes(rng.integers(0, 255, 300, dtype=np.uint8)))
    (a / "garbage.toml").write_text("backend = [1,\nprecision = \n")
    return a


# -- running one case --------------------------------------------------------------------------
class _Cap:
    """SIGALRM after ``seconds`` raises KeyboardInterrupt, as Ctrl-C would; once more after a
    grace period if the first one was swallowed (e.g. raised inside a garbage-collector
    callback, where Python only reports it)."""

    GRACE_S = 15.0

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fired = 0

    def _handler(self, signum, frame):
        self.fired += 1
        if self.fired == 1:
            signal.setitimer(signal.ITIMER_REAL, self.GRACE_S)
        raise KeyboardInterrupt

    def __enter__(self):
        self.old = signal.signal(signal.SIGALRM, self._handler)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old)


LEFTOVER = re.compile(r"\.staging-|\.old-\d|\.tmp\d*$|\.part$")


def half_written(folder: Path, since: float) -> list[str]:
    """What a case left half-written under ``folder``: staging or backup folders, temporary
    files, bundles written by the case that do not verify, JSON files that do not parse."""
    from edgecnn.bundle import Bundle
    from edgecnn.errors import EdgeCNNError

    problems = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if LEFTOVER.search(name):
                problems.append(f"left behind: {p.relative_to(folder)}")
            elif name in filenames and not p.is_symlink() and p.is_file() \
                    and p.stat().st_mtime >= since:
                if name == "manifest.json":
                    try:
                        Bundle.open(p.parent).verify()
                    except EdgeCNNError as exc:
                        problems.append(f"bundle {p.parent.relative_to(folder)} does not "
                                        f"verify: {exc}")
                elif name.endswith(".json"):
                    try:
                        json.loads(p.read_text())
                    except (ValueError, UnicodeDecodeError):
                        problems.append(f"half-written JSON: {p.relative_to(folder)}")
    return problems


def judge(case: Case, exit_code: int | None, exception, stdout: str, stderr: str,
          capped: bool, seconds: float, leftovers: list[str]) -> Outcome:
    """The one rule every case is held to (see the module docstring)."""
    text = stdout + stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("Error:")]
    o = Outcome(case.index, case.command_line(), "", exit_code, round(seconds, 2),
                error_line=errors[-1][:200] if errors else "")
    problems = list(leftovers)
    if "Traceback" in text:
        problems.append("a traceback was printed")
    if exception is not None and not isinstance(exception, SystemExit):
        problems.append(f"raw {type(exception).__name__}: {str(exception)[:200]}")
    if capped and exit_code in (130, None):
        o.kind = "capped"
        if "interrupted" not in stderr:
            problems.append("interrupted at the time cap without the one 'interrupted' line")
    # (an interrupt raised inside a garbage-collector callback is only reported by Python, so
    # a capped case may also end normally; it is then judged as any other)
    elif exit_code == 0:
        o.kind = "ran"
    elif exit_code in (1, 2):
        o.kind = "failed" if exit_code == 1 else "usage"
        if len(errors) != 1:
            problems.append(f"exit status {exit_code} with {len(errors)} 'Error:' lines")
        elif not errors[0][len("Error:"):].strip():
            problems.append("an empty error message")
    elif exit_code == 3 and "--fail-on-regression" in case.args:
        o.kind = "ran"
    else:
        problems.append(f"exit status {exit_code}")
    if problems:
        o.kind, o.problem = "FAIL", "; ".join(problems)
    return o


def copy_assets(src: Path, dst: Path) -> None:
    """A private copy (links kept as links; the FIFO made anew: copying one would block)."""
    shutil.copytree(src, dst, symlinks=True, ignore=lambda d, names: [
        n for n in names if (Path(d) / n).is_fifo()])
    os.mkfifo(dst / "fifo")


def run_case(case: Case, workdir: Path, assets_src: Path, cap_s: float,
             private_assets: bool = True) -> Outcome:
    """Run ``case`` in a fresh ``workdir`` holding a copy of the assets (or, where files are
    locked and cannot be copied, a link to them)."""
    from click.testing import CliRunner

    from edgecnn.cli.main import cli

    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    if private_assets:
        copy_assets(assets_src, workdir / "assets")
    else:
        os.symlink(assets_src.resolve(), workdir / "assets")
    env = {"XDG_DATA_HOME": str(workdir / "xdg-data"), "EDGECNN_VERBOSE": None,
           "COLUMNS": "100"}
    cwd = os.getcwd()
    since = time.time()  # files changed from here on were written by the case
    t0 = time.perf_counter()
    cap = _Cap(cap_s)
    try:
        os.chdir(workdir)
        with cap:
            result = CliRunner().invoke(cli, case.args, env=env, catch_exceptions=True)
        exit_code, exception, stdout, stderr = (result.exit_code, result.exception,
                                                result.stdout, result.stderr)
    except KeyboardInterrupt:  # fired outside the command's own handler
        exit_code, exception, stdout, stderr = None, None, "", "interrupted"
    finally:
        os.chdir(cwd)
    seconds = time.perf_counter() - t0
    leftovers = half_written(workdir, since)
    return judge(case, exit_code, exception, stdout, stderr, cap.fired > 0, seconds, leftovers)


def warm_up() -> None:
    """Import what the commands import, before any case: an interrupt at the time cap must
    not land inside a half-done import of torch or a backend, which would break later cases
    in this process for reasons no user meets."""
    import importlib

    from edgecnn.cli.main import cli

    for _ in walk(cli):  # imports every command module
        pass
    for name in ("torch", "onnx", "onnxscript", "onnxruntime", "edgecnn.pipeline", "edgecnn.train",
                 "edgecnn.bench.runner", "edgecnn.bench.accuracy", "edgecnn.runtime.ort",
                 "edgecnn.runtime.litert", "edgecnn.tensorrt.preflight", "edgecnn.tensorrt.builder",
                 "edgecnn.quantize.int8", "edgecnn.backends.tflite", "matplotlib.pyplot"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing extra is the command's to report
            pass


def run_cases(cases: list[Case], scratch: Path, assets_src: Path, cap_s: float,
              log=None, private_assets: bool = True) -> list[Outcome]:
    warm_up()
    outcomes = []
    for case in cases:
        o = run_case(case, scratch / "case", assets_src, cap_s, private_assets)
        outcomes.append(o)
        if log is not None:
            log(o)
    shutil.rmtree(scratch / "case", ignore_errors=True)
    return outcomes


def summary(outcomes: list[Outcome]) -> dict:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.kind] = counts.get(o.kind, 0) + 1
    slowest = sorted(outcomes, key=lambda o: -o.seconds)[:3]
    per_command: dict[str, float] = {}
    for o in outcomes:
        name = next((a for a in shlex.split(o.command)[1:] if not a.startswith("-")), "-")
        per_command[name] = round(per_command.get(name, 0.0) + o.seconds, 1)
    return {"cases": len(outcomes), "outcomes": counts,
            "seconds": round(sum(o.seconds for o in outcomes), 1), "seconds_per_command":
            per_command,
            "slowest": [f"{o.seconds:.1f}s {o.command[:120]}" for o in slowest]}


# -- unreadable paths, run as nobody -----------------------------------------------------------
def unreadable_cases(start: int) -> list[Case]:
    """Every path-taking parameter (click.Path, or a string argument / option) given an
    unreadable file or an unreadable folder (in turn)."""
    from edgecnn.cli.main import cli

    cases = []
    for path, cmd in walk(cli):
        for p in fuzzable(cmd):
            if isinstance(p.type, (click.Choice, click.types.IntParamType,
                                   click.types.FloatParamType, click.types.BoolParamType)) \
                    or (isinstance(p, click.Option) and (p.is_flag or NETWORK.search(p.name))):
                continue
            # a locked file and a locked folder, in turn
            target = ("assets/locked file.npz", "assets/locked folder")[len(cases) % 2]
            values = base_args(path, cmd)
            values[p.name] = [target]
            cases.append(Case(start + len(cases), render(path, cmd, values),
                              [f"{' '.join(path)} {param_label(p)}"]))
    return cases


def lock_assets(assets: Path) -> None:
    """Files only root could read; everything else readable and the folders writable by all."""
    shutil.copy(assets.parent / NPZ, assets / "locked file.npz")
    (assets / "locked folder").mkdir()
    shutil.copy(assets.parent / IMAGE, assets / "locked folder" / "image.png")
    for dirpath, dirnames, filenames in os.walk(assets):
        for d in dirnames:
            os.chmod(Path(dirpath) / d, 0o777)
        for f in filenames:
            p = Path(dirpath) / f
            if not p.is_symlink():
                os.chmod(p, 0o666)
    os.chmod(assets, 0o777)
    os.chmod(assets / "locked file.npz", 0)
    os.chmod(assets / "locked folder", 0)


def _child_main(spec_path: str) -> int:
    """Run the cases of a JSON spec (written by the test); the outcomes go to spec["result"]."""
    spec = json.loads(Path(spec_path).read_text())
    cases = [Case(**c) for c in spec["cases"]]
    outcomes = run_cases(cases, Path(spec["scratch"]), Path(spec["assets"]), spec["cap_s"],
                         private_assets=False)
    # into a file: a case interrupted while its command had fds 1/2 redirected (native_logs)
    # may leave this process's stdout pointing elsewhere
    Path(spec["result"]).write_text(json.dumps([asdict(o) for o in outcomes]))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
