"""``edgecnn export MODEL --target T``: a model -> a bundle (thin over edgecnn.pipeline)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from edgecnn.cli.main import THREADS, handle_errors
from edgecnn.cli.model_options import model_setup_options
from edgecnn.cli.native_logs import quiet_libraries


def _batch(ctx, param, value):
    if value is None:
        return None
    try:
        lo, opt, hi = (int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: use MIN,OPT,MAX, e.g. 1,8,32") from None
    if not 1 <= lo <= opt <= hi:
        raise click.BadParameter(f"{value!r}: needs 1 <= MIN <= OPT <= MAX, e.g. 1,8,32")
    return lo, opt, hi


def _precisions(ctx, param, value):
    from edgecnn.catalog import PRECISIONS
    from edgecnn.options import split_list

    if value is None:
        return None
    items = split_list(value)
    bad = [p for p in items if p not in PRECISIONS] or ([] if items else [value])
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not a precision; use one or several of "
                                 f"{', '.join(PRECISIONS)}, e.g. fp32,int8")
    return ",".join(items)


@click.command("export")
@click.argument("model")
@click.option("--target", default="onnx", show_default=True,
              help="Backend (onnx, tflite, tensorrt), a profile from 'edgecnn targets', or a .toml "
                   "path; several, comma-separated (onnx,tflite), go into one bundle.")
@click.option("--precision", default=None, callback=_precisions, metavar="fp32|fp16|int8[,...]",
              help="One or several, comma-separated; every target gets each. Default: the target "
                   "profile's precision.")
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
@click.option("--threads", type=THREADS, default=None, help="CPU threads for checks.")
@click.option("--parity-samples", "parity_samples", type=click.IntRange(min=1), default=8,
              show_default=True, help="Random inputs compared against PyTorch.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary table.")
@model_setup_options
@handle_errors
@quiet_libraries
def export(model, target, precision, weights, input_size, num_classes, out, calib, calib_samples,
           calib_method, max_accuracy_drop, eval_, layout, int8_io, trt_version, batch,
           workspace_mb, threads, parity_samples, seed, quiet, setup):
    """Export MODEL (zoo name, checkpoint, package.module:callable or .pt2) into a bundle."""
    from contextlib import nullcontext

    from rich.console import Console
    from rich.table import Table

    from edgecnn.cli.info_cmd import human_size, parity_cell
    from edgecnn.memory import reuse_large_buffers
    from edgecnn.models.loading import parse_input_size
    from edgecnn.options import BatchProfile, ExportOptions
    from edgecnn.pipeline import export as run_export

    reuse_large_buffers()  # this process builds and exits: big arrays reuse heap memory
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

    started = time.time()
    with err.status("exporting...", spinner="dots") if not quiet else nullcontext():
        result = run_export(model, options, log=log, setup=setup)
    table = Table(title=f"bundle {result.bundle}")
    for col in ("file", "backend", "precision", "size", "parity"):
        table.add_column(col, no_wrap=col != "parity")
    for a in result.artifacts:
        table.add_row(a.file, a.backend, a.precision, human_size(a.size_bytes), parity_cell(a.details))
    Console().print(table)
    # plain click.echo: these lines are copied by the user, so they are never wrapped
    for line in summary_lines(result, max_accuracy_drop is not None):
        click.echo(line)
    files = written_files(Path(result.bundle), started)
    click.echo(f"wrote {len(files)} file(s) in {result.bundle}: {', '.join(files)}")
    for command in device_build_commands(Path(result.bundle), files):
        click.echo("build the engine on the device: copy the bundle folder there, then run:")
        click.echo(command)


def summary_lines(result, budget_given: bool) -> list[str]:
    """What the table cannot say: the accuracy-budget verdict of each INT8 artifact (when a
    budget was given) and what parity means on random weights."""
    lines = [budget_verdict(a) for a in result.artifacts] if budget_given else []
    lines = [line for line in lines if line]
    if result.random_weights:
        low = [a.file for a in result.artifacts if _top1(a) is not None and _top1(a) < 1.0]
        lines.append("random weights: parity only" + (
            f"; a low top1 ({', '.join(low)}) is expected there: random logits are near ties, so "
            f"rounding reorders them; cos (their direction vs PyTorch) is the check that counts"
            if low else ""))
    return lines


def _top1(artifact) -> float | None:
    par = artifact.details.get("parity") if isinstance(artifact.details, dict) else None
    value = par.get("top1_agreement") if isinstance(par, dict) else None
    return value if isinstance(value, (int, float)) else None


def budget_verdict(artifact) -> str | None:
    """``accuracy budget <file>: top-1 91.20% vs fp32 91.30%, drop 0.10 pt <= 0.5 pt: met
    (2 layer(s) left in float)`` for an INT8 artifact exported under --max-accuracy-drop."""
    d = artifact.details if isinstance(artifact.details, dict) else {}
    acc = d.get("accuracy")
    if not isinstance(acc, dict):
        return None
    if "top1_drop" in acc:  # tflite: fractions of 1
        fp32, int8, drop = acc.get("fp32_top1"), acc.get("top1"), acc.get("top1_drop")
        budget, floats = acc.get("max_accuracy_drop"), d.get("float_layers") or []
        metric = "top-1"
    else:  # onnxruntime: the budget search's figures
        fp32, int8, drop = acc.get("fp32"), acc.get("int8"), d.get("accuracy_drop")
        budget, floats = d.get("max_accuracy_drop"), d.get("excluded_layers") or []
        metric = "top-1" if acc.get("metric") == "top1" else "agreement with fp32"
    if not all(isinstance(v, (int, float)) for v in (fp32, int8, drop, budget)):
        return None
    met = drop <= budget + 1e-9  # every figure in percent / points of top-1
    kept = f" ({len(floats)} layer(s) left in float)" if floats else ""
    return (f"accuracy budget {artifact.file}: {metric} {int8:.2f}% vs fp32 {fp32:.2f}%, drop "
            f"{drop:.2f} pt {'<=' if met else '>'} {budget:g} pt: {'met' if met else 'MISSED'}"
            f"{kept}")


def written_files(bundle, since: float) -> list[str]:
    """Files of ``bundle`` this export wrote: the writer carries an earlier export's files over
    as hard links or copies that keep their modification time, so new ones are those changed
    since the export began (manifest.json last)."""
    from edgecnn.manifest import MANIFEST_NAME

    names = sorted((f for f in bundle.iterdir() if f.is_file() and f.stat().st_mtime >= since),
                   key=lambda f: (f.name == MANIFEST_NAME, f.name != "model.onnx",
                                  f.name == "build_plan.json", f.name))
    return [f.name for f in names]


def device_build_commands(bundle, files: list[str]) -> list[str]:
    """``edgecnn build`` for each TensorRT plan this export prepared but could not build here;
    the bundle as a relative path (inside this folder: from here, else the folder's name, as a
    copy to the device's working folder would have it)."""
    import os

    from edgecnn.bundle import Bundle
    from edgecnn.tensorrt.plan import BUILD_PLAN, read_plans

    if BUILD_PLAN not in files:
        return []
    plans = read_plans(bundle / BUILD_PLAN)
    built = {a.precision for a in Bundle.open(bundle).manifest.artifacts
             if a.backend == "tensorrt"}
    rel = os.path.relpath(bundle)
    where = rel if not rel.startswith("..") else bundle.resolve().name
    return [f"edgecnn build {where} --precision {p}"
            for p, plan in sorted(plans.items()) if plan.trt_onnx in files and p not in built]
