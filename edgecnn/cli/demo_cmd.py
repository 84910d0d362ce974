"""``edgecnn demo``: the trained Fashion-MNIST model end to end on the real 10,000 test images.

1. takes the committed weights (weights/resnet8_fmnist.pt, else weights/lenet5_fmnist.pt);
2. exports every target in ``demo_targets`` into one bundle (./out/demo);
3. measures each target's accuracy on fashion-mnist:test next to PyTorch's, one row per target;
4. saves four test images as PNG (out/demo-samples) and runs ``session.predict`` on the files.

More targets are one more ``DemoTarget`` in ``demo_targets``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from edgecnn.cli.main import THREADS, handle_errors
from edgecnn.cli.native_logs import quiet_libraries

DEMO_WEIGHTS = ("resnet8_fmnist.pt", "lenet5_fmnist.pt")  # first one found wins


@dataclass
class DemoTarget:
    title: str  # row label in the table
    backend: str | None  # artifact backend in the bundle; None = the PyTorch model itself
    precision: str = "fp32"
    export: dict[str, Any] = field(default_factory=dict)  # ExportOptions fields that build it
    optional: bool = False  # a failure becomes a 'skipped' row instead of an error
    # what the row says when the export ran but the artifact cannot be made or run here
    unavailable: str = ""


CALIB = "fashion-mnist:train"  # 512 seeded samples; the test set is never used to calibrate

demo_targets: list[DemoTarget] = [
    DemoTarget("PyTorch", None),
    DemoTarget("ONNX Runtime", "onnxruntime", "fp32", export={"target": "onnx"}),
    DemoTarget("ONNX Runtime", "onnxruntime", "fp16", export={"target": "onnx"}, optional=True),
    # one int8 export writes both ONNX graphs from one calibration; the second row reads the
    # TensorRT-shaped one (precision "int8-trt"), labelled so nobody takes it for the CPU one
    DemoTarget("ONNX Runtime", "onnxruntime", "int8",
               export={"target": "onnx", "calib": CALIB}, optional=True),
    DemoTarget("ONNX (TRT proxy)", "onnxruntime", "int8-trt", optional=True),
    DemoTarget("LiteRT", "tflite", "fp32", export={"target": "tflite"}, optional=True),
    DemoTarget("LiteRT", "tflite", "int8", export={"target": "tflite", "calib": CALIB},
               optional=True),
    DemoTarget("TensorRT", "tensorrt", "int8", export={"target": "tensorrt", "calib": CALIB},
               optional=True,
               unavailable="prepared; on the machine with the GPU run:\n"
                           "edgecnn build {out} --precision int8"),
]


def find_weights(weights: str | None = None) -> Path:
    from edgecnn.errors import ModelLoadError

    if weights:
        p = Path(weights)
        if not p.is_file():
            raise ModelLoadError(f"weights {p} do not exist")
        return p
    from edgecnn.resources import shipped_dir

    roots = [Path.cwd() / "weights", shipped_dir("weights")]
    for name in DEMO_WEIGHTS:
        for root in roots:
            if (root / name).is_file():
                return root / name
    raise ModelLoadError(f"no trained demo weights ({' or '.join(DEMO_WEIGHTS)}) in "
                         f"{roots[0]}; train one as weights/README.md shows, or pass --weights")


@click.command("demo")
@click.option("--weights", default=None, help="Checkpoint to use [weights/resnet8_fmnist.pt].")
@click.option("--out", type=click.Path(), default="out/demo", show_default=True)
@click.option("--samples", type=int, default=None,
              help="Evaluate only this many test images (seeded subset) [all 10,000].")
@click.option("--threads", type=THREADS, default=None, help="CPU threads [all].")
@handle_errors
@quiet_libraries
def demo(weights, out, samples, threads):
    """Export the trained Fashion-MNIST model and compare every target's accuracy to PyTorch."""
    from edgecnn.data.datasets import load_dataset
    from edgecnn.terminal import console as make_console, print_table

    console = make_console()
    t_start = time.perf_counter()
    out = Path(out)
    weights_path = find_weights(weights)
    dataset = load_dataset("fashion-mnist:test").subset(samples, seed=0)
    console.rule(f"edgecnn demo: {weights_path.name}, {len(dataset)} test images")

    _export_all(weights_path, out, console)
    rows = _evaluate_all(weights_path, out, dataset, threads, console)
    print_table(console, _accuracy_table(rows, dataset))
    for row in rows:  # a note may end with a command to copy, on its own unwrapped line
        if row.note:
            console.print(f"  {row.target.title} {row.target.precision}: {row.note}",
                          markup=False, highlight=False, soft_wrap=True)
    _predict_samples(out, dataset, console)
    console.print(f"[dim]bundle: {out}   total {time.perf_counter() - t_start:.0f}s[/]")


