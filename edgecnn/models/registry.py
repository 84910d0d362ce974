"""The model registry: a plain dict filled by the @register_model decorator.

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

from edgecnn.errors import UnknownModelError


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    factory: Callable
    input_size: tuple[int, int, int]  # (C, H, W) of the reference configuration
    num_classes: int
    test_size: tuple[int, int, int]  # small (C, H, W) the model still accepts
    description: str = ""


_REGISTRY: dict[str, ModelInfo] = {}
_ZOO_LOADED = False


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


def _load_zoo() -> None:
    global _ZOO_LOADED
    if not _ZOO_LOADED:
        _ZOO_LOADED = True
        from edgecnn.models import zoo  # noqa: F401  (imports every family file)


def list_models() -> list[ModelInfo]:
    _load_zoo()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_model_info(name: str) -> ModelInfo:
    _load_zoo()
    try:
        return _REGISTRY[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} (see 'edgecnn models' for the zoo, or pass "
            f"a package.module:callable factory or a .pt2 file)") from None


def create_model(name: str, num_classes: int | None = None, in_chans: int | None = None,
                 img_size: int | tuple[int, int] | None = None):
    """Build a zoo model (random init, eval mode not set) at the given configuration."""
    info = get_model_info(name)
    c, h, _w = info.input_size
    return info.factory(num_classes=num_classes or info.num_classes,
                        in_chans=in_chans or c, img_size=img_size or h)
