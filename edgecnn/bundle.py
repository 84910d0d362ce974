"""Read and write bundle folders atomically; verify artifact checksums. Stdlib only.

Writing goes through :class:`BundleWriter`: every file is written into a staging
folder beside the target, the manifest last, and the staging folder then replaces
the bundle in one step. A failed or killed export leaves the earlier bundle as it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as _dt
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

from edgecnn.errors import BundleError, ChecksumError, ManifestError
from edgecnn.manifest import (MANIFEST_NAME, Artifact, Manifest, TensorSpec,
                              is_safe_filename)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class Bundle:
    """An opened bundle folder: its manifest plus checked paths to its files."""

    def __init__(self, path: Path, manifest: Manifest):
        self.path = path
        self.manifest = manifest

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Bundle":
        root = Path(path)
        if not root.exists():
            raise BundleError(f"bundle folder {root} does not exist")
        if not root.is_dir():
            raise BundleError(f"{root} is not a bundle folder (expected a folder with {MANIFEST_NAME})")
        mpath = root / MANIFEST_NAME
        if not mpath.is_file():
            raise BundleError(f"{root} has no {MANIFEST_NAME}; is it an edgecnn bundle? "
                              f"Create one with 'edgecnn export'")
        if mpath.is_symlink():
            raise ManifestError(f"{mpath} is a symbolic link; refusing to follow it")
        if mpath.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{mpath} is larger than {MAX_MANIFEST_BYTES} bytes; not a manifest")
        return cls(root.resolve(), Manifest.from_json(mpath.read_bytes().decode("utf-8", "replace")))

    def file(self, name: str) -> Path:
        """Path of a file inside the bundle; refuses names or links that leave the folder."""
        if not is_safe_filename(name):
            raise ManifestError(f"bundle file name {name!r} is not a plain file name")
        p = self.path / name
        if p.is_symlink():
            raise BundleError(f"{p} is a symbolic link; bundle files must be regular files")
        if not p.is_file():
            raise BundleError(f"bundle file {name} is missing from {self.path}; re-export the bundle")
        return p

    def artifact_path(self, artifact: Artifact, verify: bool = True) -> Path:
        p = self.file(artifact.file)
        # Cheap before hashing or loading: a truncated, swapped or padded file is refused
        # without reading it (size_bytes 0 means the writer did not record a size).
        size = p.stat().st_size
        if artifact.size_bytes > 0 and size != artifact.size_bytes:
            raise ChecksumError(
                f"{artifact.file} does not match its manifest checksum: it is {size} bytes, the "
                f"manifest says {artifact.size_bytes} (truncated, replaced or damaged in transfer; "
                f"checked before reading it); copy the bundle again or re-export it")
        if verify:
            actual = sha256_file(p)
            if actual != artifact.sha256:
                raise ChecksumError(
                    f"{artifact.file} does not match its manifest checksum "
                    f"(sha256 {actual[:12]}... != {artifact.sha256[:12]}...): the file was changed or "
                    f"damaged in transfer; copy the bundle again or re-export it")
        return p

    def verify(self) -> None:
        for a in self.manifest.artifacts:
            self.artifact_path(a, verify=True)

    def find(self, backend: str | None = None, precision: str | None = None) -> Artifact:
        return self.manifest.find(backend, precision)


def check_output_folder(path: str | os.PathLike, option: str, what: str = "output folder") -> None:
    """Fail before any work when folder ``path`` (``option`` on the command line) can neither
    be used nor created: it, or the nearest existing folder above it, is a file or is not
    writable. Nothing is created here."""
    out = Path(path)
    for p in [out, *out.absolute().parents]:
        if not p.exists():
            continue
        if not p.is_dir():
            where = "is a file" if p == out else f"cannot be created: {p} is a file"
            raise BundleError(f"{what} {out} {where}; choose another {option}")
        if not os.access(p, os.W_OK | os.X_OK):
            raise BundleError(f"{what} {out} cannot be written: {p} is not writable; choose "
                              f"another {option}")
        return


def tool_versions() -> dict[str, str]:
    """What a manifest records: edgecnn, Python and every installed library edgecnn records
    (edgecnn.platform_info.package_versions(): the catalogue's list, read from metadata)."""
    import platform

    from edgecnn import __version__
    from edgecnn.platform_info import package_versions as installed

    out = {"edgecnn": __version__, "python": platform.python_version()}
    out.update((k, v) for k, v in installed().items() if k not in out)
    return out


def package_versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the given distributions; absent ones are left out."""
    import importlib.metadata as md

    out = {}
    for name in distributions:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


class BundleWriter:
    """Stage a new version of a bundle and swap it into place on success.

    >>> with BundleWriter(out, manifest) as w:          # doctest: +SKIP
    ...     onnx.save(model, w.path_for("model.onnx"))
    ...     w.add_artifact("model.onnx", "onnxruntime", "fp32", inputs, outputs)

    With ``keep_existing=True`` the files of an existing bundle at ``out`` are carried
    over (hard links where possible) so a new artifact is added beside them.
    """

    def __init__(self, out: str | os.PathLike, manifest: Manifest, keep_existing: bool = True):
        self.out = Path(out).absolute()
        self.manifest = manifest
        self.keep_existing = keep_existing
        self.staging: Path | None = None

    # -- context manager ------------------------------------------------------------
    def __enter__(self) -> "BundleWriter":
        parent = self.out.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BundleError(f"cannot create output folder {parent}: {exc.strerror}") from exc
        if self.out.exists() and not self.out.is_dir():
            raise BundleError(f"{self.out} exists and is not a folder; choose another --out")
        if self.out.is_dir() and any(self.out.iterdir()) and not (self.out / MANIFEST_NAME).is_file():
            raise BundleError(f"{self.out} exists, is not empty and is not an edgecnn bundle; "
                              f"refusing to replace it (choose another --out)")
        if not os.access(parent, os.W_OK):
            raise BundleError(f"output folder {parent} is not writable; choose another --out")
        _remove_stale_staging(parent, self.out.name)
        try:
            # the pid in the name lets the next writer tell a killed export's leftovers
            # from a live one's staging folder
            self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.staging-{os.getpid()}-",
                                                 dir=parent))
            # mkdtemp makes a private 0700 folder; the bundle gets the usual mode (0777 & ~umask)
            os.chmod(self.staging, 0o777 & ~current_umask())
        except OSError as exc:
            raise BundleError(f"cannot write in {parent}: {exc.strerror}") from exc
        if self.keep_existing and (self.out / MANIFEST_NAME).is_file():
            self._carry_over()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            if self.staging is not None and self.staging.exists():
                shutil.rmtree(self.staging, ignore_errors=True)

    # -- staging --------------------------------------------------------------------
    def path_for(self, name: str) -> Path:
        """Where to write bundle file ``name`` while staging.

        A file carried over from the existing bundle is a hard link to the live bundle's
        file: it is unlinked here, so the write creates a new file and the live bundle
        stays as it was until the swap. To read a carried-over file use :meth:`read_path`.
        """
        p = self.read_path(name)
        if p.is_file() or p.is_symlink():
            p.unlink()
        return p

    def read_path(self, name: str) -> Path:
        """Staged path of ``name`` for reading (a carried-over file, or one written here)."""
        if self.staging is None:
            raise RuntimeError("BundleWriter used outside its 'with' block")
        if not is_safe_filename(name):
            raise BundleError(f"bundle file name {name!r} is not a plain file name")
        return self.staging / name

    def write_text(self, name: str, text: str) -> Path:
        p = self.path_for(name)
        p.write_text(text, encoding="utf-8")
        return p

    def add_artifact(self, file: str, backend: str, precision: str,
                     inputs: Iterable[TensorSpec], outputs: Iterable[TensorSpec],
                     details: dict[str, Any] | None = None) -> Artifact:
        p = self.read_path(file)
        if not p.is_file():
            raise BundleError(f"artifact {file} was not written to the staging folder")
        artifact = Artifact(file=file, sha256=sha256_file(p), backend=backend, precision=precision,
                            inputs=list(inputs), outputs=list(outputs), size_bytes=p.stat().st_size,
                            details=dict(details or {}))
        self.manifest.replace_artifact(artifact)
        return artifact

    def _carry_over(self) -> None:
        assert self.staging is not None
        for f in self.out.iterdir():
            if f.name == MANIFEST_NAME or not f.is_file() or f.is_symlink():
                continue
            dst = self.staging / f.name
            try:
                os.link(f, dst)  # same filesystem: free and instant
            except OSError:
                shutil.copy2(f, dst)

    def _commit(self) -> None:
        assert self.staging is not None
        if not self.manifest.created:
            self.manifest.created = now_iso()
        mtmp = self.staging / (MANIFEST_NAME + ".tmp")
        mtmp.write_text(self.manifest.to_json(), encoding="utf-8")
        _fsync_file(mtmp)
        os.replace(mtmp, self.staging / MANIFEST_NAME)
        _fsync_dir(self.staging)
        _swap_into_place(self.staging, self.out)
        self.staging = None


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (os.umask can only
    be read by setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else (EPERM)
        return True
    return True


def _remove_stale_staging(parent: Path, name: str) -> None:
    """Remove ``.NAME.staging-PID-*`` / ``.NAME.old-PID`` left by a killed writer of NAME.

    Only folders whose writer process is gone are removed (same host; a live export's
    staging folder is left alone). Folders without a pid in the name are left as they are.
    """
    for prefix in (f".{name}.staging-", f".{name}.old-"):
        for d in parent.glob(prefix + "*"):
            pid_text = d.name[len(prefix):].split("-", 1)[0]
            if not pid_text.isdigit() or d.is_symlink() or not d.is_dir():
                continue
            pid = int(pid_text)
            if pid != os.getpid() and not _pid_alive(pid):
                shutil.rmtree(d, ignore_errors=True)


def _fsync_file(p: Path) -> None:
    with open(p, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(p: Path) -> None:
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2). False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD = -100
    rc = fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def _swap_into_place(staging: Path, out: Path) -> None:
    """Put ``staging`` at ``out``; the old ``out`` (if any) is removed afterwards."""
    if not out.exists():
        os.rename(staging, out)
        _fsync_dir(out.parent)
        return
    if _renameat2_exchange(staging, out):
        # staging now holds the old bundle
        _fsync_dir(out.parent)
        shutil.rmtree(staging, ignore_errors=True)
        return
    backup = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.rename(out, backup)
    os.rename(staging, out)
    _fsync_dir(out.parent)
    shutil.rmtree(backup, ignore_errors=True)
