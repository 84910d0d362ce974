"""Turn what the user names on the command line into a LoadedModel ready to export.

``load_model(model, weights=None, input_size=None, num_classes=None)`` accepts

- a zoo name (``resnet18``), optionally with ``weights``: a plain state dict or an
  edgecnn checkpoint (``{"format": "edgecnn-checkpoint-v1", "state_dict", "config", ...}``);
- an edgecnn checkpoint file alone (its config names the zoo model);
- a ``package.module:callable`` or ``path/to/file.py:callable`` factory returning an
  ``nn.Module`` (the current folder is importable; keyword arguments from ``setup.model_args``);
- a ``torch.export`` program saved as ``.pt2`` (its graph gives the input size).

Weights are read with ``torch.load(weights_only=True)``: no pickled code runs. A
:class:`~edgecnn.model_setup.ModelSetup` states preprocessing and class names on top of what
the model says itself.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from edgecnn._lazy import require
from edgecnn.bundle import sha256_file
from edgecnn.data.preprocess import grayscale_preprocess, imagenet_preprocess
from edgecnn.errors import ManifestError, ModelLoadError, UnknownModelError, first_line
from edgecnn.manifest import Preprocess
from edgecnn.model_setup import ModelSetup
from edgecnn.models.checkpoint import CHECKPOINT_FORMAT


@dataclass
class LoadedModel:
    """A PyTorch model ready to export plus what the bundle must say about it."""

    module: Any  # torch.nn.Module in eval mode
    name: str
    input_size: tuple[int, int, int]  # (C, H, W)
    preprocess: Preprocess
    labels: list[str]
    source: dict[str, Any] = field(default_factory=dict)  # zoo/weights/factory/pt2 + sha256


_SHOW_KEYS = 5  # how many offending keys an error names
_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / torch.compile wrappers


def parse_input_size(text: str | tuple | list | None) -> tuple[int, int, int] | None:
    """'3x224x224' / '3,224,224' / (3, 224, 224) -> (C, H, W); None stays None."""
    if text is None:
        return None
    if isinstance(text, str):
        parts = text.lower().replace(",", "x").split("x")
    else:
        parts = list(text)
    try:
        size = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        size = ()
    if len(size) != 3 or not all(s > 0 for s in size):
        raise ModelLoadError(f"input size {text!r} is not CxHxW with positive ints (e.g. 3x224x224)")
    if size[0] not in (1, 3):
        raise ModelLoadError(f"input size {text!r}: edgecnn supports 1 (grayscale) or 3 (RGB) "
                             f"channels, got {size[0]}")
    return size  # type: ignore[return-value]


def load_model(model: str | os.PathLike, weights: str | os.PathLike | None = None,
               input_size: str | tuple[int, int, int] | None = None,
               num_classes: int | None = None, setup: ModelSetup | None = None) -> LoadedModel:
    """Resolve ``model`` (see the module doc) into an eval-mode module plus its metadata;
    ``setup`` (factory arguments, preprocessing, labels) is applied on top."""
    size = parse_input_size(input_size)
    if num_classes is not None and num_classes < 1:
        raise ModelLoadError(f"num_classes must be >= 1, got {num_classes}")
    setup = setup or ModelSetup()
    setup.check()
    implied = setup.preprocess.implied_size()
    spec = os.fspath(model)
    path = Path(spec)
    if any(len(os.fsencode(part)) > 255 for part in path.parts):  # the OS cannot look it up
        raise UnknownModelError(f"model {spec[:40]}... ({len(spec)} characters) is neither a zoo "
                                f"name nor a usable path: a path part is over 255 bytes")
    is_factory = ":" in spec and not path.exists() and path.suffix != ".pt2"
    if setup.model_args and not is_factory:
        raise ModelLoadError(f"--model-arg applies to module:callable factories; {spec} is not "
                             f"one (drop --model-arg)")
    if path.suffix == ".pt2":
        if weights is not None:
            raise ModelLoadError("a .pt2 program already holds its weights; drop --weights")
        loaded = _load_pt2(path, size, num_classes)
    elif path.is_file():
        if weights is not None:
            raise ModelLoadError(f"{spec} is a file; pass a zoo model name with --weights, or the "
                                 f"checkpoint alone as MODEL")
        loaded = _load_checkpoint_alone(path, size or implied, num_classes)
    elif is_factory:
        loaded = _load_factory(spec, weights, size, num_classes, setup.model_args, implied)
    elif path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        raise ModelLoadError(f"model file {spec} does not exist")
    else:
        loaded = _load_zoo(spec, weights, size or implied, num_classes)
    return _apply_setup(loaded, setup)


def _apply_setup(loaded: LoadedModel, setup: ModelSetup) -> LoadedModel:
    """The stated preprocessing and labels replace the model's own (checked against it)."""
    if not setup.preprocess.is_empty:
        loaded.preprocess = setup.preprocess.resolve(loaded.preprocess, loaded.input_size)
    if setup.labels is not None:
        setup.labels.check_count(len(loaded.labels))
        loaded.labels = list(setup.labels.names)
    loaded.source.update(setup.stated())
    return loaded


