"""Jetson (Tegra) facts for a benchmark: module, L4T/JetPack, power mode, clocks, power draw.

Read-only probes of what the board says about itself (device tree, /etc/nv_tegra_release,
``nvpmodel -q``, ``jetson_clocks --show``) plus a ``tegrastats`` sampler that runs beside the
timed loop. Nothing here changes a setting: locking clocks is the user's decision, a report
only says whether they were locked. Standard library only; every probe degrades to None.
The L4T release, its JetPack and whether this is a Jetson at all come from
:mod:`edgecnn.platform_info` (one parser, one table).

Power: which tegrastats rails make module power depends on the module generation, so a small
table (:data:`RAIL_PROFILES`) says it per generation, picked by the device-tree model
(``edgecnn/jetpack.json`` modules, key ``power``) or, when that is unknown, by the rail names.
Every summary says which rails made the total and what kind of figure it is: the module's
input rail (``module input``), the rails that together are the module's power (``module sum``),
or a ``partial sum`` (a lower bound, never module energy). Placeholder readings (``PMIC@100C``,
``-256C`` sensors, ``NC`` rails) are dropped and named. docs/jetson-power.md has the sources.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from edgecnn.platform_info import (is_tegra, l4t_to_jetpack, module_from_model,
                                   parse_nv_tegra_release)

THERMAL_WARN_C = 90.0  # Orin/Thor start software throttling a few degrees above this

MODULE_INPUT = "module input"  # one rail that measures the module's input
MODULE_SUM = "module sum"  # rails that together are the module's power
PARTIAL_SUM = "partial sum"  # some rails only: a lower bound of module power


@dataclass(frozen=True)
class RailProfile:
    """How one module generation's tegrastats rails make module power."""

    name: str
    modules: str  # for people: which modules print these rails
    signature: frozenset[str]  # any of these rails identifies the generation
    input_rail: str | None  # the module input rail, where tegrastats prints one
    sum_rails: tuple[str, ...]  # summed when the input rail is missing
    sum_kind: str  # MODULE_SUM or PARTIAL_SUM: what that sum is
    ignored_rails: tuple[str, ...] = ()  # printed but not module power


# checked in this order when the model is unknown; sources in docs/jetson-power.md
RAIL_PROFILES: dict[str, RailProfile] = {p.name: p for p in (
    RailProfile("thor", "Jetson AGX Thor (JetPack 7)", frozenset({"VDD_CPU_SOC_MSS"}), "VIN",
                ("VDD_GPU", "VDD_CPU_SOC_MSS", "VIN_SYS_5V0"), PARTIAL_SUM),
    RailProfile("agx_orin", "Jetson AGX Orin (JetPack 5-7)",
                frozenset({"VDD_GPU_SOC", "VDD_CPU_CV"}), None,
                ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"), MODULE_SUM,
                ignored_rails=("VDDQ_VDD2_1V8AO",)),
    RailProfile("vdd_in", "Jetson Xavier NX, Orin NX, Orin Nano", frozenset({"VDD_CPU_GPU_CV"}),
                "VDD_IN", ("VDD_CPU_GPU_CV", "VDD_SOC"), PARTIAL_SUM),
    RailProfile("agx_xavier", "Jetson AGX Xavier (JetPack 4-5)", frozenset({"VDDRQ", "SYS5V"}),
                None, ("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"), MODULE_SUM),
    RailProfile("tx2", "Jetson TX2 (L4T 28-32)",
                frozenset({"VDD_SYS_CPU", "VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_SYS_DDR"}), "VDD_IN",
                ("VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_SYS_CPU", "VDD_SYS_DDR"), PARTIAL_SUM),
    RailProfile("pom_5v_in", "Jetson Nano, TX1 (JetPack 4)",
                frozenset({"POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"}), "POM_5V_IN",
                ("POM_5V_GPU", "POM_5V_CPU"), PARTIAL_SUM),
)}
GENERIC_INPUT_RAILS = ("VDD_IN", "VIN", "POM_5V_IN")  # modules not in the table
PLACEHOLDER_RAILS = frozenset({"NC"})  # unconnected INA3221 channels (AGX Orin, JetPack 5)

