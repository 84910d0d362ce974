"""``edgecnn predict BUNDLE IMAGE...``: top-k labels with the light runtime (no torch)."""

from __future__ import annotations

import click

from edgecnn.cli.main import THREADS, handle_errors
from edgecnn.cli.native_logs import quiet_libraries


@click.command("predict")
@click.argument("bundle", type=click.Path(path_type=str))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--backend", type=click.Choice(["onnxruntime", "tflite", "tensorrt"]), default=None,
              help="Which artifact backend to run (default: the bundle's first fp32 artifact).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8", "int8-trt"]), default=None,
              help="Which artifact precision to run (onnx int8: the CPU graph; int8-trt: the "
                   "TensorRT-shaped graph).")
@click.option("--top-k", "top_k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--threads", type=THREADS, default=None, help="CPU threads.")
@handle_errors
@quiet_libraries
def predict(bundle: str, images: tuple[str, ...], backend: str | None, precision: str | None,
            top_k: int, threads: int | None) -> None:
    """Classify IMAGE files with BUNDLE and print the top-k labels of each."""
    import edgecnn.runtime as rt

    with rt.load(bundle, backend=backend, precision=precision, threads=threads) as session:
        results = session.predict(list(images), top_k=top_k)
        click.echo(f"{session.manifest.model} ({session.artifact.key}, {session.artifact.file})")
        for path, preds in zip(images, results):
            click.echo(path)
            for p in preds:
                click.echo(f"  {p.probability:7.2%}  {p.label} ({p.index})")