# -- zoo ------------------------------------------------------------------------------
def _load_zoo(name: str, weights, size, num_classes) -> LoadedModel:
    from edgecnn.models.zoo import get_model_info

    info = get_model_info(name)  # UnknownModelError with close matches
    ckpt = state = None
    source: dict[str, Any] = {"kind": "zoo", "model": name}
    if weights is not None:
        ckpt, state = _read_weights(weights)
        source.update(kind="checkpoint" if ckpt else "weights",
                      weights=Path(weights).name, sha256=sha256_file(weights))
        if ckpt:
            cfg = _checkpoint_config(ckpt, weights)
            if cfg.get("model") not in (None, name):
                raise ModelLoadError(f"{weights} is a checkpoint of {cfg['model']!r}, not {name!r}; "
                                     f"pass it as MODEL alone or use --weights with {cfg['model']}")
            size = size or _cfg_size(cfg)
            num_classes = num_classes or cfg.get("num_classes")
    size = size or info.input_size
    classes = num_classes or info.num_classes
    module = _build_zoo(name, classes, size)
    if state is not None:
        _load_state(module, state, weights)
    else:  # random weights: keep the logits of a normal size (see models/batchnorm.py)
        from edgecnn.models.batchnorm import settle_if_vanishing

        settled = settle_if_vanishing(module, size)
        source["init"] = ("random weights, BatchNorm statistics settled on seeded random inputs"
                          if settled else "random weights")
    return _finish(module, name, size, classes, ckpt, source)


def _build_zoo(name: str, num_classes: int, size):
    from edgecnn.models.zoo import create_model

    c, h, w = size
    if h != w:
        raise ModelLoadError(f"zoo models take square inputs; got input size {c}x{h}x{w}")
    try:
        return create_model(name, num_classes=num_classes, in_chans=c, img_size=h)
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(f"cannot build {name} at input size {c}x{h}x{w} with "
                             f"{num_classes} classes: {exc}") from exc


def _load_checkpoint_alone(path: Path, size, num_classes) -> LoadedModel:
    ckpt, state = _read_weights(path)
    if not ckpt:
        raise ModelLoadError(f"{path} is a plain state dict, which does not say which model it is; "
                             f"pass the zoo model name as MODEL and this file as --weights")
    cfg = _checkpoint_config(ckpt, path)
    name = cfg.get("model")
    if not isinstance(name, str):
        raise ModelLoadError(f"{path}: checkpoint config has no model name")
    size = size or _cfg_size(cfg)
    from edgecnn.models.zoo import get_model_info

    try:
        info = get_model_info(name)
    except UnknownModelError as exc:
        raise ModelLoadError(f"{path}: checkpoint names model {name!r} that this edgecnn does not "
                             f"have ({exc})") from None
    size = size or info.input_size
    classes = num_classes or cfg.get("num_classes") or info.num_classes
    module = _build_zoo(name, classes, size)
    _load_state(module, state, path)
    source = {"kind": "checkpoint", "model": name, "weights": path.name, "sha256": sha256_file(path)}
    return _finish(module, name, size, classes, ckpt, source)


