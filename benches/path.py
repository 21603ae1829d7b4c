#!/usr/bin/env python3
"""A regularisation path, side by side in one run: this crate's binary training all its
models in lockstep (each round one batched oracle call), the same path as separate
single fits, the path warm-started, and scikit-learn's LogisticRegression along the same
C values on one thread (warm-started from one C to the next, as LogisticRegressionCV
does inside each fold).

Usage: benches/path.py [BINARY] [BACKENDS]    (default target/release/softmax-regression,
       cpu,vulkan)
Environment: PATH_ROWS (60000), PATH_FEATURES (784), PATH_CLASSES (10), PATH_COUNT (8
values of λ, log-spaced from PATH_HIGH = 1e-1 down to PATH_LOW = 1e-4), PATH_TOL (1e-4,
the binary's max|∇J| and scikit-learn's tol).
Run with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 RAYON_NUM_THREADS=1 and
OPENBLAS_CORETYPE unset.

Each row reports the wall time of training (the binary's own clock, after the data is
read; scikit-learn's fit calls), the passes over X (oracle calls: one per lockstep round,
the sum of the fits' calls otherwise) and the L-BFGS iterations of all models.
"""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BINARY = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/release/softmax-regression"
BACKENDS = (sys.argv[2] if len(sys.argv) > 2 else "cpu,vulkan").split(",")
M = int(os.environ.get("PATH_ROWS", 60000))
N = int(os.environ.get("PATH_FEATURES", 784))
K = int(os.environ.get("PATH_CLASSES", 10))
COUNT = int(os.environ.get("PATH_COUNT", 8))
HIGH = float(os.environ.get("PATH_HIGH", 1e-1))
LOW = float(os.environ.get("PATH_LOW", 1e-4))
TOL = float(os.environ.get("PATH_TOL", 1e-4))
L2S = [float(v) for v in np.logspace(np.log10(HIGH), np.log10(LOW), COUNT)]


def run(args):
    out = subprocess.run([str(BINARY), *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(args)}: {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def ours_path(data, backend, warm):
    # The validation rows only score the models; they are the last 1% of the rows.
    lines = run(["train", *data, "--l2", ",".join(repr(l) for l in L2S), "--validation", "0.01",
                 "--tol", str(TOL), "--epochs", "10000", "--backend", backend, "--json",
                 "--out", "/tmp/path-bench.safetensors"]
                + (["--warm-start"] if warm else []))
    models, summary = lines[:-1], lines[-1]
    evaluations = [m["evaluations"][0] for m in models]
    passes = sum(evaluations) if warm else max(evaluations)
    return summary["seconds"], passes, sum(m["iterations"][0] for m in models)


def ours_separate(data, backend):
    seconds = passes = iterations = 0
    for l2 in L2S:
        lines = run(["train", *data, "--l2", repr(l2), "--tol", str(TOL), "--epochs", "10000",
                     "--backend", backend, "--json", "--out", "/tmp/path-bench.safetensors"])
        summary = lines[-1]
        seconds += summary["seconds"]
        iterations += summary["epochs"]
        passes += summary["evaluations"]
    return seconds, passes, iterations


def sklearn_path(X, y):
    from sklearn.linear_model import LogisticRegression
    m = X.shape[0]
    clf = LogisticRegression(solver="lbfgs", tol=TOL, max_iter=100000, warm_start=True)
    seconds = iterations = 0
    for l2 in L2S:
        clf.set_params(C=1.0 / (l2 * m))
        started = time.perf_counter()
        clf.fit(X, y)
        seconds += time.perf_counter() - started
        iterations += int(clf.n_iter_[0])
    return seconds, iterations


def main():
    with tempfile.TemporaryDirectory() as tmp:
        x, y = f"{tmp}/x.npy", f"{tmp}/y.npy"
        run(["synth", "--rows", str(M), "--features", str(N), "--classes", str(K),
             "--seed", "3", "--out", x, "--labels", y])
        data = ["--data", x, "--labels", y]
        print(f"{M} x {N} x {K}, {COUNT} values of λ from {HIGH:g} to {LOW:g}, tol {TOL:g}")
        print(f"{'engine':<48} {'seconds':>8} {'X passes':>9} {'iterations':>10}")
        ratios = []
        for backend in BACKENDS:
            times = {}
            for name, result in [
                ("path in lockstep", lambda: ours_path(data, backend, False)),
                ("path warm-started", lambda: ours_path(data, backend, True)),
                (f"{COUNT} separate fits", lambda: ours_separate(data, backend)),
            ]:
                s, p, it = result()
                times[name] = s
                print(f"{'softmax-regression (' + backend + '), ' + name:<48} {s:>8.2f} {p:>9} {it:>10}")
            lockstep, separate = times["path in lockstep"], times[f"{COUNT} separate fits"]
            ratios.append(f"{backend}: lockstep {lockstep / separate:.2f}× the separate fits, "
                          f"{lockstep / (separate / COUNT):.2f}× one fit (their mean)")
        X = np.load(x).astype(np.float64)
        Y = np.load(y)
        s, it = sklearn_path(X, Y)
        print(f"{'scikit-learn lbfgs, path warm-started':<48} {s:>8.2f} {'-':>9} {it:>10}")
        for line in ratios:
            print(line)


if __name__ == "__main__":
    main()
