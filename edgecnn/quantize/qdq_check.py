"""Check a Q/DQ ONNX graph against the rules TensorRT's ONNX parser and strongly typed
builds enforce, so a bad INT8 graph is caught on the host, not on the Jetson.

Rules:
  zero-point   every QuantizeLinear / DequantizeLinear zero point is 0 (symmetric)
  dtype        Q/DQ tensors are int8 (not uint8, not int32)
  bias         no int32 DequantizeLinear (quantized bias; TensorRT's parser rejects it)
  scale        scales are positive and finite
  axis         per-channel weight scales run along the output-channel axis:
               Conv axis 0, Gemm axis 0 (transB=1) / 1 (transB=0), MatMul the last axis
  pair         every QuantizeLinear feeds only DequantizeLinear nodes with the same scale /
               zero point; every activation DequantizeLinear reads a QuantizeLinear
  opset        per-channel Q/DQ needs opset >= 13
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn._lazy import require

INT8 = 3  # onnx.TensorProto.INT8
UINT8 = 2
INT32 = 6


@dataclass(frozen=True)
class Violation:
    rule: str
    node: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.node}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "node": self.node, "message": self.message}


def check_qdq(model_or_path: Any) -> list[Violation]:
    """Violations of TensorRT's Q/DQ rules in an ONNX model (ModelProto or path)."""
    onnx = require("onnx", "quantize", "check a Q/DQ model")
    from onnx import numpy_helper

    model = (onnx.load(os.fspath(model_or_path))
             if isinstance(model_or_path, (str, os.PathLike)) else model_or_path)
    g = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute:
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    out: list[Violation] = []

    def name(n) -> str:
        return n.name or f"{n.op_type}({n.output[0]})"

    for n in g.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        nm = name(n)
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        scale = consts.get(n.input[1]) if len(n.input) > 1 else None
        zp = consts.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        # dtype: the zero point (or the quantized input of a DQ) says the integer type
        qtype = None
        if len(n.input) > 2 and n.input[2]:
            init = next((i for i in g.initializer if i.name == n.input[2]), None)
            qtype = init.data_type if init is not None else (None if zp is None else _np_to_onnx(zp))
        if n.op_type == "DequantizeLinear" and n.input[0] in consts:
            qtype = _np_to_onnx(consts[n.input[0]])
        if qtype is None and n.op_type == "QuantizeLinear":
            qtype = UINT8  # ONNX default output type without a zero point is uint8
        if qtype == INT32:
            out.append(Violation("bias", nm, "int32 DequantizeLinear (quantized bias); TensorRT's "
                                 "parser rejects it: keep bias in float (QuantizeBias=False)"))
        elif qtype is not None and qtype != INT8:
            out.append(Violation("dtype", nm, f"Q/DQ type is {_type_name(qtype)}, TensorRT needs "
                                 f"int8 (symmetric)"))
        if zp is not None and np.any(zp != 0):
            out.append(Violation("zero-point", nm, f"zero point {np.unique(zp)[:4].tolist()} "
                                 f"is not 0; TensorRT supports symmetric quantization only"))
        if scale is None:
            out.append(Violation("scale", nm, f"scale {n.input[1]} is not a constant"))
        else:
            if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
                out.append(Violation("scale", nm, "scale is not positive and finite"))
            if scale.size > 1:
                if opset < 13:
                    out.append(Violation("opset", nm, f"per-channel Q/DQ needs opset >= 13, "
                                         f"the model has {opset}"))
                out.extend(_check_axis(n, nm, axis, scale, consts, consumers))
        if n.op_type == "QuantizeLinear":
            for c in consumers.get(n.output[0], []):
                if c.op_type != "DequantizeLinear":
                    out.append(Violation("pair", nm, f"QuantizeLinear feeds {c.op_type} "
                                         f"{name(c)}, not a DequantizeLinear"))
                elif not _same_params(n, c, consts):
                    out.append(Violation("pair", nm, f"Q/DQ pair with {name(c)} has different "
                                         f"scale or zero point"))
        elif n.input[0] not in consts:
            p = producer.get(n.input[0])
            if p is None or p.op_type != "QuantizeLinear":
                out.append(Violation("pair", nm, "DequantizeLinear of an activation that no "
                                     "QuantizeLinear produced"))
    return out


def _check_axis(dq, nm, axis, scale, consts, consumers) -> list[Violation]:
    if dq.op_type != "DequantizeLinear" or dq.input[0] not in consts:
        return []  # per-channel activations: reported by the consumer rule below if any
    w = consts[dq.input[0]]
    rank = w.ndim
    ax = axis % rank if rank else 0
    out = []
    if w.shape[ax] != scale.size:
        out.append(Violation("axis", nm, f"{scale.size} scales along axis {axis} of a weight "
                             f"of shape {list(w.shape)}"))
    for c in consumers.get(dq.output[0], []):
        if c.op_type == "Conv" or c.op_type == "ConvTranspose":
            want = 0 if c.op_type == "Conv" else 1
        elif c.op_type == "Gemm":
            trans_b = next((a.i for a in c.attribute if a.name == "transB"), 0)
            want = 0 if trans_b else 1
        elif c.op_type == "MatMul":
            want = rank - 1
        else:
            continue
        if list(c.input).index(dq.output[0]) != 1:
            continue  # per-channel scales only make sense on the weight input
        if ax != want:
            out.append(Violation("axis", nm, f"per-channel weight scales on axis {axis} for "
                                 f"{c.op_type}; TensorRT expects the output-channel axis {want}"))
    return out


def _same_params(q, dq, consts) -> bool:
    for i in (1, 2):
        a = q.input[i] if len(q.input) > i else ""
        b = dq.input[i] if len(dq.input) > i else ""
        if a == b:
            continue
        va, vb = consts.get(a), consts.get(b)
        if va is None or vb is None or va.shape != vb.shape or not np.array_equal(va, vb):
            return False
    return True


def _np_to_onnx(arr: np.ndarray) -> int:
    return {np.dtype(np.int8): INT8, np.dtype(np.uint8): UINT8,
            np.dtype(np.int32): INT32}.get(arr.dtype, 0)


def _type_name(t: int) -> str:
    return {INT8: "int8", UINT8: "uint8", INT32: "int32"}.get(t, f"onnx type {t}")
