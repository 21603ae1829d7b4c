"""The scikit-learn estimators over the crate: SoftmaxRegression and SoftmaxRegressionCV.

Arrays are checked here (scikit-learn's own validation: finite values, shapes, feature
names), then handed to the crate's training by address: a C-contiguous float32 X is used
in place, without a copy; float64 (or another layout) is converted to float32 once, in the
crate.
"""

import json
import numbers
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from . import _native

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


_SOLVERS = ("lbfgs", "gd", "sgd", "momentum", "adam")
_DEVICES_HELP = (
    '"auto", "cpu", "gpu", a backend ("vulkan", "gl", "metal", "dx12"), '
    "an adapter's index as softmax_regression.devices() lists it, part of its name, "
    'or several of those as a list (or "all")'
)
_CLASSES_KEY = "python.classes"
_FEATURES_KEY = "python.feature_names"


def devices():
    """The adapters wgpu finds, as dicts (index, name, backend, type, driver, chosen)."""
    rows, pick = _native.adapters()
    return [
        dict(index=i, name=name, backend=backend, type=kind, driver=driver, chosen=(i == pick))
        for i, name, backend, kind, driver in rows
    ]


def _buffer(a):
    """An array's (address, length, dtype) for _native; `a` must stay referenced."""
    return (a.ctypes.data, a.size, a.dtype.name)


def _features(X):
    """X as _native takes it, and the arrays that must stay alive while it is used."""
    if sp.issparse(X):
        X = X.tocsr()
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        parts = [np.ascontiguousarray(X.indptr), np.ascontiguousarray(X.indices), np.ascontiguousarray(X.data)]
        m, n = X.shape
        return (m, n) + tuple(_buffer(p) for p in parts), parts
    X = np.ascontiguousarray(X)
    return (X.shape[0], X.shape[1], _buffer(X)), [X]


def _parse_memory(value):
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"max_gpu_memory={value!r} must be a positive number of bytes")
        return int(value)
    if isinstance(value, str):
        try:
            return _native.parse_size(value)
        except ValueError as e:
            raise ValueError(f"max_gpu_memory={value!r}: {e}") from None
    raise TypeError(
        f"max_gpu_memory must be a number of bytes or a size such as '512MiB', got {type(value).__name__}"
    )


