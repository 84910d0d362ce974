"""Jetson (Tegra) facts for a benchmark: module, L4T/JetPack, power mode, clocks, power draw.

Read-only probes of what the board says about itself (device tree, /etc/nv_tegra_release,
``nvpmodel -q``, ``jetson_clocks --show``) plus a ``tegrastats`` sampler that runs beside the
timed loop. Nothing here changes a setting: locking clocks is the user's decision, a report
only says whether they were locked. Standard library only; every probe degrades to None.
The L4T release, its JetPack and whether this is a Jetson at all come from
:mod:`edgecnn.platform_info` (one parser, one table).

Power: the input rail is ``VDD_IN`` (Orin Nano/NX), ``VIN`` (Thor) or ``POM_5V_IN`` (Nano);
AGX Orin has no input rail in tegrastats, so its total is the sum of the rails it reports
(``VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0``), marked as such. Sub-rails are never added
to an input rail (they are already inside it).
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

from edgecnn.platform_info import is_tegra, l4t_to_jetpack, parse_nv_tegra_release

# input rails, most trusted first
INPUT_RAILS = ("VDD_IN", "VIN", "POM_5V_IN")
THERMAL_WARN_C = 90.0  # Orin/Thor start software throttling a few degrees above this

_TS_RE = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s+")
_RAM_RE = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP_RE = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU_RE = re.compile(r"\bCPU \[([^\]]*)\]")
_EMC_RE = re.compile(r"\bEMC_FREQ (?:(\d+)%)?(?:@(\d+))?")
_GR3D_RE = re.compile(r"\bGR3D_FREQ (?:(\d+)%)?(?:@\[?([\d,]+)\]?)?")
_TEMP_RE = re.compile(r"\b([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
# "VDD_IN 4556mW/4556mW", "VDD_GPU_SOC 5139mW/5139mW/5139mW", "VDD_GPU -392mW/-392mW"
_RAIL_MW_RE = re.compile(r"\b([A-Z][A-Z0-9_]*) (-?\d+)mW(?:/(-?\d+)mW)?(?:/(-?\d+)mW)?")
# L4T 32 form without units: "POM_5V_IN 3478/3201", "VDD_IN 3902/3611"
_RAIL_BARE_RE = re.compile(r"\b((?:VDD|POM|VIN)_?[A-Z0-9_]*) (\d+)/(\d+)(?![\w/])")


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
    gpu_mhz: int | None = None  # first GPC; Thor prints one per GPC
    temps_c: dict[str, float] = field(default_factory=dict)  # lower-case zone names
    rails_mw: dict[str, float] = field(default_factory=dict)

    @property
    def input_power(self) -> tuple[float | None, str | None]:
        """(mW, source) of the board's input power: an input rail, else the sum of rails."""
        for rail in INPUT_RAILS:
            if rail in self.rails_mw:
                return self.rails_mw[rail], rail
        if self.rails_mw:
            return sum(self.rails_mw.values()), "sum(" + "+".join(self.rails_mw) + ")"
        return None, None


def parse_tegrastats_line(line: str) -> TegraSample | None:
    """Parse one tegrastats line; None for lines that carry none of its fields."""
    s = TegraSample()
    m = _TS_RE.match(line)
    if m:
        s.time = m.group(1)
    if m := _RAM_RE.search(line):
        s.ram_used_mb, s.ram_total_mb = int(m.group(1)), int(m.group(2))
    if m := _CPU_RE.search(line):
        for core in m.group(1).split(","):
            core = core.strip()
            cm = re.fullmatch(r"(\d+)%@(\d+)", core)
            if cm:
                s.cpu_util.append(int(cm.group(1)))
                s.cpu_mhz.append(int(cm.group(2)))
            elif core:
                s.cpu_util.append(None)
                s.cpu_mhz.append(None)
    if m := _EMC_RE.search(line):
        s.emc_util = int(m.group(1)) if m.group(1) else None
        s.emc_mhz = int(m.group(2)) if m.group(2) else None
    if m := _GR3D_RE.search(line):
        s.gpu_util = int(m.group(1)) if m.group(1) else None
        if m.group(2):
            s.gpu_mhz = int(m.group(2).split(",")[0])
    for name, value in _TEMP_RE.findall(line):
        t = float(value)
        if t > -40:  # -256C marks a sensor that is off
            s.temps_c[name.lower()] = t
    for name, inst, _avg, _peak in _RAIL_MW_RE.findall(line):
        if name not in ("RAM", "SWAP", "EMC_FREQ", "GR3D_FREQ"):
            s.rails_mw[name] = float(inst)
    for name, inst, _avg in _RAIL_BARE_RE.findall(line):
        s.rails_mw.setdefault(name, float(inst))
    if s.ram_total_mb is None and not s.rails_mw and not s.cpu_util and s.gpu_mhz is None:
        return None
    return s


