"""The seed model zoo: published parameter counts, forward shapes, configurability, MAC counts."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from edgecnn.errors import UnknownModelError  # noqa: E402
from edgecnn.models import create_model, get_model_info, list_models  # noqa: E402
from edgecnn.models.profile import count_macs, count_params  # noqa: E402

# Published parameter counts at the reference configuration (torchvision / timm / LeCun).
REFERENCE_PARAMS = {
    "lenet5": 61_706,
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg16": 138_357_544,
    "googlenet": 6_624_904,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "efficientnet_b0": 5_288_548,
    "mobilenet_v2": 3_504_872,
    "vit_tiny_16": 5_717_416,
    "vit_base_16": 86_567_656,
    # CIFAR-style nets with 1x1-conv shortcuts; no single published figure, order of magnitude
    # from He et al. (resnet20 ~0.27M).
    "resnet8": 78_000,
    "resnet20": 272_000,
}
# Models whose full-size random init dominates the test time (>85M params): marked slow.
HEAVY = {"vgg11", "vgg16", "vit_base_16"}
# A second valid input size per model, different from the reference and the test size.
ALT_SIZE = {
    "lenet5": 28, "alexnet": 96, "vgg11": 64, "vgg16": 64, "googlenet": 48, "resnet18": 40,
    "resnet50": 40, "efficientnet_b0": 48, "mobilenet_v2": 48, "vit_tiny_16": 48, "vit_base_16": 48,
    "resnet8": 32, "resnet20": 36,
}
NAMES = sorted(REFERENCE_PARAMS)
# counts the zoo must match exactly (the torchvision layout, parameter for parameter)
EXACT_PARAMS = {"mobilenet_v2"}


def _param(name):
    return pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name


def test_zoo_has_exactly_the_seed_models():
    assert [m.name for m in list_models()] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_param_count_matches_published(name):
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = create_model(name)
    n = count_params(model)
    assert n == pytest.approx(REFERENCE_PARAMS[name], rel=0.01), f"{name}: {n:,}"
    if name in EXACT_PARAMS:
        assert n == REFERENCE_PARAMS[name], f"{name}: {n:,}"


@pytest.mark.parametrize("name", [_param(n) for n in NAMES])
def test_forward_at_test_size(name):
    info = get_model_info(name)
    c, h, w = info.test_size
    model = create_model(name, img_size=h).eval()
    with torch.no_grad():
        y = model(torch.randn(2, c, h, w))
    assert y.shape == (2, info.num_classes)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", [_param(n) for n in NAMES])
def test_other_channels_classes_and_size(name):
    info = get_model_info(name)
    in_chans = 1 if info.input_size[0] == 3 else 3
    size = ALT_SIZE[name]
    model = create_model(name, num_classes=7, in_chans=in_chans, img_size=size).eval()
    with torch.no_grad():
        y = model(torch.randn(2, in_chans, size, size))
    assert y.shape == (2, 7)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", ["lenet5", "resnet8"])
def test_train_mode_forward_and_backward(name):
    info = get_model_info(name)
    c, h, w = info.test_size
    model = create_model(name, num_classes=3, img_size=h).train()
    y = model(torch.randn(2, c, h, w))
    assert y.shape == (2, 3)
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_googlenet_aux_heads_off_by_default_and_only_in_training():
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        plain = create_model("googlenet", num_classes=5).train()
        assert plain.aux1 is None and plain(x).shape == (2, 5)  # one tensor even in training
        model = get_model_info("googlenet").factory(num_classes=5, aux_logits=True)
        out = model.train()(x)
        assert isinstance(out, tuple) and [o.shape for o in out] == [(2, 5)] * 3
        assert model.eval()(x).shape == (2, 5)


def test_vit_position_embedding_follows_img_size():
    assert create_model("vit_tiny_16", img_size=48).pos_embed.shape == (1, 3 * 3 + 1, 192)
    with pytest.raises(ValueError, match="divisible by 16"):
        create_model("vit_tiny_16", img_size=40)


@pytest.mark.parametrize("name,size", [("lenet5", 8), ("vgg11", 16), ("resnet18", (32, 48))])
def test_invalid_sizes_are_rejected_with_the_model_name(name, size):
    with pytest.raises(ValueError, match=name):
        create_model(name, img_size=size)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownModelError, match=r"did you mean .*resnet18"):
        get_model_info("resnet19")
    with pytest.raises(UnknownModelError, match="unknown model"):
        create_model("not_a_model_at_all")


def test_count_params_and_macs_on_a_hand_counted_model():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(1), nn.Linear(18, 4))
    assert count_params(model) == (2 * 9 + 2) + (18 * 4 + 4)
    model.train()
    # conv: 2x3x3 outputs x 9 taps; linear: 4 outputs x 18 inputs
    assert count_macs(model, (1, 5, 5)) == 2 * 3 * 3 * 9 + 4 * 18
    assert model.training  # mode restored


def test_count_macs_resnet18_matches_published():
    macs = count_macs(create_model("resnet18"), (3, 224, 224))
    assert macs == pytest.approx(1.82e9, rel=0.05)


def test_count_macs_mobilenet_v2_matches_published():
    """300M multiply-adds at 224 (Sandler et al. 2018, Table 4)."""
    assert count_macs(create_model("mobilenet_v2"), (3, 224, 224)) == pytest.approx(300e6, rel=0.02)


def test_count_macs_lenet5():
    assert count_macs(create_model("lenet5"), (1, 32, 32)) == pytest.approx(0.42e6, rel=0.02)


def test_count_macs_includes_vit_attention_matmuls():
    model = create_model("vit_tiny_16", img_size=32)  # 4 patches + cls = 5 tokens, dim 192
    linear_only = count_macs(model, (3, 32, 32))
    attention = 12 * 2 * 5 * 5 * 192
    patch = 192 * 4 * (3 * 16 * 16)
    per_block = 5 * (192 * 576 + 192 * 192 + 2 * 192 * 768)
    assert linear_only == patch + 12 * per_block + 192 * 1000 + attention


def test_settled_batchnorm_gives_random_nets_normal_logits_without_touching_weights():
    from edgecnn.models.batchnorm import settle_batchnorm
    from edgecnn.models.loading import load_model

    torch.manual_seed(0)
    net = create_model("efficientnet_b0", num_classes=10, in_chans=3, img_size=32).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        tiny = net(x).abs().max().item()
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k
               and "num_batches" not in k}
    settle_batchnorm(net, (3, 32, 32))
    with torch.no_grad():
        y = net(x)
    assert tiny < 1e-6 < 1e-2 < y.abs().max().item()  # 1e-11-ish before, a normal size after
    assert not net.training
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in weights.items())
    # export without weights settles only nets whose logits vanish, seeded
    torch.manual_seed(1)
    assert load_model("resnet8", num_classes=10).source["init"] == "random weights"

    a, b = ((torch.manual_seed(1), load_model("efficientnet_b0", input_size="3x32x32",
                                              num_classes=10))[1] for _ in range(2))
    assert "BatchNorm" in a.source["init"]
    for (k, va), vb in zip(a.module.state_dict().items(), b.module.state_dict().values()):
        if "running" in k:
            assert torch.equal(va, vb), k
