"""The Session base class every runtime backend derives from.

Like Polygraphy's ``BaseRunner``, the base class owns what all backends share:
input checks against the manifest, preprocessing for ``predict`` and softmax/top-k;
a backend only implements ``_run`` on a checked float32 batch in the model's layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from edgecnn.errors import BackendUnavailableError, InputError
from edgecnn.manifest import Artifact, Manifest


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    probability: float


class Session:
    """A loaded artifact ready to run. ``run`` takes float32 NCHW (or the model's layout)."""

    backend: str = ""
    # the backend's _run takes float32 NCHW and changes the layout itself (in one pass with
    # whatever else it does to the input); otherwise run() hands it the artifact's layout
    transposes_input: bool = False

    def __init__(self, manifest: Manifest, artifact: Artifact, path: str):
        self.manifest = manifest
        self.artifact = artifact
        self.path = path
        self.input_spec = artifact.inputs[0]
        self.output_spec = artifact.outputs[0]

    # -- to implement ---------------------------------------------------------------
    def _run(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run_native(self, batch: np.ndarray) -> np.ndarray:
        """The artifact's own integer input tensor (its dtype and layout, already quantised),
        for backends whose artifacts take one (LiteRT full-integer models)."""
        raise InputError(f"{self.artifact.file} takes float32 input; this backend does not "
                         f"take {batch.dtype} tensors")

    # -- public API -----------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        """Expected input shape in NCHW, -1 for a dynamic batch."""
        return tuple(self.nchw_shape(self.input_spec))

    @staticmethod
    def nchw_shape(spec) -> list[int]:
        if spec.layout == "NHWC":
            n, h, w, c = spec.shape
            return [n, c, h, w]
        return list(spec.shape)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Float32 NCHW batch -> float32 logits of shape (N, num_classes).

        An artifact whose input tensor is integer (a full-integer int8 TFLite model) also takes
        that tensor as it is: the artifact's dtype and layout (e.g. int8 NHWC), quantised with
        the scale and zero point of ``artifact.inputs[0].quant``; nothing is converted then."""
        if isinstance(batch, np.ndarray) and self._is_native(batch):
            batch = self._check_native(batch)
            out = np.asarray(self._run_native(batch), dtype=np.float32)
            self._check_output(out, batch.shape[0])
            return out
        batch = self._check_input(batch)
        if self.input_spec.layout == "NHWC" and not self.transposes_input:
            batch = np.ascontiguousarray(batch.transpose(0, 2, 3, 1))
        out = np.asarray(self._run(batch), dtype=np.float32)
        self._check_output(out, batch.shape[0])
        return out

    def _is_native(self, batch: np.ndarray) -> bool:
        return self.input_spec.dtype in ("int8", "uint8") and batch.dtype == np.dtype(
            self.input_spec.dtype)

    def _check_native(self, batch: np.ndarray) -> np.ndarray:
        """The artifact's own input tensor: its dtype, its layout, its shape."""
        want = tuple(self.input_spec.shape)
        ok = batch.ndim == len(want) and all(w == -1 or g == w
                                             for g, w in zip(batch.shape, want))
        if not ok:
            raise InputError(f"{batch.dtype} input shape {tuple(batch.shape)} is wrong: this "
                             f"artifact's own input is {_fmt_shape(want)} "
                             f"({self.input_spec.layout or 'its layout'}); pass float32 NCHW "
                             f"to have it converted")
        return self._check_batch_size(batch)

    def predict(self, images: Iterable, top_k: int = 5) -> list[list[Prediction]]:
        """Images (paths, PIL images or uint8 HxW[xC] arrays) -> top-k predictions each."""
        from edgecnn.data.preprocess import preprocess_batch

        batch = preprocess_batch(images, self.manifest.preprocess)
        probs = softmax(self.run(batch))
        return top_k_predictions(probs, self.manifest.labels, top_k)

    def close(self) -> None:
        """Release backend resources. Sessions are also context managers."""

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.manifest.model} {self.artifact.key} "
                f"input={self.input_shape}>")

    # -- checks ---------------------------------------------------------------------
    def _check_input(self, batch) -> np.ndarray:
        if not isinstance(batch, np.ndarray):
            raise InputError(f"session.run expects a numpy array, got {type(batch).__name__}; "
                             f"use session.predict for images")
        if batch.dtype != np.float32:
            own = (f" or this artifact's own {self.input_spec.dtype} "
                   f"{self.input_spec.layout or ''} tensor" if self.input_spec.dtype
                   in ("int8", "uint8") else "")
            raise InputError(f"input dtype {batch.dtype} is wrong: expected float32 "
                             f"(preprocessed, NCHW){own}; use session.predict for uint8 images")
        expected = self.input_shape
        if batch.ndim != len(expected):
            raise InputError(f"input shape {tuple(batch.shape)} is wrong: expected "
                             f"{_fmt_shape(expected)} (N, C, H, W)")
        for got, want in zip(batch.shape[1:], expected[1:]):
            if want != -1 and got != want:
                raise InputError(f"input shape {tuple(batch.shape)} is wrong: expected "
                                 f"{_fmt_shape(expected)} (N, C, H, W)")
        if expected[0] != -1 and batch.shape[0] != expected[0]:
            raise InputError(f"batch size {batch.shape[0]} is wrong: this artifact has a fixed "
                             f"batch of {expected[0]}")
        return self._check_batch_size(batch)

    def _check_batch_size(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] == 0:
            raise InputError("input batch is empty")
        max_batch = self.max_batch()
        if max_batch is not None and batch.shape[0] > max_batch:
            raise InputError(f"batch size {batch.shape[0]} exceeds this artifact's maximum of "
                             f"{max_batch}; split the batch or rebuild with a larger profile")
        return np.ascontiguousarray(batch)

    def _output_ok(self, out: np.ndarray, n: int) -> bool:
        """Whether ``out`` has the manifest's output shape for a batch of ``n``."""
        want = self.output_spec.shape
        return out.ndim == len(want) and out.shape[0] == n and all(
            w == -1 or g == w for g, w in zip(out.shape[1:], want[1:]))

    def _check_output(self, out: np.ndarray, n: int) -> None:
        # a damaged or swapped model can load and run yet return another shape than its
        # manifest promises; refuse that rather than hand back wrong logits
        if not self._output_ok(out, n):
            want = list(self.output_spec.shape)
            raise BackendUnavailableError(
                f"{self.artifact.file} returned output of shape {tuple(out.shape)} for a batch of "
                f"{n}; its manifest says {_fmt_shape(want)}: the model file is damaged or does "
                f"not match its manifest; re-export the bundle")

    def max_batch(self) -> int | None:
        """Largest batch the backend accepts (engine profiles); None when unbounded."""
        return None


def _fmt_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join("N" if s == -1 else str(s) for s in shape) + ")"


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def top_k_predictions(probs: np.ndarray, labels: Sequence[str], k: int) -> list[list[Prediction]]:
    k = max(1, min(k, probs.shape[1]))
    out = []
    for row in probs:
        idx = np.argsort(-row, kind="stable")[:k]
        out.append([Prediction(labels[i] if i < len(labels) else str(i), int(i), float(row[i]))
                    for i in idx])
    return out
