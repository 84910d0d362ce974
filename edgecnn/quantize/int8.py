"""INT8: an explicit-precision Q/DQ ONNX model that TensorRT (10.x, 11.x strongly typed)
and ONNX Runtime both run.

What TensorRT needs, and ONNX Runtime's ``quantize_static`` defaults do not give
(uint8 activations with non-zero zero points, int32 bias DequantizeLinear):
per-channel symmetric int8 weights, per-tensor symmetric int8 activations, every zero
point 0, bias left in float, Q/DQ only around Conv / Gemm / MatMul.

Activation ranges come from :mod:`edgecnn.quantize.ranges` (our own calibrators) and
reach ``quantize_static`` through its calibration-cache file, so ONNX Runtime's own
calibrators never run. Path in, path out: the backend (``edgecnn.backends.onnxruntime``)
writes the result into the bundle.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgecnn._lazy import require
from edgecnn.errors import ExportError, MissingDependencyError
from edgecnn.quantize.ranges import QUANT_OPS, ActivationRanges

@dataclass(frozen=True)
class QdqScheme:
    """How ``quantize_static`` shapes a Q/DQ graph; recorded in the manifest as ``to_dict()``.

    ``name`` is the variant the graph is shaped for (the catalogue's variant and the
    artifact's ``details["shaped_for"]``): "tensorrt" or "cpu"."""

    name: str
    activation_type: str = "QInt8"
    weight_type: str = "QInt8"
    per_channel: bool = True
    op_types: tuple[str, ...] = QUANT_OPS
    activation_symmetric: bool = True
    weight_symmetric: bool = True
    quantize_bias: bool = False
    unquantized_outputs: tuple[str, ...] = QUANT_OPS  # ops whose outputs get no Q/DQ
    float_graph_outputs: bool = False  # drop a Q/DQ pair on a graph output (logits stay float)
    # 7-bit weights: x86 CPUs without VNNI multiply u8 x s8 with vpmaddubsw, whose int16 sums
    # saturate with full 8-bit weights (ONNX Runtime's documented U8S8 caveat; a trained resnet8
    # fell to cosine 0.87 on an AVX2-only EPYC, 0.997 with 7 bits). 7 bits cost accuracy
    # elsewhere (a pretrained EfficientNet-Lite0 changed a photo's top-1), so the CPU ladder
    # tries 8 bits first and takes 7 where the parity gate fails.
    reduce_range: bool = False
    float_depthwise: bool = False  # leave depthwise Conv (group == channels > 1) in float

    def extra_options(self) -> dict:
        return {"ActivationSymmetric": self.activation_symmetric,
                "WeightSymmetric": self.weight_symmetric, "QuantizeBias": self.quantize_bias,
                "OpTypesToExcludeOutputQuantization": list(self.unquantized_outputs)}

    def describe(self) -> str:
        """One line: what the graph quantizes."""
        act = "uint8 asymmetric" if self.activation_type == "QUInt8" else (
            "int8 symmetric" if self.activation_symmetric else "int8")
        outs = "inputs only" if not self.output_ops else "inputs and outputs"
        bits = ", 7-bit weights" if self.reduce_range else ""
        return f"{act} activations{bits}, Q/DQ on {outs} of {'/'.join(self.op_types)}"

    @property
    def output_ops(self) -> tuple[str, ...]:
        """Op types whose outputs get Q/DQ too (their output ranges must be calibrated)."""
        return tuple(o for o in self.op_types if o not in self.unquantized_outputs)

    @property
    def tensors(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(op_types, output_ops): what :func:`edgecnn.quantize.ranges.scheme_tensors` takes."""
        return self.op_types, self.output_ops

    def to_dict(self) -> dict:
        d = {"quant_format": "QDQ", "per_channel": self.per_channel,
             "activation_type": self.activation_type, "weight_type": self.weight_type,
             "op_types_to_quantize": list(self.op_types), "extra_options": self.extra_options()}
        if self.float_graph_outputs:
            d["float_graph_outputs"] = True
        if self.reduce_range:
            d["reduce_range"] = True
        if self.float_depthwise:
            d["float_depthwise"] = True
        return d


# What TensorRT accepts (see the module doc).
TENSORRT_QDQ = QdqScheme("tensorrt")

# What ONNX Runtime's CPU kernels (MLAS) fuse into integer kernels on x86: uint8 asymmetric
# activations (U8S8: MLAS's u8 x s8 GEMM, VNNI's vpdpbusd), int8 symmetric per-channel
# weights, int32 bias, Q/DQ on the outputs too so QLinearConv / QLinearAdd / QLinearPool chain
# in int8. Chosen by measurement: benchmarks/cpu_int8_schemes.py, results in benchmarks/results/.
# Mul and Sigmoid too: SiLU (x * sigmoid(x)) and squeeze-excitation gates stay in integer
# (QLinearMul / QLinearSigmoid) instead of a DequantizeLinear -> float -> QuantizeLinear round
# trip around every one: efficientnet_b0 1.02-1.35x fp32 with them, 0.80-0.94x without, on an
# AVX2-only EPYC (cpu_int8_schemes-*-avx2.json); nets without them get the same graph as before.
# Depthwise Conv left in float was measured too and not kept (mobilenet_v2 1.14-1.46x with it,
# 1.45-1.48x without; efficientnet_b0 0.86-1.12x: no better than Mul/Sigmoid in int8).
_CPU_OPS = ("Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "MaxPool", "AveragePool",
            "GlobalAveragePool", "Concat", "Flatten", "Reshape")
CPU_QDQ = QdqScheme(
    "cpu", activation_type="QUInt8", weight_type="QInt8", per_channel=True,
    op_types=(*_CPU_OPS, "Mul", "Sigmoid"),
    activation_symmetric=False, weight_symmetric=True, quantize_bias=True,
    unquantized_outputs=(), float_graph_outputs=True)

SCHEMES = {s.name: s for s in (CPU_QDQ, TENSORRT_QDQ)}

# Where CPU_QDQ fails the parity gate (measured on random-weight zoo nets: a transformer's
# residual Adds), the CPU graph falls back, in this order, to shapes that quantize less.
_MERGE_OPS = ("Add", "Concat", "Mul", "Sub")
_CPU_7BIT = dataclasses.replace(CPU_QDQ, name="cpu-7bit", reduce_range=True)
CPU_LADDER = (
    CPU_QDQ,
    _CPU_7BIT,  # the same shape where 8-bit weights saturate (x86 without VNNI)
    dataclasses.replace(_CPU_7BIT, name="cpu-float-merges",  # and the gates (Sigmoid) in float
                        op_types=tuple(o for o in _CPU_OPS if o not in _MERGE_OPS)),
    dataclasses.replace(_CPU_7BIT, name="cpu-weighted-only", op_types=QUANT_OPS),
)


def quantize_onnx(fp32_path: str | os.PathLike, out_path: str | os.PathLike,
                  ranges: ActivationRanges, nodes_to_exclude: Sequence[str] = (),
                  nodes_to_quantize: Sequence[str] = (), scheme: QdqScheme = TENSORRT_QDQ) -> None:
    """Write the Q/DQ model of ``fp32_path`` with ``ranges`` to ``out_path``."""
    require("onnx", "quantize", "quantize to INT8")
    q = require("onnxruntime.quantization", "quantize", "quantize to INT8")
    from onnxruntime.quantization.calibrate import (CalibrationMethod, TensorData, TensorsData,
                                                    save_tensors_data)

    if "calibration_cache_path" not in inspect.signature(q.quantize_static).parameters:
        raise MissingDependencyError(
            "this onnxruntime's quantize_static cannot take precomputed ranges "
            "(calibration_cache_path); install a newer one: pip install -U 'edgecnn[quantize]'")
    if scheme.float_depthwise:
        nodes_to_exclude = [*nodes_to_exclude, *depthwise_convs(fp32_path)]
    data = {}
    for name in ranges.amax:
        lo, hi = ranges.bounds(name, scheme.activation_symmetric)
        data[name] = TensorData(lowest=np.array(lo, np.float32), highest=np.array(hi, np.float32))
    logger = _quiet_ort_logging()
    with tempfile.TemporaryDirectory(prefix="edgecnn-int8-") as tmp:
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), cache)
        tmp_out = Path(tmp) / "model.int8.onnx"
        try:
            q.quantize_static(
                str(fp32_path), str(tmp_out), calibration_data_reader=None,
                quant_format=q.QuantFormat.QDQ, op_types_to_quantize=list(scheme.op_types),
                per_channel=scheme.per_channel, reduce_range=scheme.reduce_range,
                activation_type=getattr(q.QuantType, scheme.activation_type),
                weight_type=getattr(q.QuantType, scheme.weight_type),
                nodes_to_exclude=list(nodes_to_exclude),
                nodes_to_quantize=list(nodes_to_quantize),
                calibrate_method=CalibrationMethod.MinMax, calibration_cache_path=str(cache),
                extra_options=scheme.extra_options())
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ExportError(f"INT8 quantization of {Path(fp32_path).name} failed: {exc}") from exc
        finally:
            logger.setLevel(logger._edgecnn_level)  # type: ignore[attr-defined]
        if scheme.float_graph_outputs:
            _float_graph_outputs(tmp_out)
        os.replace(tmp_out, _fresh(Path(out_path)))


def depthwise_convs(path: str | os.PathLike) -> list[str]:
    """Names of the depthwise Conv nodes of an ONNX file (group > 1, one input channel per
    group)."""
    onnx = require("onnx", "quantize", "quantize to INT8")
    m = onnx.load(str(path), load_external_data=False)
    weights = {i.name: i.dims for i in m.graph.initializer}
    out = []
    for n in m.graph.node:
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        dims = weights.get(n.input[1]) if n.op_type == "Conv" and len(n.input) > 1 else None
        if group > 1 and dims is not None and len(dims) > 1 and dims[1] == 1:
            out.append(n.name)
    return out


def _float_graph_outputs(path: Path) -> None:
    """Remove the QuantizeLinear -> DequantizeLinear pair in front of each graph output, so the
    last layer writes float logits (ONNX Runtime then runs it as an integer kernel with a float
    output) instead of logits rounded to 256 levels, where near ties would flip the top-1."""
    onnx = require("onnx", "quantize", "quantize to INT8")
    m = onnx.load(str(path))
    g = m.graph
    producer = {o: n for n in g.node for o in n.output}
    readers: dict[str, int] = {}
    for n in g.node:
        for t in n.input:
            readers[t] = readers.get(t, 0) + 1
    outputs = {o.name for o in g.output}
    drop = []
    for name in outputs:
        dq = producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or readers.get(q.output[0]) != 1:
            continue
        src = producer.get(q.input[0])
        if src is None or readers.get(q.input[0]) != 1 or q.input[0] in outputs:
            continue
        src.output[list(src.output).index(q.input[0])] = name
        drop += [q, dq]
    if not drop:
        return
    for n in drop:
        g.node.remove(n)
    used = {t for n in g.node for t in n.input}
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)
    onnx.save(m, str(path))


def _fresh(path: Path) -> Path:
    """Unlink ``path`` first: staging folders hold hard links to the previous bundle's files,
    and writing through one would change the old bundle in place."""
    if path.exists() or path.is_symlink():
        path.unlink()
    return path


def _quiet_ort_logging():
    import logging

    logger = logging.getLogger()
    logger._edgecnn_level = logger.level  # type: ignore[attr-defined]
    logger.setLevel(max(logger.level, logging.ERROR))  # "consider pre-processing" noise
    return logger


def quantizable_nodes(model_path: str | os.PathLike) -> list[str]:
    """Names of the Conv / Gemm / MatMul nodes (those the quantizer wraps in Q/DQ)."""
    onnx = require("onnx", "quantize", "quantize to INT8")
    m = onnx.load(os.fspath(model_path), load_external_data=False)
    missing = [n.op_type for n in m.graph.node if n.op_type in QUANT_OPS and not n.name]
    if missing:
        raise ExportError(f"{len(missing)} {'/'.join(sorted(set(missing)))} nodes have no name; "
                          f"INT8 layer exclusion needs named nodes (re-export with torch.onnx)")
    return [n.name for n in m.graph.node if n.op_type in QUANT_OPS]


_MERGES = ("Add", "Concat", "Mul", "Sub")


def float_island(model_path: str | os.PathLike, layers: Sequence[str],
                 scheme: QdqScheme) -> list[str]:
    """The nodes to leave out of ``scheme``'s quantization so that ``layers`` (Conv / Gemm /
    MatMul names) run in float with float tensors around them.

    In the TensorRT graph that is the layers themselves (Q/DQ sits only on their inputs). The
    CPU graph quantizes Add / Relu / pools / Flatten too, so a tensor a float layer reads or
    writes would still be quantized by those neighbours: the island also takes every such
    non-weighted node connected to the layers through tensors, up to the next weighted layers
    (which keep their own Q/DQ) and the next merges (Add / Concat: left in float, not crossed,
    so one float layer does not turn a residual trunk to float)."""
    extra = set(scheme.op_types) - set(QUANT_OPS)
    if not extra or not layers:
        return list(layers)
    onnx = require("onnx", "quantize", "quantize to INT8")
    m = onnx.load(os.fspath(model_path), load_external_data=False)
    readers: dict[str, list] = {}
    writer: dict[str, object] = {}
    for n in m.graph.node:
        for t in n.input:
            readers.setdefault(t, []).append(n)
        for t in n.output:
            writer[t] = n
    by_name = {n.name: n for n in m.graph.node}
    island: dict[str, None] = dict.fromkeys(layers)
    todo = [by_name[name] for name in layers if name in by_name]
    seen_tensors: set[str] = set()
    while todo:
        node = todo.pop()
        for t in (*node.input, *node.output):
            if not t or t in seen_tensors:
                continue
            seen_tensors.add(t)
            for nb in [writer.get(t), *readers.get(t, [])]:
                if nb is not None and nb.op_type in extra and nb.name and nb.name not in island:
                    island[nb.name] = None
                    if nb.op_type not in _MERGES:
                        todo.append(nb)
    return list(island)


__all__ = ["CPU_LADDER", "CPU_QDQ", "float_island", "SCHEMES", "TENSORRT_QDQ", "QdqScheme", "quantizable_nodes", "quantize_onnx"]
