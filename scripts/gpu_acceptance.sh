#!/usr/bin/env bash
# GPU acceptance for edgecnn's TensorRT path: the checks that cannot run without an NVIDIA GPU.
#
#   scripts/gpu_acceptance.sh            # x86 + NVIDIA GPU + package index: TensorRT 10.x (cu12), then 11.x (cu13)
#   scripts/gpu_acceptance.sh --jetson   # Jetson: JetPack's TensorRT (venv --system-site-packages)
#
# Per TensorRT stack: a fresh venv, the TensorRT unit/device tests, then for each model x precision:
# export + build (edgecnn export --target tensorrt builds right away when TensorRT and a GPU are
# here), parity of the engine against ONNX Runtime on the same inputs, and `edgecnn bench`.
# The 11.x half needs a CUDA 13 driver (R580+) and is skipped with the reason otherwise.
# Prints one table; exits non-zero on any failure.
#
# Environment: MODELS (default "resnet18 efficientnet_b0 vit_tiny_16"), PRECISIONS (default
# "fp32 fp16 int8"), WORK (default a new /tmp folder), PYTHON (default python3), DLA_CORE (Jetson:
# also build int8 for this DLA core).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODELS=${MODELS:-"resnet18 efficientnet_b0 vit_tiny_16"}
PRECISIONS=${PRECISIONS:-"fp32 fp16 int8"}
PYTHON=${PYTHON:-python3}
WORK=${WORK:-$(mktemp -d /tmp/edgecnn-gpu-acceptance.XXXXXX)}
RESULTS="$WORK/results.tsv"
JETSON=0
[ "${1:-}" = "--jetson" ] && JETSON=1
mkdir -p "$WORK"
printf 'stack\tmodel\tprecision\tstep\tresult\tdetail\n' > "$RESULTS"

record() {  # stack model precision step result detail
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >> "$RESULTS"
}

run_logged() {  # log-file command...: run, keep the output, return its status
    local log=$1; shift
    "$@" > "$log" 2>&1
}

last_line() { grep -v '^\s*$' "$1" | tail -n 1 | cut -c1-160; }

driver_cuda_major() {  # the newest CUDA major the driver supports, from nvidia-smi's header
    nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\)\..*/\1/p' | head -n 1
}

make_calib() {  # random uint8 HWC images for int8 calibration (structure, not accuracy)
    "$1/bin/python" - "$WORK/calib.npz" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(0)
np.savez(sys.argv[1], images=rng.integers(0, 256, (64, 224, 224, 3), dtype=np.uint8))
PY
}

parity() {  # venv bundle precision -> prints "ok <detail>" or "fail <detail>"
    # the reference is ONNX Runtime on model.<P>.trt.onnx: the very graph the engine was built from
    "$1/bin/python" - "$2" "$3" <<'PY'
import sys
import numpy as np
import onnxruntime as ort
import edgecnn.runtime as rt
bundle, prec = sys.argv[1], sys.argv[2]
x = np.random.default_rng(1).standard_normal((4, 3, 224, 224)).astype(np.float32)
ref = ort.InferenceSession(f"{bundle}/model.{prec}.trt.onnx", providers=["CPUExecutionProvider"])
a = ref.run(None, {ref.get_inputs()[0].name: x})[0].astype(np.float32)
with rt.load(bundle, backend="tensorrt", precision=prec, cuda_graph=True) as eng:
    b = eng.run(x)
    ones = [eng.run(x[:1]), eng.run(x[:1])]  # batch 1 on its CUDA graph: capture, then replay
    eng.run(x)  # a shape change after the capture
    ones.append(eng.run(x[:1]))  # replay again: must still match
scale = max(1.0, float(np.abs(a).max()))
err = float(np.abs(a - b).max()) / scale
agree = float((a.argmax(1) == b.argmax(1)).mean())
tol = {"fp32": 1e-3, "fp16": 3e-2, "int8": 1.5e-1}[prec]
same_one = max(float(np.abs(o - b[:1]).max()) for o in ones) / scale <= tol
ok = err <= tol and same_one and (prec != "int8" or agree >= 0.75)
print(("ok" if ok else "fail") + f" max|d|/scale={err:.2e} (tol {tol:g}) top1-agree={agree:.2f} batch1={'same' if same_one else 'DIFFERS'}")
PY
}

