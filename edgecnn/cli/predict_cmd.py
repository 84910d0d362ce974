"""``edgecnn predict BUNDLE IMAGE...``: top-k labels with the light runtime (no torch).

IMAGE is a file, a folder (its image files, recursively) or a quoted glob; the list is expanded
and sorted before the bundle is loaded. An image that cannot be read is reported on its own line
and the rest go on; the exit status is then 1. ``--json`` prints one JSON document and nothing
else on stdout.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

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
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document (model, artifact, one entry per image) and nothing "
                   "else on stdout.")
@handle_errors
@quiet_libraries
def predict(bundle: str, images: tuple[str, ...], backend: str | None, precision: str | None,
            top_k: int, threads: int | None, as_json: bool) -> None:
    """Classify IMAGE files (files, folders or quoted globs) with BUNDLE; print the top-k labels."""
    import edgecnn.runtime as rt
    from edgecnn.data.preprocess import load_image
    from edgecnn.errors import DataError

    paths = expand_images(images)
    if backend == "tensorrt":
        check_engine_built(bundle, precision)
    results = []
    with rt.load(bundle, backend=backend, precision=precision, threads=threads) as session:
        head = {"bundle": bundle, "model": session.manifest.model,
                "artifact": session.artifact.key, "file": session.artifact.file}
        if not as_json:
            click.echo(f"{head['model']} ({head['artifact']}, {head['file']})")
        note = getattr(session, "saturation_note", None)  # an int8 graph unchecked on this CPU
        if note:
            click.echo(f"note: {note}", err=True)
        for path in paths:  # one at a time: a bad image costs only its own line
            try:
                image = load_image(path, session.manifest.preprocess.channels)
            except DataError as exc:
                if len(paths) == 1 and not as_json:  # one image: its error is the error
                    raise
                results.append({"image": path, "error": str(exc)})
                click.echo(str(exc), err=True)
                continue
            preds = session.predict([image], top_k=top_k)[0]
            results.append({"image": path, "predictions": [
                {"label": p.label, "index": p.index, "probability": round(p.probability, 6)}
                for p in preds]})
            if not as_json:
                click.echo(path)
                for p in preds:
                    click.echo(f"  {p.probability:7.2%}  {p.label} ({p.index})")
    failed = sum("error" in r for r in results)
    if as_json:
        click.echo(json.dumps({**head, "top_k": top_k, "images": len(results),
                               "failed": failed, "results": results}, indent=1))
    if failed:
        raise DataError(f"{failed} of {len(results)} image(s) could not be read (listed above)")


def expand_images(items: tuple[str, ...]) -> list[str]:
    """Files as given; folders -> their image files (recursively), globs -> the matching image
    files, each sorted. A folder or glob without images is an error (before any work)."""
    from edgecnn.data.folder import IMAGE_SUFFIXES
    from edgecnn.errors import InputError

    def images_in(found) -> list[str]:
        return sorted(str(f) for f in found
                      if os.path.isfile(f) and Path(f).suffix.lower() in IMAGE_SUFFIXES)

    out: list[str] = []
    for item in items:
        if os.path.isdir(item):
            found = images_in(Path(item).rglob("*"))
            what = f"folder {item}"
        elif any(c in item for c in "*?[") and not os.path.exists(item):
            found = images_in(glob.glob(item, recursive=True))
            what = f"pattern {item!r}"
        else:  # a file: a missing or unreadable one is reported on its own line
            out.append(item)
            continue
        if not found:
            raise InputError(f"{what} holds no images ({', '.join(IMAGE_SUFFIXES)}); pass image "
                             f"files, a folder of them or a pattern like 'photos/*.png'")
        out += found
    return out


def check_engine_built(bundle: str, precision: str | None) -> None:
    """A bundle prepared for TensorRT on a machine without a GPU has a build plan but no engine
    yet: say that the engine is built with ``edgecnn build`` on the device."""
    from edgecnn.bundle import Bundle
    from edgecnn.errors import BundleError
    from edgecnn.tensorrt.plan import PREPARED_KEY

    m = Bundle.open(bundle).manifest
    if any(a.backend == "tensorrt" and precision in (None, a.precision) for a in m.artifacts):
        return
    prepared = sorted(((m.source or {}).get(PREPARED_KEY) or {}).get("precisions") or {})
    wanted = [p for p in prepared if precision in (None, p)]
    if wanted:
        raise BundleError(f"bundle {bundle} holds a prepared TensorRT build, not an engine yet; "
                          f"on the device with the GPU run: edgecnn build {bundle} "
                          f"--precision {wanted[0]}")