class _Progress:
    """Prints the crate's progress lines: every line at verbose >= 2, at verbose 1 the
    first, then at most one a second, and the last (delivered by the caller)."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.last_shown = 0.0
        self.pending = None

    def __call__(self, line):
        now = time.monotonic()
        if self.verbose >= 2 or not line.startswith(("iteration", "  strength")) or now - self.last_shown >= 1.0:
            print(line, file=sys.stderr, flush=True)
            self.last_shown = now
            self.pending = None
        else:
            self.pending = line

    def finish(self):
        if self.pending is not None:
            print(self.pending, file=sys.stderr, flush=True)


class _Base(ClassifierMixin, BaseEstimator):
    """What both estimators share: checking the arguments, the data, predicting."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"X_types": ["2darray", "sparse"]}

    def _check_common_params(self):
        if not (isinstance(self.tol, numbers.Real) and np.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"tol={self.tol!r} must be a finite number >= 0")
        if not (isinstance(self.max_iter, numbers.Integral) and self.max_iter >= 1):
            raise ValueError(f"max_iter={self.max_iter!r} must be an integer >= 1")
        entries = self.device if isinstance(self.device, (list, tuple)) else [self.device]
        if not entries or any(
            not isinstance(d, (str, numbers.Integral)) or isinstance(d, bool) for d in entries
        ):
            raise TypeError(f"device={self.device!r} must be {_DEVICES_HELP}")
        if self.x_storage not in ("f32", "f16", "u8"):
            raise ValueError(f'x_storage={self.x_storage!r} must be "f32", "f16" or "u8"')
        if self.random_state is not None and not isinstance(self.random_state, numbers.Integral):
            raise TypeError(
                f"random_state={self.random_state!r} must be None or an integer "
                "(it seeds the mini-batch shuffle; L-BFGS does not use it)"
            )
        if not (isinstance(self.verbose, numbers.Integral) and self.verbose >= 0):
            raise ValueError(f"verbose={self.verbose!r} must be an integer >= 0")

    def _options(self, l2, solver="lbfgs", batch_size=None, learning_rate=0.1):
        return dict(
            l2=float(l2),
            solver=solver,
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            device=",".join(str(d) for d in self.device)
            if isinstance(self.device, (list, tuple))
            else str(self.device),
            x_storage=self.x_storage,
            max_gpu_memory=_parse_memory(self.max_gpu_memory),
            seed=int(self.random_state or 0) & 0xFFFFFFFFFFFFFFFF,
            batch_size=batch_size,
            learning_rate=float(learning_rate),
        )

    def _check_fit_data(self, X, y, sample_weight):
        X, y = _validate_data(
            self, X, y, accept_sparse="csr", dtype=[np.float32, np.float64], order="C"
        )
        check_classification_targets(y)
        classes, y_encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {classes[0]!r}"
            )
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, X, dtype=np.float32)
        if self.class_weight is not None:
            # "balanced" counts the rows' weights where scikit-learn does (>= 1.6).
            try:
                per_class = compute_class_weight(
                    self.class_weight, classes=classes, y=y, sample_weight=weights
                )
            except TypeError:
                per_class = compute_class_weight(self.class_weight, classes=classes, y=y)
            row_weights = per_class[y_encoded].astype(np.float32)
            weights = row_weights if weights is None else weights * row_weights
        if weights is not None:
            weights = np.ascontiguousarray(weights, dtype=np.float32)
        return X, classes, np.ascontiguousarray(y_encoded, dtype=np.uint32), weights

    def _set_model(self, theta, bias, n_features):
        """Sets coef_ and intercept_ from the crate's Θ (n, K) and b (K) bytes. Two classes
        are scikit-learn's binary model: one row, θ₁ − θ₀ (the softmax's two columns are
        each other's negatives at the optimum)."""
        k = len(self.classes_)
        theta = np.frombuffer(theta, dtype=np.float32).reshape(n_features, k).astype(np.float64)
        bias = np.frombuffer(bias, dtype=np.float32).astype(np.float64)
        if k == 2:
            self.coef_ = (theta[:, 1] - theta[:, 0])[None, :]
            self.intercept_ = np.array([bias[1] - bias[0]])
        else:
            self.coef_ = np.ascontiguousarray(theta.T)
            # The objective does not change when one constant is added to every intercept;
            # the minimiser scikit-learn reports (and the one L-BFGS from zero approaches)
            # has intercepts summing to zero, so rounding's drift along that direction is
            # removed. Probabilities and predictions are unchanged.
            self.intercept_ = bias - bias.mean()

    def _crate_model(self):
        """Θ (n, K) and b (K) as f32 bytes: the inverse of _set_model."""
        if self.coef_.shape[0] == 1:
            w = self.coef_[0]
            theta = np.stack([-w / 2, w / 2], axis=1)
            bias = np.array([-self.intercept_[0] / 2, self.intercept_[0] / 2])
        else:
            theta = self.coef_.T
            bias = self.intercept_
        return (
            np.ascontiguousarray(theta, dtype=np.float32).tobytes(),
            np.ascontiguousarray(bias, dtype=np.float32).tobytes(),
        )

    def _train(self, train, X, classes, y_encoded, weights, *args):
        """Calls _native's `train` (fit or cross_validate) on the data and `args`, then
        sets the fitted model, status_, engine_ and loss_ from its result, which it returns."""
        # `keep` holds the arrays _native reads by address until the call has returned.
        x, keep = _features(X)
        progress = _Progress(self.verbose) if self.verbose else None
        data = (x, _buffer(y_encoded), len(classes), None if weights is None else _buffer(weights))
        result = train(data, *args, progress)
        del keep
        if progress is not None:
            progress.finish()
        self.classes_ = classes
        self._set_model(result["theta"], result["bias"], X.shape[1])
        self.status_ = result["status"]
        self.engine_ = result["engine"]
        self.loss_ = result["loss"]
        self._warn_if_not_converged(result)
        return result

    def _warn_if_not_converged(self, result):
        if result["status"] in ("iteration limit", "diverged"):
            warnings.warn(
                f"training ended with status '{result['status']}' after {result['n_iter']} "
                f"iterations (max|grad J| = {result['grad_max_norm']:.3g}, tol = {self.tol:g}); "
                "increase max_iter, or standardize the features",
                ConvergenceWarning,
                stacklevel=4,
            )

    # Prediction: on the host, in float64, from coef_ and intercept_.

    def _check_predict_data(self, X):
        check_is_fitted(self)
        return _validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=False)

    def decision_function(self, X):
        """The logits XΘ + b: shape (m,) for two classes (the log-odds of classes_[1]),
        (m, K) otherwise."""
        X = self._check_predict_data(X)
        scores = safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_proba(self, X):
        """Class probabilities, columns in the order of classes_."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1 - p, p])
        return softmax(scores, axis=1)

    def predict_log_proba(self, X):
        """Log class probabilities, computed stably from the logits."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            scores = np.column_stack([np.zeros_like(scores), scores])
        return log_softmax(scores, axis=1)

    def predict(self, X):
        """The most probable class of each row."""
        scores = self.decision_function(X)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]

    # The crate's model file.

    def save(self, path):
        """Writes the model as the crate's safetensors model file, which the binary's
        `predict` and `evaluate` read (class names and feature names go with it)."""
        check_is_fitted(self)
        if not str(path):
            raise ValueError("save needs a file path, got an empty one")
        theta, bias = self._crate_model()
        labels = [str(c) for c in self.classes_]
        classes = {"dtype": self.classes_.dtype.str, "values": self.classes_.tolist()}
        metadata = [(_CLASSES_KEY, json.dumps(classes))]
        if hasattr(self, "feature_names_in_"):
            metadata.append((_FEATURES_KEY, json.dumps([str(f) for f in self.feature_names_in_])))
        _native.save_model(
            str(path), theta, bias, int(self.n_features_in_), len(self.classes_), labels, metadata
        )

    @classmethod
    def load(cls, path):
        """Reads a model file written by `save` or by the binary's `train --output`: a
        fitted estimator that predicts what the file's model predicts. A binary model's
        standardization is folded into coef_ and intercept_, so it takes raw features."""
        d = _native.load_model(str(path))
        est = cls()
        meta = d["metadata"]
        if _CLASSES_KEY in meta:
            c = json.loads(meta[_CLASSES_KEY])
            classes = np.array(c["values"], dtype=np.dtype(c["dtype"]))
        elif d["labels"] is not None:
            labels = d["labels"]
            try:
                classes = np.array([int(v) for v in labels])
            except ValueError:
                classes = np.array(labels)
        else:
            classes = np.arange(d["n_classes"])
        est.classes_ = classes
        est.n_features_in_ = d["n_features"]
        if _FEATURES_KEY in meta:
            est.feature_names_in_ = np.array(json.loads(meta[_FEATURES_KEY]), dtype=object)
        est._set_model(d["theta"], d["bias"], d["n_features"])
        est.n_iter_ = np.array([0], dtype=np.int32)
        return est