def _cfg_size(cfg: dict) -> tuple[int, int, int] | None:
    c, s = cfg.get("in_chans"), cfg.get("img_size")
    if isinstance(c, int) and isinstance(s, int):
        return (c, s, s)
    return None


def _checkpoint_config(ckpt: dict, where) -> dict:
    cfg = ckpt.get("config", {})
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{where}: checkpoint 'config' must be a dict")
    return cfg


# -- factory --------------------------------------------------------------------------
def _load_factory(spec: str, weights, size, num_classes, model_args: dict | None = None,
                  implied_size=None) -> LoadedModel:
    torch = require("torch", "export", "load PyTorch models")
    mod_name, _, attr = spec.rpartition(":")
    if not mod_name or not attr:
        raise UnknownModelError(f"{spec!r} is not a zoo model or a factory; name one as "
                                f"package.module:callable or path/to/file.py:callable")
    module_obj = _import_factory_module(mod_name, spec)
    fn: Any = module_obj
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise UnknownModelError(f"{mod_name} has no attribute {attr!r} (factory {spec!r})")
    if not callable(fn):
        raise ModelLoadError(f"{spec} is not callable")
    kwargs = dict(model_args or {})
    params = _parameters(fn)
    if params is not None:
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        unknown = [k for k in kwargs if k not in params and not takes_any]
        if unknown:
            names = ", ".join(n for n, p in params.items()
                              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) or "none"
            raise ModelLoadError(f"factory {spec} takes no argument {unknown[0]!r} (it takes: "
                                 f"{names}); fix --model-arg")
    if num_classes is not None and "num_classes" not in kwargs and _accepts(fn, "num_classes"):
        kwargs["num_classes"] = num_classes
    try:
        module = fn(**kwargs)
    except Exception as exc:  # user code: any failure becomes one clear line
        raise ModelLoadError(f"factory {spec} failed: {type(exc).__name__}: "
                             f"{first_line(exc)}") from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(f"factory {spec} returned {type(module).__name__}, not a torch.nn.Module")
    size = size or _declared_size(module) or _declared_size(fn) or implied_size
    if size is None:
        raise ModelLoadError(f"factory {spec} does not say its input size; pass --input-size CxHxW "
                             f"(e.g. 3x224x224) or a --preset / --crop")
    ckpt = None
    source: dict[str, Any] = {"kind": "factory", "model": spec, "factory": spec}
    if weights is not None:
        ckpt, state = _read_weights(weights)
        _load_state(module, state, weights)
        source.update(weights=Path(weights).name, sha256=sha256_file(weights))
    name = attr.split(".")[-1]
    return _finish(module, name, size, _infer_classes(module, size, spec), ckpt, source)


def _import_factory_module(mod_name: str, spec: str):
    """``package.module`` (installed, or in the current folder) or ``path/to/file.py``."""
    if mod_name.endswith(".py") or "/" in mod_name or os.sep in mod_name:
        return _import_file(Path(mod_name), spec)
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # after installed packages: a local folder never shadows them
    try:
        return importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if exc.name and mod_name.split(".")[0] == exc.name.split(".")[0]:
            raise UnknownModelError(f"cannot import {mod_name!r} for factory {spec!r}: no such "
                                    f"module installed or in {cwd}; check the name, or pass "
                                    f"path/to/file.py:callable") from None
        raise ModelLoadError(f"importing {mod_name} for factory {spec!r} failed: {exc}; install "
                             f"what it needs") from None
    except Exception as exc:  # user code: any failure becomes one clear line
        raise ModelLoadError(f"importing {mod_name} for factory {spec!r} failed: "
                             f"{type(exc).__name__}: {first_line(exc)}") from None


