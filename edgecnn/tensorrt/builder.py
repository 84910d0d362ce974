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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edgecnn import catalog
from edgecnn.errors import BackendUnavailableError, BundleError, ChecksumError, ExportError
from edgecnn.runtime.trt_engine_info import TrtVersion, import_tensorrt
from edgecnn.tensorrt.plan import BUILD_PLAN, PREPARED_KEY, BuildPlan, read_plans
from edgecnn.tensorrt.versions import BuildStrategy, build_strategy, in_range, network_flags


@dataclass
class ParserIssue:
    """One ONNX parser error, with the node's inputs looked up in the ONNX file."""

    node_index: int
    node_name: str
    op: str
    desc: str
    inputs: list[str]


def format_parser_errors(onnx_file: str, trt_version: str, issues: list[ParserIssue]) -> str:
    lines = [f"TensorRT {trt_version} could not parse {onnx_file} ({len(issues)} error(s)):"]
    for i in issues:
        where = f"node {i.node_index} '{i.node_name}' ({i.op})" if i.node_index >= 0 else "graph"
        ins = f" inputs [{', '.join(i.inputs)}]" if i.inputs else ""
        lines.append(f"  {where}{ins}: {i.desc}")
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
            raise BackendUnavailableError(f"edgecnn does not target the DLA with TensorRT "
                                          f"{strategy.version}; build without --dla-core")
        if plan.precision == "fp32":
            raise BackendUnavailableError("the DLA runs fp16 and int8 layers only; prepare fp16 or int8")
    return plan, strategy, warnings


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
    import onnx

    nodes = list(onnx.load(str(onnx_path), load_external_data=False).graph.node)
    out = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        idx = int(err.node())
        node = nodes[idx] if 0 <= idx < len(nodes) else None
        out.append(ParserIssue(idx, err.node_name() or (node.name if node else ""),
                               err.node_operator() or (node.op_type if node else ""), err.desc(),
                               list(node.input) if node is not None else []))
    return out


def build_engine(trt, onnx_path: Path, plan: BuildPlan, strategy: BuildStrategy,
                 dla_core: int | None, timing_cache: bytes | None,
                 log: Callable[[str], None] = print) -> tuple[bytes, bytes]:
    """(serialized engine, serialized timing cache). Needs TensorRT and a GPU."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    bits = {name: int(getattr(trt.NetworkDefinitionCreationFlag, name))
            for name in strategy.network_flags if hasattr(trt.NetworkDefinitionCreationFlag, name)}
    network = builder.create_network(network_flags(strategy.version, bits))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise ExportError(format_parser_errors(onnx_path.name, str(strategy.version),
                                               _parser_issues(parser, onnx_path)))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mb << 20)
    config.builder_optimization_level = plan.builder_optimization_level
    monitor = _progress_monitor(trt, log)
    config.progress_monitor = monitor
    profile = builder.create_optimization_profile()
    mn, opt, mx = plan.profile_shapes()
    profile.set_shape(plan.input_name, mn, opt, mx)
    config.add_optimization_profile(profile)
    cache = config.create_timing_cache(timing_cache or b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    if dla_core is not None:
        if builder.num_DLA_cores <= dla_core:
            raise BackendUnavailableError(f"TensorRT sees {builder.num_DLA_cores} DLA core(s); "
                                          f"--dla-core {dla_core} is not one of them")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)  # layers the DLA lacks run on the GPU
    log(f"building {plan.precision} engine with TensorRT {trt.__version__} (strongly typed; "
        f"batch {plan.batch_min}/{plan.batch_opt}/{plan.batch_max}; this takes minutes)")
    with monitor.progress:
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path.name}; the builder log "
                          f"above says why")
    return bytes(serialized), bytes(cache.serialize())


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
    plans = read_plans(Path(root) / BUILD_PLAN)
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
    cache_file = plan.timing_cache_file(str(TrtVersion.parse(trt.__version__)), cc)
    cache_in = (Path(root) / cache_file).read_bytes() if (Path(root) / cache_file).is_file() else None
    engine, cache = build_engine(trt, onnx_path, plan, strategy, dla_core, cache_in, log)
    meta = built_engine_metadata(trt.__version__, machine, cc, plan, dla_core, now_iso())
    inputs, outputs = io_specs(onnx_path, plan)
    details = {DETAILS_KEY: meta.to_dict(), "build_plan": plan.to_dict(), "timing_cache": cache_file}

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


def io_specs(onnx_path: Path, plan: BuildPlan):
    """Manifest TensorSpecs of the engine from the TensorRT-ready ONNX (batch -1)."""
    import onnx

    from edgecnn.manifest import TensorSpec

    names = {1: "float32", 10: "float16", 3: "int8", 2: "uint8", 6: "int32", 7: "int64"}
    g = onnx.load(str(onnx_path), load_external_data=False).graph
    inits = {i.name for i in g.initializer}

    def spec(vi, layout):
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
        dims[0] = -1
        return TensorSpec(vi.name, dims, names.get(vi.type.tensor_type.elem_type, "float32"), layout)

    return ([spec(v, "NCHW") for v in g.input if v.name not in inits], [spec(v, None) for v in g.output])
