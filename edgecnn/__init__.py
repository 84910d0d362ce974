"""edgecnn: take image-classification CNNs from PyTorch to the edge.

Import-light on purpose: this module holds the version only, so that
``import edgecnn.runtime`` on a device pulls in nothing heavy.
"""

__version__ = "0.1.0"
