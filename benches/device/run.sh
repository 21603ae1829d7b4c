#!/usr/bin/env bash
# Runs, on a GPU machine without a Rust toolchain, what benches/device/build_bundle.sh
# built: every correctness test executable with REQUIRE_GPU=1 on wgpu's Vulkan backend,
# the step bench, the L-BFGS bench, the sparse bench (time to J* on the shared sparse
# text data, the binary on the card beside its CPU engine and scikit-learn, where the
# machine's python3 has scikit-learn and scipy), the path bench (8 values of λ in
# lockstep against separate fits and scikit-learn, where python3 has numpy and
# scikit-learn), and PyTorch's step on the same card where the machine's python3 has
# torch with CUDA. Everything it prints goes under $OUT (eight files: env.txt, tests.log,
# step.log, lbfgs.log, sparse.log, path.log, torch.log, summary.txt).
#
# One device call, from the repository root, carrying the bundle:
#   run(command="benches/device/run.sh", carry=[".device-bundle"], timeout_s=600)
#
# NVIDIA's Vulkan driver is found by its ICD file (the machine's /usr/local/nvidia, else
# the usual icd.d folders; DEVICE_ICD names another); without one the loader's own
# search applies (lavapipe on the development machine). The bundle's Vulkan loader comes
# first on the library path, so the same loader runs everywhere.
#
# DEVICE_SHORT=1 picks the small shapes (step: small; L-BFGS: digits; path: 5000 × 100;
# PyTorch: one small shape), to check the script end to end on a slow adapter. BENCH_SHAPES, BENCH_VARIANTS,
# BENCH_X_STORAGE and LBFGS_SHAPES reach the benches as usual. DEVICE_STEPS (default
# "tests step lbfgs sparse path torch") picks the parts; DEVICE_TEST_TIMEOUT and DEVICE_BENCH_TIMEOUT
# bound each executable in seconds.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root" || exit 2
bundle="$(cd "${BUNDLE:-$root/.device-bundle}" 2>/dev/null && pwd)" || {
    echo "run.sh: no bundle at ${BUNDLE:-$root/.device-bundle}; run benches/device/build_bundle.sh and carry it" >&2
    exit 2
}
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
steps="${DEVICE_STEPS:-tests step lbfgs sparse path torch}"
test_timeout="${DEVICE_TEST_TIMEOUT:-150}"
bench_timeout="${DEVICE_BENCH_TIMEOUT:-240}"
short="${DEVICE_SHORT:-0}"
summary="$out/summary.txt"
: >"$summary"
failed=0

# The executables travel packed; they run from a scratch folder.
exe="$(mktemp -d)"
trap 'rm -rf "$exe"' EXIT
tar -C "$exe" -xzf "$bundle/executables.tar.gz" || {
    echo "run.sh: cannot unpack $bundle/executables.tar.gz" >&2
    exit 2
}
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

icd="${DEVICE_ICD:-}"
if [[ -z "$icd" ]]; then
    for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
        /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
        [[ -f "$f" ]] && { icd="$f"; break; }
    done
fi
if [[ -n "$icd" ]]; then
    # The loader reads VK_DRIVER_FILES; older loaders read VK_ICD_FILENAMES.
    export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
    # The ICD names libGLX_nvidia.so.0 without a folder.
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
        [[ -d "$d" ]] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
    done
    export __EGL_VENDOR_LIBRARY_FILENAMES="${__EGL_VENDOR_LIBRARY_FILENAMES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}"
fi

