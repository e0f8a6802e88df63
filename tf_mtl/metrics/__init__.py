"""Offline metrics per output, with each model's metric terms (e.g. ESMM's CVR on clicked rows),
and tools to choose among runs.

- ``classification``: AUC (ties get the average rank) and log loss.
- ``regression``: RMSE and MAE.
- ``group_auc``: GAUC, the AUC per user averaged over users (DIN, KDD 2018).
- ``evaluation``: ``evaluate(model, dataset)``, the metrics of every output of a model.
- ``pareto``: the Pareto front of runs over several metrics, and its plot.
"""

from tf_mtl.metrics.classification import auc, log_loss
from tf_mtl.metrics.evaluation import METRICS, evaluate, flat_figures, predict_with_labels, score
from tf_mtl.metrics.group_auc import gauc
from tf_mtl.metrics.pareto import pareto_front, plot_pareto
from tf_mtl.metrics.regression import mae, rmse

__all__ = [
    "METRICS",
    "auc",
    "evaluate",
    "flat_figures",
    "gauc",
    "log_loss",
    "mae",
    "pareto_front",
    "plot_pareto",
    "predict_with_labels",
    "rmse",
    "score",
]
