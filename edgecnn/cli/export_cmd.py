"""``edgecnn export MODEL --target T``: a model -> a bundle (thin over edgecnn.pipeline)."""

from __future__ import annotations

import click

from edgecnn.cli.main import handle_errors


def _batch(ctx, param, value):
    if value is None:
        return None
    try:
        lo, opt, hi = (int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("use MIN,OPT,MAX, e.g. 1,8,32") from None
    return lo, opt, hi


@click.command("export")
@click.argument("model")
@click.option("--target", default="onnx", show_default=True,
              help="Backend (onnx, tflite, tensorrt), a profile from 'edgecnn targets', or a .toml path.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="Default: the target profile's precision.")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="State dict or edgecnn checkpoint for a zoo model (read with weights_only=True).")
@click.option("--input-size", "input_size", default=None, metavar="CxHxW",
              help="Input size where the model does not say, e.g. 3x224x224.")
@click.option("--num-classes", "num_classes", type=click.IntRange(min=1), default=None,
              help="Output classes (default: the zoo model's or the checkpoint's).")
@click.option("--out", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Bundle folder (default: ./bundles/<model>).")
@click.option("--calib", default=None, help="INT8 calibration data: folder, fashion-mnist:train, .npz/.npy, recipe .toml.")
@click.option("--calib-samples", "calib_samples", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--calib-method", "calib_method", type=click.Choice(["minmax", "entropy", "percentile"]),
              default="minmax", show_default=True)
@click.option("--max-accuracy-drop", "max_accuracy_drop", type=float, default=None, metavar="PTS",
              help="Largest top-1 drop (points) INT8 may cost, measured on --eval.")
@click.option("--eval", "eval_", default=None, metavar="SPEC", help="Held-out labelled data for the accuracy budget.")
@click.option("--layout", type=click.Choice(["NHWC", "NCHW"]), default=None, help="TFLite input layout.")
@click.option("--int8-io", "int8_io", is_flag=True, help="TFLite int8: integer input/output tensors.")
@click.option("--trt-version", "trt_version", default=None, help="TensorRT version to build for, e.g. 10.3.")
@click.option("--batch", default=None, callback=_batch, metavar="MIN,OPT,MAX",
              help="Dynamic batch range (TensorRT profile), e.g. 1,8,32.")
@click.option("--workspace-mb", "workspace_mb", type=click.IntRange(min=1), default=None,
              help="TensorRT builder workspace (default: the profile's).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for checks.")
@click.option("--parity-samples", "parity_samples", type=click.IntRange(min=1), default=8,
              show_default=True, help="Random inputs compared against PyTorch.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary table.")
@handle_errors
def export(model, target, precision, weights, input_size, num_classes, out, calib, calib_samples,
           calib_method, max_accuracy_drop, eval_, layout, int8_io, trt_version, batch,
           workspace_mb, threads, parity_samples, seed, quiet):
    """Export MODEL (zoo name, checkpoint, package.module:callable or .pt2) into a bundle."""
    from contextlib import nullcontext
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from edgecnn.cli.info_cmd import human_size, parity_cell
    from edgecnn.models.loading import parse_input_size
    from edgecnn.options import BatchProfile, ExportOptions
    from edgecnn.pipeline import export as run_export

    options = ExportOptions(
        target=target, precision=precision, out=Path(out) if out else None, weights=weights,
        input_size=parse_input_size(input_size), num_classes=num_classes, calib=calib,
        calib_samples=calib_samples, calib_method=calib_method,
        max_accuracy_drop=max_accuracy_drop, eval=eval_, layout=layout, int8_io=int8_io,
        trt_version=trt_version, workspace_mb=workspace_mb, threads=threads,
        parity_samples=parity_samples, seed=seed)
    if batch is not None:
        options.batch = BatchProfile(*batch)
    err = Console(stderr=True)

    def log(msg: str) -> None:
        if not quiet:
            err.print(msg, markup=False, highlight=False)

    with err.status("exporting...", spinner="dots") if not quiet else nullcontext():
        result = run_export(model, options, log=log)
    table = Table(title=f"bundle {result.bundle}")
    for col in ("file", "backend", "precision", "size", "parity"):
        table.add_column(col, no_wrap=col != "parity")
    for a in result.artifacts:
        table.add_row(a.file, a.backend, a.precision, human_size(a.size_bytes), parity_cell(a.details))
    Console().print(table)