# Runs one part with a time limit, appending its output to a log and a line to the summary.
part() { # name log seconds command...
    local name="$1" log="$2" limit="$3" start rc
    shift 3
    echo "=== $name: $*" >>"$log"
    start=$(date +%s.%N)
    timeout -k 5 "$limit" "$@" >>"$log" 2>&1
    rc=$?
    local secs
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    echo "=== $name: rc=$rc, ${secs} s" >>"$log"
    if ((rc == 0)); then
        printf '%-28s ok      %7s s\n' "$name" "$secs" >>"$summary"
    else
        printf '%-28s FAILED  %7s s  rc=%s%s\n' "$name" "$secs" "$rc" \
            "$( ((rc == 124 || rc == 137)) && echo " (timed out after $limit s)")" >>"$summary"
        failed=1
    fi
}

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "bundle: $bundle (commit $(cat "$bundle/commit" 2>/dev/null))"
    echo "host: $(uname -srm), $(nproc) cores"
    echo "WGPU_BACKEND=$WGPU_BACKEND VK_DRIVER_FILES=${VK_DRIVER_FILES:-<loader default>}"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    echo "DEVICE_SHORT=$short DEVICE_STEPS=$steps"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit \
            --format=csv 2>&1
    fi
    echo "--- softmax-regression info"
    "$exe/softmax-regression" info 2>&1
} >"$out/env.txt"
echo "adapters:" >>"$summary"
sed -n '/^--- softmax-regression info/,$p' "$out/env.txt" | tail -n +2 | sed 's/^/  /' >>"$summary"

if [[ " $steps " == *" tests "* ]]; then
    for t in "$exe"/tests/*; do
        REQUIRE_GPU=1 part "test $(basename "$t")" "$out/tests.log" "$test_timeout" "$t"
    done
fi

if [[ " $steps " == *" step "* ]]; then
    ((short)) && export BENCH_SHAPES="${BENCH_SHAPES:-small}"
    part "bench step" "$out/step.log" "$bench_timeout" "$exe/benches/step" --bench
fi

if [[ " $steps " == *" lbfgs "* ]]; then
    # The bench runs scikit-learn from the path it was built at; link it there if missing.
    baked="$(cat "$bundle/scripts/sklearn_lbfgs.path" 2>/dev/null)"
    if [[ -n "$baked" && ! -e "$baked" ]] && mkdir -p "$(dirname "$baked")" 2>/dev/null; then
        ln -sf "$bundle/scripts/sklearn_lbfgs.py" "$baked"
    fi
    ((short)) && export LBFGS_SHAPES="${LBFGS_SHAPES:-digits}"
    part "bench lbfgs" "$out/lbfgs.log" "$bench_timeout" "$exe/benches/lbfgs" --bench
fi

if [[ " $steps " == *" sparse "* ]]; then
    if [[ -f "$bundle/data/sparse/text.npz" ]] &&
        python3 -c 'import sklearn, scipy' 2>/dev/null; then
        SPARSE_DATA="$bundle/data/sparse" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 \
            OPENBLAS_NUM_THREADS=1 part "bench sparse" "$out/sparse.log" "$bench_timeout" \
            python3 "$bundle/scripts/sparse_lbfgs.py" "$exe/softmax-regression" cpu,vulkan
    else
        echo "sparse bench: skipped (no data in the bundle, or no scikit-learn and scipy in python3)" \
            | tee -a "$out/sparse.log" >>"$summary"
    fi
fi

if [[ " $steps " == *" path "* ]]; then
    if [[ -f "$bundle/scripts/path.py" ]] && python3 -c 'import numpy, sklearn' 2>/dev/null; then
        ((short)) && export PATH_ROWS="${PATH_ROWS:-5000}" PATH_FEATURES="${PATH_FEATURES:-100}"
        PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 part "bench path" \
            "$out/path.log" "$bench_timeout" \
            python3 "$bundle/scripts/path.py" "$exe/softmax-regression" cpu,vulkan
    else
        echo "path bench: skipped (no path.py in the bundle, or no numpy and scikit-learn in python3)" \
            | tee -a "$out/path.log" >>"$summary"
    fi
fi

if [[ " $steps " == *" torch "* ]]; then
    if [[ -f "$bundle/scripts/torch_step.py" ]] &&
        python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
        torch_args=()
        ((short)) && torch_args=(--shapes "" --shape 1797,64,10 --repeats 5 --warmup 2)
        PYTHONUNBUFFERED=1 part "PyTorch step" "$out/torch.log" "$bench_timeout" \
            python3 "$bundle/scripts/torch_step.py" "${torch_args[@]}"
    else
        echo "PyTorch step: skipped (no torch with CUDA in python3, or no torch_step.py in the bundle)" \
            | tee -a "$out/torch.log" >>"$summary"
    fi
fi

cat "$summary"
exit "$failed"
