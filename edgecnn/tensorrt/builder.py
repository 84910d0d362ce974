"""Build a strongly typed TensorRT engine from a prepared bundle, on the device.

API followed (TensorRT Python API, docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api):
``Builder.create_network(flags)``, ``OnnxParser.parse_from_file`` / ``get_error(i)`` with
``node()``, ``node_name()``, ``node_operator()``, ``desc()`` (infer/Parsers/Onnx),
``BuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE, ...)``,
``builder_optimization_level``, ``create_timing_cache`` / ``set_timing_cache``,
``progress_monitor`` (infer/Core/ProgressMonitor: phase_start, step_complete, phase_finish),
``add_optimization_profile`` / ``IOptimizationProfile.set_shape``, DLA via ``default_device_type``,
``DLA_core`` and ``BuilderFlag.GPU_FALLBACK``, and ``build_serialized_network``.

Everything that decides (which plan, DLA allowed, flags, error text) is in pure functions the
tests run without TensorRT; only :func:`build_engine` touches it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgecnn import catalog
from edgecnn.errors import BackendUnavailableError, BundleError, ChecksumError, ExportError
from edgecnn.runtime.trt_engine_info import TrtVersion, import_tensorrt
from edgecnn.tensorrt.build_log import BuildLog, make_logger
from edgecnn.tensorrt.dla import count_dla_layers, dla_eligible_layers, require_dla_layers
from edgecnn.tensorrt.network_io import network_io_specs
from edgecnn.tensorrt.plan import (BUILD_PLAN, PREPARED_KEY, BuildPlan, read_plans,
                                  recorded_plan_sha256)
from edgecnn.tensorrt.versions import BuildStrategy, build_strategy, in_range, network_flags


@dataclass
class ParserIssue:
    """One ONNX parser error, with the node's inputs looked up in the ONNX file."""

    node_index: int
    node_name: str
    op: str
    desc: str
    inputs: list[str]


def format_parser_errors(onnx_file: str, trt_version: str, issues: list[ParserIssue],
                         logged: list[str] | None = None) -> str:
    lines = [f"TensorRT {trt_version} could not parse {onnx_file} ({len(issues)} error(s)):"]
    for i in issues:
        where = f"node {i.node_index} '{i.node_name}' ({i.op})" if i.node_index >= 0 else "graph"
        ins = f" inputs [{', '.join(i.inputs)}]" if i.inputs else ""
        lines.append(f"  {where}{ins}: {i.desc}")
    descs = {i.desc for i in issues}
    lines += [f"  TensorRT: {m}" for m in (logged or [])[-10:] if m not in descs]
    lines.append(f"  run 'edgecnn check BUNDLE --target tensorrt --trt-version {trt_version}' on any "
                 f"machine to see what the graph needs")
    return "\n".join(lines)


def resolve_build(plans: dict[str, BuildPlan], precision: str | None, dla_core: int | None,
                  trt_version: str, tegra_module: str | None, tegra_dla_cores: int,
                  bundle: str = "BUNDLE") -> tuple[BuildPlan, BuildStrategy, list[str]]:
    """Pick the plan and check the device can build it. Pure; raises with what to do."""
    if not plans:
        raise BundleError(f"{bundle} has no {BUILD_PLAN}: prepare it first with "
                          f"'edgecnn export MODEL --target tensorrt --precision fp16 --out {bundle}'")
    if precision is None:
        if len(plans) > 1:
            raise BundleError(f"{bundle} is prepared for {', '.join(sorted(plans))}; choose one with "
                              f"--precision")
        precision = next(iter(plans))
    if precision not in plans:
        raise BundleError(f"{bundle} is not prepared for {precision} (it has {', '.join(sorted(plans))}); "
                          f"run 'edgecnn export ... --target tensorrt --precision {precision}' first")
    plan = plans[precision]
    strategy = build_strategy(trt_version)
    warnings = []
    if not in_range(strategy.version, plan.trt_version_min, None):
        raise BackendUnavailableError(
            f"this machine has TensorRT {trt_version}; the plan needs {plan.trt_version_min} or later "
            f"(target {plan.target or 'tensorrt'}); on Jetson Orin install JetPack 6.1+ (TensorRT 10.3)")
    if not in_range(strategy.version, None, plan.trt_version_max):
        warnings.append(f"TensorRT {trt_version} is newer than the plan's {plan.trt_version_max}; "
                        f"building anyway")
    if dla_core is not None:
        if not tegra_module:
            raise BackendUnavailableError("--dla-core needs a Jetson with DLA cores (AGX Orin, Orin NX); "
                                          "this machine is not a Jetson")
        if tegra_dla_cores <= 0:
            raise BackendUnavailableError(f"{tegra_module} has no DLA; drop --dla-core (the GPU runs "
                                          f"the engine)")
        if not 0 <= dla_core < tegra_dla_cores:
            raise BackendUnavailableError(f"{tegra_module} has DLA cores 0..{tegra_dla_cores - 1}, "
                                          f"not {dla_core}")
        if not strategy.dla_supported:
            raise BackendUnavailableError(f"TensorRT {strategy.version} cannot target the DLA of "
                                          f"{tegra_module}: DLA needs TensorRT 10.x (JetPack 6) or "
                                          f"11.4.1+ (JetPack 7.2.2+); build without --dla-core")
        if plan.precision == "fp32":
            raise BackendUnavailableError("the DLA runs fp16 and int8 layers only; prepare fp16 or int8")
    return plan, strategy, warnings


