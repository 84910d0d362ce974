"""DLA: which batch profile a DLA build gets, and proof that layers really landed on the DLA.

With GPU fallback on, TensorRT quietly runs on the GPU every layer the DLA cannot take, and a
dynamic batch profile alone sends layers there (DLA engines are built for static shapes). So a
DLA build uses a static profile (min = opt = max = the plan's opt batch), and is checked twice:

* before the build: ``IBuilderConfig.can_run_on_DLA(layer)`` over the network's layers; none means
  the DLA would do nothing;
* after the build: the engine inspector's JSON (``profiling_verbosity = DETAILED``,
  ``IEngineInspector.get_engine_information(LayerInformationFormat.JSON)``) is searched for
  layers that name the DLA (:func:`count_dla_layers`).

Pure except for the two functions that take ``trt`` objects. What the inspector JSON of a DLA
engine looks like has not been seen on a device by this project: :func:`count_dla_layers` accepts
a layer when any of its string fields names the DLA, and ``scripts/gpu_acceptance.sh`` on a
Jetson is where this is confirmed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from edgecnn.errors import ExportError

_DLA = re.compile(r"\bDLA\b|dla_|_dla\b|\{ForeignNode.*dla", re.IGNORECASE)


def static_batch(batch_min: int, batch_opt: int, batch_max: int) -> tuple[int, int, int]:
    """The profile a DLA build uses: the opt batch, fixed."""
    return batch_opt, batch_opt, batch_opt


def _layers(info: Any) -> list[Any]:
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except json.JSONDecodeError:
            return [line for line in info.splitlines() if line.strip()]
    if isinstance(info, dict):
        return list(info.get("Layers", []))
    return list(info or [])


def count_dla_layers(engine_information: Any) -> tuple[int, int]:
    """(layers that name the DLA, all layers) in the inspector's engine information."""
    layers = _layers(engine_information)

    def on_dla(entry) -> bool:
        if isinstance(entry, str):
            return bool(_DLA.search(entry))
        if isinstance(entry, dict):
            return any(isinstance(v, str) and _DLA.search(v) for v in entry.values())
        return False

    return sum(1 for entry in layers if on_dla(entry)), len(layers)


def dla_eligible_layers(config, network) -> tuple[int, int]:
    """(layers the DLA can run, all layers) of a parsed network under ``config``."""
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    return sum(1 for layer in layers if config.can_run_on_DLA(layer)), len(layers)


def require_dla_layers(found: int, total: int, dla_core: int, when: str) -> None:
    if found == 0:
        raise ExportError(f"no layer of this network runs on DLA core {dla_core} ({when}: 0 of {total} "
                          f"layers); every layer would fall back to the GPU. Build without --dla-core, "
                          f"or prepare an fp16/int8 graph with DLA-supported layers (conv, pooling, "
                          f"activation) first")
