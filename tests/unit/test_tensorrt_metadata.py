"""Engine metadata against recorded machines: what loads where, and the refusal text."""

import importlib.util

import pytest
from _tensorrt_lib import engine_metadata, io_specs, make_manifest, recorded_machine

from edgecnn.errors import BackendUnavailableError, BundleError, EngineMismatchError
from edgecnn.runtime.trt_engine_info import (DETAILS_KEY, EngineMetadata, check_engine_compatible,
                                             compare)


@pytest.mark.parametrize("name", ["desktop", "orin_nano", "agx_orin", "thor"])
def test_engine_runs_where_it_was_built(name):
    errors, warnings = compare(engine_metadata(name), recorded_machine(name))
    assert errors == [] and warnings == []


@pytest.mark.parametrize("built,runs,needle", [
    ("desktop", "orin_nano", "TensorRT 10.8.0.43 built it"),
    ("desktop", "thor", "compute capability 8.9"),
    ("thor", "agx_orin", "compute capability 11.0"),
    ("orin_nano", "desktop", "this is not one"),
    ("orin_nano", "orin_jp60", "L4T 36.4.3"),
    ("orin_nano", "thor", "TensorRT 10.3.0.30 built it"),
])
def test_mismatch_is_refused_with_what_differs(built, runs, needle):
    meta = engine_metadata(built)
    with pytest.raises(EngineMismatchError) as e:
        check_engine_compatible(meta, recorded_machine(runs), "model.fp16.engine", "bundles/lenet5")
    msg = str(e.value)
    assert needle in msg
    assert "edgecnn build bundles/lenet5 --precision fp16" in msg and "model.fp16.engine" in msg


def test_same_release_other_orin_module_only_warns():
    errors, warnings = compare(engine_metadata("orin_nano"), recorded_machine("agx_orin"))
    assert errors == [] and any("Jetson AGX Orin" in w for w in warnings)


def test_dla_engine_on_module_without_dla():
    meta = engine_metadata("agx_orin")
    meta.dla_core = 1
    meta.tegra_module, meta.l4t = "Jetson AGX Orin", "36.4.3"
    errors, _ = compare(meta, recorded_machine("orin_nano"))
    assert any("DLA core 1" in e for e in errors)


def test_no_gpu_and_no_tensorrt():
    machine = recorded_machine("desktop")
    machine.gpus, machine.tensorrt = [], None
    errors, _ = compare(engine_metadata("desktop"), machine)
    assert any("no NVIDIA GPU" in e for e in errors) and any("not installed" in e for e in errors)


def test_build_number_is_not_a_mismatch():
    machine = recorded_machine("desktop")
    machine.tensorrt = "10.8.0.99"
    assert compare(engine_metadata("desktop"), machine) == ([], [])


def test_metadata_roundtrip_and_missing():
    meta = engine_metadata("thor")
    assert EngineMetadata.from_dict(meta.to_dict()) == meta
    with pytest.raises(BundleError, match="edgecnn build"):
        EngineMetadata.from_dict(None)
    d = meta.to_dict()
    del d["compute_capability"]
    with pytest.raises(BundleError, match="compute_capability"):
        EngineMetadata.from_dict(d)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
def test_runtime_load_without_tensorrt_names_the_extra(tmp_path):
    import edgecnn.runtime as rt
    from edgecnn.bundle import BundleWriter

    inputs, outputs = io_specs((1, 8, 8), 4)
    with BundleWriter(tmp_path / "b", make_manifest()) as w:
        w.path_for("model.fp16.engine").write_bytes(b"not an engine, never read")
        w.add_artifact("model.fp16.engine", "tensorrt", "fp16", inputs, outputs,
                       {DETAILS_KEY: engine_metadata("desktop").to_dict()})
    with pytest.raises(BackendUnavailableError) as e:
        rt.load(tmp_path / "b", backend="tensorrt")
    assert "pip install 'edgecnn[tensorrt]'" in str(e.value) and "device" in str(e.value)
