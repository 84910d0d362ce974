"""The edgecnn checkpoint format and the PyTorch predictor (needs torch when a function runs).

``edgecnn-checkpoint-v1`` is a plain dict of tensors and JSON-like values: the state dict, the
zoo config (model, classes, input), the preprocessing and the labels, so a checkpoint alone says
how to build, feed and name its model. ``edgecnn train`` writes it; ``load_model`` reads it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgecnn.errors import ModelLoadError
from edgecnn.manifest import Preprocess

CHECKPOINT_FORMAT = "edgecnn-checkpoint-v1"


def make_checkpoint(model_name: str, module, preprocess: Preprocess, labels: list[str],
                    epoch: int, metrics: dict[str, Any], train_state: dict | None = None) -> dict:
    """The edgecnn-checkpoint-v1 dict (plain tensors/str/int/float/list/dict only)."""
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "config": {"model": model_name, "num_classes": len(labels),
                   "in_chans": preprocess.channels, "img_size": int(preprocess.size[0])},
        "preprocess": dataclasses.asdict(preprocess),
        "labels": list(labels),
        "metrics": metrics,
        "epoch": int(epoch),
    }
    if train_state is not None:
        ckpt["train_state"] = train_state
    return ckpt


def save_checkpoint(ckpt: dict, path: Path) -> Path:
    """torch.save to a temporary name, then rename: a killed run never leaves half a file."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load an edgecnn checkpoint safely (weights_only) and check its format."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of many kinds
        raise ModelLoadError(f"cannot load checkpoint {path}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ModelLoadError(f"{path} is not an {CHECKPOINT_FORMAT} checkpoint (written by "
                             f"'edgecnn train'); for a plain state dict pass the zoo model name "
                             f"and --weights instead")
    for key in ("state_dict", "config", "preprocess", "labels"):
        if key not in ckpt:
            raise ModelLoadError(f"checkpoint {path} lacks '{key}'")
    return ckpt


def torch_predict_fn(module, threads: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """numpy float32 NCHW -> numpy logits, for :func:`edgecnn.data.accuracy.evaluate`."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    module.eval()

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(batch)).float().numpy()

    return predict
