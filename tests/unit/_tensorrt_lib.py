"""Shared helpers of the tests/unit/test_tensorrt_*.py files: tiny real ONNX models and bundles."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tensorrt"
MACHINES = ("desktop", "orin_nano", "agx_orin", "thor", "orin_jp60")


def recorded_machine(name: str):
    """PlatformInfo of a recorded machine: its files + its recorded nvidia-smi / TensorRT version."""
    from edgecnn.platform_info import parse_nvidia_smi, probe

    root = FIXTURES / name
    info = probe(root, run_tools=False)
    smi = root / "nvidia_smi.csv"
    if smi.is_file():
        info.gpus = parse_nvidia_smi(smi.read_text())
        info.cuda_driver = info.gpus[0].driver_version
    info.tensorrt = (root / "tensorrt_version").read_text().strip()
    return info


def engine_metadata(name: str):
    import json

    from edgecnn.runtime.trt_engine_info import EngineMetadata

    return EngineMetadata.from_dict(json.loads((FIXTURES / f"engine_{name}.json").read_text()))


def tiny_cnn(in_chans: int = 1, classes: int = 4):
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(in_chans, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, classes)).eval()


def export_onnx(module, chw, path: Path, dynamic_batch: bool = True) -> Path:
    """Real torch.onnx.export(dynamo=True); uses the project's exporter when it exists."""
    try:
        from edgecnn.export.onnx import export_onnx as project_export

        project_export(module, tuple(chw), path, dynamic_batch=dynamic_batch, batch=2, log=lambda m: None)
        return path
    except ImportError:
        pass
    import torch

    x = torch.randn(2, *chw)
    shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},) if dynamic_batch else None
    prog = torch.onnx.export(module, (x,), dynamo=True, dynamic_shapes=shapes, verbose=False)
    prog.save(str(path))
    return path


def qdq_int8(src: Path, dst: Path, chw, n: int = 8) -> Path:
    """Symmetric int8 Q/DQ with onnxruntime's static quantizer and the quantize helper's scheme
    (edgecnn.quantize.int8.TENSORRT_QDQ: per channel, symmetric, float bias), calibrated on
    random data: the graph structure, not the accuracy, is what these tests need."""
    from edgecnn.quantize.int8 import TENSORRT_QDQ as scheme
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    import onnx

    name = onnx.load(str(src)).graph.input[0].name
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{name: rng.standard_normal((1, *chw)).astype(np.float32)} for _ in range(n)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=scheme.per_channel, op_types_to_quantize=list(scheme.op_types),
                    activation_type=getattr(QuantType, scheme.activation_type),
                    weight_type=getattr(QuantType, scheme.weight_type),
                    extra_options=scheme.extra_options())
    return dst


def fp16(src: Path, dst: Path) -> Path:
    """FP16 graph with fp32 I/O, by the quantize helper's converter."""
    from edgecnn.quantize.fp16 import convert_fp16

    convert_fp16(src, dst)
    return dst


def make_manifest(model: str = "tiny", classes: int = 4, channels: int = 1, size: int = 8):
    from edgecnn.manifest import Manifest, Preprocess

    return Manifest(model=model, labels=[f"c{i}" for i in range(classes)],
                    preprocess=Preprocess(size=[size, size], channels=channels, mean=[0.5] * channels,
                                          std=[0.5] * channels,
                                          channel_order="L" if channels == 1 else "RGB"))


def io_specs(chw, classes):
    from edgecnn.manifest import TensorSpec

    return ([TensorSpec("input", [-1, *chw], "float32", "NCHW")], [TensorSpec("logits", [-1, classes])])
