#!/usr/bin/env bash
# Out-of-core benchmark (run by hand, not by CI; see BENCHMARKS.md).
#
# 1. Generates a float32 .npy of ROWS × FEATURES (default 1,000,000 × 1024 = 4.1 GB) with
#    `softmax-regression synth`, trains full-batch gradient descent on it under
#    --max-gpu-memory 512MiB, and records the peak resident memory (/usr/bin/time -v), the
#    device allocation peak the trainer reports and the time per epoch.
# 2. On a problem that fits both ways (default 200,000 × 256), compares the time per epoch
#    with X resident and with X streamed under a budget, in the same run.
#
# Every epoch is one pass over X (the gradient at the new weights); rows/s = m / median
# epoch time. Set OOC_DIR to keep the generated files elsewhere (default /tmp), and
# OOC_SKIP_LARGE=1 to run part 2 only; OOC_BIN runs a prebuilt binary instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${OOC_DIR:-/tmp/softmax-regression-ooc}
ROWS=${OOC_ROWS:-1000000}
FEATURES=${OOC_FEATURES:-1024}
CLASSES=${OOC_CLASSES:-10}
BUDGET=${OOC_BUDGET:-512MiB}
SMALL_ROWS=${OOC_SMALL_ROWS:-200000}
SMALL_FEATURES=${OOC_SMALL_FEATURES:-256}
SMALL_BUDGET=${OOC_SMALL_BUDGET:-64MiB}
EPOCHS=${OOC_EPOCHS:-3}

if [ -n "${OOC_BIN:-}" ]; then
    BIN=$OOC_BIN
else
    cargo build --release --locked --quiet
    BIN=$PWD/target/release/softmax-regression
fi
# GNU time reports the peak resident set; without it only the binary's own timings remain.
TIME_SYNTH=()
TIME_TRAIN=()
if [ -x /usr/bin/time ]; then
    TIME_SYNTH=(/usr/bin/time -f "synth: %e s, peak RSS %M KiB")
    TIME_TRAIN=(/usr/bin/time -v)
fi
mkdir -p "$DIR"

# Median seconds per epoch from the --json epoch lines (epochs after the first, whose time
# includes the first upload).
epoch_median() {
    python3 -c '
import json, statistics, sys
t = [json.loads(l)["seconds"] for l in open(sys.argv[1]) if l.startswith("{\"epoch")]
d = [b - a for a, b in zip(t, t[1:])] or t
print(f"{statistics.median(d):.3f}")' "$1"
}
summary() { tail -n 1 "$1"; }

echo "== machine"
echo "date: $(date -u +%F)"
lscpu | grep -E "Model name|^CPU\(s\)" | sed 's/  */ /g'
"$BIN" info | head -n 3

if [ -z "${OOC_SKIP_LARGE:-}" ]; then
echo "== 1. $ROWS × $FEATURES (K = $CLASSES) under --max-gpu-memory $BUDGET"
if [ ! -f "$DIR/x.npy" ]; then
    "${TIME_SYNTH[@]}" "$BIN" synth --rows "$ROWS" --features "$FEATURES" --classes "$CLASSES" \
        --out "$DIR/x.npy" --labels "$DIR/y.npy" --quiet
fi
ls -l "$DIR/x.npy"
"${TIME_TRAIN[@]}" "$BIN" train --data "$DIR/x.npy" --labels "$DIR/y.npy" --optimizer gd \
    --lr 1 --epochs "$EPOCHS" --tol 0 --max-gpu-memory "$BUDGET" --json \
    --out "$DIR/model.safetensors" > "$DIR/big.json" 2> "$DIR/big.time"
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$DIR/big.time" || true
summary "$DIR/big.json"
echo "median epoch: $(epoch_median "$DIR/big.json") s"
fi

echo "== 2. $SMALL_ROWS × $SMALL_FEATURES: resident versus streamed under $SMALL_BUDGET"
if [ ! -f "$DIR/small_x.npy" ]; then
    "$BIN" synth --rows "$SMALL_ROWS" --features "$SMALL_FEATURES" --classes "$CLASSES" \
        --out "$DIR/small_x.npy" --labels "$DIR/small_y.npy" --quiet
fi
for round in 1 2; do
    for mode in resident streamed; do
        budget=()
        [ "$mode" = streamed ] && budget=(--max-gpu-memory "$SMALL_BUDGET")
        "$BIN" train --data "$DIR/small_x.npy" --labels "$DIR/small_y.npy" --optimizer gd \
            --lr 1 --epochs 6 --tol 0 "${budget[@]}" --json \
            --out "$DIR/small_$mode.safetensors" > "$DIR/small_$mode.json"
        echo "round $round $mode: median epoch $(epoch_median "$DIR/small_$mode.json") s; $(summary "$DIR/small_$mode.json" | python3 -c 'import json,sys; s=json.load(sys.stdin); print("streamed=%s chunks=%s device peak=%.1f MiB" % (s["streamed"], s["chunks"], s["device_memory_peak"] / 2**20))')"
    done
done