def _relative(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it (what a user types)."""
    import os

    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else str(path)


def _export_all(weights_path: Path, out: Path, console) -> None:
    from edgecnn.options import ExportOptions
    from edgecnn.pipeline import export

    for target in demo_targets:
        if not target.export:
            continue
        opts = ExportOptions(out=out, precision=target.precision, **target.export)
        console.print(f"[bold]export[/] {target.title} ({target.backend}:{target.precision})")
        try:  # no spinner: the export logs each step, and tables printed meanwhile stay whole
            export(str(weights_path), opts,
                   log=lambda m: console.print(f"  {m}", style="dim", markup=False,
                                               highlight=False, soft_wrap=True))
        except Exception as exc:  # noqa: BLE001 - optional targets report and go on
            if not target.optional:
                raise
            console.print(f"  skipped: {exc}", style="yellow", markup=False, soft_wrap=True)


@dataclass
class _Row:
    target: DemoTarget
    result: Any = None  # AccuracyResult
    seconds: float = 0.0
    note: str = ""


def _evaluate_all(weights_path: Path, out: Path, dataset, threads, console) -> list[_Row]:
    from edgecnn.bench.accuracy import evaluate, load_predictor

    rows = []
    for target in demo_targets:
        row = _Row(target)
        try:
            if target.backend is None:
                predictor = load_predictor(str(weights_path), threads=threads)
            else:
                predictor = load_predictor(str(out), backend=target.backend,
                                           precision=target.precision, threads=threads)
            try:
                t0 = time.perf_counter()
                row.result = evaluate(predictor.predict_fn, dataset, predictor.preprocess,
                                      batch_size=500, description=f"{target.title}")
                row.seconds = time.perf_counter() - t0
            finally:
                predictor.close()
        except Exception as exc:  # noqa: BLE001
            if not target.optional:
                raise
            row.note = (target.unavailable.format(out=_relative(out)) if target.unavailable
                        else f"skipped: {str(exc).splitlines()[0][:80]}")
        rows.append(row)
    return rows


def _accuracy_table(rows: list[_Row], dataset):
    from rich.table import Table

    ref = rows[0].result
    table = Table(title=f"accuracy on {dataset.spec} ({len(dataset)} images)",
                  caption="Δ pt: top-1 minus PyTorch's; agree: same top-1 class as PyTorch; "
                          "ONNX int8: the CPU graph (model.int8.cpu.onnx); int8-trt: the "
                          "TensorRT-shaped graph (model.int8.onnx), TensorRT's accuracy proxy")
    for col, just in (("target", "left"), ("prec.", "left"), ("top-1 %", "right"),
                      ("top-5 %", "right"), ("Δ pt", "right"), ("agree %", "right"),
                      ("img/s", "right")):
        table.add_column(col, justify=just, no_wrap=True)
    for row in rows:
        if row.result is None:
            table.add_row(row.target.title, row.target.precision, "-", "-", "-", "-", "note ↓")
            continue
        r = row.result
        same = row is rows[0]
        table.add_row(row.target.title, row.target.precision, f"{r.top1:.2f}", f"{r.top5:.2f}",
                      "" if same else f"{r.top1 - ref.top1:+.2f}",
                      "" if same else f"{r.agreement(ref):.2f}",
                      f"{r.n / row.seconds:,.0f}" if row.seconds else "-")
    return table


def _predict_samples(out: Path, dataset, console, count: int = 4) -> None:
    import edgecnn.runtime as rt
    from rich.table import Table

    from edgecnn.terminal import print_table

    samples = out.parent / f"{out.name}-samples"  # beside the bundle, not inside it
    samples.mkdir(parents=True, exist_ok=True)
    # one image from each of the first `count` classes seen, so the samples differ
    picked, seen = [], set()
    for i, y in enumerate(dataset.labels.tolist()):
        if y not in seen:
            seen.add(y)
            picked.append(i)
        if len(picked) == count:
            break
    paths = []
    for i in picked:
        name = dataset.classes[dataset.labels[i]].replace("/", "-").replace(" ", "_").lower()
        path = samples / f"test{i:05d}_{name}.png"
        dataset.image(i).save(path)
        paths.append(path)
    with rt.load(out, backend="onnxruntime", precision="fp32") as session:
        preds = session.predict([str(p) for p in paths], top_k=3)
    table = Table(title=f"session.predict on {samples}/*.png ({session.artifact.key})")
    for col in ("file", "true", "predicted", "p", "runner-up"):
        table.add_column(col, no_wrap=col != "runner-up")
    for i, path, top in zip(picked, paths, preds):
        true = dataset.classes[dataset.labels[i]]
        ok = top[0].label == true
        table.add_row(path.name, true, f"[{'green' if ok else 'red'}]{top[0].label}[/]",
                      f"{top[0].probability:.2f}", f"{top[1].label} {top[1].probability:.2f}")
    print_table(console, table)
