"""``edgecnn eval MODEL_OR_BUNDLE --data fashion-mnist:test``: top-1/top-5, per class, confusion."""

from __future__ import annotations

import click

from edgecnn.cli.lab_eval import lab_eval_options
from edgecnn.cli.main import THREADS, handle_errors
from edgecnn.cli.model_options import model_setup_options
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
@model_setup_options
@lab_eval_options
@handle_errors
@quiet_libraries
def eval_(model, data, weights, backend, precision, batch_size, samples, seed, threads, out,
          as_json, no_progress, setup, lab):
    """Accuracy of MODEL (a bundle folder, a checkpoint .pt, or a zoo name with --weights)."""
    import json
    from pathlib import Path

    from rich.table import Table

    from edgecnn.bench.accuracy import evaluate, load_predictor
    from edgecnn.bench.confusion import confusion_table, save_confusion_png
    from edgecnn.data.classes import align_classes
    from edgecnn.data.datasets import load_dataset

    from edgecnn.bundle import check_output_folder
    from edgecnn.terminal import console as make_console, print_table

    check_output_folder(out, "--out", "output folder")  # before the (long) evaluation
    console = make_console()
    where = None
    if lab is not None:  # --cluster: sharded across a profile's nodes (cli/lab_eval.py)
        result, name, target, spec, where = lab.evaluate(model, data, backend, precision, samples,
                                                         seed, batch_size, weights, setup)
    else:
        dataset = load_dataset(data).subset(samples, seed)
        predictor = load_predictor(model, weights=weights, backend=backend, precision=precision,
                                   threads=threads, setup=setup)
        dataset = align_classes(dataset, predictor.labels)  # wnid / index folders -> classes
        note = getattr(predictor.session, "saturation_note", None)
        if note:  # an int8 graph whose weights were not checked for this CPU
            click.echo(f"note: {note}", err=True)
        try:
            result = evaluate(predictor.predict_fn, dataset, predictor.preprocess,
                              batch_size=batch_size, progress=not no_progress,
                              description=f"{predictor.name} {predictor.target} on {dataset.spec}")
        finally:
            predictor.close()
        name, target, spec = predictor.name, predictor.target, dataset.spec
    stem = _safe(f"{name}-{target}-{spec}")
    out = Path(out)
    png = save_confusion_png(result, out / f"{stem}.png",
                             title=f"{name} {target}: top-1 {result.top1:.2f}% on {spec}")
    record = {"model": str(model), "name": name, "target": target,
              **result.to_dict(), "confusion_png": str(png)}
    if where is not None:
        record["lab"] = lab.ran
    (out / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    if as_json:
        click.echo(json.dumps(record, indent=1))
        return
    summary = Table(title=f"{name} ({target}) on {spec}")
    for col in ("images", "top-1 %", "top-5 %"):
        summary.add_column(col, justify="right")
    summary.add_row(str(result.n), f"{result.top1:.2f}", f"{result.top5:.2f}")
    print_table(console, summary)
    print_table(console, confusion_table(result, title="confusion matrix (rows: true, columns: "
                                                       "predicted)"))
    if where is not None:
        console.print(where)
    click.echo(f"confusion matrix PNG: {png}")  # a path to copy: never wrapped


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
