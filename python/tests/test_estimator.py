"""The estimator as users call it: labels of any kind, pandas, SciPy sparse, pickling,
warm starts, weights, errors, progress and Ctrl-C."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from softmax_regression import SoftmaxRegression, SoftmaxRegressionCV, devices


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def fit(X, y, **kw):
    kw.setdefault("tol", 1e-8)
    return SoftmaxRegression(**kw).fit(X, y)


def test_string_and_non_contiguous_integer_labels_give_the_same_model(iris):
    X, y = iris
    by_int = fit(X, y)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    by_name = fit(X, names)
    sparse_ints = np.array([3, 10, 42])[y]
    by_sparse_int = fit(X, sparse_ints)
    np.testing.assert_array_equal(by_name.classes_, ["setosa", "versicolor", "virginica"])
    np.testing.assert_array_equal(by_sparse_int.classes_, [3, 10, 42])
    np.testing.assert_array_equal(by_name.coef_, by_int.coef_)
    np.testing.assert_array_equal(by_sparse_int.coef_, by_int.coef_)
    assert set(by_name.predict(X)) == {"setosa", "versicolor", "virginica"}
    assert by_int.coef_.shape == (3, 4) and by_int.intercept_.shape == (3,)
    assert by_int.n_iter_.shape == (1,) and by_int.status_ == "converged"


def test_pandas_dataframe_sets_feature_names_and_checks_them(iris):
    X, y = iris
    df = pd.DataFrame(X, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    clf = fit(df, pd.Series(y))
    np.testing.assert_array_equal(clf.feature_names_in_, df.columns)
    np.testing.assert_allclose(clf.predict_proba(df), fit(X, y).predict_proba(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df[["sepal_w", "sepal_l", "petal_l", "petal_w"]])


@pytest.mark.parametrize("device", ["cpu", "vulkan"])
def test_float32_float64_memmap_and_sparse_input_reach_the_same_optimum(iris, device, tmp_path):
    X, y = iris
    dense = fit(X, y, device=device)
    f32 = fit(X.astype(np.float32), y, device=device)
    np.testing.assert_allclose(f32.coef_, dense.coef_, rtol=0, atol=1e-4)
    np.save(tmp_path / "x.npy", X.astype(np.float32))
    mapped = fit(np.load(tmp_path / "x.npy", mmap_mode="r"), y, device=device)
    np.testing.assert_array_equal(mapped.coef_, f32.coef_)
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        sparse = fit(fmt(X), y, device=device)
        np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=0, atol=1e-4)
        np.testing.assert_allclose(sparse.predict_proba(fmt(X)), dense.predict_proba(X), atol=1e-5)


def test_pickled_model_predicts_the_same(iris):
    X, y = iris
    clf = fit(X, y)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
    assert clone.get_params() == clf.get_params()


def test_l2_is_the_crates_lambda_and_c_its_scikit_learn_meaning(iris):
    X, y = iris
    m = X.shape[0]
    by_c = fit(X, y, C=0.5)
    by_l2 = fit(X, y, l2=1.0 / (0.5 * m))
    np.testing.assert_array_equal(by_c.coef_, by_l2.coef_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_class_weight_and_sample_weight_match_scikit_learn(iris):
    X, y = iris
    w = np.linspace(0.5, 2.0, len(y))
    ours = fit(X, y, tol=1e-9, class_weight="balanced").fit(X, y, sample_weight=w)
    reference = LogisticRegression(tol=1e-10, max_iter=10_000, class_weight="balanced").fit(
        X, y, sample_weight=w
    )
    np.testing.assert_allclose(ours.coef_, reference.coef_, atol=2e-5 * np.abs(reference.coef_).max())


def test_warm_start_starts_from_the_previous_fit(iris):
    X, y = iris
    clf = SoftmaxRegression(tol=1e-8, warm_start=True).fit(X, y)
    first = clf.n_iter_[0]
    clf.fit(X, y)
    assert clf.n_iter_[0] < first // 2, (first, clf.n_iter_[0])


def test_iteration_limit_warns_with_convergence_warning(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="iteration limit"):
        fit(X, y, max_iter=2)


@pytest.mark.parametrize(
    "params, error, message",
    [
        (dict(C=0.0), ValueError, "C=0.0 must be"),
        (dict(C=-1.0), ValueError, "C=-1.0"),
        (dict(l2=-1.0), ValueError, "l2=-1.0"),
        (dict(solver="newton"), ValueError, "solver='newton'"),
        (dict(max_iter=0), ValueError, "max_iter=0"),
        (dict(tol=-1.0), ValueError, "tol=-1.0"),
        (dict(x_storage="f8"), ValueError, "x_storage='f8'"),
        (dict(max_gpu_memory="lots"), ValueError, "max_gpu_memory='lots'"),
        (dict(max_gpu_memory=1.5), TypeError, "max_gpu_memory must be"),
        (dict(device=None), TypeError, "device=None"),
        (dict(device="cpu", x_storage="f16"), ValueError, "device"),
        (dict(device="no-such-adapter"), RuntimeError, "no GPU adapter"),
    ],
)
def test_bad_settings_raise_one_clear_error(iris, params, error, message):
    X, y = iris
    with pytest.raises(error, match=message):
        SoftmaxRegression(**params).fit(X, y)


def test_bad_data_raises_value_error(iris):
    X, y = iris
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit(bad, y)
    with pytest.raises(ValueError, match="only one class"):
        fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fit(X, y[:-1])
    with pytest.raises(ValueError, match="features"):
        fit(X, y).predict(X[:, :3])
    with pytest.raises(ValueError, match="Unknown label type"):
        fit(X, np.linspace(0, 1, len(y)))


def test_cv_refuses_folds_that_are_not_a_partition(iris):
    X, y = iris
    overlapping = [(np.arange(100), np.arange(50, 150)), (np.arange(50, 150), np.arange(0, 100))]
    with pytest.raises(ValueError, match="exactly one split"):
        SoftmaxRegressionCV(Cs=[1.0, 2.0], cv=overlapping).fit(X, y)


def test_verbose_prints_progress_to_stderr(iris, capfd):
    X, y = iris
    fit(X, y, verbose=2)
    err = capfd.readouterr().err
    assert "training on" in err
    assert err.count("iteration") >= 5, err
    fit(X, y, verbose=0)
    assert capfd.readouterr().err == ""


def test_devices_lists_the_adapters():
    found = devices()
    assert found, "no adapter found (CI installs Mesa's lavapipe)"
    assert {"index", "name", "backend", "type", "chosen"} <= set(found[0])
    assert sum(d["chosen"] for d in found) == 1


def test_ctrl_c_stops_training_and_raises_keyboard_interrupt(tmp_path):
    script = tmp_path / "long_fit.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import numpy as np
            from softmax_regression import SoftmaxRegression
            rng = np.random.default_rng(0)
            X = rng.standard_normal((100_000, 100)).astype(np.float32)
            y = rng.integers(0, 10, 100_000)
            print("fitting", flush=True)
            try:
                SoftmaxRegression(tol=0, max_iter=100_000, l2=1e-9).fit(X, y)
            except KeyboardInterrupt:
                print("KeyboardInterrupt raised", flush=True)
                sys.exit(3)
            print("finished without an interrupt", flush=True)
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "fitting"
        time.sleep(3.0)
        assert proc.poll() is None, "the fit ended before the interrupt"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        waited = time.monotonic() - sent
    finally:
        proc.kill()
    assert "KeyboardInterrupt raised" in out, out
    assert proc.returncode == 3
    assert waited < 5.0, f"training took {waited:.1f} s to stop after Ctrl-C"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_releases_the_gil_while_training():
    import threading

    rng = np.random.default_rng(1)
    X = rng.standard_normal((100_000, 100)).astype(np.float32)
    y = rng.integers(0, 10, 100_000)
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    thread = threading.Thread(target=count)
    thread.start()
    try:
        started = time.monotonic()
        SoftmaxRegression(l2=1e-9, tol=0, max_iter=30).fit(X, y)
        ended = time.monotonic()
    finally:
        done.set()
        thread.join()
    during = [t for t in ticks if started + 0.2 < t < ended - 0.05]
    # A thread that could not run while fit held the GIL would not tick at all.
    assert ended - started > 0.5, "the fit was too short to tell"
    assert len(during) >= 0.3 * (ended - started - 0.25) / 0.005, (len(during), ended - started)


def test_device_budget_and_compact_storage_train_on_an_adapter():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((6000, 64)).astype(np.float32)  # 1.5 MiB
    y = (X[:, :3] @ np.array([1.0, -2.0, 0.5]) > 0).astype(int) + 2 * (X[:, 3] > 0)
    whole = SoftmaxRegression(device="vulkan", tol=1e-7).fit(X, y)
    # "auto" would take the CPU engine here; a budget needs a device, so it opens one.
    streamed = SoftmaxRegression(max_gpu_memory="512KiB", tol=1e-7).fit(X, y)
    assert not streamed.engine_.startswith("the CPU engine"), streamed.engine_
    np.testing.assert_allclose(streamed.coef_, whole.coef_, rtol=0, atol=1e-4)
    half = SoftmaxRegression(device="vulkan", x_storage="f16", tol=1e-7).fit(X, y)
    np.testing.assert_allclose(half.coef_, whole.coef_, rtol=0, atol=2e-2)
    assert (half.predict(X) == whole.predict(X)).mean() > 0.99


def test_several_devices_reach_the_one_device_optimum(iris):
    X, y = iris
    one = fit(X, y, device="vulkan", tol=1e-7)
    two = fit(X, y, device=["vulkan", "gl"], tol=1e-7)
    assert two.engine_.startswith("2 devices"), two.engine_
    np.testing.assert_allclose(two.coef_, one.coef_, rtol=0, atol=1e-4)
    again = fit(X, y, device="vulkan,gl", tol=1e-7)
    np.testing.assert_array_equal(again.coef_, two.coef_)
    with pytest.raises(ValueError, match="named twice"):
        fit(X, y, device="0,0")
    with pytest.raises(ValueError, match="solver='adam' cannot train on several devices"):
        fit(X, y, device="all", solver="adam")
