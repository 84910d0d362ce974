"""Step 1 of a benchmark: every argument check, before anything is built or timed.

:func:`plan_bench` resolves ``BenchOptions`` into a :class:`Plan`: the targets, batch sizes and
threads, the model (loaded, when the input is a model) and the bundle, opened once here and
held by the plan (``plan.opened``; :meth:`Plan.refresh` re-reads it after a build). The export
options of each target the bundle lacks are made here too (:func:`export_options`) and checked
by the export backends (:func:`check_export`), so a bad build request fails before any work;
:mod:`edgecnn.bench.build` runs them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from edgecnn import catalog
from edgecnn.bench.latency import TimingOptions
from edgecnn.bench.targets import ALL_TARGETS, BenchTarget, parse_targets, unavailable_reason
from edgecnn.bundle import Bundle
from edgecnn.errors import BundleError, DataError, EdgeCNNError, InputError

if TYPE_CHECKING:
    from edgecnn.model_setup import ModelSetup
    from edgecnn.options import ExportOptions

MAX_BATCH = 4096


@dataclass
class BenchOptions:
    """Everything ``edgecnn bench`` accepts; the CLI uses the same names."""

    targets: str | list[str] | None = None  # default: the profile's target, else ALL_TARGETS
    batch: list[int] | str | None = None  # default [1] (or the profile's batch_opt)
    threads: int | None = None  # default: the profile's threads, else the runtime default
    data: str | None = None  # labelled data for accuracy, e.g. fashion-mnist:test
    data_limit: int | None = None  # evaluate on a random subset of this many images
    profile: str | None = None  # a device profile from targets/ (defaults + batch limits)
    # building missing artifacts
    weights: str | None = None
    input_size: str | tuple[int, int, int] | None = None
    num_classes: int | None = None
    calib: str | None = None
    calib_samples: int = 512
    out: str | None = None  # bundle folder (model input); default bundles/<model>
    # timing
    warmup: int | str = "auto"
    iterations: int = 100
    duration: float | None = None
    rounds: int = 1
    # output
    report_dir: str | None = None  # default bench_results/<model>-<time>
    plot: bool = True
    db: str | None = None
    save: bool = True  # store the run in the history database
    # execution
    isolate: bool = True  # one fresh process per measurement (per-target peak RSS)
    timeout: float = 900.0  # seconds per measurement
    power: bool | None = None  # tegrastats sampling; default: on when tegrastats exists
    seed: int = 0
    # what the user states about a MODEL (preprocessing, labels, factory arguments): used by
    # the export and calibration, the accuracy data and the torch target; a BUNDLE's is fixed
    setup: ModelSetup | None = None


@dataclass
class Plan:
    """What the checks resolved: the work to do and what is skipped before it starts."""

    model: str
    input_size: list[int]
    preprocess: dict[str, Any]
    num_classes: int
    labels: list[str]
    bundle: Path | None
    stale: bool = False  # an existing bundle at --out holds another model's artifacts
    loaded: Any = None  # LoadedModel when the input was a model (for exports)
    torch_model: dict[str, Any] | None = None  # load_model arguments for the torch worker
    torch_note: str | None = None
    targets: list[BenchTarget] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    threads: int | None = None
    batch_limit: int | None = None  # TensorRT profile max
    skipped: dict[BenchTarget, str] = field(default_factory=dict)
    profile: Any = None
    opened: Bundle | None = None  # the bundle at ``bundle`` as last read (None: none there)

    def refresh(self) -> None:
        """Re-read the bundle (after a build wrote to it)."""
        self.opened = Bundle.open(self.bundle) if self.bundle is not None \
            and _is_bundle(str(self.bundle)) else None

    def has_artifact(self, t: BenchTarget) -> bool:
        if self.opened is None or self.stale:
            return False
        return any(t.matches(a) for a in self.opened.manifest.artifacts)

    def fixed_batch(self, t: BenchTarget) -> int | None:
        """The artifact's batch when it is fixed (None: dynamic, or the torch target)."""
        if t.is_torch or self.bundle is None:
            return None
        from edgecnn.runtime.session import Session

        a = self.opened.manifest.find(t.backend, t.precision, t.variant or None)
        n = Session.nchw_shape(a.inputs[0])[0]
        return None if n == -1 else n

    def engine_batch_max(self) -> int | None:
        """The TensorRT engine's batch limit as ``edgecnn build`` records it (one typed reader)."""
        if self.opened is None or self.stale:
            return None
        from edgecnn.tensorrt.plan import engine_batch_max

        for a in self.opened.manifest.artifacts:
            if a.backend == "tensorrt":
                found = engine_batch_max(a.details)
                if found is not None:
                    return found
        return None


def _parse_batches(batch) -> list[int]:
    if batch is None:
        return [1]
    items = batch.split(",") if isinstance(batch, str) else list(batch)
    out = []
    for b in items:
        try:
            n = int(str(b).strip())
        except ValueError:
            raise InputError(f"--batch takes positive integers like 1,8; got {b!r}") from None
        if n < 1:
            raise InputError(f"--batch {n} is impossible: a batch needs at least one image")
        if n > MAX_BATCH:
            raise InputError(f"--batch {n} is larger than {MAX_BATCH}; benchmark smaller batches")
        if n not in out:
            out.append(n)
    if not out:
        raise InputError("--batch is empty; e.g. --batch 1,8")
    return out


