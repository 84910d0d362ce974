"""Module power on every Jetson generation, from real tegrastats lines (issue 19).

Each fixture line was printed by a real board and published elsewhere; its source is named in
tests/fixtures/tegrastats/README.md and beside each test. The expected module power is written
out from the line's own numbers, with the rule that makes it (docs/jetson-power.md)."""

import json
from pathlib import Path

import pytest

from edgecnn.bench.jetson import (MODULE_INPUT, MODULE_SUM, PARTIAL_SUM, RAIL_PROFILES,
                                  parse_tegrastats_line, parse_tegrastats_lines, profile_for,
                                  summarize_power)

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "tegrastats"


def lines(name):
    return [ln for ln in (FIX / name).read_text().splitlines() if ln.strip()]


def summary(name, model=None):
    return summarize_power(parse_tegrastats_lines(lines(name)), mean_latency_ms=1.0, model=model)


# -- defect 1: AGX Xavier on JetPack 4 prints rails without mW and names without VDD_ --
def test_agx_xavier_jp4_sums_all_six_module_rails():
    """AGX Xavier 16GB, JetPack 4.2 (martinkersner/gtop pull request 7). Module power is
    GPU + CPU + SOC + CV + VDDRQ + SYS5V (jetson-stats sums all rails when there is no input
    rail; NVIDIA's AGX Xavier design guide lists exactly these six monitored supplies)."""
    s = parse_tegrastats_line(lines("agx_xavier_jp4.txt")[0])
    assert s.rails_mw == {"GPU": 463, "CPU": 618, "SOC": 2936, "CV": 0, "VDDRQ": 309,
                          "SYS5V": 3306}
    p = summary("agx_xavier_jp4.txt")
    assert p.avg_input_mw == 463 + 618 + 2936 + 0 + 309 + 3306 == 7632  # was 309 (VDDRQ only)
    assert p.power_kind == MODULE_SUM and p.rail_profile == "agx_xavier"
    assert p.total_rails == ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"]
    assert p.warnings == []  # PMIC@100C is no temperature


# -- defect 2: PMIC@100C is a placeholder --
def test_nano_jp4_pmic_placeholder_is_ignored_and_input_rail_is_module_power():
    """Jetson Nano, JetPack 4 (dusty-nv/jetson-inference issue 1206): POM_5V_IN is the module
    input (NVIDIA forum 73608/8, quoted in rbonghi/jetson_stats issue 51); 4122 mW."""
    s = parse_tegrastats_line(lines("nano_jp4.txt")[0])
    assert "pmic" not in s.temps_c and s.ignored == ["PMIC@100C"]
    assert s.temps_c["ao"] == 47.5
    assert (s.gpu_util, s.gpu_mhz) == (28, 76)
    p = summary("nano_jp4.txt")
    assert (p.avg_input_mw, p.source, p.power_kind) == (4122, "POM_5V_IN", MODULE_INPUT)
    assert p.hottest_zone == "ao" and p.max_temp_c == 47.5
    assert p.ignored_readings == ["PMIC@100C"]
    assert not any("pmic" in w.lower() or "throttl" in w for w in p.warnings)


def test_tx2_keeps_a_real_pmic_reading_and_uses_vdd_in():
    """Jetson TX2, L4T 32 unit-less rails (Go tegrastats parser test; repository not resolved,
    see README). VDD_IN is the module input: 2930 mW; PMIC@50C is a reading, kept."""
    s = parse_tegrastats_line(lines("tx2.txt")[0])
    assert s.temps_c["pmic"] == 50.0 and s.ignored == []
    p = summary("tx2.txt")
    assert (p.avg_input_mw, p.source, p.power_kind, p.rail_profile) == \
        (2930, "VDD_IN", MODULE_INPUT, "tx2")
    assert p.avg_rails_mw["VDD_SYS_DDR"] == 727


# -- defect 3: AGX Orin JetPack 5 prints NC and VDDQ_VDD2_1V8AO --
def test_agx_orin_jp5_sums_only_the_three_module_rails():
    """AGX Orin 64GB, JetPack 5 (GDWR/jetson_exporter issue 14): 2340 + 390 + 4025 = 6755 mW;
    NC channels and VDDQ_VDD2_1V8AO (not printed on JetPack 6/7) are left out, -256C sensors
    ignored."""
    s = parse_tegrastats_line(lines("agx_orin_jp5.txt")[0])
    assert "NC" not in s.rails_mw and "NC" in s.ignored
    assert {"CV0@-256C", "CV1@-256C", "GPU@-256C", "CV2@-256C"} <= set(s.ignored)
    assert "gpu" not in s.temps_c and s.temps_c["cpu"] == pytest.approx(44.562)
    p = summary("agx_orin_jp5.txt")
    assert p.avg_input_mw == 2340 + 390 + 4025 == 6755  # was 7056 with VDDQ_VDD2_1V8AO
    assert p.power_kind == MODULE_SUM
    assert p.total_rails == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"]
    assert p.avg_rails_mw["VDDQ_VDD2_1V8AO"] == 301  # shown, not summed
    assert p.warnings == []


