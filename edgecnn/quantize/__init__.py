"""Quantization on the ONNX graph: calibration data, activation ranges, INT8 Q/DQ, FP16.

Nothing heavy is imported here; import the submodule you need:

- :mod:`edgecnn.quantize.calibration` -- ``load_calibration(spec, preprocess, input_size_chw)``
- :mod:`edgecnn.quantize.ranges` -- minmax / entropy / percentile activation ranges (numpy)
- :mod:`edgecnn.quantize.int8` -- ``export_int8(ctx)``: explicit Q/DQ ONNX TensorRT accepts
- :mod:`edgecnn.quantize.fp16` -- ``export_fp16(ctx)``: float16 weights/compute, float32 I/O
- :mod:`edgecnn.quantize.qdq_check` -- ``check_qdq(model)``: TensorRT's Q/DQ rules
- :mod:`edgecnn.quantize.cache` -- calibration ranges cached in the bundle
- :mod:`edgecnn.quantize.budget` -- accuracy budget and per-layer sensitivity
- :mod:`edgecnn.quantize.report` -- quantization_report.json + rich table
- :mod:`edgecnn.quantize.pipeline` -- the INT8 step of an export, in order
"""