def _import_file(path: Path, spec: str):
    if path.suffix != ".py":
        raise UnknownModelError(f"factory {spec!r}: {path} is not a .py file; name a factory as "
                                f"path/to/file.py:callable or package.module:callable")
    if not path.is_file():
        raise UnknownModelError(f"factory file {path} does not exist (factory {spec!r})")
    path = path.resolve()
    key = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"edgecnn_factory_{_safe_name(path.stem)}_{key}"
    if name in sys.modules:
        return sys.modules[name]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)  # the file may import its neighbours
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # user code: any failure becomes one clear line
        del sys.modules[name]
        raise ModelLoadError(f"importing {path.name} for factory {spec!r} failed: "
                             f"{type(exc).__name__}: {first_line(exc)}") from None
    return module


def _parameters(fn):
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None


def _accepts(fn, param: str) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return param in sig.parameters or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def _declared_size(obj) -> tuple[int, int, int] | None:
    for attr in ("input_size", "default_input_size"):
        value = getattr(obj, attr, None)
        if isinstance(value, (tuple, list)) and len(value) == 3:
            return parse_input_size(tuple(value))
    return None


# -- torch.export -----------------------------------------------------------------------
def _load_pt2(path: Path, size, num_classes) -> LoadedModel:
    torch = require("torch", "export", "load .pt2 programs")
    if not path.is_file():
        raise ModelLoadError(f"exported program {path} does not exist")
    try:
        ep = torch.export.load(str(path))
    except Exception as exc:
        raise ModelLoadError(f"cannot load {path} with torch.export.load: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    shape = _pt2_input_shape(ep, path)
    batch = shape[0] if isinstance(shape[0], int) else None
    found = tuple(int(s) for s in shape[1:])
    if size is not None and tuple(size) != found:
        raise ModelLoadError(f"{path} was exported for input {'x'.join(map(str, found))}, "
                             f"not {'x'.join(map(str, size))}; drop --input-size or re-export it")
    size = parse_input_size(found)
    module = ep.module()
    source: dict[str, Any] = {"kind": "pt2", "model": path.stem, "file": path.name,
                              "sha256": sha256_file(path)}
    if batch is not None:
        source["fixed_batch"] = batch
    classes = _infer_classes(module, size, str(path), batch or 1)
    if num_classes is not None and num_classes != classes:
        raise ModelLoadError(f"{path} outputs {classes} classes, not --num-classes {num_classes}")
    loaded = _finish(module, path.stem, size, classes, None, source)
    return loaded


def _pt2_input_shape(ep, path) -> tuple:
    users = list(ep.graph_signature.user_inputs)
    if len(users) != 1:
        raise ModelLoadError(f"{path} takes {len(users)} inputs; edgecnn exports single-image models")
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name == users[0]:
            val = node.meta.get("val")
            if val is None or len(val.shape) != 4:
                raise ModelLoadError(f"{path}: its input is not a 4-D NCHW tensor")
            return tuple(s if isinstance(s, int) else None for s in val.shape)
    raise ModelLoadError(f"{path}: cannot find the program's input in its graph")


# -- weights ----------------------------------------------------------------------------
def _read_weights(path) -> tuple[dict | None, dict]:
    """-> (checkpoint dict or None, state dict). Refuses pickled objects with a how-to."""
    torch = require("torch", "export", "read weights")
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"weights file {p} does not exist")
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "weights_only" in text or "Unpickl" in type(exc).__name__ or "GLOBAL" in text:
            raise ModelLoadError(
                f"{p} holds pickled Python objects (a whole model?), which edgecnn does not load "
                f"because unpickling runs code; save a state dict instead: "
                f"torch.save(model.state_dict(), '{p.name}')") from None
        raise ModelLoadError(f"cannot read weights {p}: {type(exc).__name__}: "
                             f"{text.splitlines()[0] if text else ''}") from None
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        state = obj.get("state_dict")
        if not _is_state_dict(state):
            raise ModelLoadError(f"{p}: edgecnn checkpoint has no valid 'state_dict'")
        return obj, _strip_prefixes(state)
    if isinstance(obj, dict) and "format" in obj:
        raise ModelLoadError(f"{p}: checkpoint format {obj['format']!r} is not supported "
                             f"(expected {CHECKPOINT_FORMAT!r})")
    if isinstance(obj, dict) and _is_state_dict(obj.get("state_dict")):  # Lightning-style wrapper
        return None, _strip_prefixes(obj["state_dict"])
    if _is_state_dict(obj):
        return None, _strip_prefixes(obj)
    raise ModelLoadError(f"{p} is not a state dict (got {type(obj).__name__}); save one with "
                         f"torch.save(model.state_dict(), '{p.name}')")


