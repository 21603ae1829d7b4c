"""The estimators find scikit-learn's optimum: LogisticRegression(C, tol=1e-10) and
LogisticRegressionCV, on both software backends (Vulkan through lavapipe, OpenGL through
llvmpipe) and on the CPU engine."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from softmax_regression import SoftmaxRegression, SoftmaxRegressionCV

DEVICES = ["vulkan", "gl", "cpu"]


def standardized(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def relative(actual, expected):
    """Largest difference relative to the largest entry of `expected`."""
    return np.abs(actual - expected).max() / np.abs(expected).max()


@pytest.fixture(scope="module", params=["digits", "breast_cancer"])
def problem(request):
    X, y = standardized(load_digits if request.param == "digits" else load_breast_cancer)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=100_000).fit(X, y)
    return request.param, X, y, reference


@pytest.mark.parametrize("device", DEVICES)
def test_coefficients_and_probabilities_match_logistic_regression(problem, device):
    name, X, y, reference = problem
    # f32 parameters and f32 GPU sums put max|∇J| near 1e-9 at best; at that point the
    # coefficients are well within 1e-5 of the f64 optimum. An iteration limit reached
    # while rounding keeps the gradient above tol is allowed; the numbers are what count.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = SoftmaxRegression(C=1.0, tol=1e-9, max_iter=500, device=device).fit(X, y)
    assert clf.engine_.startswith("the CPU engine") == (device == "cpu"), clf.engine_
    assert clf.coef_.shape == reference.coef_.shape
    np.testing.assert_array_equal(clf.classes_, reference.classes_)
    assert relative(clf.coef_, reference.coef_) < 1e-5, name
    assert relative(clf.intercept_, reference.intercept_) < 1e-5, name
    assert relative(clf.predict_proba(X), reference.predict_proba(X)) < 1e-5, name
    np.testing.assert_array_equal(clf.predict(X), reference.predict(X))


# scikit-learn 1.8+ warns about LogisticRegressionCV's future defaults.
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("device", ["vulkan", "cpu"])
def test_cross_validation_matches_logistic_regression_cv(device):
    X, y = standardized(load_breast_cancer)
    folds = list(StratifiedKFold(4, shuffle=True, random_state=0).split(X, y))
    cs = [0.01, 0.1, 1.0, 10.0]
    reference = LogisticRegressionCV(
        Cs=cs, cv=folds, scoring="neg_log_loss", tol=1e-10, max_iter=100_000
    ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = SoftmaxRegressionCV(Cs=cs, cv=folds, tol=1e-9, max_iter=500, device=device).fit(X, y)
    np.testing.assert_array_equal(clf.Cs_, reference.Cs_)
    np.testing.assert_array_equal(clf.C_, reference.C_)
    key = reference.classes_[1]
    assert relative(clf.scores_[key], reference.scores_[key]) < 1e-5
    assert relative(clf.coef_, reference.coef_) < 1e-5
    assert relative(clf.predict_proba(X), reference.predict_proba(X)) < 1e-5
