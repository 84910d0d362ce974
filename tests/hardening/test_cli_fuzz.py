"""Every option of every command, fuzzed: a run, or exit 1/2 with one error line; nothing
half-written (tests/hardening/_cli_fuzz.py has the rules and the value pools).

`make test` runs each parameter of each command once (EDGECNN_CLI_FUZZ_CASES=0 random cases
more) with a 1.5 s cap per case, and each path parameter once with a path it may not read;
`make test-long` adds 1,000 random cases of one to three parameters with a 20 s cap. A failure
prints its command line and the variables that replay it alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import pytest
from _cli_fuzz import (BUNDLE, IMAGE, NPZ, Case, Outcome, lock_assets, make_assets, plan, run_cases, summary,
                       unreadable_cases, walk)
from _hardening_lib import child_env

CASES = int(os.environ.get("EDGECNN_CLI_FUZZ_CASES", "0"))
SEED = int(os.environ.get("EDGECNN_CLI_FUZZ_SEED", "20261202"))
CAP_S = float(os.environ.get("EDGECNN_CLI_FUZZ_CAP_S", "20" if CASES else "1.5"))
ONLY = os.environ.get("EDGECNN_CLI_FUZZ_ONLY")


# command lines the fuzz found printing a traceback (fixed), replayed on every run
FOUND = [
    ["train", "--data", NPZ, "--label-smoothing", "inf", "--out", "t", "--", "lenet5"],
    ["train", "--data", NPZ, "--seed", "-1", "--out", "t", "--epochs", "1", "--", "lenet5"],
    ["predict", "--threads", "2147483648", "--", BUNDLE, IMAGE],
    ["demo", "--out", "d", "--samples", "16", "--threads", "9223372036854775808"],
    ["export", "--out", "b", "--", "x" * 5000],
    ["train", "--data", NPZ, "--val", "9" * 400, "--out", "t", "--", "lenet5"],
]


def _report(outcomes: list[Outcome], test: str) -> str:
    failed = [o for o in outcomes if o.kind == "FAIL"]
    lines = [f"{len(failed)} of {len(outcomes)} cases failed:"]
    for o in failed[:15]:
        lines += [f"case {o.index}: {o.problem}", f"  {o.command[:400]}",
                  f"  replay: EDGECNN_CLI_FUZZ_SEED={SEED} EDGECNN_CLI_FUZZ_ONLY={o.index} "
                  f"pytest tests/hardening/test_cli_fuzz.py -k {test}"]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def scratch(tiny_bundle):
    """A world-readable scratch folder (the unreadable-path cases run as nobody)."""
    root = Path(tempfile.mkdtemp(prefix="edgecnn-cli-fuzz-"))
    os.chmod(root, 0o777)
    make_assets(root, tiny_bundle)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_walk_finds_every_command():
    from edgecnn.cli.main import COMMANDS, cli

    found = {path[0] for path, _ in walk(cli)}
    assert found >= set(COMMANDS), set(COMMANDS) - found


def test_every_option_of_every_command(scratch, tmp_path):
    cases = plan(SEED, CASES)
    if ONLY is not None:
        cases = [cases[int(ONLY)]]
    outcomes = run_cases(cases, tmp_path, scratch / "assets", CAP_S)
    print(json.dumps(summary(outcomes), indent=1))
    assert all(o.kind != "FAIL" for o in outcomes), _report(outcomes, "every_option")
    # every kind of end was reached: a wrong value, a failure, a run
    kinds = {o.kind for o in outcomes}
    assert {"usage", "failed", "ran"} <= kinds, kinds


def test_unreadable_paths(scratch):
    """Each path parameter given a file or a folder the user may not read. Root reads
    everything, so as root the cases run in a child process without CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH, where file modes apply to root as to anyone."""
    assets = scratch / "assets"
    lock_assets(assets)
    cases = unreadable_cases(0)
    if ONLY is not None:
        cases = [cases[int(ONLY)]]
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux) to drop the capabilities "
                        "that let root read mode-000 files")
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]
    spec = scratch / "unreadable.json"
    result = scratch / "unreadable-result.json"
    spec.write_text(json.dumps({"cases": [asdict(c) for c in cases], "scratch": str(scratch),
                                "assets": str(assets), "cap_s": CAP_S, "result": str(result)}))
    env = {**child_env(), "HOME": str(scratch), "XDG_CACHE_HOME": str(scratch / "cache")}
    proc = subprocess.run([*prefix, sys.executable, str(Path(__file__).with_name("_cli_fuzz.py")),
                           str(spec)], capture_output=True, text=True, env=env, cwd=scratch,
                          timeout=120 + len(cases) * (CAP_S + 5))
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcomes = [Outcome(**o) for o in json.loads(result.read_text())]
    print(json.dumps(summary(outcomes), indent=1))
    assert len(outcomes) == len(cases)
    assert all(o.kind != "FAIL" for o in outcomes), _report(outcomes, "unreadable")
    assert ONLY is not None or any(o.kind == "failed" and "permission" in o.error_line.lower()
                                   for o in outcomes), [o.error_line for o in outcomes]



def test_cases_the_fuzz_found(scratch, tmp_path):
    cases = [Case(i, args) for i, args in enumerate(FOUND)]
    outcomes = run_cases(cases, tmp_path, scratch / "assets", CAP_S)
    assert all(o.kind in ("failed", "usage") for o in outcomes), \
        [(o.command[:120], o.kind, o.problem) for o in outcomes]