run_stack() {  # label venv
    local label=$1 venv=$2 log
    log="$WORK/$label"
    mkdir -p "$log"
    if run_logged "$log/pytest.log" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
            -m "not slow" "$ROOT"/tests/unit/test_tensorrt_*.py; then
        record "$label" - - tests PASS "$(last_line "$log/pytest.log")"
    else
        record "$label" - - tests FAIL "$(last_line "$log/pytest.log")"
    fi
    make_calib "$venv"
    local model prec out calib
    for model in $MODELS; do
        for prec in $PRECISIONS; do
            out="$WORK/$label/bundles/$model"
            calib=()
            [ "$prec" = int8 ] && calib=(--calib "$WORK/calib.npz" --calib-samples 64)
            if ! run_logged "$log/$model.$prec.export.log" "$venv/bin/edgecnn" export "$model" \
                    --target tensorrt --precision "$prec" --out "$out" --parity-samples 2 "${calib[@]}"; then
                record "$label" "$model" "$prec" export+build FAIL "$(last_line "$log/$model.$prec.export.log")"
                continue
            fi
            if [ ! -f "$out/model.$prec.engine" ]; then
                record "$label" "$model" "$prec" export+build FAIL "no engine written: $(last_line "$log/$model.$prec.export.log")"
                continue
            fi
            record "$label" "$model" "$prec" export+build PASS "$(du -h "$out/model.$prec.engine" | cut -f1) engine"
            local p
            p=$(parity "$venv" "$out" "$prec" 2>"$log/$model.$prec.parity.err") || p="fail $(last_line "$log/$model.$prec.parity.err")"
            record "$label" "$model" "$prec" parity "$([ "${p%% *}" = ok ] && echo PASS || echo FAIL)" "${p#* }"
            if run_logged "$log/$model.$prec.bench.log" "$venv/bin/edgecnn" bench "$out" \
                    --targets "tensorrt:$prec" --batch 1,8 --iterations 50 --no-plot --no-save \
                    --report-dir "$log/bench.$model.$prec"; then
                record "$label" "$model" "$prec" bench PASS "$(last_line "$log/$model.$prec.bench.log")"
            else
                record "$label" "$model" "$prec" bench FAIL "$(last_line "$log/$model.$prec.bench.log")"
            fi
        done
        if [ "$JETSON" = 1 ] && [ -n "${DLA_CORE:-}" ]; then
            if run_logged "$log/$model.dla.log" "$venv/bin/edgecnn" build "$WORK/$label/bundles/$model" \
                    --precision int8 --dla-core "$DLA_CORE"; then
                record "$label" "$model" int8 "build dla$DLA_CORE" PASS "$(last_line "$log/$model.dla.log")"
            else
                record "$label" "$model" int8 "build dla$DLA_CORE" FAIL "$(last_line "$log/$model.dla.log")"
            fi
        fi
    done
}

new_venv() {  # path [--system-site-packages]
    rm -rf "$1"
    "$PYTHON" -m venv ${2:-} "$1" && "$1/bin/pip" install -q --upgrade pip
}

if ! command -v nvidia-smi > /dev/null 2>&1 && [ ! -f /etc/nv_tegra_release ]; then
    echo "no NVIDIA GPU here (no nvidia-smi, not a Jetson): nothing to accept" >&2
    exit 2
fi

if [ "$JETSON" = 1 ]; then
    # JetPack's TensorRT through the system site-packages; never a pip TensorRT on a Jetson.
    extra=jetson
    grep -Eq '^# R(38|39|4[0-9])' /etc/nv_tegra_release 2>/dev/null && extra=jetson-jp7
    V="$WORK/venv-jetson"
    if new_venv "$V" --system-site-packages && "$V/bin/pip" install -q torch && \
            "$V/bin/pip" install -q -e "$ROOT[$extra,export,ort,quantize,bench]" pytest hypothesis pytest-timeout; then
        record "jetson-system-trt" - - install PASS "edgecnn[$extra] + JetPack TensorRT $("$V/bin/python" -c 'import tensorrt; print(tensorrt.__version__)' 2>&1 | tail -n 1)"
        run_stack jetson-system-trt "$V"
    else
        record "jetson-system-trt" - - install FAIL "see pip output above"
    fi
else
    V="$WORK/venv-trt10"
    if new_venv "$V" && "$V/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu && \
            "$V/bin/pip" install -q -e "$ROOT[dev,tensorrt]" "tensorrt-cu12>=10.3,<11"; then
        record trt10-cu12 - - install PASS "TensorRT $("$V/bin/python" -c 'import tensorrt; print(tensorrt.__version__)' 2>&1 | tail -n 1)"
        run_stack trt10-cu12 "$V"
    else
        record trt10-cu12 - - install FAIL "pip install failed"
    fi
    major=$(driver_cuda_major)
    if [ -z "$major" ] || [ "$major" -lt 13 ]; then
        record trt11-cu13 - - all SKIP "the driver supports CUDA ${major:-?}; TensorRT 11 (cu13) needs R580 or newer"
    else
        V="$WORK/venv-trt11"
        # not [dev]: dev pins cuda-python 12 for CPU CI; this stack is CUDA 13 throughout
        if new_venv "$V" && "$V/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu && \
                "$V/bin/pip" install -q -e "$ROOT[all,tensorrt-cu13]" "tensorrt-cu13>=11,<12" \
                pytest hypothesis pytest-timeout; then
            record trt11-cu13 - - install PASS "TensorRT $("$V/bin/python" -c 'import tensorrt; print(tensorrt.__version__)' 2>&1 | tail -n 1)"
            run_stack trt11-cu13 "$V"
        else
            record trt11-cu13 - - install FAIL "pip install failed"
        fi
    fi
fi

echo
column -t -s $'\t' "$RESULTS" 2>/dev/null || cat "$RESULTS"
echo
echo "logs and bundles: $WORK"
if grep -q $'\tFAIL\t' "$RESULTS"; then
    echo "GPU acceptance: FAILED"
    exit 1
fi
echo "GPU acceptance: passed"
