#!/usr/bin/env bash
# Builds, on a machine with a Rust toolchain, everything a GPU machine without one needs
# to run the correctness tests and the benchmarks: the release test executables, the
# step and L-BFGS bench executables, the binary, the Vulkan loader, and the peers' and
# benches' Python scripts. They go into one folder (default .device-bundle/, ignored by
# git) that the device tool carries: it must stay under its 64 MiB, so the executables,
# their debug info stripped (symbols kept for backtraces), travel as one gzipped tar
# (about 80 MiB as files, 30 as the archive), and the size is checked.
#
#   benches/device/build_bundle.sh            # the default test set
#   DEVICE_TESTS="kernels oracle" benches/device/build_bundle.sh
#   DEVICE_FEATURES=kernel-lab benches/device/build_bundle.sh   # with the kernel lab
#
# Then one device call runs them all: see benches/device/run.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bundle="${BUNDLE:-$root/.device-bundle}"
# The tests that exercise the adapter (kernels, oracle, GPU storage, training, L-BFGS,
# streaming); the CLI tests run the binary from its build path, which does not travel.
tests="${DEVICE_TESTS:-kernels oracle storage training lbfgs streaming sparse_kernels path}"
limit_mib="${BUNDLE_LIMIT_MIB:-60}"
features=()
if [ -n "${DEVICE_FEATURES:-}" ]; then features=(--features "$DEVICE_FEATURES"); fi

rm -rf "$bundle"
mkdir -p "$bundle/scripts" "$bundle/lib"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/tests" "$stage/benches"

# Executable paths from cargo's JSON messages, for the targets of one kind (test, bench,
# bin): the integration tests and benches also build the binary, which is listed once.
executables() {
    python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if (m.get("reason") == "compiler-artifact" and m.get("executable")
            and sys.argv[1] in m["target"]["kind"]):
        print(m["target"]["name"], m["executable"])
' "$1"
}

test_args=()
for t in $tests; do test_args+=(--test "$t"); done
echo "# building the release test executables: $tests" >&2
cargo test --release --locked "${features[@]}" --no-run --message-format=json-render-diagnostics "${test_args[@]}" \
    | executables test >"$bundle/tests.list"
echo "# building the bench executables: step, lbfgs" >&2
cargo bench --locked "${features[@]}" --no-run --message-format=json-render-diagnostics --bench step --bench lbfgs \
    | executables bench >"$bundle/benches.list"
echo "# building the binary" >&2
cargo build --release --locked --bins --message-format=json-render-diagnostics | executables bin >"$bundle/bins.list"

copy() { # name path destination-folder
    cp "$2" "$3/$1"
    strip --strip-debug "$3/$1" 2>/dev/null || true
}
while read -r name path; do copy "$name" "$path" "$stage/tests"; done <"$bundle/tests.list"
while read -r name path; do copy "$name" "$path" "$stage/benches"; done <"$bundle/benches.list"
while read -r name path; do copy "$name" "$path" "$stage"; done <"$bundle/bins.list"
rm "$bundle/tests.list" "$bundle/benches.list" "$bundle/bins.list"
echo "# packing $(du -sk "$stage" | cut -f1) KiB of executables" >&2
tar -C "$stage" -czf "$bundle/executables.tar.gz" .

# The Vulkan loader: NVIDIA's driver brings its ICD (libGLX_nvidia) but the machine's
# image may have no loader; libGLX_nvidia needs glvnd's libGLdispatch beside it.
for lib in libvulkan.so.1 libGLdispatch.so.0; do
    path="$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ { print $NF; exit }')"
    if [[ -z "$path" ]]; then
        echo "build_bundle: $lib not found here (apt-get install libvulkan1 libglvnd0)" >&2
        exit 1
    fi
    cp -L "$path" "$bundle/lib/$lib"
done

# Scripts the device runs: PyTorch's step (the peer beside the checkout does not travel)
# and scikit-learn's side of the L-BFGS bench, which the bench finds at the path it was
# built at; run.sh links it there when that path is missing.
peers="${PEERS:-$root/../shared/peers}"
if [[ -f "$peers/torch_step.py" ]]; then
    cp "$peers/torch_step.py" "$bundle/scripts/"
else
    echo "build_bundle: no $peers/torch_step.py; the PyTorch step will be skipped" >&2
fi
cp benches/sklearn_lbfgs.py "$bundle/scripts/"
echo "$root/benches/sklearn_lbfgs.py" >"$bundle/scripts/sklearn_lbfgs.path"
# The path bench (it synthesises its data with the binary).
cp benches/path.py "$bundle/scripts/"
# The sparse bench and its data (../shared/data/sparse's .npz copy and labels, 3.2 MB).
cp benches/sparse_lbfgs.py "$bundle/scripts/"
sparse="$root/../shared/data/sparse"
if [[ -f "$sparse/text.npz" ]]; then
    mkdir -p "$bundle/data/sparse"
    cp "$sparse/text.npz" "$sparse/text-y.npy" "$bundle/data/sparse/"
else
    echo "build_bundle: no $sparse/text.npz; the sparse bench will be skipped" >&2
fi
git describe --always --dirty >"$bundle/commit" 2>/dev/null || echo unknown >"$bundle/commit"

size_kib="$(du -sk "$bundle" | cut -f1)"
echo "bundle: $bundle, $((size_kib / 1024)) MiB ($size_kib KiB), commit $(cat "$bundle/commit")"
(cd "$bundle" && find . -type f -printf '%8k KiB  %p\n' | sort -k3)
tar -tvzf "$bundle/executables.tar.gz" | awk '$1 !~ /^d/ { printf "         %8d KiB  (unpacked) %s\n", $3 / 1024, $6 }'
if ((size_kib > limit_mib * 1024)); then
    echo "build_bundle: the bundle is over $limit_mib MiB; the device tool carries 64 MiB in all" >&2
    exit 1
fi
