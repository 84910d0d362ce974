"""Small ONNX classifiers built in code for the quantization tests: one input "input"
(batch x C x H x W), one output "logits" (batch x classes), opset 17, IR version 8."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper


def classifier(nodes, inits, name: str, chw, batch="N", classes: int = 10) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, *chw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def save_classifier(path: Path, nodes, inits, name: str, chw, batch="N", check: bool = True
                    ) -> onnx.ModelProto:
    """Build, optionally run onnx.checker on, and save the classifier; returns the model."""
    m = classifier(nodes, inits, name, chw, batch)
    if check:
        onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return m