def _is_bundle(path: str) -> bool:
    return Path(path, "manifest.json").is_file()


def _dataset_channels(ds) -> int | None:
    if ds.images is not None:
        return 3 if ds.images.ndim == 4 and ds.images.shape[-1] == 3 else 1
    return ds.meta.get("channels")


def check_data(spec: str, preprocess: dict[str, Any], num_classes: int, model: str):
    """Load ``spec`` and refuse data the model cannot be scored on (before any work)."""
    from edgecnn.data.datasets import load_dataset

    ds = load_dataset(spec)
    if ds.labels is None:
        raise DataError(f"{spec} has no labels; accuracy needs labelled data (class subfolders, "
                        f"a .npz with 'labels', or fashion-mnist:test)")
    want = int(preprocess["channels"])
    have = _dataset_channels(ds)
    if have is not None and have != want:
        kind = {1: "grayscale (1 channel)", 3: "RGB (3 channels)"}
        raise DataError(f"{spec} is {kind.get(have, have)} but {model} takes "
                        f"{kind.get(want, want)} input; use data of the kind the model was "
                        f"trained on")
    if ds.num_classes != num_classes:
        raise DataError(f"{spec} has {ds.num_classes} classes but {model} has {num_classes} "
                        f"outputs; evaluate on data with the model's classes")
    return ds


def plan_bench(model: str, options: BenchOptions, log: Callable[[str], None] = print) -> Plan:
    """All argument checks; loads the model (or opens the bundle) but builds and times nothing."""
    from edgecnn.targets import resolve_target

    profile = resolve_target(options.profile) if options.profile else None
    if options.targets is not None:
        targets = parse_targets(options.targets)
    elif profile is not None:
        targets = parse_targets([f"{catalog.BACKENDS[profile.backend].short}:{profile.precision}"])
    else:
        targets = parse_targets(list(ALL_TARGETS))
    batches = _parse_batches(options.batch if options.batch is not None else
                             ([profile.batch_opt] if profile is not None else None))
    threads = options.threads if options.threads is not None else (
        profile.threads if profile is not None else None)
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")
    if options.rounds < 1:
        raise InputError(f"--rounds must be >= 1, got {options.rounds}")
    if options.data_limit is not None and options.data_limit < 1:
        raise InputError(f"--data-limit must be >= 1, got {options.data_limit}")
    TimingOptions(options.warmup, options.iterations, options.duration).check()
    check_setup(model, options.setup)
    check_output_paths(options)

    if _is_bundle(model):
        plan = _plan_from_bundle(Path(model), options)
    else:
        if Path(model).is_dir():
            raise BundleError(f"{model} is a folder without manifest.json; pass a bundle made by "
                              f"'edgecnn export' or a model name")
        plan = _plan_from_model(model, options, log)
    plan.targets, plan.batches, plan.threads, plan.profile = targets, batches, threads, profile

    # TensorRT engines serve batches up to their optimisation profile's max
    if any(t.backend == "tensorrt" for t in targets):
        from edgecnn.options import BatchProfile

        limit = profile.batch_max if profile is not None and profile.backend == "tensorrt" \
            else plan.engine_batch_max() or BatchProfile().max
        plan.batch_limit = limit
        too_big = [b for b in batches if b > limit]
        if too_big:
            raise InputError(f"--batch {too_big[0]} is above the TensorRT profile's maximum of "
                             f"{limit}; lower --batch or build with a larger profile")
    for t in targets:
        why = unavailable_reason(t)
        if why is None and t.is_torch and plan.torch_model is None:
            why = plan.torch_note or "no PyTorch model for this bundle"
        if why:
            plan.skipped[t] = why
    if options.data:
        check_data(options.data, plan.preprocess, plan.num_classes, plan.model)
    check_export(plan, options, [t for t in targets if not t.is_torch and t not in plan.skipped
                                 and not plan.has_artifact(t)])
    return plan


SETUP_FLAGS = "--preset/--resize/--crop/--mean/--std/--scale/--bgr/--interpolation/--labels/--model-arg"


def check_setup(model: str, setup: ModelSetup | None) -> None:
    """A BUNDLE's manifest fixes its preprocessing, labels and model: stating them is an error."""
    if setup is not None and not setup.is_empty and _is_bundle(model):
        raise InputError(f"{model} is a bundle: its manifest already fixes preprocessing, labels "
                         f"and model; drop {SETUP_FLAGS} (or bench the model to export it again)")