def cache_device(gpu_name: str | None, tegra_module: str | None) -> str:
    """The device a timing cache is keyed by: the Jetson module (every Orin's GPU is named 'Orin'),
    else the GPU's name."""
    return tegra_module or gpu_name or "gpu"


def verify_prepared(root: Path, record: dict | None, plan: BuildPlan) -> None:
    """The prepared files must match the manifest's record and the plan (copied intact)."""
    from edgecnn.bundle import sha256_file

    if record:
        if sha256_file(root / BUILD_PLAN) != record.get("build_plan_sha256"):
            raise ChecksumError(f"{BUILD_PLAN} does not match the manifest's checksum: it was changed "
                                f"or damaged in transfer; copy the bundle again or prepare it again")
        if record.get("precisions", {}).get(plan.precision, {}).get("trt_onnx_sha256") \
                != plan.source_onnx_sha256:
            raise ChecksumError(f"the manifest does not record {plan.trt_onnx} as in {BUILD_PLAN}; "
                                f"prepare the bundle again")
    if sha256_file(root / plan.trt_onnx) != plan.source_onnx_sha256:
        raise ChecksumError(f"{plan.trt_onnx} does not match its build plan checksum; copy the "
                            f"bundle again or prepare it again")


def _progress_monitor(trt, log: Callable[[str], None]):
    """An IProgressMonitor that shows the builder's phases (thread-safe, as TensorRT requires)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    class Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()
            self._tasks: dict[str, Any] = {}
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self._lock:
                indent = "  " if parent_phase else ""
                self._tasks[phase_name] = self.progress.add_task(f"{indent}{phase_name}", total=num_steps)

        def step_complete(self, phase_name, step):
            with self._lock:
                if phase_name in self._tasks:
                    self.progress.update(self._tasks[phase_name], completed=step + 1)
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            with self._lock:
                task = self._tasks.pop(phase_name, None)
                if task is not None:
                    self.progress.remove_task(task)

    return Monitor()


def _parser_issues(parser, onnx_path: Path) -> list[ParserIssue]:
    """The parser's errors; node inputs are looked up in the ONNX file when ``onnx`` is installed
    (it is not needed on the device: without it, the parser's own node name and op are shown)."""
    try:
        import onnx

        nodes = list(onnx.load(str(onnx_path), load_external_data=False).graph.node)
    except Exception:  # noqa: BLE001 - no onnx here, or a file onnx cannot read: TensorRT's words stand
        nodes = []
    out = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        idx = int(err.node())
        node = nodes[idx] if 0 <= idx < len(nodes) else None
        out.append(ParserIssue(idx, err.node_name() or (node.name if node else ""),
                               err.node_operator() or (node.op_type if node else ""), err.desc(),
                               list(node.input) if node is not None else []))
    return out


@dataclass
class BuiltEngine:
    """What :func:`build_engine` returns: the engine, its timing cache and what the build did."""

    engine: bytes
    timing_cache: bytes
    inputs: list
    outputs: list
    tf32: bool  # BuilderFlag.TF32 as the engine was built (cleared for fp32 plans)
    timing_cache_reused: bool  # the cache from disk was accepted by TensorRT
    profile: tuple[list[int], list[int], list[int]]
    dla_layers: int | None = None
    warnings: list[str] = field(default_factory=list)


def _timing_cache(config, cached: bytes | None, log: Callable[[str], None]):
    """(cache object, reused?). A cache TensorRT refuses (other device properties) is replaced by
    a fresh one, so a stale cache is neither used nor written back."""
    cache = config.create_timing_cache(cached or b"")
    if config.set_timing_cache(cache, ignore_mismatch=False):
        return cache, bool(cached)
    if cached:
        log("warning: TensorRT refused the timing cache in the bundle (made on a GPU with other "
            "properties); building with a fresh one")
    cache = config.create_timing_cache(b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        raise ExportError("TensorRT refused an empty timing cache; report this with 'edgecnn doctor' output")
    return cache, False


def _failure(onnx_name: str, build_log: BuildLog) -> ExportError:
    why = build_log.failure_text()
    return ExportError(f"TensorRT failed to build an engine from {onnx_name}"
                       + (f":\n{why}" if why else " and logged no error; rerun with more GPU memory "
                          "free or a larger --workspace"))


def build_engine(trt, onnx_path: Path, plan: BuildPlan, strategy: BuildStrategy,
                 dla_core: int | None, timing_cache: bytes | None,
                 log: Callable[[str], None] = print) -> BuiltEngine:
    """Parse, configure and build on this GPU. Needs TensorRT and a GPU."""
    build_log = BuildLog()
    logger = make_logger(trt, build_log)
    builder = trt.Builder(logger)
    bits = {name: int(getattr(trt.NetworkDefinitionCreationFlag, name))
            for name in strategy.network_flags if hasattr(trt.NetworkDefinitionCreationFlag, name)}
    network = builder.create_network(network_flags(strategy.version, bits))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise ExportError(format_parser_errors(onnx_path.name, str(strategy.version),
                                               _parser_issues(parser, onnx_path), build_log.errors))
    inputs, outputs = network_io_specs(trt, network)  # before minutes of building
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mb << 20)
    config.builder_optimization_level = plan.builder_optimization_level
    if plan.precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32 (TF32 is on by default)
    tf32 = bool(config.get_flag(trt.BuilderFlag.TF32))
    monitor = _progress_monitor(trt, log)
    config.progress_monitor = monitor
    shapes = plan.profile_shapes(static=dla_core is not None)
    profile = builder.create_optimization_profile()
    profile.set_shape(plan.input_name, *shapes)
    config.add_optimization_profile(profile)
    cache, reused = _timing_cache(config, timing_cache, log)
    if dla_core is not None:
        if builder.num_DLA_cores <= dla_core:
            raise BackendUnavailableError(f"TensorRT sees {builder.num_DLA_cores} DLA core(s); "
                                          f"--dla-core {dla_core} is not one of them")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)  # layers the DLA lacks run on the GPU
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # for the placement check
        require_dla_layers(*dla_eligible_layers(config, network), dla_core, "before the build")
    log(f"building {plan.precision} engine with TensorRT {trt.__version__} (strongly typed; "
        f"batch {shapes[0][0]}/{shapes[1][0]}/{shapes[2][0]}"
        f"{'; TF32 off' if not tf32 else ''}; this takes minutes)")
    with monitor.progress:
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise _failure(onnx_path.name, build_log)
    engine = bytes(serialized)
    dla_layers = None
    if dla_core is not None:
        found, total = _placed_on_dla(trt, logger, engine, dla_core)
        require_dla_layers(found, total, dla_core, "in the built engine")
        dla_layers = found
    for w in build_log.warnings:
        log(f"TensorRT warning: {w}")
    return BuiltEngine(engine, bytes(cache.serialize()), inputs, outputs, tf32, reused, shapes,
                       dla_layers, build_log.warnings)


