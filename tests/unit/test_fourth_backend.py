"""Adding a backend is one catalogue entry plus one module: a fourth backend written in this
test (its module on sys.path, its entry registered at run time) is exported by the pipeline,
validated by the manifest, loaded by the runtime, parsed as a bench target and recorded by
the package list, with no other edgecnn file touched.

The fake backend is real code on real libraries: it "compiles" model.onnx by copying it to
``model.<precision>.fake`` and its runtime session runs that file with onnxruntime.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from edgecnn import catalog  # noqa: E402

FAKE_MODULE = '''
import shutil

from edgecnn.backends.registry import Backend, register_backend
from edgecnn.runtime.ort import inference_session, run_batched
from edgecnn.runtime.session import Session


@register_backend
class FakeBackend(Backend):
    name = "fakert"

    def export(self, ctx):
        file = self.entry.artifact_file(ctx.precision)
        shutil.copyfile(ctx.fp32_onnx, ctx.writer.path_for(file))
        fp32 = ctx.artifacts[0]
        return [ctx.writer.add_artifact(file, "fakert", ctx.precision, fp32.inputs, fp32.outputs,
                                        details={"copied_from": fp32.file})]


class FakeSession(Session):
    backend = "fakert"

    def __init__(self, manifest, artifact, path, threads=None):
        super().__init__(manifest, artifact, path)
        self._sess = inference_session(path, threads)

    def _run(self, batch):
        return run_batched(self._sess, batch)
'''


@pytest.fixture
def fake_backend(tmp_path, monkeypatch):
    (tmp_path / "edgecnn_fake_backend.py").write_text(FAKE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = catalog.BackendEntry(
        name="fakert", short="fake", aliases=("fk",), precisions=("fp32",),
        files={("fp32", ""): "model.fp32.fake"}, export_module="edgecnn_fake_backend",
        session="edgecnn_fake_backend:FakeSession",
        runtime=catalog.Library("numpy", ("numpy",), "fake"))
    catalog.register(entry)
    yield entry
    catalog.unregister("fakert")
    sys.modules.pop("edgecnn_fake_backend", None)
    from edgecnn.backends import registry

    registry._BACKENDS.pop("fakert", None)


def test_a_fourth_backend_needs_one_entry_and_one_module(fake_backend, user_models, tmp_path):
    import edgecnn.runtime as rt
    from edgecnn.bench.targets import parse_target, unavailable_reason
    from edgecnn.bundle import Bundle
    from edgecnn.options import ExportOptions
    from edgecnn.pipeline import export
    from edgecnn.targets import resolve_target

    assert resolve_target("fk").backend == "fakert"
    out = tmp_path / "bundle"
    res = export("edgecnn_test_models:tiny_net", ExportOptions(target="fake", out=out,
                                                               parity_samples=2), log=None)
    assert [a.file for a in res.artifacts] == ["model.onnx", "model.fp32.fake"]

    bundle = Bundle.open(out)  # the manifest validator accepts the new backend name
    bundle.verify()
    art = bundle.find("fakert", "fp32")
    assert art.details == {"copied_from": "model.onnx"}

    x = np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)
    with rt.load(out, backend="fakert") as fake, rt.load(out, backend="onnxruntime") as ort:
        assert type(fake).__name__ == "FakeSession"
        np.testing.assert_allclose(fake.run(x), ort.run(x), rtol=1e-5, atol=1e-6)

    target = parse_target("fake:fp32")
    assert (target.name, target.backend, target.artifact_file) == \
        ("fake:fp32", "fakert", "model.fp32.fake")
    assert unavailable_reason(target) is None  # its runtime library (numpy) is installed
    assert ("numpy", ("numpy",)) in catalog.packages()


def test_a_backend_module_without_a_catalogue_entry_is_refused():
    from edgecnn.backends.registry import Backend, register_backend

    class Orphan(Backend):
        name = "orphan"

    with pytest.raises(ValueError, match="no entry in edgecnn.catalog"):
        register_backend(Orphan)


def test_catalogue_names_are_unique(fake_backend):
    with pytest.raises(ValueError, match="already taken"):
        catalog.register(catalog.BackendEntry(
            name="other", short="onnx", aliases=(), precisions=("fp32",), files={},
            export_module="x", session="x:Y", runtime=catalog.Library("numpy", ("numpy",), "x")))
