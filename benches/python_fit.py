#!/usr/bin/env python3
"""The Python package against the binary and scikit-learn, side by side in one run, on
the same 60000 × 784 × 10 problem (the binary's `synth`, seed 3):

- `SoftmaxRegression(l2=λ).fit(X, y)` with X already in memory: the wall time of the call
  (scikit-learn's input checks, handing X to the crate, the crate's copy and checks, the
  training);
- the binary, `train --data x.npy --labels y.npy --l2 λ`: the wall time of the whole
  process (start, reading and checking the file, the training, writing the model) and
  the training alone (its own clock, `seconds` in --json);
- scikit-learn's `LogisticRegression(C = 1/(λ·m))` on one thread and on all threads.

The Python layer's overhead is its fit's wall time over the binary process's, minus one:
both start from the data (in memory, in a file) and end with a trained model. Before any
time is reported, each Python fit must end at the binary's J (to 1e-6 relative) in the
same number of iterations; the script stops otherwise.

Usage: benches/python_fit.py [BINARY] [BACKENDS]   (default target/release/softmax-regression,
       cpu,vulkan)
Environment: BENCH_ROWS (60000), BENCH_FEATURES (784), BENCH_CLASSES (10), BENCH_L2 (1e-4),
BENCH_TOL (1e-4, the crate's max|∇J| and scikit-learn's tol), BENCH_REPEATS (3; medians
are reported). Run with OPENBLAS_CORETYPE unset; the script sets the thread counts.
Needs the package installed (pip install ./python) and threadpoolctl (scikit-learn's).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BINARY = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/release/softmax-regression"
BACKENDS = (sys.argv[2] if len(sys.argv) > 2 else "cpu,vulkan").split(",")
M = int(os.environ.get("BENCH_ROWS", 60000))
N = int(os.environ.get("BENCH_FEATURES", 784))
K = int(os.environ.get("BENCH_CLASSES", 10))
L2 = float(os.environ.get("BENCH_L2", 1e-4))
TOL = float(os.environ.get("BENCH_TOL", 1e-4))
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))
MAX_ITER = 10000


def binary(args):
    started = time.perf_counter()
    out = subprocess.run([str(BINARY), *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"{' '.join(args)}: {out.stderr.strip()}")
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return wall, lines


def ours_binary(data, backend, out):
    wall, lines = binary(["train", *data, "--l2", repr(L2), "--tol", str(TOL), "--epochs", str(MAX_ITER),
                          "--backend", backend, "--json", "--quiet", "--out", out])
    summary = lines[-1]
    return wall, summary["seconds"], summary["epochs"], summary["loss"]


def ours_python(X, y, backend):
    from softmax_regression import SoftmaxRegression

    clf = SoftmaxRegression(l2=L2, tol=TOL, max_iter=MAX_ITER, device=backend)
    started = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - started, int(clf.n_iter_[0]), clf.engine_, clf.loss_


def sklearn_fit(X, y, threads):
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    clf = LogisticRegression(C=1.0 / (L2 * X.shape[0]), tol=TOL, max_iter=MAX_ITER)
    with threadpool_limits(limits=threads):
        started = time.perf_counter()
        clf.fit(X, y)
        return time.perf_counter() - started, int(clf.n_iter_[0])


def row(name, walls, iterations, extra=""):
    spread = f"{min(walls):.2f}–{max(walls):.2f}"
    print(f"{name:<52} {statistics.median(walls):>8.2f} {spread:>13} {iterations:>10}  {extra}")
    return statistics.median(walls)


def main():
    cores = os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        x, y = f"{tmp}/x.npy", f"{tmp}/y.npy"
        binary(["synth", "--rows", str(M), "--features", str(N), "--classes", str(K),
                "--seed", "3", "--out", x, "--labels", y])
        data = ["--data", x, "--labels", y]
        X = np.load(x)
        Y = np.load(y)
        print(f"{M} x {N} x {K}, λ = {L2:g} (C = {1 / (L2 * M):.4g}), tol {TOL:g}, "
              f"medians of {REPEATS} runs, {cores} cores")
        print(f"{'engine':<52} {'seconds':>8} {'range':>13} {'iterations':>10}")
        overheads = []
        for backend in BACKENDS:
            py, process, training, iters = [], [], [], set()
            engine = ""
            # Alternate the two so that the machine's drift affects both alike.
            for _ in range(REPEATS):
                wall, it, engine, py_loss = ours_python(X, Y, backend)
                py.append(wall)
                iters.add(it)
                wall, seconds, it, bin_loss = ours_binary(data, backend, f"{tmp}/model.safetensors")
                process.append(wall)
                training.append(seconds)
                iters.add(it)
                # The same job both ways, or the times mean nothing.
                if abs(py_loss - bin_loss) > 1e-6 * abs(bin_loss):
                    sys.exit(f"{backend}: the Python fit ended at J = {py_loss}, the binary at {bin_loss}")
            if len(iters) != 1:
                sys.exit(f"{backend}: the Python fit and the binary took different iterations: {sorted(iters)}")
            it = "/".join(str(i) for i in sorted(iters))
            p = row(f"Python fit, device={backend!r}", py, it, engine[:60])
            b = row(f"binary train --backend {backend}, whole process", process, it)
            row(f"binary train --backend {backend}, training alone", training, it)
            overheads.append(f"{backend}: Python fit {p / b:.3f}× the binary process "
                             f"({(p / b - 1) * 100:+.1f}%)")
        X64 = X.astype(np.float64)
        for threads in (1, cores):
            walls, it = [], 0
            for _ in range(REPEATS):
                wall, it = sklearn_fit(X64, Y, threads)
                walls.append(wall)
            row(f"scikit-learn LogisticRegression lbfgs, {threads} thread(s)", walls, it)
        for line in overheads:
            print(line)


if __name__ == "__main__":
    main()
