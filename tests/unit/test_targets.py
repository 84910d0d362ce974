"""Device profiles and the backend registry: resolution, validation, argument checks."""

from __future__ import annotations

import pytest

from edgecnn.backends.registry import get_backend
from edgecnn.catalog import canonical as canonical_backend

from edgecnn.options import ExportOptions
from edgecnn.errors import CalibrationError, ProfileError, UnknownTargetError
from edgecnn.targets import PROFILE_DIR, list_profiles, load_profile_file, resolve_target


def test_every_shipped_profile_loads():
    profiles = list_profiles()
    assert {p.name for p in profiles} >= {"x86-cpu", "jetson-orin-nano"}
    for p in profiles:
        assert p.backend in ("onnxruntime", "tflite", "tensorrt")
        assert p.file and p.is_device


@pytest.mark.parametrize("name,backend", [("onnx", "onnxruntime"), ("ort", "onnxruntime"),
                                          ("ONNX", "onnxruntime"), ("trt", "tensorrt"),
                                          ("litert", "tflite")])
def test_backend_aliases(name, backend):
    prof = resolve_target(name)
    assert prof.backend == backend and prof.precision == "fp32" and not prof.is_device


def test_profile_by_name_and_by_path():
    by_name = resolve_target("x86-cpu")
    by_path = resolve_target(str(PROFILE_DIR / "x86-cpu.toml"))
    assert by_name.backend == by_path.backend == "onnxruntime"
    assert by_name.threads == 2


def test_unknown_target_suggests_close_names():
    with pytest.raises(UnknownTargetError, match="did you mean.*x86-cpu"):
        resolve_target("x86-cpuu")


def test_missing_profile_file(tmp_path):
    with pytest.raises(UnknownTargetError, match="does not exist"):
        resolve_target(str(tmp_path / "nope.toml"))


@pytest.mark.parametrize("body,match", [
    ('name = "x"\nbackend = "onnx"\nprecision = ', "not valid TOML"),
    ('name = "x"\nbackend = "onnx"\nprecision = "fp32"\ncolour = "red"\n', "unknown keys"),
    ('name = "x"\nbackend = "onnx"\n', "missing required key 'precision'"),
    ('name = "x"\nbackend = "onnx"\nprecision = "fp64"\n', "precision must be one of"),
    ('name = "x"\nbackend = "coreml"\nprecision = "fp32"\n', "unknown backend"),
    ('name = "x"\nbackend = "onnx"\nprecision = "fp32"\nthreads = "two"\n', "'threads' must be a int"),
    ('name = "x"\nbackend = "trt"\nprecision = "fp16"\nbatch_min = 8\nbatch_max = 2\n', "batch_min"),
    ('name = "x"\nbackend = "trt"\nprecision = "fp16"\ntrt_version_min = "ten"\n', "must look like"),
])
def test_malformed_profiles(tmp_path, body, match):
    p = tmp_path / "bad.toml"
    p.write_text(body)
    with pytest.raises(ProfileError, match=match):
        load_profile_file(p)


def test_canonical_backend_rejects_unknown():
    with pytest.raises(UnknownTargetError, match="unknown backend"):
        canonical_backend("coreml")


def test_onnxruntime_backend_registration_and_checks():
    be = get_backend("onnx")
    assert be is get_backend("ort") is get_backend("onnxruntime")
    assert be.name == "onnxruntime" and be.precisions == ("fp32", "fp16", "int8")
    prof = resolve_target("onnx")
    be.check(ExportOptions(), prof)  # fp32 needs nothing
    with pytest.raises(CalibrationError, match="--calib"):
        be.check(ExportOptions(precision="int8"), prof)
