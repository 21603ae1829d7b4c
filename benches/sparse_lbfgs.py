#!/usr/bin/env python3
"""Time to J*(1 + 1e-6) on the sparse text data of ../shared/data/sparse (40,000 x 30,000,
1.29M stored values, K = 20), side by side in one run: this crate's binary (L-BFGS with
sparse rows on the CPU engine, and on the device's sparse kernels through each wgpu
backend present: Vulkan, GL) and scikit-learn's LogisticRegression(solver="lbfgs") on one
thread, for the two lambda of the data's README.

Usage: benches/sparse_lbfgs.py [BINARY] [BACKENDS]   (default target/release/softmax-regression,
       cpu,vulkan,gl)
Run with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 and OPENBLAS_CORETYPE unset. SPARSE_DATA
names another folder holding text.npz and text-y.npy (benches/device/run.sh's bundle).

The binary reports J and the seconds after every iteration (--json); its time is that of
the first iteration within 1e-6 of J*, from process start (file reading included).
scikit-learn reports only its end, so it runs at tolerances 1e-6, 1e-7, 1e-8 and its time
is the fit (file reading excluded) of the loosest tolerance that reaches the target.
"""
import json, os, subprocess, sys, time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SPARSE_DATA", ROOT.parent / "shared" / "data" / "sparse"))
BINARY = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/release/softmax-regression"
BACKENDS = (sys.argv[2] if len(sys.argv) > 2 else "cpu,vulkan,gl").split(",")
OPTIMA = {1e-4: 0.575904819722, 1e-5: 0.130306279981}


def objective(X, y, W, b, lam):
    Z = X @ W + b
    Z -= Z.max(axis=1, keepdims=True)
    ce = np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(X.shape[0]), y]
    return ce.mean() + lam / 2 * (W * W).sum()


def ours(lam, target, backend):
    started = time.perf_counter()
    run = subprocess.run(
        [str(BINARY), "train", "--data", str(DATA / "text.npz"), "--labels",
         str(DATA / "text-y.npy"), "--l2", str(lam), "--tol", "1e-9", "--epochs", "2000",
         "--backend", backend, "--json", "--out", "/tmp/sparse_lbfgs.safetensors"],
        capture_output=True, text=True, check=True)
    total = time.perf_counter() - started
    epochs = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    # The binary's clock starts after the data is read; add the reading time once.
    setup = total - epochs[-1]["seconds"]
    for e in epochs:
        if e["loss"] <= target:
            return setup + e["seconds"], e["epoch"], e["loss"]
    return float("nan"), epochs[-1]["epoch"], epochs[-1]["loss"]


def sklearn(X, y, lam, target):
    m = X.shape[0]
    for tol in (1e-6, 1e-7, 1e-8):
        clf = LogisticRegression(C=1 / (lam * m), solver="lbfgs", tol=tol, max_iter=100000)
        started = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - started
        J = objective(X, y, clf.coef_.T, clf.intercept_, lam)
        if J <= target:
            return seconds, int(clf.n_iter_[0]), J, tol
    return float("nan"), int(clf.n_iter_[0]), J, tol


def main():
    X = sp.load_npz(DATA / "text.npz").astype(np.float64).tocsr()
    y = np.load(DATA / "text-y.npy")
    print(f"{'lambda':>7} {'engine':<28} {'seconds':>8} {'iterations':>10} {'J':>16}")
    for lam, optimum in OPTIMA.items():
        target = optimum * (1 + 1e-6)
        for backend in BACKENDS:
            s, it, J = ours(lam, target, backend)
            name = f"softmax-regression ({backend})"
            print(f"{lam:>7g} {name:<28} {s:>8.2f} {it:>10} {J:>16.12f}")
        s, it, J, tol = sklearn(X, y, lam, target)
        print(f"{lam:>7g} {'scikit-learn lbfgs tol ' + format(tol, 'g'):<28} {s:>8.2f} {it:>10} {J:>16.12f}")


if __name__ == "__main__":
    main()
