"""Engine metadata as the build records it: what an engine was built for, from the plan and the
machine that built it. Stdlib only.

The metadata itself (:class:`EngineMetadata`, stored in the artifact's details under
``DETAILS_KEY``) and its comparison with a machine live with the runtime that reads them, in
:mod:`edgecnn.runtime.trt_engine_info`; the build room imports them from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecnn.platform_info import PlatformInfo
from edgecnn.runtime.trt_engine_info import DETAILS_KEY, EngineMetadata

if TYPE_CHECKING:  # pragma: no cover
    from edgecnn.tensorrt.plan import BuildPlan


def built_engine_metadata(tensorrt: str, machine: PlatformInfo, compute_capability: str,
                          plan: "BuildPlan", dla_core: int | None, built: str,
                          profile: tuple[list[int], list[int], list[int]] | None = None,
                          tf32: bool | None = None, dla_layers: int | None = None) -> EngineMetadata:
    """The metadata of an engine built from ``plan`` with TensorRT ``tensorrt`` on ``machine``.

    ``profile`` is the (min, opt, max) shapes the engine was built with (static for a DLA build;
    default: the plan's); ``tf32`` whether TF32 was left on; ``dla_layers`` what the inspector counted.
    """
    tegra = machine.tegra
    shapes = profile or plan.profile_shapes()
    return EngineMetadata(
        tensorrt=tensorrt, gpu_name=machine.gpu.name, compute_capability=compute_capability,
        precision=plan.precision, source_onnx=plan.trt_onnx, source_onnx_sha256=plan.source_onnx_sha256,
        profiles=[{"name": plan.input_name, "min": list(shapes[0]), "opt": list(shapes[1]),
                   "max": list(shapes[2])}], tf32=tf32, dla_layers=dla_layers,
        cuda_runtime=machine.cuda_runtime, cuda_driver=machine.cuda_driver,
        tegra_module=tegra.module if tegra else None, l4t=tegra.l4t if tegra else None,
        jetpack=tegra.jetpack if tegra else None, dla_core=dla_core, built=built)


__all__ = ["DETAILS_KEY", "EngineMetadata", "built_engine_metadata"]
