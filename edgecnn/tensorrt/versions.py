"""What each TensorRT major version needs from the builder. Pure, stdlib only.

TensorRT 10.x (JetPack 6.1+/6.2 on Orin: 10.3; JetPack 7 on Thor: 10.13+) still has weak typing;
precision is taken from the graph only when the network is created with
``NetworkDefinitionCreationFlag.STRONGLY_TYPED``. TensorRT 11.x removed weak typing, the
FP16/INT8 ``BuilderFlag``s, the INT8 calibrators and ``EXPLICIT_BATCH``: every network is strongly
typed. Explicit batch is the default since 10.0. See docs/tensorrt.md for the sources.

:class:`TrtVersion` (version parsing) is defined beside the runtime, which needs it too, in
:mod:`edgecnn.runtime.trt_engine_info`; it is imported from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from edgecnn.errors import BackendUnavailableError
from edgecnn.runtime.trt_engine_info import TrtVersion

SUPPORTED_MAJORS = (10, 11)
DLA_MIN_11 = (4, 1)  # (minor, patch): the first 11.x with DLA on Orin (JetPack 7.2.2+)


@dataclass(frozen=True)
class BuildStrategy:
    """How to drive the builder for one TensorRT version (pure data; tests check it here)."""

    version: TrtVersion
    network_flags: tuple[str, ...]  # NetworkDefinitionCreationFlag member names to set
    strongly_typed: bool  # precision comes from the graph (always true here)
    precision_builder_flags: bool  # may BuilderFlag.FP16/INT8 be set? (never: weak typing)
    dla_supported: bool  # may this version target the DLA at all (device still decides)
    notes: str


def build_strategy(version: str | TrtVersion) -> BuildStrategy:
    """The strategy for ``version``; refuses majors this project does not build with."""
    v = version if isinstance(version, TrtVersion) else TrtVersion.parse(version)
    if v.major < 10:
        raise BackendUnavailableError(
            f"TensorRT {v} is too old: edgecnn builds strongly typed networks, which need TensorRT "
            f"10.x or 11.x (on Jetson Orin: JetPack 6.1 or later ships TensorRT 10.3)")
    if v.major == 10:
        return BuildStrategy(v, ("STRONGLY_TYPED",), True, False, True,
                             "10.x: pass NetworkDefinitionCreationFlag.STRONGLY_TYPED; explicit batch "
                             "is the default; never set BuilderFlag.FP16/INT8")
    if v.major == 11:
        # 11.x: strongly typed is the only mode; the flag is not needed (and may be gone).
        # DLA: TensorRT 11.4.1 brings DLA back on Jetson AGX Orin / Orin NX with JetPack 7.2.2+
        # (DLA_MIN_11); 11.0-11.4.0 have none. Thor has no DLA (the device check refuses it).
        return BuildStrategy(v, (), True, False, (v.minor, v.patch) >= DLA_MIN_11,
                             "11.x: every network is strongly typed; FP16/INT8 builder flags, INT8 "
                             "calibrators and EXPLICIT_BATCH were removed")
    raise BackendUnavailableError(
        f"TensorRT {v} is newer than this edgecnn knows ({'/'.join(map(str, SUPPORTED_MAJORS))}.x); "
        f"upgrade edgecnn")


def network_flags(version: str | TrtVersion, flag_bits: Mapping[str, int]) -> int:
    """The ``create_network`` bitmask: ``flag_bits`` maps member name -> int(enum member).

    On the device: ``{m: int(getattr(trt.NetworkDefinitionCreationFlag, m)) for m in names}``;
    a name missing from the installed enum is skipped for 11.x (strongly typed by default) and an
    error for 10.x (there it is the only way to get a strongly typed network).
    """
    strategy = build_strategy(version)
    flags = 0
    for name in strategy.network_flags:
        if name not in flag_bits:
            raise BackendUnavailableError(
                f"this TensorRT {strategy.version} has no NetworkDefinitionCreationFlag.{name}; "
                f"strongly typed builds need TensorRT 10.0 or later")
        flags |= 1 << int(flag_bits[name])
    return flags


def in_range(v: TrtVersion, lo: str | None, hi: str | None) -> bool:
    """``lo <= v <= hi`` comparing major.minor (hi '11.99' means any 11.x)."""
    key = (v.major, v.minor)
    if lo is not None and key < (TrtVersion.parse(lo).major, TrtVersion.parse(lo).minor):
        return False
    if hi is not None and key > (TrtVersion.parse(hi).major, TrtVersion.parse(hi).minor):
        return False
    return True
