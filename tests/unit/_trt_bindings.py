"""The real TensorRT Python bindings, as text: every name their ``tensorrt.so`` registers.

``tensorrt-cu12-bindings`` wheels (about 1.2 MB each) come from the package index through pip
into a cache (``$EDGECNN_TRT_BINDINGS_CACHE``, default ``~/.cache/edgecnn/trt-bindings``), are
checked against the sha256 recorded here, and are read without importing them (their ``-libs``
packages, hundreds of MB and a GPU driver, are not installed). When the index cannot be reached
the callers skip with pip's reason.

What the strings prove: that a *name* is registered (pybind11 keeps every class, method, property,
enum member and argument name, and every docstring, as a C string). They do not prove which class
or enum owns a name; where ownership matters the tests look for the registered docstring instead.
The linker merges a short string into the tail of a longer one ("INT8" may live only inside
"UINT8"), so :meth:`Bindings.has` accepts a suffix match and says so.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# release -> (exact version on the index, sha256 of the wheel we read)
WHEELS = {
    "10.3": ("10.3.0", "59ace22d7f2ca1e9dcde2cb0cb5916912cb3cd5a9d72dd7852be0160d9b3a0ee"),
    "11.4": ("11.4.0.106", "e2ab48f316bbff6a7a44a30e94a9ceb0d2cf6645ff39feadecfa68d7cb7a94bf"),
}
CACHE = Path(os.environ.get("EDGECNN_TRT_BINDINGS_CACHE",
                            Path.home() / ".cache" / "edgecnn" / "trt-bindings"))
_TOKEN = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


class Unavailable(Exception):
    """The wheel could not be fetched (offline, index down): the caller skips with this reason."""


@dataclass
class Bindings:
    release: str
    version: str
    tokens: frozenset[str]  # identifiers in tensorrt.so plus the package's __init__.py
    text: bytes  # the raw .so, for docstrings

    def has(self, name: str) -> str | None:
        """'exact', 'suffix' (only inside a longer registered string) or None."""
        if name in self.tokens:
            return "exact"
        return "suffix" if any(t.endswith(name) for t in self.tokens) else None

    def has_doc(self, sentence: str) -> bool:
        return sentence.encode() in self.text


def _download(release: str) -> Path:
    version, sha = WHEELS[release]
    folder = CACHE / version
    wheels = sorted(folder.glob("tensorrt_cu12_bindings-*.whl")) if folder.is_dir() else []
    if not wheels:
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.11", "--implementation", "cp",
               "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux_2_28_x86_64",
               f"tensorrt-cu12-bindings=={version}", "-d", str(folder)]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"pip download of tensorrt-cu12-bindings=={version} failed: {exc}") from exc
        wheels = sorted(folder.glob("tensorrt_cu12_bindings-*.whl"))
        if res.returncode != 0 or not wheels:
            last = [ln for ln in (res.stderr or res.stdout).splitlines() if ln.strip()][-1:] or ["?"]
            raise Unavailable(f"package index unreachable for tensorrt-cu12-bindings=={version}: {last[0]}")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if digest != sha:
        raise AssertionError(f"{wheels[0]} has sha256 {digest}, expected {sha}: delete it and rerun")
    return wheels[0]


def _init_names(source: str) -> set[str]:
    """Names the package's Python __init__.py defines at top level (nptype, volume, ...)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


@lru_cache(maxsize=None)
def bindings(release: str) -> Bindings:
    wheel = _download(release)
    with zipfile.ZipFile(wheel) as z:
        so = z.read("tensorrt_bindings/tensorrt.so")
        init = z.read("tensorrt_bindings/__init__.py").decode()
    tokens = {t.decode() for t in _TOKEN.findall(so)} | _init_names(init)
    return Bindings(release, WHEELS[release][0], frozenset(tokens), so)
