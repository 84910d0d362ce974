"""Helpers shared by the hardening tests (no fixtures here; those live in conftest.py)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EDGECNN = [sys.executable, "-m", "edgecnn.cli.main"]
TRAINED_LENET5 = REPO / "weights" / "lenet5_fmnist.pt"  # committed Fashion-MNIST weights


def has_tflite(bundle: Path) -> bool:
    return (bundle / "model.fp32.tflite").is_file()


def snapshot(bundle: Path) -> dict[str, str]:
    """sha256 of every file in a bundle folder (manifest included)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(bundle.iterdir()) if p.is_file()}


def bundle_state(bundle: Path) -> str:
    """'verified' when Bundle.open + verify pass and every manifest file is there, else why not."""
    from edgecnn.bundle import Bundle
    from edgecnn.errors import EdgeCNNError

    try:
        b = Bundle.open(bundle)
        b.verify()
    except EdgeCNNError as exc:
        return f"broken: {exc}"
    names = {a.file for a in b.manifest.artifacts}
    extra = {p.name for p in bundle.iterdir()} - names - {"manifest.json"}
    return "verified" if not extra else f"verified (+{sorted(extra)})"


def is_correct_outcome(outcome: str) -> bool:
    """The one definition of a correct end for a case fed damaged or hostile input: it ran, or
    it stopped with an EdgeCNNError subclass (ManifestError, ChecksumError, BundleError,
    BackendUnavailableError, ...). ``outcome`` is "ran" or an error class name, optionally
    after a qualifier ("signed ran", "unsigned ChecksumError"). That the message is non-empty
    is checked where the exception is caught."""
    import edgecnn.errors as errors

    name = outcome.split()[-1] if outcome.strip() else ""
    cls = getattr(errors, name, None)
    return name == "ran" or (isinstance(cls, type) and issubclass(cls, errors.EdgeCNNError))


def child_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def load_json(path: Path):
    return json.loads(path.read_text())