def _placed_on_dla(trt, logger, engine: bytes, dla_core: int) -> tuple[int, int]:
    """(DLA layers, all layers) of a built engine, through the engine inspector."""
    runtime = trt.Runtime(logger)
    runtime.DLA_core = dla_core
    deserialized = runtime.deserialize_cuda_engine(engine)
    if deserialized is None:
        raise ExportError(f"TensorRT could not load the engine it built for DLA core {dla_core}")
    inspector = deserialized.create_engine_inspector()
    return count_dla_layers(inspector.get_engine_information(trt.LayerInformationFormat.JSON))


def build_bundle(bundle_path: str | Path, precision: str | None = None, dla_core: int | None = None,
                 log: Callable[[str], None] = print, writer=None):
    """``edgecnn build``: read the plan, build on this machine, add the engine to the bundle.

    With ``writer`` (an open BundleWriter, used by export when it builds right away) the files
    go into that staging folder; otherwise a new BundleWriter swaps them into the bundle.
    """
    from edgecnn.bundle import Bundle, BundleWriter, now_iso
    from edgecnn.platform_info import probe
    from edgecnn.tensorrt.metadata import DETAILS_KEY, built_engine_metadata

    if writer is not None:
        root, manifest = writer.staging, writer.manifest
    else:
        bundle = Bundle.open(bundle_path)
        root, manifest = bundle.path, bundle.manifest
    plans = read_plans(Path(root) / BUILD_PLAN, recorded_plan_sha256(manifest))
    # every prepared graph is verified before TensorRT is imported: a changed file is a
    # ChecksumError on any machine, not only on one with TensorRT
    for p in plans.values():
        if (Path(root) / p.trt_onnx).is_file():
            verify_prepared(Path(root), manifest.source.get(PREPARED_KEY), p)
    trt = import_tensorrt("building the engine")
    machine = probe()
    if machine.gpu is None:
        raise BackendUnavailableError("no NVIDIA GPU found (nvidia-smi / cuda-python); build the "
                                      "engine on the device that will run it")
    tegra = machine.tegra
    plan, strategy, warnings = resolve_build(plans, precision, dla_core, trt.__version__,
                                             tegra.module if tegra else None,
                                             tegra.dla_cores if tegra else 0, str(bundle_path))
    for w in warnings:
        log(f"warning: {w}")
    onnx_path = Path(root) / plan.trt_onnx
    if not onnx_path.is_file():
        raise BundleError(f"{plan.trt_onnx} is missing from {bundle_path}; prepare the bundle again")
    verify_prepared(Path(root), manifest.source.get(PREPARED_KEY), plan)
    cc = machine.gpu.compute_capability or "unknown"
    cache_file = plan.timing_cache_file(str(TrtVersion.parse(trt.__version__)), cc,
                                        cache_device(machine.gpu.name, tegra.module if tegra else None))
    cache_in = (Path(root) / cache_file).read_bytes() if (Path(root) / cache_file).is_file() else None
    built = build_engine(trt, onnx_path, plan, strategy, dla_core, cache_in, log)
    meta = built_engine_metadata(trt.__version__, machine, cc, plan, dla_core, now_iso(),
                                 profile=built.profile, tf32=built.tf32, dla_layers=built.dla_layers)
    engine, cache, inputs, outputs = built.engine, built.timing_cache, built.inputs, built.outputs
    details = {DETAILS_KEY: meta.to_dict(), "build_plan": plan.to_dict(), "timing_cache": cache_file,
               "timing_cache_reused": built.timing_cache_reused, "build_warnings": built.warnings}

    engine_file = catalog.artifact_file("tensorrt", plan.precision)

    def write(w) -> Any:
        w.path_for(engine_file).write_bytes(engine)
        w.path_for(cache_file).write_bytes(cache)
        return w.add_artifact(engine_file, "tensorrt", plan.precision, inputs, outputs, details)

    if writer is not None:
        artifact = write(writer)
    else:
        with BundleWriter(bundle.path, manifest, keep_existing=True) as w:
            artifact = write(w)
    log(f"wrote {artifact.file} ({artifact.size_bytes / 1e6:.1f} MB) for {meta.target}")
    return artifact