@dataclass
class PowerSummary:
    """Power over the timed loop, from tegrastats samples."""

    samples: int
    source: str  # rail used as input power
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

    def to_dict(self) -> dict:
        return asdict(self)


def summarize_power(samples: Sequence[TegraSample], mean_latency_ms: float | None = None,
                    batch: int = 1, thermal_warn_c: float = THERMAL_WARN_C) -> PowerSummary | None:
    """Average input power over ``samples`` and energy per inference (mW x ms = uJ -> mJ)."""
    with_power = [(s, *s.input_power) for s in samples]
    with_power = [(s, mw, src) for s, mw, src in with_power if mw is not None]
    if not with_power:
        return None
    sources = {src for _, _, src in with_power}
    source = with_power[0][2] if len(sources) == 1 else "mixed:" + ",".join(sorted(sources))
    powers = [mw for _, mw, _ in with_power]
    avg = sum(powers) / len(powers)
    rails: dict[str, list[float]] = {}
    for s, _, _ in with_power:
        for k, v in s.rails_mw.items():
            rails.setdefault(k, []).append(v)
    temps = [(t, z) for s in samples for z, t in s.temps_c.items()]
    hottest = max(temps) if temps else None
    gpu = [s.gpu_mhz for s in samples if s.gpu_mhz is not None]
    out = PowerSummary(
        samples=len(powers), source=source, avg_input_mw=avg, max_input_mw=max(powers),
        avg_rails_mw={k: sum(v) / len(v) for k, v in rails.items()},
        max_temp_c=hottest[0] if hottest else None, hottest_zone=hottest[1] if hottest else None,
        gpu_mhz_min=min(gpu) if gpu else None, gpu_mhz_max=max(gpu) if gpu else None)
    if mean_latency_ms is not None:
        out.energy_per_inference_mj = avg * mean_latency_ms / 1000.0  # mW * ms = uJ
        out.energy_per_image_mj = out.energy_per_inference_mj / max(1, batch)
    if hottest and hottest[0] >= thermal_warn_c:
        out.warnings.append(f"{hottest[1]} reached {hottest[0]:.1f} C during the run: the SoC "
                            f"may have throttled; improve cooling or shorten the run")
    if gpu and max(gpu) > 0 and (max(gpu) - min(gpu)) / max(gpu) > 0.10:
        out.warnings.append(f"GPU clock moved between {min(gpu)} and {max(gpu)} MHz during the "
                            f"timed loop (DVFS or throttling); lock clocks with "
                            f"'sudo jetson_clocks' for stable numbers")
    if source.startswith("sum("):
        out.warnings.append(f"no input rail in tegrastats on this module; power is {source}, "
                            f"which leaves out carrier-board losses")
    return out


def parse_tegrastats_lines(lines: Iterable[str]) -> list[TegraSample]:
    return [s for s in (parse_tegrastats_line(line) for line in lines) if s is not None]


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
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def available(command: str = "tegrastats") -> bool:
        return shutil.which(command) is not None

    def __enter__(self) -> "TegrastatsSampler":
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
        return parse_tegrastats_lines(self.lines)
