"""An int8-input .tflite made to take float input: one QUANTIZE op in front of the graph.

litert-torch folds the input's quantisation into the input tensor, so model.int8.tflite takes
int8 NHWC. A caller with float pixels would then quantise in numpy on every call (several passes
over the image, 6-10 % of a resnet18 run). Here the model itself gets a float32 input tensor of
the same shape and a QUANTIZE op (float -> the old input's int8 with its scale and zero point)
as its first operator, so LiteRT's own vectorised kernel does that work. The weights and every
other tensor are untouched; done in memory at session load (the file in the bundle is not
changed), with the flatbuffer object API that ai_edge_litert ships.
"""

from __future__ import annotations

import numpy as np


def float_input_model(data: bytes) -> bytes:
    """``data`` (a .tflite whose one input is int8/uint8) with a float32 input and a QUANTIZE
    op in front; ValueError when the model is not like that."""
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    if len(model.subgraphs) != 1 or len(model.subgraphs[0].inputs) != 1:
        raise ValueError("not a one-subgraph, one-input model")
    graph = model.subgraphs[0]
    old = int(graph.inputs[0])
    tensor = graph.tensors[old]
    if tensor.type not in (fb.TensorType.INT8, fb.TensorType.UINT8) or tensor.quantization is None:
        raise ValueError("the input is not a quantized int8/uint8 tensor")

    new = fb.TensorT()
    new.type = fb.TensorType.FLOAT32
    new.shape = None if tensor.shape is None else np.array(tensor.shape, np.int32)
    new.shapeSignature = (None if tensor.shapeSignature is None
                          else np.array(tensor.shapeSignature, np.int32))
    name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
    new.name = f"{name}_float"
    model.buffers.append(fb.BufferT())  # an empty buffer: an activation tensor
    new.buffer = len(model.buffers) - 1
    graph.tensors.append(new)
    new_index = len(graph.tensors) - 1

    op = fb.OperatorT()
    op.opcodeIndex = _opcode(model, fb.BuiltinOperator.QUANTIZE)
    op.inputs = np.array([new_index], np.int32)
    op.outputs = np.array([old], np.int32)
    op.builtinOptionsType = fb.BuiltinOptions.QuantizeOptions
    op.builtinOptions = fb.QuantizeOptionsT()
    graph.operators.insert(0, op)
    graph.inputs = np.array([new_index], np.int32)
    for signature in model.signatureDefs or []:
        for io in signature.inputs or []:
            if io.tensorIndex == old:
                io.tensorIndex = new_index
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


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
