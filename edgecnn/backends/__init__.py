"""Build-time backends: turn a graph (or the PyTorch module) into an artifact and write it into
the bundle. One module per backend (``onnxruntime``, ``tflite``, ``tensorrt``), each with one
entry in :mod:`edgecnn.catalog`; see :mod:`edgecnn.backends.registry`.

Nothing is imported here: ``get_backend(name)`` imports a backend's module when first asked.
"""
