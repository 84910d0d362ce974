"""Work that several artifacts of one export need, done once per export.

One ``edgecnn export`` may write many artifacts (``--target onnx,tflite --precision
fp32,fp16,int8``). They share the loaded model and model.onnx (the pipeline makes those once),
and, through this object on the :class:`~edgecnn.backends.registry.ExportContext`:

- the calibration set (the ONNX INT8 graphs and TFLite's PT2E observers read the same samples;
  each derives its own ranges from them);
- PyTorch's reference outputs on a given input set (parity of model.onnx and of every .tflite);
- model.onnx's outputs on the calibration samples (the parity reference of both INT8 graphs).

``runs`` counts how often each step was computed and ``uses`` how often it was asked for, so an
export (and its tests) can show that a shared step ran once.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Hashable


class SharedSteps:
    def __init__(self) -> None:
        self._values: dict[tuple, Any] = {}
        self.runs: Counter[str] = Counter()
        self.uses: Counter[str] = Counter()

    def get(self, step: str, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value of ``step`` for ``key``: ``make()`` the first time, the kept value after."""
        self.uses[step] += 1
        if (step, key) not in self._values:
            self._values[(step, key)] = make()
            self.runs[step] += 1
        return self._values[(step, key)]

    def summary(self) -> dict[str, dict[str, int]]:
        """{step: {"runs": n, "uses": m}} for every step asked for."""
        return {step: {"runs": self.runs[step], "uses": self.uses[step]} for step in self.uses}


def calibration_set(ctx) -> Any:
    """The export's calibration set (``edgecnn.quantize.calibration.CalibrationSet``), loaded once."""
    from edgecnn.quantize.calibration import load_calibration

    q, model = ctx.options.quantize, ctx.model
    key = (q.calib, q.calib_samples, q.seed, tuple(model.input_size))
    return ctx.shared.get("calibration set", key, lambda: load_calibration(
        q.calib, model.preprocess, model.input_size, samples=q.calib_samples, seed=q.seed))


def torch_reference(shared: SharedSteps, module, inputs: str, batches) -> Any:
    """PyTorch's logits on ``batches``, computed once per export for the input set named
    ``inputs`` (e.g. ``"random 8,1 seed 0"`` or ``"calibration 8"``)."""
    from edgecnn.export.parity import torch_outputs

    return shared.get("PyTorch reference", inputs, lambda: torch_outputs(module, batches))


def random_input_set(sizes, seed: int) -> str:
    """The name of the seeded random parity inputs of these batch sizes (a SharedSteps key)."""
    return f"random {','.join(map(str, sizes))} seed {seed}"
