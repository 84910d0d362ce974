"""TensorRT version parsing and the per-major build strategy (pure; no TensorRT needed)."""

import importlib.util

import pytest

from edgecnn.errors import BackendUnavailableError, ProfileError
from edgecnn.runtime.trt_engine_info import TrtVersion, import_tensorrt
from edgecnn.tensorrt.versions import build_strategy, in_range, network_flags


@pytest.mark.parametrize("text,expected", [
    ("10.3", TrtVersion(10, 3)), ("10.3.0.30", TrtVersion(10, 3, 0)), ("11", TrtVersion(11, 0)),
    ("10.13.3.9+cuda13.0", TrtVersion(10, 13, 3)), (" 8.6.2 ", TrtVersion(8, 6, 2)),
])
def test_parse(text, expected):
    assert TrtVersion.parse(text) == expected


@pytest.mark.parametrize("bad", ["", "ten", "v10", ".3"])
def test_parse_rejects(bad):
    with pytest.raises(ProfileError, match="not a version"):
        TrtVersion.parse(bad)


def test_order_and_str():
    assert TrtVersion.parse("10.3") < TrtVersion.parse("10.13") < TrtVersion.parse("11.0")
    assert str(TrtVersion.parse("10.3.0.30")) == "10.3" and str(TrtVersion(10, 13, 3)) == "10.13.3"


def test_strategy_10_sets_strongly_typed_flag():
    s = build_strategy("10.3")
    assert s.network_flags == ("STRONGLY_TYPED",)
    assert s.strongly_typed and not s.precision_builder_flags and s.dla_supported


def test_strategy_11_needs_no_flag_and_dla_from_11_4_1():
    s = build_strategy("11.1.0.106")
    assert s.network_flags == () and s.strongly_typed and not s.precision_builder_flags
    assert not s.dla_supported and not build_strategy("11.4.0.106").dla_supported
    assert build_strategy("11.4.1").dla_supported and build_strategy("11.5").dla_supported


@pytest.mark.parametrize("old", ["8.6.2", "9.3"])
def test_strategy_refuses_old(old):
    with pytest.raises(BackendUnavailableError, match="JetPack 6.1"):
        build_strategy(old)


def test_strategy_refuses_unknown_future_major():
    with pytest.raises(BackendUnavailableError, match="upgrade edgecnn"):
        build_strategy("12.0")


def test_network_flags_bitmask():
    # int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) is looked up on the device
    assert network_flags("10.3", {"STRONGLY_TYPED": 1}) == 0b10
    assert network_flags("11.0", {"STRONGLY_TYPED": 1}) == 0
    assert network_flags("11.0", {}) == 0
    with pytest.raises(BackendUnavailableError, match="STRONGLY_TYPED"):
        network_flags("10.3", {})


def test_in_range():
    v = TrtVersion.parse("10.3.0.30")
    assert in_range(v, "10.3", "10.3") and in_range(v, "10.0", "11.99")
    assert not in_range(v, "10.13", None) and not in_range(TrtVersion(11, 1), None, "10.99")
    assert in_range(TrtVersion(11, 3), "10.13", "11.99")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
def test_missing_tensorrt_names_the_extra_and_the_device():
    with pytest.raises(BackendUnavailableError) as e:
        import_tensorrt("building the engine")
    assert "pip install 'edgecnn[tensorrt]'" in str(e.value) and "device" in str(e.value)
