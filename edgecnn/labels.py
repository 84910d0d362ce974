"""Class names a user states: ``--labels FILE`` (one name per line, or JSON) or a built-in set
(``imagenet``: the 1,000 ImageNet-1k names, shipped as package data). Standard library only.

A label set may also carry WordNet ids (the built-in ImageNet set does), so an evaluation
folder whose subfolders are named ``n01440764`` ... maps onto the model's classes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from edgecnn.errors import PreprocessError

BUILTIN_DIR = Path(__file__).resolve().parent / "label_sets"
BUILTIN = ("imagenet",)
_WNID = re.compile(r"^n\d{8}$")


@dataclass(frozen=True)
class LabelSet:
    names: tuple[str, ...]
    source: str  # "imagenet" or the file name
    wnids: tuple[str, ...] | None = None

    def check_count(self, num_classes: int) -> None:
        if len(self.names) != num_classes:
            raise PreprocessError(f"labels {self.source} hold {len(self.names)} names but the "
                                  f"model has {num_classes} classes; give one name per class, "
                                  f"in class-index order")


def read_labels(spec: str) -> LabelSet:
    """A built-in set's name or a file: a .json list of names ({"names": [...]} or
    {"0": "name", ...} work too), or plain text with one name per line."""
    if spec in BUILTIN:
        return builtin(spec)
    path = Path(spec)
    if not path.is_file():
        raise PreprocessError(f"labels file {spec} does not exist; pass a text file with one "
                              f"class name per line, a JSON list, or a built-in set "
                              f"({', '.join(BUILTIN)})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PreprocessError(f"cannot read labels file {spec}: {exc}") from None
    if path.suffix.lower() == ".json":
        names, wnids = _from_json(text, spec)
    else:
        names, wnids = [line.strip() for line in text.splitlines() if line.strip()], None
    if not names:
        raise PreprocessError(f"labels file {spec} holds no names; write one class name per line")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PreprocessError(f"labels file {spec} names {dupes[0]!r} twice; every class needs "
                              f"its own name")
    return LabelSet(tuple(names), path.name, wnids)


def _from_json(text: str, spec: str) -> tuple[list[str], tuple[str, ...] | None]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PreprocessError(f"labels file {spec} is not valid JSON: {exc}") from None
    wnids = None
    if isinstance(data, dict) and "names" in data:
        wnids = data.get("wnids")
        data = data["names"]
    elif isinstance(data, dict):  # {"0": "tench", "1": "goldfish", ...}
        try:
            keyed = sorted((int(k), v) for k, v in data.items())
        except ValueError:
            keyed = []
        if not keyed or [k for k, _ in keyed] != list(range(len(keyed))):
            raise PreprocessError(f"labels file {spec}: a JSON object must map every class index "
                                  f"0..N-1 to a name, or hold a 'names' list")
        data = [v for _, v in keyed]
    if not isinstance(data, list) or not all(isinstance(n, str) and n.strip() for n in data):
        raise PreprocessError(f"labels file {spec}: expected a JSON list of non-empty names")
    if wnids is not None and (not isinstance(wnids, list) or len(wnids) != len(data)):
        raise PreprocessError(f"labels file {spec}: 'wnids' must list one id per name")
    return [n.strip() for n in data], tuple(wnids) if wnids else None


@lru_cache(maxsize=None)
def builtin(name: str) -> LabelSet:
    data = json.loads((BUILTIN_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return LabelSet(tuple(data["names"]), name, tuple(data["wnids"]))


def class_indices(folder_names: list[str], labels: list[str],
                  wnids: tuple[str, ...] | None = None) -> list[int] | None:
    """The model class index of each folder name, or None when they do not map: the names are
    the model's labels, class indices ('0', '17', ...), or WordNet ids of ``wnids`` (the built-in
    ImageNet ids when the model has its 1,000 names)."""
    if list(folder_names) == list(labels):
        return list(range(len(labels)))
    if all(n.isdigit() for n in folder_names):
        idx = [int(n) for n in folder_names]
        return idx if all(i < len(labels) for i in idx) else None
    if all(_WNID.match(n) for n in folder_names):
        if wnids is None and list(labels) == list(builtin("imagenet").names):
            wnids = builtin("imagenet").wnids
        if wnids is not None and len(wnids) == len(labels):
            where = {w: i for i, w in enumerate(wnids)}
            if all(n in where for n in folder_names):
                return [where[n] for n in folder_names]
        return None
    where = {n: i for i, n in enumerate(labels)}
    if all(n in where for n in folder_names):
        return [where[n] for n in folder_names]
    return None
