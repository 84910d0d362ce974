"""What a user states about their model besides its name: factory arguments, preprocessing and
class names, as one typed value for ``load_model`` (the CLI's ``--model-arg``, ``--preset`` ...,
``--labels``). Standard library only.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from edgecnn.errors import ModelLoadError
from edgecnn.labels import LabelSet
from edgecnn.presets import PreprocessRequest


@dataclass(frozen=True)
class ModelSetup:
    model_args: dict[str, Any] = field(default_factory=dict)  # factory keyword arguments
    preprocess: PreprocessRequest = field(default_factory=PreprocessRequest)
    labels: LabelSet | None = None

    @property
    def is_empty(self) -> bool:
        return not self.model_args and self.preprocess.is_empty and self.labels is None

    def check(self) -> None:
        self.preprocess.check()

    def stated(self) -> dict[str, Any]:
        """What the user stated, for the bundle's ``source`` record."""
        out: dict[str, Any] = {}
        if self.model_args:
            out["model_args"] = {k: repr(v) for k, v in self.model_args.items()}
        if not self.preprocess.is_empty:
            out["preprocess"] = self.preprocess.to_dict()
        if self.labels is not None:
            out["labels"] = self.labels.source
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for a worker process (bench's torch target); see :meth:`from_json`.
        Factory arguments travel as their repr, so they must be Python literals (as the CLI's
        ``--model-arg`` values are)."""
        labels = self.labels
        return {"model_args": {k: repr(v) for k, v in self.model_args.items()},
                "preprocess": self.preprocess.to_dict(),
                "labels": None if labels is None else {
                    "names": list(labels.names), "source": labels.source,
                    "wnids": list(labels.wnids) if labels.wnids is not None else None}}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "ModelSetup":
        if not data:
            return cls()
        pre = {k: tuple(v) if isinstance(v, list) else v
               for k, v in (data.get("preprocess") or {}).items()}
        lab = data.get("labels")
        labels = None if lab is None else LabelSet(
            tuple(lab["names"]), lab["source"],
            tuple(lab["wnids"]) if lab.get("wnids") is not None else None)
        return cls(model_args={k: _literal(v) for k, v in (data.get("model_args") or {}).items()},
                   preprocess=PreprocessRequest(**pre), labels=labels)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_model_args(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """['width_mult=0.75', 'name=resnet'] -> {'width_mult': 0.75, 'name': 'resnet'}: values are
    Python literals where they parse as one (numbers, True/False/None, lists, quoted strings),
    else plain strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ModelLoadError(f"--model-arg {item!r}: use KEY=VALUE with a Python name as KEY, "
                                 f"e.g. --model-arg width_mult=0.75")
        if key in out:
            raise ModelLoadError(f"--model-arg {key} is given twice; give each argument once")
        try:
            out[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            out[key] = text.strip()
    return out
