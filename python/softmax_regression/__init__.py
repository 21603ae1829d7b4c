"""Multinomial logistic (softmax) regression trained on any GPU through wgpu, as
scikit-learn estimators.

>>> from softmax_regression import SoftmaxRegression
>>> clf = SoftmaxRegression(C=1.0).fit(X, y)          # doctest: +SKIP
>>> clf.predict_proba(X[:5])                         # doctest: +SKIP
"""

from ._estimator import SoftmaxRegression, SoftmaxRegressionCV, devices

__all__ = ["SoftmaxRegression", "SoftmaxRegressionCV", "devices"]
__version__ = "0.1.0"
