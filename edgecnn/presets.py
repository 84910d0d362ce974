"""Preprocessing a user states: named presets for the common conventions, and the request the
command line builds (a preset plus single overrides). Standard library only.

A :class:`PreprocessRequest` is resolved against the model's input size by
:meth:`PreprocessRequest.resolve`; every value is checked before a model is loaded where it
can be (:meth:`PreprocessRequest.check`), and against the input size once that is known.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from edgecnn.errors import PreprocessError
from edgecnn.manifest import Preprocess

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# name -> (what it is, Preprocess fields). Sizes are the conventions' own; --resize/--crop or a
# model's other input size override them.
PRESETS: dict[str, tuple[str, dict]] = {
    "imagenet": ("torchvision ImageNet: shorter side 256, center crop 224, bilinear, "
                 "ImageNet mean/std", dict(
                     channels=3, resize=[256], crop=[224, 224], mean=list(IMAGENET_MEAN),
                     std=list(IMAGENET_STD), scale=1 / 255, channel_order="RGB",
                     interpolation="bilinear")),
    "inception": ("Inception / TF style: shorter side 342, center crop 299, bilinear, "
                  "mean 0.5 std 0.5", dict(
                      channels=3, resize=[342], crop=[299, 299], mean=[0.5] * 3, std=[0.5] * 3,
                      scale=1 / 255, channel_order="RGB", interpolation="bilinear")),
    "tf": ("(x - 127.5) / 127.5 on 0..255 pixels: shorter side 256, center crop 224, bilinear",
           dict(channels=3, resize=[256], crop=[224, 224], mean=[127.5] * 3, std=[127.5] * 3,
                scale=1.0, channel_order="RGB", interpolation="bilinear")),
    "fashion-mnist": ("Fashion-MNIST: grayscale 28x28, mean 0.2860 std 0.3530", dict(
        channels=1, size=[28, 28], resize=None, crop=None, mean=[0.2860], std=[0.3530], scale=1 / 255,
        channel_order="L", interpolation="bilinear")),
}
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class PreprocessRequest:
    """What the user asked for; None = keep the preset's or the model's own value."""

    preset: str | None = None
    resize: tuple[int, ...] | None = None  # (N,) shorter side or (H, W)
    crop: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    scale: float | None = None
    bgr: bool = False
    interpolation: str | None = None

    def check(self) -> None:
        """Raise PreprocessError for values no model can use (before a model is loaded)."""
        if self.preset is not None and self.preset not in PRESETS:
            raise PreprocessError(f"unknown preset {self.preset!r}; choose one of "
                                  f"{', '.join(PRESETS)}")
        for name, values, lengths in (("resize", self.resize, (1, 2)), ("crop", self.crop, (2,))):
            if values is not None and (len(values) not in lengths
                                       or not all(isinstance(v, int) and v > 0 for v in values)):
                raise PreprocessError(f"--{name} {_fmt(values)}: use positive ints, "
                                      f"{'N or ' if 1 in lengths else ''}HxW (e.g. 224x224)")
        if (self.mean is not None and self.std is not None and len(self.mean) != len(self.std)
                and min(len(self.mean), len(self.std)) > 1):
            raise PreprocessError(f"--mean has {len(self.mean)} values but --std has "
                                  f"{len(self.std)}; give one per channel (3 for RGB, 1 for L)")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values is not None and (len(values) not in (1, 3)
                                       or not all(math.isfinite(v) for v in values)):
                raise PreprocessError(f"--{name} {_fmt(values)}: give 3 finite numbers (RGB) "
                                      f"or 1 (grayscale), e.g. 0.5,0.5,0.5")
        if self.std is not None and not all(v > 0 for v in self.std):
            raise PreprocessError(f"--std {_fmt(self.std)}: every value must be > 0")
        if self.scale is not None and not (math.isfinite(self.scale) and self.scale > 0):
            raise PreprocessError(f"--scale {self.scale}: must be a finite number > 0 "
                                  f"(e.g. 0.00392156862745098 = 1/255, or 1)")
        if self.interpolation is not None and self.interpolation not in INTERPOLATIONS:
            raise PreprocessError(f"unknown interpolation {self.interpolation!r}; choose one "
                                  f"of {', '.join(INTERPOLATIONS)}")
        self._fields()  # crop larger than resize, mean of the wrong length for the preset

    @property
    def is_empty(self) -> bool:
        return self == PreprocessRequest()

    def _fields(self, base: dict | None = None) -> dict:
        """Preprocess fields: ``base`` (the model's own), then the preset, then the overrides;
        checked among themselves."""
        fields = dict(base or {})
        if self.preset is not None:
            fields.update(PRESETS[self.preset][1])
        if self.resize is not None:
            fields["resize"] = list(self.resize)
        if self.crop is not None:
            fields["crop"] = list(self.crop)
        for name in ("mean", "std", "scale", "interpolation"):
            if getattr(self, name) is not None:
                value = getattr(self, name)
                fields[name] = list(value) if isinstance(value, tuple) else value
        if self.bgr:
            fields["channel_order"] = "BGR"
        resize, crop = fields.get("resize"), fields.get("crop")
        if resize and crop and (max(crop) > resize[0] if len(resize) == 1
                                else crop[0] > resize[0] or crop[1] > resize[1]):
            raise PreprocessError(f"crop {_fmt(crop)} is larger than the resize {_fmt(resize)}; "
                                  f"crop at most the resized image (e.g. --resize 256 --crop 224)")
        return fields

    def implied_size(self) -> tuple[int, int, int] | None:
        """(C, H, W) the request fixes by itself (its crop, or an exact resize), else None."""
        f = self._fields()
        hw = (f.get("crop") or (f["resize"] if f.get("resize") and len(f["resize"]) == 2 else None)
              or f.get("size"))
        if hw is None:
            return None
        return (f.get("channels", 3), hw[0], hw[1])

    def resolve(self, base: Preprocess, input_size: tuple[int, int, int]) -> Preprocess:
        """The Preprocess for a model of ``input_size`` (C, H, W): ``base`` with the preset and
        the overrides on top; PreprocessError when they cannot feed that input."""
        c, h, w = input_size
        fields = dataclasses.asdict(base)
        if self.crop is None and self.preset is None and self.resize is not None \
                and len(self.resize) == 1:
            fields["crop"] = [h, w]  # --resize N alone: crop the model's input size
        fields = self._fields(fields)
        chans = fields.get("channels", c)
        if chans != c:
            raise PreprocessError(f"the preprocessing is for {chans} channel(s) but the model "
                                  f"takes {c}; use a {'grayscale' if c == 1 else 'RGB'} preset "
                                  f"or --mean/--std with {c} value(s)")
        if c == 1 and fields.get("channel_order") == "BGR":
            raise PreprocessError("--bgr needs an RGB model; this one takes 1 channel")
        for key in ("mean", "std"):
            if len(fields[key]) == 1:  # one value for every channel
                fields[key] = fields[key] * c
            if len(fields[key]) != c:
                raise PreprocessError(f"--{key} has {len(fields[key])} values but the model "
                                      f"takes {c} channel(s); give {c} (or 1 for all)")
        crop = fields.get("crop")
        if crop is not None and list(crop) != [h, w]:
            raise PreprocessError(f"the crop {_fmt(crop)} does not match the model input "
                                  f"{c}x{h}x{w}; pass --crop {h}x{w} (and a --resize that fits) "
                                  f"or --input-size {c}x{crop[0]}x{crop[1]}")
        fields["size"] = [h, w]
        pre = Preprocess(**fields)
        why = pre.problem()
        if why:
            raise PreprocessError(why)
        return pre

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items() if v not in (None, False)}


def _fmt(values) -> str:
    return "x".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
