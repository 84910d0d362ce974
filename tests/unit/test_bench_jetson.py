"""tegrastats and Jetson tool parsing against recorded output of Orin Nano/NX/AGX and Thor
(tests/fixtures/tegrastats/README.md says where each line came from)."""

from pathlib import Path

import pytest

from edgecnn.bench.jetson import (parse_jetson_clocks_show, parse_nvpmodel,
                                  parse_tegrastats_line, parse_tegrastats_lines, summarize_power)
from edgecnn.platform_info import l4t_to_jetpack, parse_nv_tegra_release

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "tegrastats"


def lines(name):
    return [ln for ln in (FIX / name).read_text().splitlines() if ln.strip()]


def test_orin_nano_input_rail_and_fields():
    s = parse_tegrastats_line(lines("orin_nano.txt")[0])
    assert s.time == "07-14-2025 10:29:36"
    assert (s.ram_used_mb, s.ram_total_mb) == (2147, 7620)
    assert s.cpu_util == [0] * 6 and s.cpu_mhz == [729] * 6
    assert s.gpu_util == 0 and s.gpu_mhz is None
    assert s.rails_mw == {"VDD_IN": 4556, "VDD_CPU_GPU_CV": 483, "VDD_SOC": 1451}
    assert s.input_power == (4556, "VDD_IN")  # sub-rails are not added to the input rail
    assert s.temps_c["tj"] == pytest.approx(48.625)


def test_orin_nano_loaded_gpu_frequency_and_instant_value():
    s = parse_tegrastats_line(lines("orin_nano.txt")[2])
    assert (s.gpu_util, s.gpu_mhz) == (62, 612)
    assert s.rails_mw["VDD_SOC"] == 1446  # the instantaneous value, not the running average
    assert s.temps_c["gpu"] == 50.0


def test_orin_nx_line():
    s = parse_tegrastats_line(lines("orin_nx.txt")[0])
    assert len(s.cpu_util) == 8
    assert s.input_power == (4304, "VDD_IN")
    assert {"cv0", "cv1", "cv2", "tj"} <= set(s.temps_c)


def test_agx_orin_has_no_input_rail_so_rails_are_summed():
    s = parse_tegrastats_line(lines("agx_orin.txt")[0])
    assert (s.gpu_util, s.gpu_mhz) == (12, 1300)  # GR3D_FREQ 12%@[1300,1300]
    assert (s.emc_util, s.emc_mhz) == (3, 3199)
    assert s.temps_c["cpu"] == pytest.approx(52.968)  # 'cpu@52.968C/52.968C'
    assert s.rails_mw == {"VDD_GPU_SOC": 5139, "VDD_CPU_CV": 3268, "VIN_SYS_5V0": 5500}
    mw, source = s.input_power
    assert mw == 5139 + 3268 + 5500 and source.startswith("sum(")
    assert len(s.cpu_util) == 12 and s.cpu_util[0] == 23


def test_thor_lines_use_vin():
    idle, loaded = (parse_tegrastats_line(x) for x in lines("thor.txt"))
    assert idle.gpu_util is None and idle.gpu_mhz == 314  # GR3D_FREQ @[314,314,314]
    assert idle.input_power == (19780, "VIN")
    assert idle.rails_mw["VIN_SYS_5V0"] == 5635  # not confused with VIN
    assert loaded.gpu_mhz is None  # JetPack 7.2 prints no GR3D_FREQ
    assert loaded.input_power == (87426, "VIN")
    assert loaded.rails_mw["VDD_GPU"] == 37528
    assert loaded.temps_c["soc345"] == pytest.approx(63.281)


def test_negative_rail_and_old_unitless_format():
    s = parse_tegrastats_line("RAM 1/2MB VDD_GPU -392mW/-392mW VDD_CPU_SOC_MSS 3924mW/3835mW "
                              "VIN 15004mW/15096mW")
    assert s.rails_mw["VDD_GPU"] == -392 and s.input_power == (15004, "VIN")
    old = parse_tegrastats_line("RAM 1276/3956MB (lfb 108x4MB) CPU [31%@1479,off] "
                                "POM_5V_IN 3478/3201 POM_5V_GPU 0/20")
    assert old.input_power == (3478, "POM_5V_IN")
    assert old.cpu_util == [31, None]


def test_garbage_is_not_a_sample():
    assert parse_tegrastats_line("") is None
    assert parse_tegrastats_line("tegrastats: permission denied") is None
    assert len(parse_tegrastats_lines(["junk"] + lines("orin_nano.txt"))) == 3


