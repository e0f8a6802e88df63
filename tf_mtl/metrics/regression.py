"""Regression metrics: RMSE and MAE."""

import numpy as np

from tf_mtl.metrics._inputs import check_lengths


def _errors(fn, labels, predictions, weights):
    labels = np.asarray(labels, dtype=np.float64).ravel()
    predictions = np.asarray(predictions, dtype=np.float64).ravel()
    check_lengths(fn, labels=labels, predictions=predictions, weights=None if weights is None else np.ravel(weights))
    return predictions - labels


def rmse(labels, predictions, weights=None):
    err = _errors("rmse", labels, predictions, weights)
    return float(np.sqrt(np.average(err**2, weights=weights)))


def mae(labels, predictions, weights=None):
    err = _errors("mae", labels, predictions, weights)
    return float(np.average(np.abs(err), weights=weights))
