"""The engine's I/O as manifest TensorSpecs, read from the parsed TensorRT network.

Computed before the build from ``INetworkDefinition`` (``num_inputs`` / ``get_input(i)``,
``num_outputs`` / ``get_output(i)``; each ``ITensor`` has ``name``, ``shape`` and ``dtype``), so
``edgecnn build`` needs no ``onnx`` package on the device and fails before minutes of building,
not after. Stdlib only.
"""

from __future__ import annotations

from edgecnn.errors import ExportError
from edgecnn.manifest import TensorSpec

# TensorRT DataType member name -> manifest dtype name (edgecnn.manifest.DTYPES)
DTYPES = {"FLOAT": "float32", "HALF": "float16", "INT8": "int8", "UINT8": "uint8", "INT32": "int32",
          "INT64": "int64"}


def dtype_name(trt, dtype) -> str:
    """The manifest name of a ``trt.DataType`` value (compared with the enum's own members)."""
    for member, name in DTYPES.items():
        if getattr(trt.DataType, member, None) == dtype:
            return name
    raise ExportError(f"the network has an input or output of type {dtype}; edgecnn bundles record "
                      f"{', '.join(DTYPES.values())} I/O: export the model with float32 inputs and outputs")


def spec(name: str, shape, dtype: str, layout: str | None) -> TensorSpec:
    """A TensorSpec with a dynamic (-1) batch, whatever the network's first dimension is."""
    dims = [int(d) for d in shape]
    if dims:
        dims[0] = -1
    return TensorSpec(name, dims, dtype, layout)


def network_io_specs(trt, network) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """(inputs, outputs) of a parsed network; inputs are NCHW images."""
    ins = [network.get_input(i) for i in range(network.num_inputs)]
    outs = [network.get_output(i) for i in range(network.num_outputs)]
    return ([spec(t.name, t.shape, dtype_name(trt, t.dtype), "NCHW") for t in ins],
            [spec(t.name, t.shape, dtype_name(trt, t.dtype), None) for t in outs])
