"""``edgecnn eval MODEL_OR_BUNDLE --data fashion-mnist:test``: top-1/top-5, per class, confusion."""

from __future__ import annotations

import click

from edgecnn.cli.main import THREADS, handle_errors
from edgecnn.cli.native_logs import quiet_libraries


@click.command("eval")
@click.argument("model")
@click.option("--data", default="fashion-mnist:test", show_default=True,
              help="Labelled data: fashion-mnist:test|val, an image folder or a .npz.")
@click.option("--weights", default=None, help="Weights for a zoo model name (state dict or checkpoint).")
@click.option("--backend", default=None, help="Bundle artifact backend (onnxruntime, tflite, tensorrt).")
@click.option("--precision", default=None, type=click.Choice(["fp32", "fp16", "int8", "int8-trt"]),
              help="Bundle artifact precision (int8-trt: the TensorRT-shaped int8 ONNX graph).")
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--samples", type=int, default=None, help="Evaluate a seeded subset of this size.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=THREADS, default=None, help="CPU threads (default: all).")
@click.option("--out", type=click.Path(), default="out/eval", show_default=True,
              help="Folder for the confusion-matrix PNG and the JSON result.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--no-progress", is_flag=True)
@handle_errors
@quiet_libraries
def eval_(model, data, weights, backend, precision, batch_size, samples, seed, threads, out,
          as_json, no_progress):
    """Accuracy of MODEL (a bundle folder, a checkpoint .pt, or a zoo name with --weights)."""
    import json
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from edgecnn.bench.accuracy import evaluate, load_predictor
    from edgecnn.bench.confusion import confusion_table, save_confusion_png
    from edgecnn.data.datasets import load_dataset

    from edgecnn.bundle import check_output_folder

    check_output_folder(out, "--out", "output folder")  # before the (long) evaluation
    console = Console()
    dataset = load_dataset(data).subset(samples, seed)
    predictor = load_predictor(model, weights=weights, backend=backend, precision=precision,
                               threads=threads)
    try:
        result = evaluate(predictor.predict_fn, dataset, predictor.preprocess,
                          batch_size=batch_size, progress=not no_progress,
                          description=f"{predictor.name} {predictor.target} on {dataset.spec}")
    finally:
        predictor.close()
    stem = _safe(f"{predictor.name}-{predictor.target}-{dataset.spec}")
    out = Path(out)
    png = save_confusion_png(result, out / f"{stem}.png",
                             title=f"{predictor.name} {predictor.target}: top-1 "
                                   f"{result.top1:.2f}% on {dataset.spec}")
    record = {"model": str(model), "name": predictor.name, "target": predictor.target,
              **result.to_dict(), "confusion_png": str(png)}
    (out / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    if as_json:
        click.echo(json.dumps(record, indent=1))
        return
    summary = Table(title=f"{predictor.name} ({predictor.target}) on {dataset.spec}")
    for col in ("images", "top-1 %", "top-5 %"):
        summary.add_column(col, justify="right")
    summary.add_row(str(result.n), f"{result.top1:.2f}", f"{result.top5:.2f}")
    console.print(summary)
    console.print(confusion_table(result, title="confusion matrix (rows: true, columns: predicted)"))
    console.print(f"confusion matrix PNG: {png}")


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