_TS_RE = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s+")
_RAM_RE = re.compile(r"\bRAM (\d+)/(\d+)MB")
_CPU_RE = re.compile(r"\bCPU \[([^\]]*)\]")
_EMC_RE = re.compile(r"\bEMC_FREQ (?:(\d+)%)?(?:@(\d+))?")
# "GR3D_FREQ 62%@612", "GR3D_FREQ 12%@[1300,1300]", "GR3D_FREQ @[314,314,314]", "GR3D2_FREQ 0%@0"
_GR3D_RE = re.compile(r"\bGR3D2?_FREQ (?:(\d+)%)?(?:@\[?([\d,]+)\]?)?")
_TEMP_RE = re.compile(r"\b([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
# "VDD_IN 4556mW/4556mW", "VDD_GPU_SOC 5139mW/5139mW/5139mW", "VDD_GPU -392mW/-392mW"
_RAIL_MW_RE = re.compile(r"\b([A-Z][A-Z0-9_]*) (-?\d+)mW(?:/(-?\d+)mW)?(?:/(-?\d+)mW)?")
# JetPack 4 form without units, any name: "POM_5V_IN 3478/3201", "GPU 463/463", "SYS5V 3306/3306"
_RAIL_BARE_RE = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)/(\d+)(?![\w/])")
_NOT_RAILS = frozenset({"RAM", "SWAP", "IRAM", "EMC_FREQ", "GR3D_FREQ", "GR3D2_FREQ"})
PMIC_PLACEHOLDER_C = 100.0  # Nano, TX1/TX2, Xavier on JetPack 4 print PMIC@100C, always
SENSOR_OFF_C = -256.0  # Orin prints -256C for sensors that are off (CV0, GPU, ...)


@dataclass
class PowerReading:
    """Module power of one tegrastats line and how it was made."""

    mw: float
    kind: str  # MODULE_INPUT | MODULE_SUM | PARTIAL_SUM
    rails: tuple[str, ...]  # the rails that made it
    profile: str | None  # RAIL_PROFILES key; None: a module the table does not know

    @property
    def source(self) -> str:
        return self.rails[0] if self.kind == MODULE_INPUT else "sum(" + "+".join(self.rails) + ")"


def profile_for(model: str | None = None, rails: Iterable[str] = ()) -> RailProfile | None:
    """The rail profile of a module: its device-tree model first, else the rail names printed."""
    row = module_from_model(model) if model else None
    if row and row.get("power") in RAIL_PROFILES:
        return RAIL_PROFILES[row["power"]]
    names = set(rails)
    return next((p for p in RAIL_PROFILES.values() if p.signature & names), None)


def module_power(rails_mw: dict[str, float], profile: RailProfile | None) -> PowerReading | None:
    """Module power from one line's rails: the input rail, else the profile's sum."""
    if not rails_mw:
        return None
    name = profile.name if profile else None
    inputs = (profile.input_rail,) if profile else GENERIC_INPUT_RAILS
    for rail in inputs:
        if rail and rail in rails_mw:
            return PowerReading(rails_mw[rail], MODULE_INPUT, (rail,), name)
    wanted = profile.sum_rails if profile else tuple(rails_mw)
    used = tuple(r for r in wanted if r in rails_mw)
    if not used:
        return None
    complete = profile is not None and len(used) == len(profile.sum_rails)
    kind = profile.sum_kind if complete else PARTIAL_SUM
    return PowerReading(sum(rails_mw[r] for r in used), kind, used, name)


@dataclass
class TegraSample:
    """One parsed tegrastats line. Power in mW (instantaneous), frequencies in MHz."""

    time: str | None = None
    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    cpu_util: list[int | None] = field(default_factory=list)  # None = core offline
    cpu_mhz: list[int | None] = field(default_factory=list)
    emc_util: int | None = None
    emc_mhz: int | None = None
    gpu_util: int | None = None
    gpu_mhz: int | None = None  # highest running GPC clock; None when gated or not printed
    gpu_gated: bool = False  # every GPC clock printed as 0 (GR3D_FREQ 0%@0, @[0,0])
    temps_c: dict[str, float] = field(default_factory=dict)  # lower-case zone names
    rails_mw: dict[str, float] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # placeholder readings left out
    model: str | None = None  # device-tree model of the board, when the sampler knew it

    def power(self, model: str | None = None) -> PowerReading | None:
        """Module power of this line under the rail profile of ``model`` (or of its rails)."""
        return module_power(self.rails_mw, profile_for(model or self.model, self.rails_mw))

    @property
    def input_power(self) -> tuple[float | None, str | None]:
        """(mW, source): the input rail's name, or 'sum(A+B+C)' of the rails that made it."""
        reading = self.power()
        return (reading.mw, reading.source) if reading else (None, None)


