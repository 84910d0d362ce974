"""An evaluation dataset's class names mapped onto a model's classes. numpy only.

Subfolders named like the model's labels, by class index ('0', '17') or by WordNet id
('n01440764', through the label set's ids) become the model's class indices, so a folder with
a few ImageNet classes is scored against a 1,000-class model.
"""

from __future__ import annotations

import numpy as np

from edgecnn.data.image_dataset import ImageDataset
from edgecnn.labels import class_indices


def align_classes(dataset: ImageDataset, labels: list[str], wnids=None) -> ImageDataset:
    """``dataset`` with labels in the model's class indices when its class names map onto
    ``labels``; unchanged otherwise (classes are then taken in order, as before)."""
    if dataset.labels is None or list(dataset.classes) == list(labels):
        return dataset
    idx = class_indices(list(dataset.classes), list(labels), wnids)
    if idx is None:
        return dataset
    return ImageDataset(classes=list(labels), labels=np.asarray(idx, np.int64)[dataset.labels],
                        images=dataset.images, paths=dataset.paths,
                        spec=dataset.spec, meta=dict(dataset.meta))
