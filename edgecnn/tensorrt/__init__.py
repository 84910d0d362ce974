"""TensorRT target: prepare anywhere, build on the device, check on the CPU.

Split so that only ``builder`` imports TensorRT (inside its functions):

* ``versions``  - TensorRT version parsing and the pure build strategy per major version;
* ``preflight`` - CPU-side check of an ONNX graph against onnx-tensorrt's operator table;
* ``plan``      - the build plan (build_plan.json) and the TensorRT-ready ONNX;
* ``metadata``  - engine metadata and its comparison with the machine;
* ``builder``   - the strongly typed engine build (needs TensorRT and a GPU).

Importing this package imports nothing heavy.
"""
