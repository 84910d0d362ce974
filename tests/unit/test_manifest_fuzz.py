"""Untrusted manifests: every mutation ends in a ManifestError, never another exception."""

import copy
import os
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecnn.errors import EdgeCNNError, ManifestError
from edgecnn.manifest import Artifact, Manifest, Preprocess, TensorSpec

# bounded for `make test`; `make test-long` sets EDGECNN_FUZZ_CASES=5000
FUZZ_CASES = max(400, int(os.environ.get("EDGECNN_FUZZ_CASES", "400")))


def _valid() -> dict:
    m = Manifest(
        model="lenet5", preprocess=Preprocess(size=[28, 28], channels=1, mean=[0.5], std=[0.5],
                                              channel_order="L"),
        labels=[f"c{i}" for i in range(10)],
        artifacts=[Artifact(file="model.onnx", sha256="0" * 64, backend="onnxruntime",
                            precision="fp32",
                            inputs=[TensorSpec("input", [-1, 1, 28, 28], "float32", "NCHW")],
                            outputs=[TensorSpec("logits", [-1, 10])], size_bytes=10)])
    return m.to_dict()


def test_valid_roundtrip():
    d = _valid()
    assert Manifest.from_json(json.dumps(d)).to_dict() == d


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                        max_size=4),
    max_leaves=12)


def _paths(d, prefix=()):
    yield prefix
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _paths(v, prefix + (i,))


ALL_PATHS = [p for p in _paths(_valid()) if p]


@settings(max_examples=FUZZ_CASES, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(ALL_PATHS), value=json_values, delete=st.booleans())
def test_mutated_manifest_is_refused_cleanly(path, value, delete):
    d = copy.deepcopy(_valid())
    parent = d
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        Manifest.from_dict(d)
    except ManifestError as exc:  # the one clean outcome of a bad manifest; valid ones load
        assert str(exc).strip(), "ManifestError without a message"


@settings(max_examples=FUZZ_CASES // 2, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_json_is_refused_cleanly(blob):
    with pytest.raises(EdgeCNNError) as info:
        Manifest.from_json(blob.decode("latin-1"))
    assert str(info.value).strip(), f"{type(info.value).__name__} without a message"


@pytest.mark.parametrize("name", ["../evil.onnx", "/etc/passwd", "sub/model.onnx", ".hidden",
                                  "..", "a\\b.onnx", ""])
def test_artifact_paths_that_escape_are_refused(name):
    d = _valid()
    d["artifacts"][0]["file"] = name
    with pytest.raises(ManifestError, match="plain file name"):
        Manifest.from_dict(d)


def test_unknown_schema_version_says_what_to_do():
    d = _valid()
    d["schema_version"] = 99
    with pytest.raises(ManifestError, match="re-export"):
        Manifest.from_dict(d)
