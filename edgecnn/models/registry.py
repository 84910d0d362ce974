"""The model registry: a plain dict filled by the @register_model decorator (lookups that
import the zoo first are in :mod:`edgecnn.models.zoo`).

Each zoo file defines a factory ``f(num_classes, in_chans, img_size) -> nn.Module``
and registers it with its reference configuration, e.g.::

    @register_model("resnet18", family="resnet", input_size=(3, 224, 224), num_classes=1000,
                    test_size=(3, 64, 64))
    def resnet18(num_classes=1000, in_chans=3, img_size=224): ...

``test_size`` is a small input the tests use where the reference size is slow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable



@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    factory: Callable
    input_size: tuple[int, int, int]  # (C, H, W) of the reference configuration
    num_classes: int
    test_size: tuple[int, int, int]  # small (C, H, W) the model still accepts
    description: str = ""


_REGISTRY: dict[str, ModelInfo] = {}  # filled as each family file is imported (see zoo.py)


def register_model(name: str, *, family: str, input_size: tuple[int, int, int],
                   num_classes: int = 1000, test_size: tuple[int, int, int] | None = None,
                   description: str = "") -> Callable:
    def deco(factory: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelInfo(name, family, factory, tuple(input_size), num_classes,
                                    tuple(test_size or input_size),
                                    description or (factory.__doc__ or "").strip().split("\n")[0])
        return factory
    return deco