class SoftmaxRegression(_Base):
    """Multinomial logistic (softmax) regression trained by the crate, on a GPU through
    wgpu or on its CPU engine.

    The objective and its minimiser are scikit-learn's ``LogisticRegression(C)`` with an
    L2 penalty and an unpenalised intercept: C·Σᵢ sᵢ·CEᵢ + ½‖W‖², i.e. the crate's mean
    cross-entropy + λ/2‖Θ‖² with λ = 1/(C·m). With two classes it is scikit-learn's
    binary model (coef_ has one row), trained as a two-column softmax at λ = 2/(C·m),
    which has the same minimiser.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength, as in scikit-learn.
    l2 : float or None, default=None
        λ of the crate's objective, used instead of C when given (the same value for any
        number of rows).
    solver : {"lbfgs", "gd", "sgd", "momentum", "adam"}, default="lbfgs"
        L-BFGS reaches the exact optimum; the others are the crate's first-order
        optimizers (mini-batches for sgd, momentum and adam).
    tol : float, default=1e-6
        Converged once max|∇J| of the crate's objective is at most this (scikit-learn's
        criterion, on the same scaled objective).
    max_iter : int, default=1000
        Iteration (epoch) limit; reaching it warns with ConvergenceWarning.
    class_weight : dict, "balanced" or None
        Per-class weights multiplying the sample weights, as in scikit-learn.
    warm_start : bool, default=False
        Start from the previous fit's coefficients.
    device : str, int or list, default="auto"
        Where to train: "auto" takes the best GPU adapter, or the CPU engine where the
        only adapter is a software rasteriser (it is faster there); "cpu"; "gpu" (the best
        adapter, even a software one); a backend ("vulkan", "gl", "metal", "dx12"); an
        adapter index from ``softmax_regression.devices()``; or part of an adapter's name.
        Several of those, as a list or "0,1" (or "all"), train on those adapters at once,
        X's rows split evenly between them (lbfgs and gd; the same optimum).
    x_storage : {"f32", "f16", "u8"}, default="f32"
        How X is stored on the device (compact storage needs an adapter).
    max_gpu_memory : int, str or None, default=None
        Device memory budget in bytes or as "512MiB"; X is streamed when it does not fit.
    batch_size : int or None, default=None
        Rows per mini-batch for sgd, momentum and adam (None: full batch).
    learning_rate : float, default=0.1
        Step size of the first-order solvers.
    random_state : int or None, default=None
        Seed of the mini-batch shuffle.
    verbose : int, default=0
        1 prints progress about once a second to stderr, 2 every iteration.

    Attributes
    ----------
    classes_, coef_ (K, n) or (1, n), intercept_ (K,) or (1,), n_iter_ (1,),
    n_features_in_, feature_names_in_ (when X has string column names),
    status_ (how training ended, e.g. "converged"), engine_ (where it trained).
    """

    def __init__(
        self,
        C=1.0,
        *,
        l2=None,
        solver="lbfgs",
        tol=1e-6,
        max_iter=1000,
        class_weight=None,
        warm_start=False,
        device="auto",
        x_storage="f32",
        max_gpu_memory=None,
        batch_size=None,
        learning_rate=0.1,
        random_state=None,
        verbose=0,
    ):
        self.C = C
        self.l2 = l2
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.device = device
        self.x_storage = x_storage
        self.max_gpu_memory = max_gpu_memory
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        self._check_common_params()
        if self.l2 is None:
            if not (isinstance(self.C, numbers.Real) and np.isfinite(self.C) and self.C > 0):
                raise ValueError(f"C={self.C!r} must be a finite number > 0")
        elif not (isinstance(self.l2, numbers.Real) and np.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"l2={self.l2!r} must be a finite number >= 0")
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver={self.solver!r} must be one of {', '.join(_SOLVERS)}")
        several = (isinstance(self.device, (list, tuple)) and len(self.device) > 1) or (
            isinstance(self.device, str) and ("," in self.device or self.device.strip().lower() == "all")
        )
        if several and self.solver not in ("lbfgs", "gd"):
            raise ValueError(
                f"solver={self.solver!r} cannot train on several devices (device={self.device!r}): "
                "they train with full batches, lbfgs or gd"
            )
        if self.batch_size is not None and not (
            isinstance(self.batch_size, numbers.Integral) and self.batch_size >= 1
        ):
            raise ValueError(f"batch_size={self.batch_size!r} must be None or an integer >= 1")
        if not (isinstance(self.learning_rate, numbers.Real) and self.learning_rate > 0):
            raise ValueError(f"learning_rate={self.learning_rate!r} must be a number > 0")

    def fit(self, X, y, sample_weight=None):
        """Trains on X (m, n): a numpy array, a pandas DataFrame or a SciPy sparse matrix;
        y holds any labels scikit-learn accepts. Ctrl-C stops training and raises
        KeyboardInterrupt. Returns self."""
        self._check_params()
        X, classes, y_encoded, weights = self._check_fit_data(X, y, sample_weight)
        m, n = X.shape
        k = len(classes)
        if self.l2 is not None:
            l2 = self.l2
        else:
            l2 = (2.0 if k == 2 else 1.0) / (self.C * m)
        init = None
        if (
            self.warm_start
            and hasattr(self, "coef_")
            and self.coef_.shape[1] == n
            and np.array_equal(self.classes_, classes)
        ):
            init = self._crate_model()
        options = self._options(l2, self.solver, self.batch_size, self.learning_rate)
        result = self._train(_native.fit, X, classes, y_encoded, weights, options, init)
        self.n_iter_ = np.array([result["n_iter"]], dtype=np.int32)
        return self


