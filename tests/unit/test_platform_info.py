"""platform_info as the one home of machine facts: one L4T -> JetPack table, one cpuinfo reader,
one package list (read by doctor, manifests and bench reports)."""

import importlib.metadata as md
import json
import platform

import pytest

from edgecnn import platform_info
from edgecnn.catalog import packages
from edgecnn.platform_info import (cpu_model, is_tegra, l4t_to_jetpack, package_versions,
                                   parse_nv_tegra_release)


def test_jetpack_table_lives_beside_platform_info_with_one_row_per_release():
    data = json.loads(platform_info._JETPACK_DATA.read_text())
    assert platform_info._JETPACK_DATA.parent.name == "edgecnn"
    l4ts = [r["l4t"] for r in data["releases"]]
    assert len(l4ts) == len(set(l4ts))  # one answer per L4T release
    assert "telemetry" in data["source"]


@pytest.mark.parametrize("l4t,jetpack", [("36.4", "6.1"), ("36.4.0", "6.1"), ("36.4.3", "6.2"),
                                         ("36.4.4", "6.2.1"), ("38.4.0", "7.1"), ("39.2.0", "7.2")])
def test_merged_table_gives_one_answer(l4t, jetpack):
    assert l4t_to_jetpack(l4t)[0] == jetpack


def test_bench_jetson_and_platform_info_agree_on_the_same_release_text():
    from edgecnn.bench import jetson

    text = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64"
    assert jetson.parse_nv_tegra_release is parse_nv_tegra_release
    assert jetson.l4t_to_jetpack is l4t_to_jetpack
    tegra = platform_info.parse_tegra(text, "NVIDIA Jetson Orin Nano Developer Kit")
    assert (tegra.l4t, tegra.jetpack) == ("36.4.3", "6.2")


def test_is_tegra_matches_jetson_or_tegra_model(tmp_path):
    assert not is_tegra(tmp_path)
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_text("NVIDIA Tegra X1 (nvidia,p2371)\x00")
    assert is_tegra(tmp_path)
    (tmp_path / "proc/device-tree/model").write_text("Raspberry Pi 5\x00")
    assert not is_tegra(tmp_path)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.3")
    assert is_tegra(tmp_path)


