"""TensorRT target: prepare anywhere, build on the device, check on the CPU.

Split so that only ``builder`` imports TensorRT (inside its functions):

* ``versions``  - the pure build strategy per TensorRT major version;
* ``preflight`` - CPU-side check of an ONNX graph against onnx-tensorrt's operator table, and
  which TensorRT versions to check;
* ``plan``      - the build plan (build_plan.json): making, recording and reading it, and the
  TensorRT-ready ONNX;
* ``metadata``  - the engine metadata a build records;
* ``builder``   - the strongly typed engine build (needs TensorRT and a GPU), with
  ``build_log`` (the ``trt.ILogger`` that keeps errors and warnings), ``network_io`` (engine I/O
  specs from the parsed network) and ``dla`` (static DLA profile, placement checks);
* ``cuda_compat`` - do cuda-python, the driver and TensorRT agree on the CUDA major (doctor).

What the runtime needs as well (TensorRT version parsing, the engine metadata and its comparison
with the machine, the TensorRT / cuda-python imports) lives below this package, in
:mod:`edgecnn.runtime.trt_engine_info`; this package imports it from there, never the reverse.
File names come from :mod:`edgecnn.catalog`. Importing this package imports nothing heavy.
"""
