"""A .tflite made to take the caller's float input as it is: ops in front of the graph.

litert-torch folds the input's quantisation into the input tensor, so model.int8.tflite takes
int8 NHWC. A caller with float pixels would then quantise in numpy on every call (several passes
over the image, 6-10 % of a resnet18 run). Here the model itself gets a float32 input tensor of
the same shape and a QUANTIZE op (float -> the old input's int8 with its scale and zero point)
as its first operator, so LiteRT's own vectorised kernel does that work. The weights and every
other tensor are untouched; done in memory at session load (the file in the bundle is not
changed), with the flatbuffer object API that ai_edge_litert ships.

With ``nchw=True`` (a 4-D NHWC input) the new input is float32 NCHW, quantised into an int8
NCHW tensor and then moved to NHWC by a TRANSPOSE op, so the caller's NCHW batch is written to
LiteRT as it is: the session's numpy layout copy goes, and on a Zen 5 EPYC (resnet18, int8)
that path ran 0.10 ms (2.3 %) faster a call, paired, with identical logits.

A float32 NHWC model (fp32, fp16 with float input) gets only the TRANSPOSE: its copy takes
float32 NCHW, so the session writes the caller's batch as it is instead of copying it into
NHWC first (on the same Zen 5, resnet18 fp32, per-round ratios over the model's own
run_by_index loop: +2.7 % with the numpy copy, +0.6 to +1.6 % through this copy;
benchmarks/litert_overhead.py).
"""

from __future__ import annotations

import copy

import numpy as np


def float_input_model(data: bytes, nchw: bool = False) -> bytes:
    """``data`` (a .tflite whose one input is int8/uint8) with a float32 input and a QUANTIZE
    op in front (and, with ``nchw``, the input in NCHW and a TRANSPOSE to the model's NHWC);
    a float32-input ``data`` gets only the TRANSPOSE (``nchw`` required). ValueError when the
    model is not like that."""
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    for buffer in model.buffers:  # packed byte by byte unless numpy: 11 s for an fp16 resnet18
        if isinstance(buffer.data, (bytes, bytearray)):
            buffer.data = np.frombuffer(buffer.data, np.uint8)
    if len(model.subgraphs) != 1 or len(model.subgraphs[0].inputs) != 1:
        raise ValueError("not a one-subgraph, one-input model")
    graph = model.subgraphs[0]
    old = int(graph.inputs[0])
    tensor = graph.tensors[old]
    takes_float = tensor.type == fb.TensorType.FLOAT32
    if takes_float and not nchw:
        raise ValueError("the input is float32 already")
    if not takes_float and (tensor.type not in (fb.TensorType.INT8, fb.TensorType.UINT8)
                            or tensor.quantization is None):
        raise ValueError("the input is neither float32 nor a quantized int8/uint8 tensor")

    name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
    shape, signature = tensor.shape, tensor.shapeSignature
    if nchw:
        if shape is None or len(shape) != 4:
            raise ValueError("the input is not a 4-D NHWC tensor")
        to_nchw = [0, 3, 1, 2]
        shape = [int(shape[i]) for i in to_nchw]
        signature = None if signature is None else [int(signature[i]) for i in to_nchw]
    new_index = _add_tensor(model, fb.TensorType.FLOAT32, shape, signature, f"{name}_float")
    # int8 model: float NCHW -> QUANTIZE -> int8 NCHW -> TRANSPOSE -> its int8 NHWC input;
    # float model: float NCHW -> TRANSPOSE -> its float NHWC input
    quantized = old  # what the QUANTIZE op writes
    if nchw:
        quantized = new_index  # the TRANSPOSE's input
        if not takes_float:
            quantized = _add_tensor(model, tensor.type, shape, signature, f"{name}_nchw")
            graph.tensors[quantized].quantization = copy.deepcopy(tensor.quantization)
        perm = _add_tensor(model, fb.TensorType.INT32, [4], None, f"{name}_to_nhwc",
                           data=np.array([0, 2, 3, 1], np.int32))
        transpose = fb.OperatorT()
        transpose.opcodeIndex = _opcode(model, fb.BuiltinOperator.TRANSPOSE)
        transpose.inputs = np.array([quantized, perm], np.int32)
        transpose.outputs = np.array([old], np.int32)
        transpose.builtinOptionsType = fb.BuiltinOptions.TransposeOptions
        transpose.builtinOptions = fb.TransposeOptionsT()
        graph.operators.insert(0, transpose)

    if not takes_float:
        op = fb.OperatorT()
        op.opcodeIndex = _opcode(model, fb.BuiltinOperator.QUANTIZE)
        op.inputs = np.array([new_index], np.int32)
        op.outputs = np.array([quantized], np.int32)
        op.builtinOptionsType = fb.BuiltinOptions.QuantizeOptions
        op.builtinOptions = fb.QuantizeOptionsT()
        graph.operators.insert(0, op)
    graph.inputs = np.array([new_index], np.int32)
    for signature in model.signatureDefs or []:
        for io in signature.inputs or []:
            if io.tensorIndex == old:
                io.tensorIndex = new_index
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _add_tensor(model, dtype: int, shape, signature, name: str, data=None) -> int:
    """A new tensor of the first subgraph (an activation, or a constant holding ``data``)."""
    from ai_edge_litert import schema_py_generated as fb

    t = fb.TensorT()
    t.type = dtype
    t.shape = None if shape is None else np.array(shape, np.int32)
    t.shapeSignature = None if signature is None else np.array(signature, np.int32)
    t.name = name
    buffer = fb.BufferT()  # empty: an activation tensor
    if data is not None:
        buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
    model.buffers.append(buffer)
    t.buffer = len(model.buffers) - 1
    graph = model.subgraphs[0]
    graph.tensors.append(t)
    return len(graph.tensors) - 1


def _opcode(model, builtin: int) -> int:
    """Index of ``builtin``'s operator code in ``model``, added when missing."""
    from ai_edge_litert import schema_py_generated as fb

    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = fb.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)  # the old int8 field caps at 127
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1
