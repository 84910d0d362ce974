"""PyTorch module -> model.onnx (fp32) with the dynamo exporter.

``torch.onnx.export(..., dynamo=True)`` (the TorchScript exporter is deprecated) traces
with ``torch.export``, then the onnxscript optimizer folds constants and BatchNorm into
the preceding Conv; eval mode removes Dropout. Measured with torch 2.13: opset 20,
parity within 5e-6 of eager. The graph is then checked here: input "input", output
"logits", batch axis named "batch", no BatchNormalization/Dropout left, onnx.checker.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgecnn._lazy import require
from edgecnn.errors import ExportError, first_line

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"
MAX_PROTO_BYTES = 2**31 - 1  # protobuf limit for a single-file model
TRAINING_OPS = ("BatchNormalization", "Dropout")
_NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch._dynamo",
                  "torch.fx", "onnxscript")


@dataclass
class OnnxExportInfo:
    path: Path
    opset: int
    dynamic_batch: bool
    batch: int | None  # the fixed batch when not dynamic
    nodes: int
    op_counts: dict[str, int] = field(default_factory=dict)
    training_ops: dict[str, int] = field(default_factory=dict)  # must be empty
    size_bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = self.path.name
        return d


@contextlib.contextmanager
def quiet_exporter(log: Callable[[str], None] | None = None):
    """Silence the exporter's prints, warnings and log records; hand its stdout to ``log``."""
    buf = io.StringIO()
    saved = {}
    for name in _NOISY_LOGGERS:
        lg = logging.getLogger(name)
        saved[name] = lg.level
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        if log is not None:
            for line in buf.getvalue().splitlines():
                if line.strip():
                    log(f"  exporter: {line.strip()}")


def export_onnx(module, input_size_chw, path, opset: int | None = None, *,
                dynamic_batch: bool = True, batch: int = 2,
                log: Callable[[str], None] | None = None) -> OnnxExportInfo:
    """Export ``module`` (eval mode) for inputs (N, C, H, W) to ``path``; check the graph.

    ``dynamic_batch=False`` exports a fixed batch of ``batch`` (used for .pt2 programs
    that were exported with a static batch).
    """
    torch = require("torch", "export", "export to ONNX")
    onnx = require("onnx", "export", "export to ONNX")
    require("onnxscript", "export", "export to ONNX (the dynamo exporter needs it)")
    path = Path(path)
    t0 = time.perf_counter()
    try:
        module.eval()
    except Exception:  # GraphModules from torch.export refuse eval(); they are eval already
        pass
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((batch, *tuple(input_size_chw)), generator=gen)
    kwargs: dict[str, Any] = dict(dynamo=True, external_data=False, input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], verbose=False, optimize=True)
    if opset is not None:
        kwargs["opset_version"] = int(opset)
    if dynamic_batch:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim(BATCH_DIM)},)
    try:
        with quiet_exporter(log), torch.no_grad():
            program = torch.onnx.export(module, (x,), None, **kwargs)
    except Exception as exc:
        msg = first_line(exc, 400)
        hint = ""
        if dynamic_batch and ("batch" in msg or "Constraint" in type(exc).__name__
                              or "specializ" in msg.lower()):
            hint = ("; the model fixes its batch size somewhere (e.g. x.view(1, -1)); use "
                    "x.flatten(1) or x.view(x.size(0), -1)")
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {msg}{hint}") from exc
    proto = program.model_proto
    _name_batch_axis(proto, dynamic_batch)
    size = proto.ByteSize()
    if size > MAX_PROTO_BYTES:
        raise ExportError(f"the ONNX model is {size / 2**30:.1f} GiB, over the 2 GiB single-file "
                          f"limit; edgecnn bundles embed weights in one file")
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ExportError(f"exported ONNX model fails onnx.checker: {first_line(exc, 400)}") from exc
    counts = op_counts(proto)
    _check_io(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    opset_v = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxExportInfo(
        path=path, opset=int(opset_v), dynamic_batch=dynamic_batch,
        batch=None if dynamic_batch else batch, nodes=sum(counts.values()),
        op_counts=dict(sorted(counts.items())),
        training_ops={k: v for k, v in counts.items() if k in TRAINING_OPS},
        size_bytes=path.stat().st_size, seconds=round(time.perf_counter() - t0, 3))


def op_counts(proto) -> Counter:
    """Op types in the graph, its subgraphs and its local functions."""
    counts: Counter = Counter()

    def walk(graph) -> None:
        for node in graph.node:
            counts[node.op_type] += 1
            for attr in node.attribute:
                if attr.g is not None and attr.HasField("g"):
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(proto.graph)
    for fn in proto.functions:
        for node in fn.node:
            counts[node.op_type] += 1
    return counts


def _name_batch_axis(proto, dynamic: bool) -> None:
    """The exporter names the symbolic batch 's77' or similar; call it 'batch' everywhere."""
    if not dynamic:
        return
    first = proto.graph.input[0].type.tensor_type.shape.dim[0]
    old = first.dim_param
    if not old or old == BATCH_DIM:
        return
    for vi in list(proto.graph.input) + list(proto.graph.output) + list(proto.graph.value_info):
        for dim in vi.type.tensor_type.shape.dim:
            if dim.dim_param == old:
                dim.dim_param = BATCH_DIM


def _check_io(proto) -> None:
    ins = [i.name for i in proto.graph.input]
    outs = [o.name for o in proto.graph.output]
    if ins != [INPUT_NAME] or outs != [OUTPUT_NAME]:
        raise ExportError(f"exported graph has inputs {ins} and outputs {outs}; edgecnn expects one "
                          f"image input and one logits output")



def graph_io_specs(onnx_path: str | Path):
    """(inputs, outputs) TensorSpecs read from an ONNX graph (-1 for a dynamic dimension)."""
    import os

    from edgecnn.manifest import TensorSpec

    onnx = require("onnx", "quantize", "read an ONNX model")
    g = onnx.load(os.fspath(onnx_path), load_external_data=False).graph

    def spec(vi, image: bool):
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
        return TensorSpec(name=vi.name, shape=dims, dtype="float32",
                          layout="NCHW" if image and len(dims) == 4 else None)

    return [spec(v, True) for v in g.input], [spec(v, False) for v in g.output]
