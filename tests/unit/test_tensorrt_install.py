"""Defect 1: the install extras keep TensorRT and cuda-python on one CUDA major, the Jetson extras
never pip-install TensorRT, and ``edgecnn doctor`` names a CUDA-major mismatch and its fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgecnn._toml import tomllib
from edgecnn.tensorrt.cuda_compat import CudaStack, check, tensorrt_cuda_major

ROOT = Path(__file__).resolve().parents[2]


def _extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _cuda_python_major(reqs: list[str]) -> int:
    (req,) = [r for r in reqs if r.startswith("cuda-python")]
    lo = int(re.search(r">=(\d+)", req).group(1))
    hi = int(re.search(r"<(\d+)", req).group(1))
    assert hi == lo + 1, f"{req}: cuda-python must be pinned to one CUDA major"
    return lo


@pytest.mark.parametrize("extra, cuda", [("jetson", 12), ("jetson-jp7", 13)])
def test_jetson_extras_never_install_tensorrt(extra, cuda):
    reqs = _extras()[extra]
    assert not [r for r in reqs if r.lower().startswith("tensorrt")], reqs
    assert _cuda_python_major(reqs) == cuda
    assert not [r for r in reqs if r.split("[")[0].split(">")[0].split("=")[0] in
                ("torch", "onnx", "onnxruntime", "onnxscript")], "the device install stays small"


@pytest.mark.parametrize("extra, cuda", [("tensorrt", 12), ("tensorrt-cu13", 13)])
def test_desktop_extras_keep_one_cuda_major(extra, cuda):
    reqs = _extras()[extra]
    (trt,) = [r for r in reqs if r.lower().startswith("tensorrt")]
    assert trt.startswith(f"tensorrt-cu{cuda}"), "the bare 'tensorrt' metapackage picks CUDA 13"
    assert _cuda_python_major(reqs) == cuda


@pytest.mark.parametrize("stack, needle", [
    (CudaStack("13.0.1", "12.6", "10.3.0.30", 12, [], "6.2"), "pip install 'edgecnn[jetson]'"),
    (CudaStack("12.9.4", "12.6", "10.3.0.30", 12, ["tensorrt-cu12"], "6.2"), "pip uninstall tensorrt-cu12"),
    (CudaStack("12.9.4", "12.4", "11.4.0.106", 13, ["tensorrt-cu13"], None), "'tensorrt-cu12'"),
    (CudaStack("13.0.1", "13.0", "10.13.3.9", 12, ["tensorrt-cu12"], None), "'cuda-python>=12.6,<13'"),
    (CudaStack(None, "12.6", "10.3.0.30", 12, [], "6.2"), "cuda-python is not installed"),
])
def test_doctor_check_names_the_mismatch_and_the_fix(stack, needle):
    problems = check(stack)
    assert problems and any(needle in p for p in problems), problems
    assert all("\n" not in p for p in problems)


@pytest.mark.parametrize("stack", [
    CudaStack("12.9.4", "12.6", "10.3.0.30", 12, [], "6.2"),  # JetPack 6, edgecnn[jetson]
    CudaStack("13.0.1", "13.0", "11.4.0.106", 13, ["tensorrt-cu13"], None),
    CudaStack("12.9.4", "13.0", "10.8.0.43", 12, ["tensorrt-cu12"], None),  # newer driver is fine
    CudaStack(None, None, None, None, [], None),  # nothing installed: nothing to say
])
def test_doctor_check_is_quiet_when_consistent(stack):
    assert check(stack) == []


def test_tensorrt_cuda_major_sources():
    assert tensorrt_cuda_major("10.13.3.9+cuda13.0", [], None) == 13
    assert tensorrt_cuda_major("10.3.0.30", ["tensorrt-cu12", "tensorrt_cu12_libs"], None) == 12
    assert tensorrt_cuda_major("10.3.0.30", [], "6.2") == 12  # JetPack's system TensorRT
    assert tensorrt_cuda_major("10.13.3", [], "7.0") == 13
    assert tensorrt_cuda_major("10.3.0", [], None) is None


def test_doctor_json_carries_the_check():
    from edgecnn.cli.main import cli

    res = CliRunner().invoke(cli, ["doctor", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert "problems" in data["cuda_check"] and isinstance(data["cuda_check"]["problems"], list)
