"""Classify every image in a folder (or every frame of a video) with an edgecnn bundle.

A device app: it needs only ``edgecnn.runtime`` (numpy, Pillow and one backend library such as
onnxruntime or ai-edge-litert), never torch. Reading a video needs OpenCV (``cv2``).

    python examples/classify_folder.py BUNDLE FOLDER_OR_VIDEO [--backend tflite] [--precision int8]

Each line shows the top class and that frame's latency: decode, preprocess (the bundle's own
resize/crop/normalisation) and inference, as the app sees it. The last line gives the mean
latency and frames per second.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import edgecnn.runtime as rt

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


def frames(source: Path):
    """(name, image) pairs: image files of a folder (sorted), a video's frames, or one image."""
    if source.is_dir():
        for f in sorted(source.rglob("*")):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                yield str(f.relative_to(source)), f
    elif source.suffix.lower() in VIDEO_SUFFIXES:
        try:
            import cv2
        except ImportError:
            sys.exit("reading a video needs OpenCV: pip install opencv-python-headless")
        video = cv2.VideoCapture(str(source))
        index = 0
        while True:
            ok, bgr = video.read()
            if not ok:
                break
            yield f"frame {index}", bgr[:, :, ::-1].copy()  # OpenCV gives BGR; predict takes RGB
            index += 1
        video.release()
    else:
        yield source.name, source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="bundle folder written by 'edgecnn export'")
    parser.add_argument("source", type=Path, help="folder of images, a video file or one image")
    parser.add_argument("--backend", default=None, help="onnxruntime | tflite | tensorrt")
    parser.add_argument("--precision", default=None, help="fp32 | fp16 | int8")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    args = parser.parse_args(argv)
    if not args.source.exists():
        parser.error(f"{args.source} does not exist")

    with rt.load(args.bundle, backend=args.backend, precision=args.precision,
                 threads=args.threads) as session:
        print(f"{session.manifest.model} {session.artifact.key}: "
              f"{session.manifest.preprocess.describe()}")
        latencies = []
        for name, image in frames(args.source):
            start = time.perf_counter()
            top = session.predict([image], top_k=1)[0][0]
            latencies.append(time.perf_counter() - start)
            print(f"{name}: {top.label} ({top.probability:.1%})  {latencies[-1] * 1e3:.1f} ms")
    if not latencies:
        print(f"no images in {args.source} ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return 1
    total = sum(latencies)
    print(f"{len(latencies)} frames: mean {total / len(latencies) * 1e3:.1f} ms, "
          f"{len(latencies) / total:.1f} FPS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