def _parse_cpu(s: TegraSample, text: str) -> None:
    for core in text.split(","):
        core = core.strip()
        cm = re.fullmatch(r"(\d+)%@(\d+)", core)
        if cm:
            s.cpu_util.append(int(cm.group(1)))
            s.cpu_mhz.append(int(cm.group(2)))
        elif core:
            s.cpu_util.append(None)
            s.cpu_mhz.append(None)


def _parse_gpu(s: TegraSample, line: str) -> None:
    """GR3D_FREQ and, on some AGX Orin builds, GR3D2_FREQ: load and one clock per GPC."""
    utils, clocks = [], []
    for util, mhz in _GR3D_RE.findall(line):
        if util:
            utils.append(int(util))
        clocks += [int(c) for c in mhz.split(",") if c]
    s.gpu_util = max(utils) if utils else None
    running = [c for c in clocks if c > 0]
    s.gpu_mhz = max(running) if running else None
    s.gpu_gated = bool(clocks) and not running


def _parse_temps(s: TegraSample, line: str) -> None:
    for name, value in _TEMP_RE.findall(line):
        t = float(value)
        if t == SENSOR_OFF_C or (name.upper() == "PMIC" and t == PMIC_PLACEHOLDER_C):
            s.ignored.append(f"{name}@{value}C")
        else:
            s.temps_c[name.lower()] = t


def _parse_rails(s: TegraSample, line: str) -> None:
    found = [(n, v) for n, v, _a, _p in _RAIL_MW_RE.findall(line)]
    found += [(n, v) for n, v, _a in _RAIL_BARE_RE.findall(line)]
    for name, inst in found:
        if name in _NOT_RAILS:
            continue
        if name in PLACEHOLDER_RAILS:
            if name not in s.ignored:
                s.ignored.append(name)
            continue
        s.rails_mw.setdefault(name, float(inst))


def parse_tegrastats_line(line: str) -> TegraSample | None:
    """Parse one tegrastats line; None for lines that carry none of its fields."""
    s = TegraSample()
    if m := _TS_RE.match(line):
        s.time = m.group(1)
    if m := _RAM_RE.search(line):
        s.ram_used_mb, s.ram_total_mb = int(m.group(1)), int(m.group(2))
    if m := _CPU_RE.search(line):
        _parse_cpu(s, m.group(1))
    if m := _EMC_RE.search(line):
        s.emc_util = int(m.group(1)) if m.group(1) else None
        s.emc_mhz = int(m.group(2)) if m.group(2) else None
    _parse_gpu(s, line)
    _parse_temps(s, line)
    _parse_rails(s, line)
    if s.ram_total_mb is None and not s.rails_mw and not s.cpu_util and s.gpu_mhz is None:
        return None
    return s


@dataclass
class PowerSummary:
    """Power over the timed loop, from tegrastats samples.

    ``avg_input_mw`` is module power when ``power_kind`` is 'module input' or 'module sum';
    for a 'partial sum' it (and the energies) are lower bounds, not module power."""

    samples: int
    source: str  # input rail, or 'sum(A+B+C)' of the rails that made the total
    avg_input_mw: float
    max_input_mw: float
    avg_rails_mw: dict[str, float]
    max_temp_c: float | None
    hottest_zone: str | None
    gpu_mhz_min: int | None
    gpu_mhz_max: int | None
    energy_per_inference_mj: float | None = None
    energy_per_image_mj: float | None = None
    warnings: list[str] = field(default_factory=list)
    power_kind: str = MODULE_INPUT
    total_rails: list[str] = field(default_factory=list)
    rail_profile: str | None = None
    ignored_readings: list[str] = field(default_factory=list)
    gpu_gated_samples: int = 0

    @property
    def is_partial(self) -> bool:
        return self.power_kind == PARTIAL_SUM

    def to_dict(self) -> dict:
        return asdict(self)


def _weakest_kind(kinds: set[str]) -> str:
    for kind in (PARTIAL_SUM, MODULE_SUM, MODULE_INPUT):
        if kind in kinds:
            return kind
    return PARTIAL_SUM


def _partial_warning(profile: RailProfile | None, rails: Sequence[str]) -> str:
    missing = f"the module input rail ({profile.input_rail})" if profile and profile.input_rail \
        else "a module input rail"
    return (f"tegrastats printed no {missing}: power is the partial sum {'+'.join(rails)}, "
            f"a lower bound of module power, and the energy figures are lower bounds too "
            f"(not module energy)")


