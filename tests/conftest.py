import os

# Keep tests on the 2 cores this project is sized for, and deterministic.
os.environ.setdefault("OMP_NUM_THREADS", "2")


# -- shared fixtures (keep this file small; heavy imports inside fixtures) ----------------
import shutil  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402

import pytest  # noqa: E402

USER_MODELS_SOURCE = textwrap.dedent('''
    """Small user models for tests: importable as edgecnn_test_models:<factory>."""
    import torch
    import torch.nn as nn


    class TinyNet(nn.Module):
        """conv-BN-ReLU-dropout x2, global pool, linear: BN folding and dropout removal show."""

        def __init__(self, num_classes=5, in_chans=3):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(in_chans, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                nn.Dropout(0.3),
                nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(0.5))
            self.head = nn.Linear(16, num_classes)
            g = torch.Generator().manual_seed(1)
            for m in self.modules():  # non-trivial running stats so folding matters
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                    m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)

        def forward(self, x):
            return self.head(self.features(x))


    def tiny_net(num_classes=5):
        torch.manual_seed(0)
        return TinyNet(num_classes)


    tiny_net.input_size = (3, 16, 16)


    def tiny_gray(num_classes=4):
        """No declared size: needs --input-size."""
        torch.manual_seed(0)
        return TinyNet(num_classes, in_chans=1)


    class Noisy(nn.Module):
        """Adds fresh random noise on every call: no export can agree with it."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 8 * 8, 3)

        def forward(self, x):
            return self.fc(x.flatten(1)) + torch.rand(x.shape[0], 3) * 10


    def noisy():
        return Noisy()


    noisy.input_size = (3, 8, 8)


    def not_a_module():
        return 42


    def broken():
        raise RuntimeError("factory exploded")
''')


@pytest.fixture(scope="session")
def user_models(tmp_path_factory):
    """Writes ``edgecnn_test_models.py`` onto sys.path; returns its folder."""
    folder = tmp_path_factory.mktemp("user_models")
    (folder / "edgecnn_test_models.py").write_text(USER_MODELS_SOURCE)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("edgecnn_test_models", None)


@pytest.fixture(scope="session")
def tiny_bundle_session(user_models, tmp_path_factory):
    """One ONNX bundle of TinyNet (3x16x16, 5 classes), exported once per session."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from edgecnn.options import ExportOptions
    from edgecnn.pipeline import export

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    export("edgecnn_test_models:tiny_net", ExportOptions(out=out), log=None)
    return out


@pytest.fixture
def tiny_bundle(tiny_bundle_session, tmp_path):
    """A private copy of the TinyNet bundle that a test may modify."""
    dst = tmp_path / "tiny"
    shutil.copytree(tiny_bundle_session, dst)
    return dst
