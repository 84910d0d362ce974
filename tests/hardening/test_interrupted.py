"""Interrupted work: SIGKILL an export or a training run at several moments.

After every kill the bundle folder must be exactly the old bundle (same bytes) or a complete
new one whose artifacts verify; never something that opens but is wrong. Staging folders a
killed export leaves behind are removed by the next BundleWriter for the same bundle, and a
killed training run continues from last.pt with --resume to the same weights as a run that
was never interrupted.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from _hardening_lib import EDGECNN, bundle_state, child_env, snapshot

from edgecnn.bundle import BundleWriter
from edgecnn.manifest import Manifest

SEED = int(os.environ.get("EDGECNN_FUZZ_SEED", "20261127"))


def staging_dirs(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.staging-*")) + sorted(out.parent.glob(f".{out.name}.old-*"))


ONNX_EXPORT = ("--target", "onnx")
INT8_EXPORT = ("--target", "onnx", "--precision", "int8", "--calib",
               str(Path(__file__).resolve().parents[2] / "calibration" / "fashion-mnist-sample.toml"))


def kill_export(out: Path, moment: tuple[str, float], timeout: float = 240,
                args: tuple[str, ...] = ONNX_EXPORT) -> bool:
    """Start 'edgecnn export' into out and SIGKILL it at ``moment``; True if it finished first.

    moment: ("after", s) kills s seconds after start; ("staging", s) kills s seconds after
    its staging folder appears (the window where files are being written).
    """
    before = set(staging_dirs(out))
    proc = subprocess.Popen([*EDGECNN, "export", "lenet5", *args, "--out", str(out),
                             "--parity-samples", "2", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
    try:
        start = time.monotonic()
        kind, delay = moment
        if kind == "staging":
            while proc.poll() is None and not (set(staging_dirs(out)) - before):
                if time.monotonic() - start > timeout:
                    raise AssertionError("export never created a staging folder")
                time.sleep(0.005)
            start = time.monotonic()
        while proc.poll() is None and time.monotonic() - start < delay:
            time.sleep(0.005)
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)  # only the child we started
        proc.wait(timeout=timeout)
        if finished:
            assert proc.returncode == 0, f"export failed on its own (rc {proc.returncode})"
        return finished
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_export_leaves_old_or_complete_new_bundle(tiny_bundle, tmp_path):
    out = tmp_path / "lenet5"
    shutil.copytree(tiny_bundle, out)
    old = snapshot(out)
    rng = random.Random(SEED)
    moments = [("after", 0.5), ("after", 2.0), ("staging", 0.0), ("staging", 0.05),
               ("staging", rng.uniform(0.0, 1.5)), ("after", rng.uniform(3.0, 9.0))]
    results = []
    for moment in moments:
        finished = kill_export(out, moment)
        now = snapshot(out)
        state = bundle_state(out)
        assert now == old or state == "verified", (
            f"kill at {moment}: bundle is neither the old one nor a verified new one: {state}")
        results.append((moment, finished, "old" if now == old else "new"))
        old = now  # a completed export is the next round's "old" bundle
    # leftovers of the killed exports do not break the next one, which cleans them up
    assert kill_export(out, ("after", 600)), "the export after the kills did not finish"
    assert bundle_state(out) == "verified"
    assert staging_dirs(out) == [], f"stale staging folders left: {staging_dirs(out)} ({results})"
    assert any(not finished for _, finished, _ in results), results


def test_killed_int8_calibration_export_keeps_bundle_and_cache_whole(tiny_bundle, tmp_path):
    """SIGKILL while calibrating, quantizing and writing the range cache: the bundle stays the
    old one (no model.int8.onnx, no cache) or a verified new one, and the next run completes."""
    from edgecnn.bundle import Bundle

    out = tmp_path / "lenet5"
    shutil.copytree(tiny_bundle, out)
    old = snapshot(out)
    rng = random.Random(SEED + 1)
    moments = [("staging", 0.0), ("staging", 0.3), ("staging", rng.uniform(0.3, 3.0)),
               ("staging", rng.uniform(1.0, 6.0))]
    killed = 0
    for moment in moments:
        finished = kill_export(out, moment, args=INT8_EXPORT)
        killed += not finished
        now = snapshot(out)
        assert now == old or bundle_state(out).startswith("verified"), (
            f"kill at {moment}: {bundle_state(out)}")
        if now == old:
            assert not any(name.startswith(("model.int8", "calibration")) for name in now), now
        old = now
    assert killed, "every int8 export finished before it could be killed"
    assert kill_export(out, ("after", 600), args=INT8_EXPORT)
    assert bundle_state(out).startswith("verified"), bundle_state(out)
    assert staging_dirs(out) == []
    b = Bundle.open(out)
    assert {a.precision for a in b.manifest.artifacts} >= {"fp32", "int8"}


def _tiny_manifest() -> Manifest:
    from edgecnn.manifest import Preprocess

    return Manifest(model="m", labels=["a", "b"], preprocess=Preprocess(size=[4, 4], channels=1,
                    mean=[0.0], std=[1.0], channel_order="L"))


def test_writer_removes_only_dead_writers_staging(tmp_path):
    out = tmp_path / "b"
    live = subprocess.Popen(["sleep", "60"])
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()
        stale = tmp_path / f".b.staging-{dead.pid}-abc"
        stale_old = tmp_path / f".b.old-{dead.pid}"
        running = tmp_path / f".b.staging-{live.pid}-xyz"
        legacy = tmp_path / ".b.staging-q1w2e3"
        other = tmp_path / f".c.staging-{dead.pid}-abc"
        for d in (stale, stale_old, running, legacy, other):
            d.mkdir()
            (d / "model.onnx").write_bytes(b"partial")
        with BundleWriter(out, _tiny_manifest()) as w:
            w.write_text("notes.txt", "x")
        assert not stale.exists() and not stale_old.exists()
        assert running.exists() and legacy.exists() and other.exists()
        assert (out / "manifest.json").is_file()
    finally:
        live.kill()
        live.wait()


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 48)
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for k in range(4):  # learnable: a bright square whose place says the class
        images[labels == k, 4 + 5 * k:10 + 5 * k, 4 + 5 * k:10 + 5 * k] = 220
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, images=images, labels=labels, classes=np.array(["a", "b", "c", "d"]))
    return path


def _train_cmd(data: Path, out: Path, *extra: str) -> list[str]:
    return [*EDGECNN, "train", "lenet5", "--data", str(data), "--val", str(data), "--test",
            str(data), "--out", str(out), "--epochs", "4", "--batch-size", "32", "--threads", "1",
            "--augment", "none", "--no-progress", *extra]


def test_killed_training_resumes_to_the_same_weights(tiny_npz, tmp_path):
    import torch

    from edgecnn.models.checkpoint import read_checkpoint

    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(_train_cmd(tiny_npz, killed), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=child_env())
    try:
        start = time.monotonic()
        while proc.poll() is None and not (killed / "last.pt").is_file():
            assert time.monotonic() - start < 240, "training never wrote last.pt"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    ckpt = read_checkpoint(killed / "last.pt")  # complete, loadable with weights_only=True
    assert 1 <= ckpt["epoch"] < 4

    subprocess.run(_train_cmd(tiny_npz, killed, "--resume"), check=True, env=child_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    subprocess.run(_train_cmd(tiny_npz, clean), check=True, env=child_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    a, b = read_checkpoint(killed / "last.pt"), read_checkpoint(clean / "last.pt")
    assert a["epoch"] == b["epoch"] == 4
    for k, v in b["state_dict"].items():
        assert torch.equal(a["state_dict"][k], v), f"resumed weights differ at {k}"