def test_summary_energy_per_inference():
    samples = parse_tegrastats_lines(lines("orin_nano.txt"))
    p = summarize_power(samples, mean_latency_ms=2.0, batch=4)
    avg = (4556 + 6626 + 4541) / 3
    assert p.samples == 3 and p.source == "VDD_IN"
    assert p.avg_input_mw == pytest.approx(avg)
    assert p.max_input_mw == 6626
    assert p.energy_per_inference_mj == pytest.approx(avg * 2.0 / 1000)  # mW * ms = uJ
    assert p.energy_per_image_mj == pytest.approx(avg * 2.0 / 1000 / 4)
    assert p.max_temp_c == pytest.approx(50.562) and p.hottest_zone in ("gpu", "tj")
    assert p.warnings == []


def test_summary_warns_on_heat_clock_swings_and_partial_sums():
    hot = parse_tegrastats_line(lines("orin_nano.txt")[2].replace("tj@50C", "tj@96.5C"))
    cool = parse_tegrastats_line(lines("orin_nano.txt")[2].replace("62%@612", "60%@306"))
    p = summarize_power([hot, cool], mean_latency_ms=1.0)
    text = " ".join(p.warnings)
    assert "throttl" in text and "96.5" in text
    assert "jetson_clocks" in text  # 306 vs 612 MHz during the loop
    agx = summarize_power(parse_tegrastats_lines(lines("agx_orin.txt")))
    assert agx.power_kind == "module sum" and agx.warnings == []  # AGX Orin's three rails
    thor = summarize_power(parse_tegrastats_lines(lines("thor_no_vin.txt")))
    assert any("partial sum" in w and "lower bound" in w for w in thor.warnings)
    assert summarize_power([]) is None


def test_board_facts():
    l4t, _ = parse_nv_tegra_release((FIX / "nv_tegra_release_orin_nano.txt").read_text())
    assert l4t == "36.4.3"
    l4t, _ = parse_nv_tegra_release((FIX / "nv_tegra_release_thor.txt").read_text())
    assert l4t == "38.4.0"
    assert l4t_to_jetpack("36.4.3")[0] == "6.2"
    assert l4t_to_jetpack("36.4.0")[0] == "6.1"
    assert l4t_to_jetpack(l4t)[0] == "7.1"
    assert l4t_to_jetpack("36.4.7")[0] == "6.2.1"  # was '6.1' (issue 19)
    assert l4t_to_jetpack("99.1") == (None, None)
    assert parse_nvpmodel((FIX / "nvpmodel_q_orin_nano.txt").read_text()) == ("MAXN_SUPER", 2)
    assert parse_nvpmodel("nvpmodel: command failed") == (None, None)


def test_jetson_clocks_show():
    free = parse_jetson_clocks_show((FIX / "jetson_clocks_orin_nano.txt").read_text())
    assert free.locked is False and free.cpu_unlocked == 2
    assert (free.gpu_min_hz, free.gpu_max_hz, free.gpu_cur_hz) == (306000000, 1020000000, 306000000)
    assert free.emc_cur_hz == 2133000000
    locked = parse_jetson_clocks_show((FIX / "jetson_clocks_tx1_locked.txt").read_text())
    assert locked.locked is True and locked.cpu_unlocked == 0
    assert parse_jetson_clocks_show("Error: Run this script as a root user") is None


def test_probe_jetson_reads_platform_info_parser_and_table(monkeypatch):
    """bench/jetson has no L4T parser or JetPack table of its own: JetsonInfo's l4t and jetpack
    are platform_info's answers for the same nv_tegra_release text."""
    import edgecnn.bench.jetson as jetson
    from edgecnn import platform_info

    for name in ("nv_tegra_release_orin_nano.txt", "nv_tegra_release_thor.txt"):
        text = (FIX / name).read_text()
        files = {"/etc/nv_tegra_release": text,
                 "/proc/device-tree/model": "NVIDIA Jetson Orin Nano Developer Kit"}
        monkeypatch.setattr(jetson, "is_tegra", lambda: True)
        monkeypatch.setattr(jetson, "_read", lambda path, files=files: files.get(path))
        monkeypatch.setattr(jetson, "_run", lambda cmd, timeout=5.0: None)
        monkeypatch.setattr(jetson, "_devfreq_mhz", lambda patterns: None)
        info = jetson.probe_jetson()
        tegra = platform_info.parse_tegra(text, files["/proc/device-tree/model"])
        assert (info.l4t, info.jetpack) == (tegra.l4t, tegra.jetpack)
        assert isinstance(info.l4t, str) and isinstance(info.jetpack, str)
        assert info.module == "NVIDIA Jetson Orin Nano Developer Kit"
    assert info.to_dict()["jetpack"] == "7.1"


def test_is_tegra_is_platform_infos():
    import edgecnn.bench.jetson as jetson
    from edgecnn import platform_info

    assert jetson.is_tegra is platform_info.is_tegra
    assert not hasattr(jetson, "L4T_TO_JETPACK") and not hasattr(jetson, "jetpack_for_l4t")
