"""The model file is the crate's: a model saved from Python predicts identically in the
binary, and a model the binary trained predicts identically in Python."""

import os
import pathlib
import subprocess

import numpy as np
import pytest
from sklearn.datasets import load_digits

from softmax_regression import SoftmaxRegression

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def binary():
    """The binary: $SOFTMAX_REGRESSION_BIN, else the newest build under target/ (CI's
    `cargo test` builds target/debug/softmax-regression first)."""
    given = os.environ.get("SOFTMAX_REGRESSION_BIN")
    if given:
        return given
    built = [p for p in (REPO / "target" / d / "softmax-regression" for d in ("release", "debug")) if p.exists()]
    assert built, "build the binary first (cargo build), or set SOFTMAX_REGRESSION_BIN"
    return str(max(built, key=lambda p: p.stat().st_mtime))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    d = tmp_path_factory.mktemp("digits")
    np.save(d / "x.npy", X)
    np.save(d / "y.npy", y.astype(np.int64))
    return X, y, d


def run(binary, *args):
    done = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def binary_predictions(binary, model, x_path):
    labels = run(binary, "predict", "--backend", "cpu", "--model", model, "--data", x_path).split()
    lines = run(binary, "predict", "--backend", "cpu", "--proba", "--model", model, "--data", x_path).splitlines()
    header = lines[0].split(",")
    proba = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    return labels, header, proba


@pytest.mark.parametrize("kind", ["names", "binary"])
def test_model_saved_from_python_predicts_identically_in_the_binary(binary, digits, tmp_path, kind):
    X, y, d = digits
    if kind == "names":
        labels = np.array([f"digit-{v}" for v in y])
    else:
        labels = np.where(y < 5, "low", "high")
    clf = SoftmaxRegression(C=0.5, tol=1e-8).fit(X, labels)
    model = tmp_path / "python.safetensors"
    clf.save(model)
    predicted, header, proba = binary_predictions(binary, model, d / "x.npy")
    assert header == [str(c) for c in clf.classes_]
    assert predicted == [str(c) for c in clf.predict(X)]
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=0, atol=1e-6)
    # And back: loading the file gives the same estimator.
    again = SoftmaxRegression.load(model)
    np.testing.assert_array_equal(again.classes_, clf.classes_)
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X), rtol=0, atol=1e-6)


@pytest.mark.parametrize("standardize", [False, True])
def test_model_trained_by_the_binary_predicts_identically_in_python(binary, digits, tmp_path, standardize):
    X, y, d = digits
    model = tmp_path / "binary.safetensors"
    args = ["train", "--backend", "cpu", "--quiet", "--data", d / "x.npy", "--labels", d / "y.npy", "--out", model]
    run(binary, *(args + (["--standardize"] if standardize else [])))
    predicted, header, proba = binary_predictions(binary, model, d / "x.npy")
    clf = SoftmaxRegression.load(model)
    assert [str(c) for c in clf.classes_] == header
    assert [str(c) for c in clf.predict(X)] == predicted
    np.testing.assert_allclose(clf.predict_proba(X), proba, rtol=0, atol=1e-6)
    assert clf.n_features_in_ == X.shape[1]


def test_loading_a_file_that_is_not_a_model_raises(tmp_path):
    bad = tmp_path / "notes.safetensors"
    bad.write_text("not a model")
    with pytest.raises(ValueError, match="notes.safetensors"):
        SoftmaxRegression.load(bad)
    with pytest.raises(OSError):
        SoftmaxRegression.load(tmp_path / "missing.safetensors")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_saving_to_a_path_that_cannot_be_written_raises_and_writes_nothing(tmp_path):
    X, y = load_digits(return_X_y=True)
    clf = SoftmaxRegression(max_iter=5).fit(X[:200], y[:200])
    with pytest.raises(OSError, match="does not exist"):
        clf.save(tmp_path / "missing" / "model.safetensors")
    with pytest.raises(OSError, match="directory"):
        clf.save(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        clf.save("")
    assert list(tmp_path.iterdir()) == []
