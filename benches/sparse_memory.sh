#!/usr/bin/env bash
# Memory of sparse training (run by hand, not by CI; see BENCHMARKS.md).
#
# Generates a text-like sparse problem with `softmax-regression synth --density` (default
# 2,000,000 rows × 1,000,000 features at D = 5e-5: about 50 stored values a row, 100 M in
# all, 0.8 GB of CSR arrays; K = 2) into a directory, trains it with L-BFGS under
# --max-gpu-memory 256MiB through /usr/bin/time -v, and prints the peak resident set
# ("Maximum resident set size") and the wall time of the run. Issue 19's goal: peak RSS
# under 2 GB. The directory's arrays are memory-mapped by `train`, so their pages count in
# the resident set once read.
#
# SPARSE_ROWS, SPARSE_FEATURES, SPARSE_DENSITY, SPARSE_CLASSES, SPARSE_EPOCHS (L-BFGS
# iterations) and SPARSE_BUDGET set the run; SPARSE_BACKEND picks the engine (default
# auto: the GPU when there is one; cpu runs the f64 reference, where the budget does not
# apply). SPARSE_DIR keeps the generated files there (default: a fresh temporary directory,
# removed at the end); SPARSE_BIN runs a prebuilt binary instead of building one.
# At 1/20 scale, on the CPU: SPARSE_ROWS=100000 SPARSE_BACKEND=cpu benches/sparse_memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${SPARSE_ROWS:-2000000}
FEATURES=${SPARSE_FEATURES:-1000000}
DENSITY=${SPARSE_DENSITY:-5e-5}
CLASSES=${SPARSE_CLASSES:-2}
EPOCHS=${SPARSE_EPOCHS:-20}
BUDGET=${SPARSE_BUDGET:-256MiB}
BACKEND=${SPARSE_BACKEND:-auto}

if [ -n "${SPARSE_BIN:-}" ]; then
    BIN=$SPARSE_BIN
else
    cargo build --release --locked --quiet
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/softmax-regression
fi
if [ ! -x /usr/bin/time ]; then
    echo "sparse_memory.sh needs GNU time at /usr/bin/time (apt-get install time)" >&2
    exit 1
fi
if [ -n "${SPARSE_DIR:-}" ]; then
    DIR=$SPARSE_DIR
    mkdir -p "$DIR"
else
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/softmax-regression-sparse.XXXXXX")
    trap 'rm -rf "$DIR"' EXIT
fi
# GNU time's -v report: the peak resident set and the wall time, one line each.
peak_and_wall() {
    grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$1" | sed 's/^[[:space:]]*//'
}

echo "== machine"
echo "date: $(date -u +%F)"
lscpu | grep -E "Model name|^CPU\(s\)" | sed 's/  */ /g'
grep MemTotal /proc/meminfo
"$BIN" info | head -n 3

echo "== synth: $ROWS × $FEATURES, density $DENSITY, K = $CLASSES"
if [ ! -f "$DIR/x/shape.npy" ]; then
    /usr/bin/time -v "$BIN" synth --rows "$ROWS" --features "$FEATURES" --classes "$CLASSES" \
        --density "$DENSITY" --out "$DIR/x" --labels "$DIR/y.npy" 2> "$DIR/synth.time"
    grep "^wrote" "$DIR/synth.time" || true
    peak_and_wall "$DIR/synth.time"
fi
du -sh "$DIR/x"

echo "== train: lbfgs, $EPOCHS iterations, --max-gpu-memory $BUDGET, --backend $BACKEND"
/usr/bin/time -v "$BIN" train --data "$DIR/x" --labels "$DIR/y.npy" --optimizer lbfgs \
    --epochs "$EPOCHS" --max-gpu-memory "$BUDGET" --backend "$BACKEND" --json \
    --out "$DIR/model.safetensors" > "$DIR/train.json" 2> "$DIR/train.time"
peak_and_wall "$DIR/train.time"
python3 -c '
import json, sys
s = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print("summary:", ", ".join(f"{k}={s[k]}" for k in
      ("status", "epochs", "loss", "seconds", "streamed", "chunks", "device_memory_peak")
      if k in s))' "$DIR/train.json" || tail -n 1 "$DIR/train.json"
rss_kib=$(grep "Maximum resident set size" "$DIR/train.time" | awk '{print $NF}')
echo "peak RSS: $((rss_kib / 1024)) MiB (goal: under 2048 MiB)"