def test_agx_orin_jp6_and_jp7_use_the_same_rule():
    """AGX Orin, L4T 36.4.4 (lesomnus/tegra-exporter stats/parse_test.go) and JetPack 7.2
    (rbonghi/jetson_stats test_06_tegra_parse.py TEGRASTATS_ORIN_JP7)."""
    jp6 = summary("agx_orin_jp6.txt")
    assert jp6.samples == 3
    assert jp6.avg_input_mw == pytest.approx((8726 + 8626 + 8726) / 3)
    assert jp6.power_kind == MODULE_SUM and jp6.source == "sum(VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0)"
    jp7 = summary("agx_orin.txt")
    assert jp7.avg_input_mw == 5139 + 3268 + 5500 == 13907
    assert jp7.power_kind == MODULE_SUM and jp7.warnings == []


# -- defect 4: Thor without VIN --
def test_thor_without_vin_is_a_labelled_partial_sum():
    """AGX Thor, JetPack 7.1 / L4T R38.4.0 (lesomnus/tegra-exporter stats/parse_test.go): no VIN
    rail; VDD_GPU + VDD_CPU_SOC_MSS + VIN_SYS_5V0 = 8291, 9250, 8972 mW is a lower bound."""
    p = summary("thor_no_vin.txt")
    assert p.avg_input_mw == pytest.approx((8291 + 9250 + 8972) / 3)
    assert p.power_kind == PARTIAL_SUM and p.is_partial
    assert p.total_rails == ["VDD_GPU", "VDD_CPU_SOC_MSS", "VIN_SYS_5V0"]
    text = " ".join(p.warnings)
    assert "VIN" in text and "lower bound" in text and "not module energy" in text
    assert p.to_dict()["power_kind"] == "partial sum"


def test_thor_with_vin_is_module_input():
    """AGX Thor with a VIN rail (tests/fixtures/tegrastats/thor.txt): 19780 and 87426 mW."""
    p = summary("thor.txt", model="NVIDIA Jetson AGX Thor Developer Kit")
    assert (p.power_kind, p.source, p.rail_profile) == (MODULE_INPUT, "VIN", "thor")
    assert p.avg_input_mw == pytest.approx((19780 + 87426) / 2)
    assert not any("partial" in w for w in p.warnings)


def test_thor_mixed_lines_are_a_partial_sum():
    with_vin = parse_tegrastats_lines(lines("thor.txt"))
    without = parse_tegrastats_lines(lines("thor_no_vin.txt"))
    p = summarize_power(with_vin + without)
    assert p.power_kind == PARTIAL_SUM and p.source.startswith("mixed:")


# -- defect 5: a gated GPU is not a 0 MHz clock --
def test_gated_gpu_is_not_a_clock_and_raises_no_clock_warning():
    """AGX Orin GR3D_FREQ 0%@[0,0] (tegra-exporter, L4T 36.4.4) next to 12%@[1300,1300]
    (jetson_stats, JetPack 7.2): the minimum clock is 1300 MHz, not 0."""
    gated = parse_tegrastats_line(lines("agx_orin_jp6.txt")[0])
    assert gated.gpu_gated and gated.gpu_mhz is None and gated.gpu_util == 0
    running = parse_tegrastats_line(lines("agx_orin.txt")[0])
    p = summarize_power([gated, running])
    assert (p.gpu_mhz_min, p.gpu_mhz_max, p.gpu_gated_samples) == (1300, 1300, 1)
    assert not any("clock moved" in w for w in p.warnings)
    thor = parse_tegrastats_line(lines("thor_no_vin.txt")[0])  # GR3D_FREQ @[0,0,0]
    assert thor.gpu_gated and thor.gpu_util is None


def test_second_gpu_field_is_read():
    """'GR3D_FREQ 0%@0 GR3D2_FREQ 0%@0', the field pair the issue quotes from JetPack 5 AGX Orin."""
    s = parse_tegrastats_line("RAM 1/2MB GR3D_FREQ 0%@0 GR3D2_FREQ 0%@0")
    assert s.gpu_gated and s.gpu_mhz is None
    s = parse_tegrastats_line("RAM 1/2MB GR3D_FREQ 0%@0 GR3D2_FREQ 7%@918")
    assert (s.gpu_util, s.gpu_mhz, s.gpu_gated) == (7, 918, False)


