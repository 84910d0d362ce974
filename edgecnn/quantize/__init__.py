"""Quantization on the ONNX graph: pure transforms, path in and path out (the backends write
bundles). Nothing heavy is imported here; import the submodule you need:

- :mod:`edgecnn.quantize.calibration` -- ``load_calibration(spec, preprocess, input_size_chw)``
- :mod:`edgecnn.quantize.ranges` -- minmax / entropy / percentile activation ranges (numpy)
- :mod:`edgecnn.quantize.cache` -- ranges cached by (model, data, method, preprocess)
- :mod:`edgecnn.quantize.int8` -- ``quantize_onnx``: explicit Q/DQ ONNX of a ``QdqScheme``
- :mod:`edgecnn.quantize.fp16` -- ``convert_fp16``: float16 weights/compute, float32 I/O
- :mod:`edgecnn.quantize.qdq_check` -- ``check_qdq(model)``: TensorRT's Q/DQ rules
- :mod:`edgecnn.quantize.budget` -- accuracy budget and per-layer sensitivity (ONNX graphs)
- :mod:`edgecnn.quantize.torch_sensitivity` -- per-layer INT8 sensitivity in PyTorch (TFLite)
- :mod:`edgecnn.quantize.report` -- quantization_report.json + rich table
"""
