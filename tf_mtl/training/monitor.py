"""What early stopping watches: one validation figure, or a weighted sum of several."""

import math

import tensorflow as tf

from tf_mtl.errors import did_you_mean
from tf_mtl.metrics.evaluation import METRICS

# Higher is better for these metrics; lower for every other (losses, RMSE, MAE).
HIGHER_IS_BETTER = ("auc", "gauc")


def direction(name):
    """``+1`` when a higher value of the metric ``name`` (``"ctr/auc"``, ``"loss"``) is better, else ``-1``."""
    return 1.0 if name.rsplit("/", 1)[-1] in HIGHER_IS_BETTER else -1.0


def figure_names(model, group_by=None):
    """The validation figures of an epoch: ``loss``, ``<term>_loss`` per loss term and
    ``<output>/<metric>`` per metric term (``/gauc`` too with ``group_by``)."""
    names = ["loss"] + [f"{name}_loss" for name in model.loss_term_names]
    for output, (task_type, _, _) in model.metric_terms({n: tf.zeros([1]) for n in model.task_names}).items():
        names += [f"{output}/{metric}" for metric in METRICS[task_type]]
        if group_by is not None and task_type == "classification":
            names.append(f"{output}/gauc")
    return names


class Monitor:
    """Scores an epoch's validation figures for early stopping; higher scores are better.

    Args:
        spec: a figure name (``"cvr/auc"``, ``"ctr/log_loss"``, ``"loss"``, ``"ctr_loss"``)
            or ``{name: weight}``; the score is ``sum_k weight_k * sign_k * value_k`` with
            ``sign_k = +1`` for AUC and GAUC, ``-1`` for losses, RMSE and MAE, so every
            figure counts in its right direction. ``None``: the mean of every task's AUC
            (RMSE, counted downwards, for regression tasks), on validation data.
    """

    def __init__(self, spec, model):
        if spec is None:
            spec = {f"{t.name}/{'auc' if t.task_type == 'classification' else 'rmse'}": 1.0 / len(model.tasks) for t in model.tasks}
        elif isinstance(spec, str):
            spec = {spec: 1.0}
        if not isinstance(spec, dict) or not spec:
            raise ValueError(f"monitor must be a figure name or a dict {{name: weight}}. Received: {spec!r}")
        self.weights = {str(k): float(v) for k, v in spec.items()}

    @property
    def name(self):
        if len(self.weights) == 1 and next(iter(self.weights.values())) == 1.0:
            return next(iter(self.weights))
        return " + ".join(f"{w:g}*{k}" for k, w in self.weights.items())

    def check(self, names):
        """Raises before training when the monitor names a figure the epochs will not report."""
        for name in self.weights:
            if name not in names:
                raise KeyError(f"monitor: {name!r} is not a validation figure" + did_you_mean(name, sorted(names), "Figures"))

    def score(self, figures):
        """The score of ``figures`` (a flat dict such as ``{"ctr/auc": 0.7, "loss": 0.4}``)."""
        total = 0.0
        for name, weight in self.weights.items():
            if name not in figures:
                raise KeyError(f"monitor: {name!r} is not a validation figure" + did_you_mean(name, sorted(figures), "Figures"))
            total += weight * direction(name) * figures[name]
        return total if math.isfinite(total) else -math.inf