def _plan_from_bundle(path: Path, options: BenchOptions) -> Plan:
    from edgecnn.runtime.session import Session

    bundle = Bundle.open(path)
    m = bundle.manifest
    if not m.artifacts:
        raise BundleError(f"bundle {path} has no artifacts; run 'edgecnn export' first")
    spec = m.find(precision="fp32") if any(a.precision == "fp32" for a in m.artifacts) \
        else m.artifacts[0]
    size = Session.nchw_shape(spec.inputs[0])[1:]
    plan = Plan(model=m.model, input_size=list(size), preprocess=_pp_dict(m.preprocess),
                num_classes=m.num_classes, labels=list(m.labels), bundle=bundle.path,
                opened=bundle)
    src = m.source or {}
    # the torch target needs the PyTorch model the bundle was made from
    if options.weights:
        plan.torch_model = {"model": src.get("model", m.model), "weights": options.weights,
                            "input_size": list(size), "num_classes": m.num_classes}
    elif src.get("kind") == "zoo" and "weights" not in src:
        plan.torch_model = {"model": src.get("model", m.model), "weights": None,
                            "input_size": list(size), "num_classes": m.num_classes}
        plan.torch_note = "random-init zoo model: latency only"
    else:
        plan.torch_note = ("the bundle was exported from weights that are not given; pass "
                           "--weights to benchmark the PyTorch model")
    return plan


def _plan_from_model(model: str, options: BenchOptions, log) -> Plan:
    from edgecnn.models.loading import load_model

    # seeded so a random-init zoo model is the same network here (exported) and in the
    # torch worker (which seeds the same way): agreement then compares like with like
    import torch

    torch.manual_seed(options.seed)
    setup = options.setup
    loaded = load_model(model, weights=options.weights, input_size=options.input_size,
                        num_classes=options.num_classes, setup=setup)
    out = (Path(options.out) if options.out else Path("bundles") / loaded.name).absolute()
    plan = Plan(model=loaded.name, input_size=list(loaded.input_size),
                preprocess=_pp_dict(loaded.preprocess), num_classes=len(loaded.labels),
                labels=list(loaded.labels), bundle=out, loaded=loaded)
    plan.torch_model = {"model": model, "weights": options.weights,
                        "input_size": list(loaded.input_size), "num_classes": len(loaded.labels)}
    if setup is not None and not setup.is_empty:  # the torch worker loads the same model
        plan.torch_model["setup"] = setup.to_json()
    if _is_bundle(str(out)):
        try:
            plan.opened = Bundle.open(out)
        except EdgeCNNError:
            plan.opened = None
        plan.stale = not _same_source(plan.opened, loaded)
    return plan


def _same_source(bundle: Bundle | None, loaded) -> bool:
    """``bundle`` was exported from this very model (the export pipeline's own test)."""
    from edgecnn.pipeline import same_model

    return bundle is not None and same_model(bundle.manifest, loaded)


def _pp_dict(pp) -> dict[str, Any]:
    return dataclasses.asdict(pp)


# -- what building a missing target will be (checked here, run by bench.build) ---------------
def export_options(plan: Plan, options: BenchOptions, t: BenchTarget) -> ExportOptions:
    """The export of target ``t`` into the plan's bundle (TensorRT: a profile that covers
    the benchmarked batches, or the device profile's own)."""
    from edgecnn.options import BatchProfile, ExportOptions

    prof = plan.profile
    batch = BatchProfile()
    if t.backend == "tensorrt":
        if prof is not None and prof.backend == "tensorrt":
            batch = BatchProfile(prof.batch_min, prof.batch_opt, prof.batch_max)
        else:
            batch = BatchProfile(1, min(plan.batches), max(max(plan.batches), batch.max))
    target = prof.file if (prof is not None and prof.is_device and prof.backend == t.backend) \
        else t.export_target
    return ExportOptions(target=target, precision=t.precision, out=plan.bundle,
                         weights=options.weights, input_size=tuple(plan.input_size),
                         num_classes=plan.num_classes, calib=options.calib,
                         calib_samples=options.calib_samples, batch=batch,
                         threads=plan.threads, seed=options.seed)


def check_output_paths(options: BenchOptions) -> None:
    """Every folder the run will write (report files, built artifacts, the history database)
    can be created, checked before anything is built or timed."""
    from edgecnn.bundle import check_output_folder

    if options.report_dir:
        check_output_folder(options.report_dir, "--report-dir", "report folder")
    else:
        check_output_folder("bench_results", "--report-dir", "report folder")
    if options.out:
        check_output_folder(options.out, "--out", "bundle folder")
    if options.save and options.db:
        db = Path(options.db)
        if db.is_dir():
            raise BundleError(f"history database {db} is a folder; pass a file path with --db")
        check_output_folder(db.parent, "--db", "history database folder")


def check_export(plan: Plan, options: BenchOptions, targets: list[BenchTarget]) -> None:
    """The export backends' own argument checks (e.g. int8 needs --calib) before any work."""
    if plan.loaded is None:  # a bundle: missing artifacts cannot be built without the model
        return
    from edgecnn.backends.registry import get_backend
    from edgecnn.targets import resolve_target

    for t in targets:
        eo = export_options(plan, options, t)
        try:
            backend = get_backend(t.backend)
        except (ImportError, EdgeCNNError):
            continue  # reported when the build is attempted
        backend.check(eo, resolve_target(eo.target))
        eo.check()