def _is_state_dict(obj) -> bool:
    import torch

    return (isinstance(obj, dict) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def _strip_prefixes(state: dict) -> dict:
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _load_state(module, state: dict, where) -> None:
    """Strict load with an error naming the first offending keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                        ("shape mismatches", mismatched)):
        if keys:
            more = f" (+{len(keys) - _SHOW_KEYS} more)" if len(keys) > _SHOW_KEYS else ""
            problems.append(f"{label}: {', '.join(keys[:_SHOW_KEYS])}{more}")
    if problems:
        raise ModelLoadError(f"weights {Path(where).name} do not match the model: "
                             f"{'; '.join(problems)}; check the model name, --num-classes and "
                             f"--input-size")
    module.load_state_dict(state, strict=True)


# -- common -----------------------------------------------------------------------------
def _infer_classes(module, size, where, batch: int = 1) -> int:
    """Run the model once on zeros: proves the input size and gives the number of classes."""
    import torch

    try:
        module.eval()
    except Exception:  # exported GraphModules refuse eval()/train(); they are eval already
        pass
    try:
        with torch.no_grad():
            out = module(torch.zeros((batch, *size)))
    except Exception as exc:
        raise ModelLoadError(f"{where} does not run on input {'x'.join(map(str, size))}: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                             f"pass the right --input-size") from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ModelLoadError(f"{where} must return logits of shape (N, classes), got "
                             f"{getattr(out, 'shape', type(out).__name__)}")
    return int(out.shape[1])


def _finish(module, name: str, size, num_classes: int, ckpt: dict | None,
            source: dict[str, Any]) -> LoadedModel:
    try:
        module.eval()
    except Exception:
        pass
    c, h, w = size
    preprocess = _preprocess(ckpt, size)
    labels = None
    if ckpt and isinstance(ckpt.get("labels"), list) and all(isinstance(x, str) for x in ckpt["labels"]):
        labels = list(ckpt["labels"])
        if len(labels) != num_classes:
            raise ModelLoadError(f"checkpoint has {len(labels)} labels for {num_classes} classes")
    labels = labels or [f"class_{i}" for i in range(num_classes)]
    source = {**source, "input_size": [c, h, w], "num_classes": num_classes}
    return LoadedModel(module=module, name=_safe_name(name), input_size=(c, h, w),
                       preprocess=preprocess, labels=labels, source=source)


def _preprocess(ckpt: dict | None, size) -> Preprocess:
    c, h, w = size
    if ckpt and ckpt.get("preprocess") is not None:
        try:
            pre = Preprocess.from_dict(ckpt["preprocess"], "checkpoint preprocess")
        except ManifestError as exc:
            raise ModelLoadError(str(exc).replace("manifest.json: ", "")) from None
        if pre.channels != c or list(pre.size) != [h, w]:
            raise ModelLoadError(f"checkpoint preprocess ({pre.channels}x{pre.size[0]}x{pre.size[1]}) "
                                 f"does not match the input size {c}x{h}x{w}")
        return pre
    return grayscale_preprocess((h, w)) if c == 1 else imagenet_preprocess((h, w))


def _safe_name(name: str) -> str:
    out = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("._")
    return out or "model"
