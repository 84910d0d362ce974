"""The flags that state a model's preprocessing, class names and factory arguments, shared by
every command that loads a model from a checkpoint or a factory (export, eval).

``@model_setup_options`` adds ``--preset --resize --crop --mean --std --scale --bgr
--interpolation --labels --model-arg`` to a command and hands the command one ``setup``
argument, an :class:`edgecnn.model_setup.ModelSetup`, checked before any work starts.
"""

from __future__ import annotations

import functools

import click

from edgecnn.presets import INTERPOLATIONS, PRESETS

_PRESET_HELP = "; ".join(f"{name}: {what}" for name, (what, _) in PRESETS.items())


def _hw(text: str, option: str, allow_single: bool) -> tuple[int, ...]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) == 1 and allow_single:
        return values
    if len(values) == 2 or (len(values) == 1 and not allow_single):
        return values if len(values) == 2 else (values[0], values[0])
    from edgecnn.errors import PreprocessError

    raise PreprocessError(f"{option} {text!r}: use {'N (shorter side) or ' if allow_single else ''}"
                          f"HxW with positive ints, e.g. {'256 or ' if allow_single else ''}224x224")


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(p) for p in text.replace(" ", "").split(","))
    except ValueError:
        from edgecnn.errors import PreprocessError

        raise PreprocessError(f"{option} {text!r}: give numbers separated by commas, e.g. "
                              f"0.485,0.456,0.406") from None


def _scale(text: str) -> float:
    """'1/255', '0.00392', '1' -> float."""
    num, sep, den = text.partition("/")
    try:
        return float(num) / float(den) if sep else float(num)
    except (ValueError, ZeroDivisionError):
        from edgecnn.errors import PreprocessError

        raise PreprocessError(f"--scale {text!r}: give a number > 0 such as 1/255 or 1") from None


def build_setup(preset=None, resize=None, crop=None, mean=None, std=None, scale=None, bgr=False,
                interpolation=None, labels=None, model_arg=()):
    """The flags' values -> a checked ModelSetup (PreprocessError / ModelLoadError otherwise)."""
    from edgecnn.labels import read_labels
    from edgecnn.model_setup import ModelSetup, parse_model_args
    from edgecnn.presets import PreprocessRequest

    request = PreprocessRequest(
        preset=preset.lower() if preset else None,
        resize=_hw(resize, "--resize", True) if resize else None,
        crop=_hw(crop, "--crop", False) if crop else None,
        mean=_floats(mean, "--mean") if mean else None,
        std=_floats(std, "--std") if std else None,
        scale=_scale(scale) if scale else None, bgr=bool(bgr),
        interpolation=interpolation.lower() if interpolation else None)
    setup = ModelSetup(model_args=parse_model_args(model_arg), preprocess=request,
                       labels=read_labels(labels) if labels else None)
    setup.check()
    return setup


_OPTIONS = [
    click.option("--preset", default=None, metavar="NAME",
                 help=f"Preprocessing convention. {_PRESET_HELP}."),
    click.option("--resize", default=None, metavar="N|HxW",
                 help="Resize the shorter side to N (aspect kept) or to exactly HxW."),
    click.option("--crop", default=None, metavar="HxW", help="Center crop after the resize."),
    click.option("--mean", default=None, metavar="M[,M,M]", help="Per-channel mean, after --scale."),
    click.option("--std", default=None, metavar="S[,S,S]", help="Per-channel std, after --scale."),
    click.option("--scale", default=None, metavar="X",
                 help="Pixel scale before mean/std: 1/255 (0..1) or 1 (0..255)."),
    click.option("--bgr", is_flag=True, default=False, help="Feed channels as BGR."),
    click.option("--interpolation", default=None, metavar="|".join(INTERPOLATIONS),
                 help="Resize filter (default bilinear)."),
    click.option("--labels", default=None, metavar="FILE|imagenet",
                 help="Class names: a file (one per line, or JSON) or 'imagenet' (built in)."),
    click.option("--model-arg", "model_arg", multiple=True, metavar="KEY=VALUE",
                 help="Keyword argument for a module:callable factory (repeatable); values "
                      "parse as Python literals."),
]
_NAMES = ("preset", "resize", "crop", "mean", "std", "scale", "bgr", "interpolation", "labels",
          "model_arg")


def model_setup_options(fn):
    """Add the flags to a click command; the command receives ``setup`` instead of them."""
    from edgecnn.cli.main import handle_errors

    @functools.wraps(fn)
    def command(*args, **kwargs):
        values = {name: kwargs.pop(name) for name in _NAMES}
        kwargs["setup"] = handle_errors(build_setup)(**values)
        return fn(*args, **kwargs)

    for option in reversed(_OPTIONS):
        command = option(command)
    return command
