"""platform_info.probe and its parsers against recorded desktop and Jetson files."""

import json
import subprocess
import sys

import pytest
from _tensorrt_lib import FIXTURES, recorded_machine

from edgecnn.platform_info import (l4t_to_jetpack, module_from_model, parse_cpuinfo,
                                   parse_nv_tegra_release, parse_nvidia_smi, probe)


def test_parse_nv_tegra_release():
    text = (FIXTURES / "orin_nano/etc/nv_tegra_release").read_text()
    assert parse_nv_tegra_release(text) == ("36.4.3", "generic")
    assert parse_nv_tegra_release("garbage") == (None, None)


@pytest.mark.parametrize("l4t,jetpack,trt", [
    ("36.4.3", "6.2", "10.3.0"), ("36.4.0", "6.1", "10.3.0"), ("36.4", "6.1", "10.3.0"),
    ("36.4.4", "6.2.1", "10.3.0"), ("36.3.0", "6.0", "8.6.2"), ("38.2.0", "7.0", "10.13.3"),
    ("35.4.1", "5.1.2", "8.5.2"), ("36.9.0", "6.x", None), ("38.4.0", "7.1", None),
    ("32.7.4", "4.6.4", None), ("32.7.9", "4.6.x", None), ("39.2.0", "7.2", None),
    ("99.1", None, None), (None, None, None),
])
def test_l4t_to_jetpack(l4t, jetpack, trt):
    assert l4t_to_jetpack(l4t) == (jetpack, trt)


@pytest.mark.parametrize("model,module,dla", [
    ("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit", "Jetson Orin Nano", 0),
    ("NVIDIA Jetson AGX Orin Developer Kit", "Jetson AGX Orin", 2),
    ("NVIDIA Jetson Orin NX Engineering Reference Developer Kit", "Jetson Orin NX", 2),
    ("NVIDIA Jetson AGX Thor Developer Kit", "Jetson AGX Thor", 0),
])
def test_module_from_model(model, module, dla):
    row = module_from_model(model)
    assert row["module"] == module and row["dla_cores"] == dla


def test_parse_nvidia_smi_and_cpuinfo():
    gpus = parse_nvidia_smi("NVIDIA H100 80GB HBM3, 9.0, 570.86.15, 81559 MiB\n\nbad line\n")
    assert len(gpus) == 1 and gpus[0].compute_capability == "9.0" and gpus[0].memory_total_mb == 81559
    assert parse_cpuinfo((FIXTURES / "desktop/proc/cpuinfo").read_text()).startswith("13th Gen Intel")


def test_probe_recorded_orin_nano():
    info = probe(FIXTURES / "orin_nano", run_tools=False)
    t = info.tegra
    assert (t.module, t.l4t, t.jetpack, t.jetpack_tensorrt, t.dla_cores) == \
        ("Jetson Orin Nano", "36.4.3", "6.2", "10.3.0", 0)
    assert t.model == "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
    assert info.gpu.compute_capability == "8.7"  # the module's integrated GPU


def test_probe_recorded_thor_and_desktop():
    thor = recorded_machine("thor")
    assert thor.tegra.module == "Jetson AGX Thor" and thor.tegra.jetpack == "7.0"
    assert thor.gpu.compute_capability == "11.0"
    desk = recorded_machine("desktop")
    assert desk.tegra is None and desk.gpu.name == "NVIDIA GeForce RTX 4090"
    assert desk.cuda_driver == "550.54.15"


def test_probe_this_machine_never_raises_and_serialises(tmp_path):
    info = probe()
    json.loads(info.to_json())
    assert info.python and info.os
    empty = probe(tmp_path / "missing")  # nothing to read: still a PlatformInfo
    assert empty.tegra is None


def test_platform_info_imports_no_heavy_modules():
    code = ("import sys, edgecnn.platform_info as p, edgecnn.tensorrt.metadata, edgecnn.runtime.tensorrt; "
            "p.probe(); print(sorted(m for m in ('torch','onnx','tensorflow','tensorrt') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
