"""A bundle on its way to a device: packed once on the driver (the object store carries it to
every node that needs it), unpacked into the device's cache and verified there.

TensorRT engines are never shipped: they belong to the GPU and TensorRT version that built them,
so the device builds its own from the prepared plan (:mod:`edgecnn.fleet.device`). The digest
is the sha256 of the shipped manifest, which holds every shipped artifact's sha256.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.errors import ChecksumError
from edgecnn.manifest import MANIFEST_NAME, is_safe_filename

CACHE_ENV = "EDGECNN_FLEET_CACHE"


@dataclass
class ShippedBundle:
    digest: str  # sha256 of files[MANIFEST_NAME]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


def pack_bundle(path: str | os.PathLike) -> ShippedBundle:
    """The bundle at ``path`` without TensorRT engines (and their timing caches)."""
    from edgecnn.bundle import Bundle

    bundle = Bundle.open(path)
    manifest = bundle.manifest
    engines = [a for a in manifest.artifacts if a.backend == "tensorrt"]
    dropped = {a.file for a in engines} | {str(a.details.get("timing_cache")) for a in engines}
    manifest.artifacts = [a for a in manifest.artifacts if a.backend != "tensorrt"]
    files = {p.name: p.read_bytes() for p in sorted(bundle.path.iterdir())
             if p.is_file() and not p.is_symlink() and p.name != MANIFEST_NAME
             and p.name not in dropped and is_safe_filename(p.name)}
    text = manifest.to_json().encode("utf-8")
    files[MANIFEST_NAME] = text
    return ShippedBundle(hashlib.sha256(text).hexdigest(), files)


def cache_root() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache",
                                                      "edgecnn", "fleet")
    return Path(base)


def unpack_bundle(shipped: ShippedBundle, suffix: str = "") -> Path:
    """The bundle in this node's cache (``<digest><suffix>``), written once, atomically; the
    manifest is checked against the digest and every artifact against its sha256."""
    root = cache_root()
    dest = root / f"{shipped.digest[:32]}{suffix}"
    if not (dest / MANIFEST_NAME).is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = _write_verified(shipped, root)
        try:
            os.rename(tmp, dest)
        except OSError:  # another task unpacked the same bundle first
            if not (dest / MANIFEST_NAME).is_file():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def save_bundle(shipped: ShippedBundle, out: str | os.PathLike) -> Path:
    """The lab-built bundle as the bundle folder ``out`` on this machine (replaced whole)."""
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_verified(shipped, out.parent)
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    try:
        if out.exists():
            os.rename(out, old)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out


def _write_verified(shipped: ShippedBundle, parent: Path) -> Path:
    """A new folder under ``parent`` holding the shipped files, every artifact verified."""
    from edgecnn.bundle import Bundle

    got = hashlib.sha256(shipped.files.get(MANIFEST_NAME, b"")).hexdigest()
    if got != shipped.digest:
        raise ChecksumError(f"the shipped manifest does not match its digest ({got[:12]}... != "
                            f"{shipped.digest[:12]}...): damaged in transfer; run again")
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=parent))
    try:
        for name, data in shipped.files.items():
            if not is_safe_filename(name):
                raise ChecksumError(f"shipped bundle file name {name!r} is not a plain name")
            (tmp / name).write_bytes(data)
        Bundle.open(tmp).verify()  # every artifact's sha256, before it is used
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp
