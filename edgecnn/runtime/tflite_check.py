"""Structural check of a .tflite flatbuffer before the TFLite interpreter sees it. Stdlib only.

The interpreter's Python wrapper (``CreateWrapperFromFile``) builds the model without the
flatbuffer verifier, and the fuzz tests (tests/hardening) found damaged files that crash the
process (SIGSEGV) while loading: zeroed vtable entries make required tables vanish. This walks
the parts of the TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs) that loading
dereferences and refuses a file where any of them is absent, out of the file or out of range:

- the root Model table and its vtable; operator_codes, subgraphs and buffers present;
- per subgraph: tensors, inputs, outputs, operators present; every vector inside the file;
- per tensor: shape vector inside the file, buffer index < len(buffers), no negative dims
  except -1;
- per operator: opcode_index < len(operator_codes), input/output tensor indices in range
  (or -1 for an omitted optional input);
- per buffer: inline data inside the file; offset/size (models > 2 GiB) inside the file.

It does not check builtin options or tensor data (a structurally valid file with wrong
numbers still loads; the sha256 in the manifest is what guards against that).
"""

from __future__ import annotations

import struct


class FlatbufferError(ValueError):
    """The file is not a structurally valid TFLite flatbuffer."""


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)

    def _need(self, pos: int, n: int, what: str) -> None:
        if pos < 0 or pos + n > self.size:
            raise FlatbufferError(f"{what} at byte {pos} lies outside the file ({self.size} bytes)")

    def u8(self, pos: int, what: str) -> int:
        self._need(pos, 1, what)
        return self.data[pos]

    def u16(self, pos: int, what: str) -> int:
        self._need(pos, 2, what)
        return struct.unpack_from("<H", self.data, pos)[0]

    def u32(self, pos: int, what: str) -> int:
        self._need(pos, 4, what)
        return struct.unpack_from("<I", self.data, pos)[0]

    def i32(self, pos: int, what: str) -> int:
        self._need(pos, 4, what)
        return struct.unpack_from("<i", self.data, pos)[0]

    def u64(self, pos: int, what: str) -> int:
        self._need(pos, 8, what)
        return struct.unpack_from("<Q", self.data, pos)[0]


class _Table:
    def __init__(self, r: _Reader, pos: int, what: str):
        self.r, self.pos, self.what = r, pos, what
        vt = pos - r.i32(pos, f"{what} vtable offset")
        self.vt_size = r.u16(vt, f"{what} vtable")
        if self.vt_size < 4 or self.vt_size % 2:
            raise FlatbufferError(f"{what} has a malformed vtable (size {self.vt_size})")
        r._need(vt, self.vt_size, f"{what} vtable")
        self.vt = vt
        self.table_size = r.u16(vt + 2, f"{what} vtable")
        r._need(pos, max(self.table_size, 4), what)

    def field(self, i: int) -> int:
        """Absolute position of field i, or 0 when absent."""
        o = 4 + 2 * i
        if o >= self.vt_size:
            return 0
        off = self.r.u16(self.vt + o, f"{self.what} field {i}")
        if off and self.table_size and off >= self.table_size:
            raise FlatbufferError(f"{self.what} field {i} points outside its table")
        return self.pos + off if off else 0

    def _vector(self, i: int, elem: int, required: bool, name: str) -> tuple[int, int]:
        p = self.field(i)
        if not p:
            if required:
                raise FlatbufferError(f"{self.what} has no {name}")
            return 0, 0
        vec = p + self.r.u32(p, f"{self.what}.{name}")
        n = self.r.u32(vec, f"{self.what}.{name} length")
        self.r._need(vec + 4, n * elem, f"{self.what}.{name} ({n} elements)")
        return vec + 4, n

    def tables(self, i: int, name: str, required: bool = True) -> list["_Table"]:
        start, n = self._vector(i, 4, required, name)
        out = []
        for j in range(n):
            e = start + 4 * j
            out.append(_Table(self.r, e + self.r.u32(e, f"{self.what}.{name}[{j}]"),
                              f"{self.what}.{name}[{j}]"))
        return out

    def ints(self, i: int, name: str, required: bool = False) -> list[int]:
        start, n = self._vector(i, 4, required, name)
        return [self.r.i32(start + 4 * j, name) for j in range(n)]

    def bytes_len(self, i: int, name: str) -> int:
        return self._vector(i, 1, False, name)[1]

    def uint(self, i: int, default: int = 0) -> int:
        p = self.field(i)
        return self.r.u32(p, f"{self.what} field {i}") if p else default

    def ulong(self, i: int, default: int = 0) -> int:
        p = self.field(i)
        return self.r.u64(p, f"{self.what} field {i}") if p else default


def check_tflite_structure(data: bytes) -> None:
    """Raise FlatbufferError naming the first structural problem of a TFLite model."""
    r = _Reader(data)
    if r.size < 8 or data[4:8] != b"TFL3":
        raise FlatbufferError("no 'TFL3' flatbuffer identifier")
    model = _Table(r, r.u32(0, "root offset"), "model")
    # Model: version(0) operator_codes(1) subgraphs(2) description(3) buffers(4)
    opcodes = model.tables(1, "operator_codes")
    subgraphs = model.tables(2, "subgraphs")
    buffers = model.tables(4, "buffers")
    if not subgraphs:
        raise FlatbufferError("model has no subgraphs")
    for b in buffers:  # Buffer: data(0) offset(1) size(2)
        b.bytes_len(0, "data")
        off, size = b.ulong(1), b.ulong(2)
        if off > 1 and (off + size > r.size):
            raise FlatbufferError(f"{b.what} points at bytes {off}..{off + size} beyond the file")
    for opc in opcodes:  # OperatorCode: custom_code(1) is a string
        opc.bytes_len(1, "custom_code")
    for g in subgraphs:  # SubGraph: tensors(0) inputs(1) outputs(2) operators(3)
        tensors = g.tables(0, "tensors")
        nt = len(tensors)
        for t in tensors:  # Tensor: shape(0) type(1) buffer(2) name(3) ... shape_signature(7)
            for d in t.ints(0, "shape") + t.ints(7, "shape_signature"):
                if d < -1:
                    raise FlatbufferError(f"{t.what} has a negative dimension {d}")
            if buffers and t.uint(2) >= len(buffers):
                raise FlatbufferError(f"{t.what} uses buffer {t.uint(2)} of {len(buffers)}")
            t.bytes_len(3, "name")
        for name, idx in (("inputs", g.ints(1, "inputs", True)), ("outputs", g.ints(2, "outputs", True))):
            if any(not 0 <= k < nt for k in idx):
                raise FlatbufferError(f"{g.what}.{name} refers to a tensor outside 0..{nt - 1}")
        for op in g.tables(3, "operators"):  # Operator: opcode_index(0) inputs(1) outputs(2)
            if op.uint(0) >= len(opcodes):
                raise FlatbufferError(f"{op.what} uses operator code {op.uint(0)} of {len(opcodes)}")
            for k in op.ints(1, "inputs") + op.ints(2, "outputs"):
                if not -1 <= k < nt:
                    raise FlatbufferError(f"{op.what} refers to tensor {k} outside 0..{nt - 1}")
