"""The zoo: every family file, imported on the first lookup so their @register_model
decorators fill the registry; this is the one place that pulls in torch.

Adding a family: one new file plus its name in ``_load_zoo``.
"""

from __future__ import annotations

from edgecnn.errors import UnknownModelError
from edgecnn.models.registry import _REGISTRY, ModelInfo

_LOADED = False


def _load_zoo() -> None:
    global _LOADED
    if not _LOADED:
        from edgecnn.models import (alexnet, efficientnet, googlenet, lenet,  # noqa: F401
                                    mobilenet, resnet, small_resnet, vgg, vit)
        _LOADED = True


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