class SoftmaxRegressionCV(_Base):
    """SoftmaxRegression with C chosen by cross-validation, as scikit-learn's
    ``LogisticRegressionCV(refit=True)``: every fold trains all the Cs at once through
    the crate's regularisation path (the models share each read of X), the C with the
    best mean held-out score is chosen, and a model is refitted on every row at it.

    Parameters
    ----------
    Cs : int or list of floats, default=10
        The Cs to compare; an int gives that many log-spaced between 1e-4 and 1e4.
    cv : int, cross-validation generator or iterable, default=None
        As scikit-learn's ``check_cv`` takes it (None: 5 stratified folds). Each row must
        be held out by exactly one split.
    scoring : {"neg_log_loss", "accuracy"}, default="neg_log_loss"
    path_warm_start : bool, default=False
        Train each fold's Cs one after another from the strongest, each from the previous
        solution, instead of all at once.
    tol, max_iter, class_weight, device, x_storage, max_gpu_memory, random_state,
    verbose : as in SoftmaxRegression.

    Attributes
    ----------
    Cs_, C_, scores_ ({class: (n_folds, n_Cs)}, scikit-learn's sign), n_iter_
    (1, n_folds, n_Cs), and those of SoftmaxRegression for the refitted model.
    """

    def __init__(
        self,
        *,
        Cs=10,
        cv=None,
        scoring="neg_log_loss",
        path_warm_start=False,
        tol=1e-6,
        max_iter=1000,
        class_weight=None,
        device="auto",
        x_storage="f32",
        max_gpu_memory=None,
        random_state=None,
        verbose=0,
    ):
        self.Cs = Cs
        self.cv = cv
        self.scoring = scoring
        self.path_warm_start = path_warm_start
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.device = device
        self.x_storage = x_storage
        self.max_gpu_memory = max_gpu_memory
        self.random_state = random_state
        self.verbose = verbose

    def _cs(self):
        if isinstance(self.Cs, numbers.Integral) and not isinstance(self.Cs, bool):
            if self.Cs < 1:
                raise ValueError(f"Cs={self.Cs!r} must be a positive integer or a list of floats")
            return np.logspace(-4, 4, self.Cs)
        cs = np.asarray(self.Cs, dtype=np.float64).ravel()
        if cs.size == 0 or not np.all(np.isfinite(cs)) or np.any(cs <= 0):
            raise ValueError(f"Cs={self.Cs!r} must be a non-empty list of finite numbers > 0")
        return cs

    def fit(self, X, y, sample_weight=None):
        """Cross-validates the Cs and refits at the best; returns self."""
        self._check_common_params()
        if self.scoring not in ("neg_log_loss", "accuracy"):
            raise ValueError(f'scoring={self.scoring!r} must be "neg_log_loss" or "accuracy"')
        cs = self._cs()
        X, classes, y_encoded, weights = self._check_fit_data(X, y, sample_weight)
        m = X.shape[0]
        k = len(classes)
        folds = check_cv(self.cv, y_encoded, classifier=True)
        fold_of = np.full(m, -1, dtype=np.int64)
        splits = list(folds.split(X, y_encoded))
        for f, (_, test) in enumerate(splits):
            if np.any(fold_of[test] >= 0):
                raise ValueError("cv must hold out each row in exactly one split (a partition, as KFold and StratifiedKFold make)")
            fold_of[test] = f
        if np.any(fold_of < 0):
            raise ValueError("cv must hold out each row in exactly one split; some rows are in none")
        fold_of = fold_of.astype(np.uint32)
        # Two classes: the binary model at C is the two-column softmax at C/2.
        strengths = [float(c) / 2 if k == 2 else float(c) for c in cs]
        options = self._options(1.0)
        score = "log_loss" if self.scoring == "neg_log_loss" else "accuracy"
        result = self._train(
            _native.cross_validate, X, classes, y_encoded, weights, options, strengths, "C",
            _buffer(fold_of), score, bool(self.path_warm_start),
        )
        n_folds = len(splits)
        scores = np.frombuffer(result["scores"], dtype=np.float64).reshape(len(cs), n_folds).T
        if score == "log_loss":
            scores = -scores
        self.Cs_ = cs
        best = result["best"]
        self.C_ = np.full(1 if k == 2 else k, cs[best])
        self.scores_ = {c: scores.copy() for c in (classes[1:] if k == 2 else classes)}
        self.n_iter_ = np.array(result["iterations"], dtype=np.int32).reshape(len(cs), n_folds).T[None]
        return self