def test_cpu_model_reads_cpuinfo_under_root(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nmodel name\t: Test CPU 9000\n")
    assert cpu_model(tmp_path) == "Test CPU 9000"
    assert cpu_model(tmp_path / "missing") == (platform.processor() or None)


def _only(installed: dict[str, str]):
    def version(dist):
        if dist in installed:
            return installed[dist]
        raise md.PackageNotFoundError(dist)
    return version


def test_package_versions_reads_the_catalogue_list(monkeypatch):
    monkeypatch.setattr(md, "version", _only({"onnxruntime-gpu": "1.22.0", "tensorrt-cu12": "10.3.0",
                                              "cuda-bindings": "12.6.0", "numpy": "2.1.0"}))
    got = package_versions()
    assert got == {"onnxruntime": "1.22.0", "tensorrt": "10.3.0", "cuda-python": "12.6.0",
                   "numpy": "2.1.0"}
    monkeypatch.setattr(md, "version", _only({"onnxruntime": "1.20.0", "onnxruntime-gpu": "1.22.0"}))
    assert package_versions() == {"onnxruntime": "1.20.0"}  # the first distribution wins
    monkeypatch.setattr(md, "version", _only({}))
    assert package_versions() == {}


def test_package_versions_covers_every_catalogue_name():
    shown = [name for name, _ in packages()]
    assert {"edgecnn", "numpy", "torch", "onnx", "onnxscript", "matplotlib", "onnxruntime",
            "ai-edge-litert", "litert-torch", "tensorrt", "cuda-python"} <= set(shown)
    assert set(package_versions()) <= set(shown)
    assert "numpy" in package_versions()


def test_tool_versions_is_edgecnn_python_and_package_versions(monkeypatch):
    from edgecnn import __version__
    from edgecnn.bundle import tool_versions

    tv = tool_versions()
    assert set(tv) == {"edgecnn", "python"} | set(package_versions())
    assert tv["edgecnn"] == __version__ and tv["python"] == platform.python_version()
    monkeypatch.setattr(md, "version", _only({"onnxruntime-gpu": "1.22.0", "tensorrt-cu12": "10.3.0"}))
    assert tool_versions() == {"edgecnn": __version__, "python": platform.python_version(),
                               "onnxruntime": "1.22.0", "tensorrt": "10.3.0"}


def test_doctor_and_bench_report_use_the_same_list(monkeypatch):
    from edgecnn.bench.report import collect_machine
    from edgecnn.cli.doctor_cmd import package_versions as doctor_versions

    monkeypatch.setattr(md, "version", _only({"onnxruntime-gpu": "1.22.0", "numpy": "2.1.0"}))
    doc = doctor_versions()
    assert list(doc) == ["python"] + [name for name, _ in packages()]
    assert doc["onnxruntime"] == "1.22.0" and doc["torch"] is None
    assert collect_machine(1)["libraries"] == {"onnxruntime": "1.22.0", "numpy": "2.1.0"}


def test_platform_info_imports_only_the_standard_library_and_edgecnn_leaves():
    import ast
    import sys

    tree = ast.parse(open(platform_info.__file__, encoding="utf-8").read())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    allowed = set(sys.stdlib_module_names) | {"__future__", "edgecnn.errors", "edgecnn.catalog",
                                              "tensorrt"}  # tensorrt: JetPack's system package
    assert mods <= allowed, mods - allowed


# -- issue 19: the one L4T -> JetPack table, its values and their sources --
@pytest.mark.parametrize("l4t,jetpack", [
    ("36.4.7", "6.2.1"), ("36.4.2", "6.1.1"), ("35.6.1", "5.1.5"), ("35.6.2", "5.1.5"),
    ("32.3.1", "4.3"), ("32.4.3", "4.4"), ("32.4.4", "4.4.1"), ("32.5.0", "4.5"),
    ("32.5.1", "4.5.1"), ("32.6.1", "4.6"), ("34.1.1", "5.0.1 DP"), ("32.7.1", "4.6.1"),
    ("32.7.6", "4.6.6"), ("35.6.0", "5.1.4"), ("35.6.4", "5.1.6"), ("38.2.1", "7.0"),
    ("38.4.0", "7.1"), ("39.0.0", "7.2 EA"), ("39.2.0", "7.2"),
    ("36.5.0", "6.x"),  # jetson-stats and jetson-containers disagree: left out, see left_out
])
def test_l4t_rows_the_issue_names(l4t, jetpack):
    assert l4t_to_jetpack(l4t)[0] == jetpack


@pytest.mark.parametrize("l4t,tensorrt,cuda", [
    ("32.7.1", "8.2.1", "10.2"), ("36.3.0", "8.6.2", "12.4"), ("36.4.3", "10.3.0", "12.6"),
    ("38.2.0", "10.13.3", "13.0"), ("38.4.0", None, "13.0"), ("39.2.0", None, "13.2"),
    ("35.4.1", "8.5.2", None),
])
def test_release_rows_carry_tensorrt_and_cuda(l4t, tensorrt, cuda):
    rel = platform_info.jetpack_release(l4t)
    assert (rel["tensorrt"], rel["cuda"]) == (tensorrt, cuda)


def test_every_release_row_names_known_sources():
    data = json.loads(platform_info._JETPACK_DATA.read_text())
    for rel in data["releases"]:
        assert rel["sources"] and set(rel["sources"]) <= set(data["sources"]), rel["l4t"]
        assert set(rel) == {"l4t", "jetpack", "tensorrt", "cuda", "sources"}
    assert "36.5.0" in data["left_out"]


def test_parse_tegra_reports_the_cuda_of_the_release():
    tegra = platform_info.parse_tegra("# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic",
                                      "NVIDIA Jetson AGX Orin Developer Kit")
    assert (tegra.jetpack, tegra.jetpack_tensorrt, tegra.jetpack_cuda) == ("6.2", "10.3.0", "12.6")


@pytest.mark.parametrize("model,module,power", [
    ("NVIDIA Jetson Xavier NX Developer Kit", "Jetson Xavier NX", "vdd_in"),
    ("NVIDIA Jetson Nano Developer Kit", "Jetson Nano", "pom_5v_in"),
    ("NVIDIA Jetson Orin Nano Developer Kit", "Jetson Orin Nano", "vdd_in"),
    ("NVIDIA Jetson AGX Orin Developer Kit", "Jetson AGX Orin", "agx_orin"),
])
def test_module_rows_name_their_rail_profile(model, module, power):
    row = platform_info.module_from_model(model)
    assert (row["module"], row["power"]) == (module, power)


def test_cpu_flags_name_only_the_int8_relevant_ones(tmp_path):
    from edgecnn.platform_info import cpu_flags, cpu_model

    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(
        "model name\t: Example CPU\nflags\t\t: fpu sse2 avx2 fma avx512_vnni\n\n"
        "model name\t: Example CPU\nflags\t\t: fpu sse2 avx2 fma avx512_vnni\n")
    assert cpu_flags(tmp_path) == ["avx2", "avx512_vnni"]
    assert cpu_model(tmp_path) == "Example CPU"
    assert cpu_flags(tmp_path / "nowhere") == []


def test_cpu_flags_read_arm_features(tmp_path):
    """aarch64 /proc/cpuinfo names its extensions on 'Features' lines (a Cortex-A76, as on a
    Raspberry Pi 5: int8 dot products and fp16, no i8mm)."""
    from edgecnn.platform_info import cpu_flags

    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(
        "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 "
        "crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU part\t: 0xd0b\n")
    assert cpu_flags(tmp_path) == ["asimddp", "asimdhp"]


@pytest.mark.parametrize("machine,flags,risk", [
    ("x86_64", "fpu sse2 avx2 fma", True),               # AVX2 only: vpmaddubsw sums in int16
    ("x86_64", "fpu avx2 avx512f avx512bw", True),       # AVX-512 without VNNI saturates too
    ("x86_64", "fpu avx2 avx512f avx512_vnni", False),
    ("x86_64", "fpu avx2 avx_vnni", False),
    ("x86_64", "fpu avx2 amx_int8", False),
    ("x86_64", None, True),                              # flags unreadable: the cautious answer
    ("aarch64", "fp asimd asimddp", False),
])
def test_int16_saturation_risk(tmp_path, monkeypatch, machine, flags, risk):
    from edgecnn.platform_info import int16_saturation_risk

    monkeypatch.setattr(platform, "machine", lambda: machine)
    if flags is not None:
        (tmp_path / "proc").mkdir()
        (tmp_path / "proc/cpuinfo").write_text(f"model name\t: X\nflags\t\t: {flags}\n")
    assert int16_saturation_risk(tmp_path) is risk
