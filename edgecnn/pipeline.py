"""``export(model, options) -> ExportResult``: the one path from a model to a bundle.

Order of work (every argument check happens before anything heavy):
  1. resolve the target (backend name or device profile) and the precision;
  2. ``backend.check(options, profile)``, ``options.check()`` (paths, counts) and --out;
  3. load the model (zoo / weights / checkpoint / factory / .pt2);
  4. open a BundleWriter (staging folder; the old bundle stays until the swap);
  5. stage model.onnx (fp32) and check parity against PyTorch;
  6. ``backend.export(ctx)`` for every other artifact;
  7. write manifest.json and swap the staged bundle into place.
An exception anywhere leaves the earlier bundle as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgecnn import catalog
from edgecnn.backends.registry import ExportContext, get_backend
from edgecnn.errors import EdgeCNNError
from edgecnn.manifest import Artifact, Manifest, TensorSpec
from edgecnn.models.loading import LoadedModel
from edgecnn.options import ExportOptions

DEFAULT_BUNDLE_ROOT = Path("bundles")
FP32_ONNX = catalog.artifact_file("onnxruntime", "fp32")
# source keys that must agree for artifacts of an earlier export to be kept beside new ones
SAME_MODEL_KEYS = ("kind", "model", "sha256", "input_size", "num_classes")


@dataclass
class ExportResult:
    bundle: Path
    artifacts: list[Artifact]  # artifacts written by this export (model.onnx first)
    messages: list[str] = field(default_factory=list)
    manifest: Manifest | None = None
    onnx: Any = None  # OnnxExportInfo of model.onnx
    parity: Any = None  # ParityReport of model.onnx vs PyTorch
    seconds: float = 0.0


def export(model: str | LoadedModel, options: ExportOptions | None = None,
           log: Callable[[str], None] | None = print) -> ExportResult:
    """Export ``model`` (see :func:`edgecnn.models.loading.load_model`) into a bundle."""
    from edgecnn._lazy import require
    from edgecnn.bundle import BundleWriter, now_iso, tool_versions
    from edgecnn.export.onnx import export_onnx
    from edgecnn.export.parity import check_onnx_parity
    from edgecnn.models.loading import load_model
    from edgecnn.targets import resolve_target

    t0 = time.perf_counter()
    options = options or ExportOptions()
    messages: list[str] = []

    def say(msg: str) -> None:
        messages.append(msg)
        if log is not None:
            log(msg)

    # 1-2. target, precision, argument checks
    profile = resolve_target(options.target)
    backend = get_backend(profile.backend)
    precision = backend.resolve_precision(options, profile)
    backend.check(options, profile)
    options.check()
    if options.out is not None:
        _check_out(Path(options.out))
    for mod in ("torch", "onnx", "onnxscript", "onnxruntime"):
        require(mod, None, "export a model")

    # 3. the model
    loaded = model if isinstance(model, LoadedModel) else load_model(
        model, weights=options.weights, input_size=options.input_size,
        num_classes=options.num_classes)
    c, h, w = loaded.input_size
    say(f"model {loaded.name}: input {c}x{h}x{w}, {len(loaded.labels)} classes "
        f"({loaded.source.get('kind', 'module')})")
    out = Path(options.out) if options.out is not None else DEFAULT_BUNDLE_ROOT / loaded.name
    _check_out(out)
    manifest, keep = _start_manifest(out, loaded)
    if keep:
        say(f"updating bundle {out} (same model; keeping its other artifacts)")

    threads = options.threads or profile.threads or 2
    fixed_batch = loaded.source.get("fixed_batch")
    if fixed_batch is not None:
        say(f"note: the program has a fixed batch of {fixed_batch}, so model.onnx will too; export "
            f"it with dynamic_shapes=({{0: torch.export.Dim('batch')}},) for a dynamic batch")
    batch_dim = fixed_batch if fixed_batch is not None else -1
    inputs = [TensorSpec(name="input", shape=[batch_dim, c, h, w], dtype="float32", layout="NCHW")]
    outputs = [TensorSpec(name="logits", shape=[batch_dim, len(loaded.labels)], dtype="float32")]

    written: list[Artifact] = []
    with BundleWriter(out, manifest, keep_existing=keep) as writer:
        # 5. model.onnx + parity
        onnx_path = writer.path_for(FP32_ONNX)
        say("exporting to ONNX (torch.export + onnxscript optimizer)...")
        info = export_onnx(loaded.module, loaded.input_size, onnx_path,
                           dynamic_batch=fixed_batch is None, batch=fixed_batch or 2, log=say)
        if info.training_ops:
            say(f"warning: training-only ops left in the graph: {info.training_ops}")
        say(f"model.onnx: opset {info.opset}, {info.nodes} nodes, "
            f"{info.size_bytes / 1e6:.1f} MB, {info.seconds:.1f}s")
        parity = check_onnx_parity(loaded.module, onnx_path, loaded.input_size,
                                   samples=options.parity_samples, seed=options.seed,
                                   threads=threads, fixed_batch=fixed_batch)
        say(f"parity vs PyTorch: {parity.summary()}")
        fp32 = writer.add_artifact(FP32_ONNX, "onnxruntime", "fp32", inputs, outputs,
                                   details={"parity": parity.to_dict(), "export": info.to_dict()})
        written.append(fp32)
        # 6. the target backend
        ctx = ExportContext(model=loaded, options=options, profile=profile, precision=precision,
                            writer=writer, fp32_onnx=onnx_path, log=say, artifacts=[fp32])
        if not (backend.name == "onnxruntime" and precision == "fp32"):
            say(f"building {backend.name}:{precision}...")
            for art in backend.export(ctx) or []:
                if art not in ctx.artifacts:
                    ctx.artifacts.append(art)
                if art not in written:
                    written.append(art)
        # 7. manifest (written by the writer on a clean exit)
        manifest.tool_versions = tool_versions()
        manifest.created = now_iso()
    seconds = round(time.perf_counter() - t0, 2)
    say(f"bundle {out} ready in {seconds:.1f}s: {', '.join(a.file for a in written)}")
    return ExportResult(bundle=out, artifacts=written, messages=messages, manifest=manifest,
                        onnx=info, parity=parity, seconds=seconds)


def _check_out(out: Path) -> None:
    """Fail before the (slow) export when the output folder cannot be created."""
    from edgecnn.bundle import check_output_folder

    check_output_folder(out, "--out", "bundle folder")


def same_model(manifest: Manifest, loaded: LoadedModel) -> bool:
    """The bundle of ``manifest`` was exported from this very model (same weights and size)."""
    return manifest.model == loaded.name and all(
        manifest.source.get(k) == loaded.source.get(k) for k in SAME_MODEL_KEYS)


def _start_manifest(out: Path, loaded: LoadedModel) -> tuple[Manifest, bool]:
    """An existing bundle of the same model keeps its artifacts; anything else starts fresh."""
    from edgecnn.bundle import Bundle

    fresh = Manifest(model=loaded.name, preprocess=loaded.preprocess, labels=list(loaded.labels),
                     source=dict(loaded.source))
    if not (out / "manifest.json").is_file():
        return fresh, False
    try:
        old = Bundle.open(out).manifest
    except EdgeCNNError:
        return fresh, False
    if not same_model(old, loaded):
        return fresh, False
    old.preprocess = loaded.preprocess
    old.labels = list(loaded.labels)
    from edgecnn.tensorrt.plan import PREPARED_KEY

    prepared = old.source.get(PREPARED_KEY)  # checksums of build_plan.json and .trt.onnx
    old.source = dict(loaded.source)
    if prepared is not None:  # those files are carried over, and so is their record
        old.source[PREPARED_KEY] = prepared
    return old, True
