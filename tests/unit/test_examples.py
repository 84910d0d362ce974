"""examples/classify_folder.py runs on a bundle with edgecnn.runtime alone: torch and onnx are
blocked in the subprocess, so importing either would fail the run. Cost: ~3 s (plus the shared
TinyNet bundle of conftest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "classify_folder.py"

NO_TORCH = """
import runpy, sys
for name in ("torch", "onnx", "onnxscript", "tensorflow", "litert_torch"):
    sys.modules[name] = None  # importing any of these now raises ImportError
sys.argv = sys.argv[1:]  # python -c CODE SCRIPT ARGS... -> SCRIPT ARGS...
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("heavy imported:", sorted(m for m in ("torch", "onnx") if sys.modules.get(m) is not None))
sys.exit(code)
"""


def test_classify_folder_example_runs_without_torch(tiny_bundle, tmp_path):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(40, 30), (16, 16), (25, 60)]):
        folder = images / "sub" if i == 2 else images
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (images / "notes.txt").write_text("not an image")
    out = subprocess.run([sys.executable, "-c", NO_TORCH, str(EXAMPLE), str(tiny_bundle),
                          str(images)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    labels = ("class_0", "class_1", "class_2", "class_3", "class_4")
    per_frame = [ln for ln in lines if ln.endswith(" ms") and ": class_" in ln]
    assert [ln.split(":")[0] for ln in per_frame] == ["0.png", "1.png", "sub/2.png"]
    assert all(any(lab in ln for lab in labels) for ln in per_frame)
    assert any(ln.startswith("3 frames: mean ") and ln.endswith(" FPS") for ln in lines), lines
    assert "heavy imported: []" in lines
