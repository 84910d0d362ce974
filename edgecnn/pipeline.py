"""``export(model, options) -> ExportResult``: the one path from a model to a bundle.

Order of work (every argument check happens before anything heavy):
  1. resolve every target (backend name or device profile) and precision into jobs;
  2. ``backend.check(options, profile)`` per job, ``options.check()`` (paths, counts) and --out;
  3. load the model (zoo / weights / checkpoint / factory / .pt2);
  4. open a BundleWriter (staging folder; the old bundle stays until the swap);
  5. stage model.onnx (fp32) and check parity against PyTorch, once for all jobs;
  6. ``backend.export(ctx)`` per job, every context sharing the staged artifacts and one
     :class:`~edgecnn.backends.shared_steps.SharedSteps` (calibration set, reference outputs);
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
from edgecnn.errors import EdgeCNNError, ExportError
from edgecnn.manifest import Artifact, Manifest, TensorSpec
from edgecnn.memory import release_memory
from edgecnn.models.loading import LoadedModel
from edgecnn.options import ExportOptions

DEFAULT_BUNDLE_ROOT = Path("bundles")
FP32_ONNX = catalog.artifact_file("onnxruntime", "fp32")
# source keys that must agree for artifacts of an earlier export to be kept beside new ones
SAME_MODEL_KEYS = ("kind", "model", "sha256", "input_size", "num_classes", "model_args")


@dataclass
class ExportJob:
    """One (target, precision) of an export: what it resolved to and the options it runs with."""

    target: str
    profile: Any  # TargetProfile
    backend: Any  # Backend
    precision: str
    options: ExportOptions

    @property
    def key(self) -> str:
        return f"{self.backend.name}:{self.precision}"


@dataclass
class ExportResult:
    bundle: Path
    artifacts: list[Artifact]  # artifacts written by this export (model.onnx first)
    messages: list[str] = field(default_factory=list)
    manifest: Manifest | None = None
    onnx: Any = None  # OnnxExportInfo of model.onnx
    parity: Any = None  # ParityReport of model.onnx vs PyTorch
    seconds: float = 0.0
    jobs: list[str] = field(default_factory=list)  # "backend:precision" in the order made
    shared: dict[str, dict[str, int]] = field(default_factory=dict)  # SharedSteps.summary()
    random_weights: bool = False  # no trained weights: parity is all the export can check


def plan_jobs(options: ExportOptions) -> list[ExportJob]:
    """Every (target, precision) of ``options``, resolved and checked before any work: an
    unknown target or precision, a precision a backend lacks, two targets that would write the
    same artifact, or an option no named target can use is one clear EdgeCNNError. Jobs run
    backend by backend in the order named, fp32 before fp16 before int8 (fp16 TFLite casts the
    fp32 flatbuffer when both are made)."""
    from edgecnn.targets import resolve_target

    precisions = options.precisions
    jobs: dict[str, ExportJob] = {}
    for target in options.targets:
        profile = resolve_target(target)
        backend = get_backend(profile.backend)
        for precision in precisions:
            single = options.single(target, precision)
            resolved = backend.resolve_precision(single, profile)
            job = ExportJob(target, profile, backend, resolved, options.single(target, resolved))
            if job.key in jobs and jobs[job.key].target != target:
                raise ExportError(f"--target {jobs[job.key].target} and {target} both make "
                                  f"{job.key}; name one of them")
            jobs.setdefault(job.key, job)
    if options.int8_io:
        if not any(j.backend.name == "tflite" and j.precision == "int8" for j in jobs.values()):
            raise ExportError("--int8-io applies to tflite int8 exports only; drop it or add "
                              "tflite with --precision int8")
        for job in jobs.values():  # the other artifacts of the same command ignore it
            job.options.int8_io = job.backend.name == "tflite" and job.precision == "int8"
    for job in jobs.values():
        job.backend.check(job.options, job.profile)
    order = {p: i for i, p in enumerate(catalog.PRECISIONS)}
    backends = list(dict.fromkeys(j.backend.name for j in jobs.values()))
    return sorted(jobs.values(), key=lambda j: (backends.index(j.backend.name),
                                                order[j.precision]))


def export(model: str | LoadedModel, options: ExportOptions | None = None,
           log: Callable[[str], None] | None = print, setup=None) -> ExportResult:
    """Export ``model`` (see :func:`edgecnn.models.loading.load_model`; ``setup``: a ModelSetup
    with factory arguments, preprocessing and labels) into a bundle, for every target and
    precision ``options`` names (``target="onnx,tflite", precision="fp32,int8"``)."""
    from edgecnn._lazy import require
    from edgecnn.backends.shared_steps import SharedSteps, random_input_set, torch_reference
    from edgecnn.bundle import BundleWriter, now_iso, tool_versions
    from edgecnn.export.onnx import export_onnx
    from edgecnn.export.parity import check_onnx_parity, parity_batches, random_inputs
    from edgecnn.models.loading import load_model

    t0 = time.perf_counter()
    options = options or ExportOptions()
    messages: list[str] = []

    def say(msg: str) -> None:
        messages.append(msg)
        if log is not None:
            log(msg)

    # 1-2. targets, precisions, argument checks
    jobs = plan_jobs(options)
    options.check()
    if options.out is not None:
        _check_out(Path(options.out))
    for mod in ("torch", "onnx", "onnxscript", "onnxruntime"):
        require(mod, None, "export a model")

    # 3. the model
    loaded = model if isinstance(model, LoadedModel) else load_model(
        model, weights=options.weights, input_size=options.input_size,
        num_classes=options.num_classes, setup=setup)
    c, h, w = loaded.input_size
    say(f"model {loaded.name}: input {c}x{h}x{w}, {len(loaded.labels)} classes "
        f"({loaded.source.get('kind', 'module')})")
    random_weights = has_random_weights(loaded)
    if random_weights:
        say("random weights: parity only (no trained weights, so no accuracy to measure)")
    out = Path(options.out) if options.out is not None else DEFAULT_BUNDLE_ROOT / loaded.name
    _check_out(out)
    manifest, keep = _start_manifest(out, loaded)
    if keep:
        say(f"updating bundle {out} (same model; keeping its other artifacts)")

    threads = options.threads or jobs[0].profile.threads or 2
    fixed_batch = loaded.source.get("fixed_batch")
    if fixed_batch is not None:
        say(f"note: the program has a fixed batch of {fixed_batch}, so model.onnx will too; export "
            f"it with dynamic_shapes=({{0: torch.export.Dim('batch')}},) for a dynamic batch")
    batch_dim = fixed_batch if fixed_batch is not None else -1
    inputs = [TensorSpec(name="input", shape=[batch_dim, c, h, w], dtype="float32", layout="NCHW")]
    outputs = [TensorSpec(name="logits", shape=[batch_dim, len(loaded.labels)], dtype="float32")]

    written: list[Artifact] = []
    shared = SharedSteps()
    with BundleWriter(out, manifest, keep_existing=keep) as writer:
        # 5. model.onnx + parity (once, whatever the targets)
        onnx_path = writer.path_for(FP32_ONNX)
        say("exporting to ONNX (torch.export + onnxscript optimizer)...")
        info = export_onnx(loaded.module, loaded.input_size, onnx_path,
                           dynamic_batch=fixed_batch is None, batch=fixed_batch or 2, log=say)
        if info.training_ops:
            say(f"warning: training-only ops left in the graph: {info.training_ops}")
        say(f"model.onnx: opset {info.opset}, {info.nodes} nodes, "
            f"{info.size_bytes / 1e6:.1f} MB, {info.seconds:.1f}s")
        sizes = parity_batches(options.parity_samples, fixed_batch)
        batches = random_inputs(sizes, loaded.input_size, options.seed)
        reference = torch_reference(shared, loaded.module, random_input_set(sizes, options.seed),
                                    batches)
        parity = check_onnx_parity(loaded.module, onnx_path, loaded.input_size,
                                   samples=options.parity_samples, seed=options.seed,
                                   threads=threads, fixed_batch=fixed_batch, reference=reference)
        say(f"parity vs PyTorch: {parity.summary()}")
        fp32 = writer.add_artifact(FP32_ONNX, "onnxruntime", "fp32", inputs, outputs,
                                   details={"parity": parity.to_dict(), "export": info.to_dict()})
        written.append(fp32)
        # 6. every target backend, sharing the staged artifacts and the shared steps
        staged: list[Artifact] = [fp32]
        for job in jobs:
            if job.backend.name == "onnxruntime" and job.precision == "fp32":
                continue
            ctx = ExportContext(model=loaded, options=job.options, profile=job.profile,
                                precision=job.precision, writer=writer, fp32_onnx=onnx_path,
                                log=say, artifacts=staged, shared=shared)
            say(f"building {job.key}...")
            for art in job.backend.export(ctx) or []:
                if art not in staged:
                    staged.append(art)
                if art not in written:
                    written.append(art)
            if len(jobs) > 1:
                release_memory()
        # 7. manifest (written by the writer on a clean exit)
        manifest.tool_versions = tool_versions()
        manifest.created = now_iso()
    seconds = round(time.perf_counter() - t0, 2)
    return ExportResult(bundle=out, artifacts=written, messages=messages, manifest=manifest,
                        onnx=info, parity=parity, seconds=seconds, jobs=[j.key for j in jobs],
                        shared=shared.summary(), random_weights=random_weights)


def has_random_weights(loaded: LoadedModel) -> bool:
    """The model was built without trained weights (a zoo model without --weights)."""
    return str(loaded.source.get("init", "")).startswith("random weights")


def _check_out(out: Path) -> None:
    """Fail before the (slow) export when the output folder cannot be created."""
    from edgecnn.bundle import check_output_folder

    check_output_folder(out, "--out", "bundle folder")


def same_model(manifest: Manifest, loaded: LoadedModel) -> bool:
    """The bundle of ``manifest`` was exported from this very model (same weights and size)
    and feeds it the same way (same preprocessing: INT8 ranges were calibrated with it)."""
    return manifest.model == loaded.name and manifest.preprocess == loaded.preprocess and all(
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