def _thermal_and_clock_warnings(out: PowerSummary, thermal_warn_c: float) -> None:
    if out.max_temp_c is not None and out.max_temp_c >= thermal_warn_c:
        out.warnings.append(f"{out.hottest_zone} reached {out.max_temp_c:.1f} C during the run: "
                            f"the SoC may have throttled; improve cooling or shorten the run")
    lo, hi = out.gpu_mhz_min, out.gpu_mhz_max
    if lo is not None and hi and (hi - lo) / hi > 0.10:
        out.warnings.append(f"GPU clock moved between {lo} and {hi} MHz during the timed loop "
                            f"(DVFS or throttling); lock clocks with 'sudo jetson_clocks' for "
                            f"stable numbers")


def summarize_power(samples: Sequence[TegraSample], mean_latency_ms: float | None = None,
                    batch: int = 1, thermal_warn_c: float = THERMAL_WARN_C,
                    model: str | None = None) -> PowerSummary | None:
    """Average module power over ``samples`` and energy per inference (mW x ms = uJ -> mJ).

    ``model`` is the device-tree model (else the samples' own); it picks the rail profile."""
    model = model or next((s.model for s in samples if s.model), None)
    profile = profile_for(model, {r for s in samples for r in s.rails_mw})
    readings = [(s, module_power(s.rails_mw, profile)) for s in samples]
    readings = [(s, r) for s, r in readings if r is not None]
    if not readings:
        return None
    sources = {r.source for _, r in readings}
    powers = [r.mw for _, r in readings]
    avg = sum(powers) / len(powers)
    rails: dict[str, list[float]] = {}
    for s, _ in readings:
        for k, v in s.rails_mw.items():
            rails.setdefault(k, []).append(v)
    temps = [(t, z) for s in samples for z, t in s.temps_c.items()]
    hottest = max(temps) if temps else None
    gpu = [s.gpu_mhz for s in samples if s.gpu_mhz is not None]
    total_rails = list(dict.fromkeys(name for _, r in readings for name in r.rails))
    out = PowerSummary(
        samples=len(powers),
        source=readings[0][1].source if len(sources) == 1 else "mixed:" + ",".join(sorted(sources)),
        avg_input_mw=avg, max_input_mw=max(powers),
        avg_rails_mw={k: sum(v) / len(v) for k, v in rails.items()},
        max_temp_c=hottest[0] if hottest else None, hottest_zone=hottest[1] if hottest else None,
        gpu_mhz_min=min(gpu) if gpu else None, gpu_mhz_max=max(gpu) if gpu else None,
        power_kind=_weakest_kind({r.kind for _, r in readings}), total_rails=total_rails,
        rail_profile=profile.name if profile else None,
        ignored_readings=sorted({i for s in samples for i in s.ignored}),
        gpu_gated_samples=sum(s.gpu_gated for s in samples))
    if mean_latency_ms is not None:
        out.energy_per_inference_mj = avg * mean_latency_ms / 1000.0  # mW * ms = uJ
        out.energy_per_image_mj = out.energy_per_inference_mj / max(1, batch)
    _thermal_and_clock_warnings(out, thermal_warn_c)
    if out.is_partial:
        out.warnings.append(_partial_warning(profile, total_rails))
    return out


def parse_tegrastats_lines(lines: Iterable[str], model: str | None = None) -> list[TegraSample]:
    samples = [s for s in (parse_tegrastats_line(line) for line in lines) if s is not None]
    for s in samples:
        s.model = model
    return samples


# -- board facts ------------------------------------------------------------------------
def parse_nvpmodel(text: str) -> tuple[str | None, int | None]:
    """``nvpmodel -q`` -> (mode name, mode id): 'NV Power Mode: MAXN_SUPER' then '2'."""
    m = re.search(r"NV Power Mode:\s*(\S+)", text)
    if not m:
        return None, None
    rest = text[m.end():].split()
    mode_id = int(rest[0]) if rest and rest[0].isdigit() else None
    return m.group(1), mode_id


@dataclass
class ClockState:
    gpu_min_hz: int | None = None
    gpu_max_hz: int | None = None
    gpu_cur_hz: int | None = None
    emc_cur_hz: int | None = None
    emc_max_hz: int | None = None
    cpu_unlocked: int = 0  # cores whose min != max
    locked: bool = False


