#!/usr/bin/env python3
"""scikit-learn's LogisticRegression(solver="lbfgs") on the same problem as benches/lbfgs.rs.

Usage: sklearn_lbfgs.py X.npy y.npy C tol
Prints one line: seconds J grad_max_norm iterations, where J is the objective of
../shared/DESIGN.md (mean cross-entropy + λ/2‖Θ‖², λ = 1/(C·m)) at sklearn's solution,
computed here in float64. Run with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1.
"""
import sys, time
import numpy as np
from sklearn.linear_model import LogisticRegression

X = np.load(sys.argv[1]).astype(np.float64)
y = np.load(sys.argv[2])
C, tol = float(sys.argv[3]), float(sys.argv[4])
m = X.shape[0]
clf = LogisticRegression(C=C, solver="lbfgs", tol=tol, max_iter=100000)
t = time.perf_counter()
clf.fit(X, y)
seconds = time.perf_counter() - t
W, b = clf.coef_.T, clf.intercept_
Z = X @ W + b
M = Z.max(axis=1, keepdims=True)
lse = np.log(np.exp(Z - M).sum(axis=1)) + M[:, 0]
lam = 1.0 / (C * m)
J = np.mean(lse - Z[np.arange(m), y]) + 0.5 * lam * (W * W).sum()
P = np.exp(Z - lse[:, None])
P[np.arange(m), y] -= 1.0
g = np.concatenate([(X.T @ P / m + lam * W).ravel(), P.mean(axis=0)])
print(f"{seconds:.6f} {J:.12f} {np.abs(g).max():.3e} {int(clf.n_iter_[0])}")
