"""Imports every family file so their @register_model decorators fill the registry.

Imported lazily by ``registry._load_zoo``; this is the one place that pulls in torch.
Adding a family: one new file plus one line here.
"""

from edgecnn.models import (alexnet, efficientnet, googlenet, lenet, resnet,  # noqa: F401
                            small_resnet, vgg, vit)