# -- the rest of the generations --
@pytest.mark.parametrize("fixture,profile,kind,mw", [
    ("nano_jp4.txt", "pom_5v_in", MODULE_INPUT, 4122),     # Nano, JetPack 4
    ("tx2.txt", "tx2", MODULE_INPUT, 2930),                 # TX2, L4T 32
    ("agx_xavier_jp4.txt", "agx_xavier", MODULE_SUM, 7632),  # AGX Xavier, JetPack 4.2
    ("xavier_nx.txt", "vdd_in", MODULE_INPUT, 5079),        # Xavier NX
    ("orin_nx.txt", "vdd_in", MODULE_INPUT, 4304),          # Orin NX 16GB, JetPack 6.2
    ("orin_nano.txt", "vdd_in", MODULE_INPUT, 4556),        # Orin Nano, JetPack 6.2
    ("agx_orin_jp5.txt", "agx_orin", MODULE_SUM, 6755),     # AGX Orin, JetPack 5
    ("agx_orin_jp6.txt", "agx_orin", MODULE_SUM, 8726),     # AGX Orin, L4T 36.4.4
    ("agx_orin.txt", "agx_orin", MODULE_SUM, 13907),        # AGX Orin, JetPack 7.2
    ("thor.txt", "thor", MODULE_INPUT, 19780),              # AGX Thor, R38.4.0, with VIN
    ("thor_no_vin.txt", "thor", PARTIAL_SUM, 8291),         # AGX Thor, R38.4.0, no VIN
])
def test_every_generation_first_line(fixture, profile, kind, mw):
    s = parse_tegrastats_line(lines(fixture)[0])
    reading = s.power()
    assert (reading.profile, reading.kind, reading.mw) == (profile, kind, mw)


@pytest.mark.parametrize("model,profile", [
    ("NVIDIA Jetson AGX Thor Developer Kit", "thor"),
    ("NVIDIA Jetson AGX Orin Developer Kit", "agx_orin"),
    ("NVIDIA Jetson Orin NX Engineering Reference Developer Kit", "vdd_in"),
    ("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", "vdd_in"),
    ("NVIDIA Jetson Xavier NX Developer Kit", "vdd_in"),
    ("NVIDIA Jetson Nano Developer Kit", "pom_5v_in"),
])
def test_profile_follows_the_device_tree_model_first(model, profile):
    assert profile_for(model, ()).name == profile
    assert profile_for(None, {"VDD_IN", "VDD_CPU_GPU_CV"}).name == "vdd_in"
    assert profile_for(None, {"SOMETHING"}) is None


def test_model_overrides_rail_guess_and_unknown_modules_are_partial():
    vin_only = {"VIN": 5000.0, "VIN_SYS_5V0": 100.0}
    s = parse_tegrastats_line("RAM 1/2MB VIN 5000mW/5000mW VIN_SYS_5V0 100mW/100mW")
    assert s.rails_mw == vin_only
    assert s.power("NVIDIA Jetson AGX Thor Developer Kit").kind == MODULE_INPUT
    unknown = parse_tegrastats_line("RAM 1/2MB FOO 10mW/10mW BAR 20mW/20mW")
    reading = unknown.power()
    assert (reading.kind, reading.mw, reading.profile) == (PARTIAL_SUM, 30, None)


def test_profile_table_names_each_generation_once():
    assert set(RAIL_PROFILES) == {"thor", "agx_orin", "vdd_in", "agx_xavier", "tx2", "pom_5v_in"}
    for p in RAIL_PROFILES.values():
        assert p.sum_kind in (MODULE_SUM, PARTIAL_SUM)
        assert p.input_rail or p.sum_kind == MODULE_SUM  # no input rail: the sum must be the module


# -- where power is shown: a partial sum is labelled as one --
def _report(name):
    from edgecnn.bench.report import BenchReport, TargetResult

    p = summary(name).to_dict()
    row = TargetResult(target="onnxruntime:fp32", backend="onnxruntime", precision="fp32",
                       batch=1, status="ok", power=p)
    return BenchReport(model="m", input_size=[1, 3, 8, 8], results=[row], machine={},
                       options={"warmup": 1, "iterations": 1})


def test_report_labels_a_partial_sum_everywhere_power_is_shown():
    import io

    from rich.console import Console

    from edgecnn.bench.report import (BenchReport, print_table, summary_rows, to_csv,
                                      to_markdown)

    thor = _report("thor_no_vin.txt")
    head, rows = summary_rows(thor)
    power_w = rows[0][head.index("power W")]
    assert power_w.startswith("≥") and rows[0][head.index("mJ/inf")].startswith("≥")
    md = to_markdown(thor)
    assert "partial sum, sum(VDD_GPU+VDD_CPU_SOC_MSS+VIN_SYS_5V0)" in md and "lower bound" in md
    csv_text = to_csv(thor)
    assert "power_kind,power_rails" in csv_text.splitlines()[0]
    assert "partial sum,VDD_GPU+VDD_CPU_SOC_MSS+VIN_SYS_5V0" in csv_text
    assert BenchReport.from_dict(json.loads(thor.to_json())).results[0].power["power_kind"] == \
        "partial sum"
    buf = io.StringIO()
    print_table(thor, Console(file=buf, width=220))
    assert "lower bound" in buf.getvalue()

    orin = _report("agx_orin_jp5.txt")
    head, rows = summary_rows(orin)
    assert not rows[0][head.index("power W")].startswith("≥")
    assert "power: module sum, sum(VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0)" in to_markdown(orin)