def parse_jetson_clocks_show(text: str) -> ClockState | None:
    """``jetson_clocks --show``: clocks count as locked when every CPU core and the GPU have
    MinFreq == MaxFreq (what jetson_clocks sets) and EMC runs at its maximum."""
    st = ClockState()
    found = False
    for m in re.finditer(r"^cpu\d+:.*?MinFreq=(\d+) MaxFreq=(\d+)", text, re.M):
        found = True
        if m.group(1) != m.group(2):
            st.cpu_unlocked += 1
    if m := re.search(r"^GPU MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)", text, re.M):
        found = True
        st.gpu_min_hz, st.gpu_max_hz, st.gpu_cur_hz = (int(g) for g in m.groups())
    if m := re.search(r"^EMC MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)", text, re.M):
        found = True
        st.emc_max_hz, st.emc_cur_hz = int(m.group(2)), int(m.group(3))
    if not found:
        return None
    gpu_locked = st.gpu_min_hz is not None and st.gpu_min_hz == st.gpu_max_hz
    emc_locked = st.emc_cur_hz is None or st.emc_cur_hz == st.emc_max_hz
    st.locked = st.cpu_unlocked == 0 and gpu_locked and emc_locked
    return st


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout or "") + (out.stderr or "") if out.returncode == 0 else None


@dataclass
class JetsonInfo:
    module: str | None
    l4t: str | None
    jetpack: str | None
    power_mode: str | None
    power_mode_id: int | None
    clocks_locked: bool | None  # None: jetson_clocks --show could not be read (needs root)
    gpu_mhz: float | None
    emc_mhz: float | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _devfreq_mhz(patterns: Sequence[str]) -> float | None:
    for pattern in patterns:
        for p in sorted(Path("/").glob(pattern.lstrip("/"))):
            text = _read(str(p))
            if text and text.isdigit():
                return int(text) / 1e6
    return None


def probe_jetson() -> JetsonInfo | None:
    """Facts about this Jetson, or None when this is not a Tegra machine."""
    if not is_tegra():
        return None
    l4t, _board = parse_nv_tegra_release(_read("/etc/nv_tegra_release") or "")
    jetpack, _jetpack_tensorrt = l4t_to_jetpack(l4t)
    mode, mode_id = parse_nvpmodel(_run(["nvpmodel", "-q"]) or "")
    clocks = parse_jetson_clocks_show(_run(["jetson_clocks", "--show"]) or "")
    info = JetsonInfo(
        module=_read("/proc/device-tree/model"), l4t=l4t, jetpack=jetpack,
        power_mode=mode, power_mode_id=mode_id,
        clocks_locked=None if clocks is None else clocks.locked,
        gpu_mhz=(clocks.gpu_cur_hz / 1e6 if clocks and clocks.gpu_cur_hz else
                 _devfreq_mhz(["/sys/devices/gpu.0/devfreq/*/cur_freq",
                               "/sys/devices/platform/*gpu*/devfreq/*/cur_freq",
                               "/sys/class/devfreq/gpu-gpc-0/cur_freq"])),
        emc_mhz=(clocks.emc_cur_hz / 1e6 if clocks and clocks.emc_cur_hz else
                 _devfreq_mhz(["/sys/class/devfreq/bwmgr/cur_freq"])))
    if clocks is None:
        info.warnings.append("could not read 'jetson_clocks --show' (it needs root): clock "
                             "locking unknown; run the benchmark with sudo or lock clocks first")
    elif not clocks.locked:
        info.warnings.append("clocks are not locked: latency will vary with DVFS; run "
                             "'sudo jetson_clocks' before benchmarking")
    return info


class TegrastatsSampler:
    """Run ``tegrastats --interval N`` beside a timed loop and keep its parsed lines.

    >>> with TegrastatsSampler(100) as ts:      # doctest: +SKIP
    ...     run_loop()
    >>> ts.samples
    """

    def __init__(self, interval_ms: int = 100, command: str = "tegrastats"):
        self.cmd = [command, "--interval", str(interval_ms)]
        self.lines: list[str] = []
        self.model: str | None = None  # device-tree model: picks the rail profile
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def available(command: str = "tegrastats") -> bool:
        return shutil.which(command) is not None

    def __enter__(self) -> "TegrastatsSampler":
        self.model = _read("/proc/device-tree/model")
        try:
            self._proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True, bufsize=1)
        except OSError:
            self._proc = None
            return self
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        time.sleep(0.05)
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._thread is not None:
            self._thread.join(timeout=2)

    @property
    def samples(self) -> list[TegraSample]:
        return parse_tegrastats_lines(self.lines, self.model)
