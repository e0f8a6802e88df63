"""Output-weight search: the fusion weights of the task outputs that maximise an offline metric.

A multi-task ranker serves one score made from its task outputs, e.g. ``0.3 * ctr + 0.7 * cvr``
or ``ctr**0.5 * cvr**1.0``; the weights are chosen offline, by scoring held-out predictions with
each candidate and keeping the best (the "output weight" search of multi-task ranking practice).
"""

import dataclasses
import math
import numbers
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from tf_mtl.errors import did_you_mean
from tf_mtl.fusion.score import EPSILON, METHODS as FUSIONS
from tf_mtl.metrics import auc, gauc

SEARCH_METHODS = ("grid", "random")
MAX_GRID = 200_000
# Fused scores held at once, in float64 values: a (combinations, rows) batch of ~32 MB.
_BATCH_VALUES = 1 << 22


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """What ``search_weights`` found.

    Attributes:
        best_weights: dict output name -> float, the weights of the best combination.
        best_score: float, the metric of ``best_weights``.
        table: ``pandas.DataFrame``, one row per combination tried: a column of weights per output
            and ``"score"``, sorted by score descending, ties in the order tried; the index is the
            position in that order.
        fusion: ``"sum"`` or ``"product"``.
    """

    best_weights: dict
    best_score: float
    table: pd.DataFrame
    fusion: str

    def as_fusion(self):
        """``{"method": fusion, "weights": best_weights}``, the fusion config of the export."""
        return {"method": self.fusion, "weights": dict(self.best_weights)}


def search_weights(
    predictions,
    labels,
    metric,
    grid_step=0.1,
    method="grid",
    n_samples=None,
    seed=0,
    fusion="sum",
    outputs=None,
):
    """Searches the weights that fuse task outputs into the ranking score with the best metric.

    The fused score of a row with outputs ``p_i`` and weights ``w_i`` is

    - ``"sum"``: ``sum_i w_i * p_i``;
    - ``"product"``: ``prod_i p_i ** w_i``, computed as ``exp(sum_i w_i * log(clip(p_i, 1e-7, 1)))``,

    the two fusions of the exported SavedModel, so ``result.as_fusion()`` is its fusion config.
    Scaling all weights by one positive constant scales the sum and raises the product to a
    power, so the ranking, and any rank metric such as AUC, does not change: the grid still tries
    every multiple (e.g. ``(0.1, 0.2)`` and ``(0.2, 0.4)``, which tie) and the tie goes to the one
    tried first. Scores are float64 here; the served float32 scores may tie where these do not.

    Args:
        predictions: dict output name -> array `(n,)`, or an array `(n, k)` whose columns
            ``outputs`` names.
        labels: dict name -> array `(n,)`: label columns and, for ``"gauc:..."``, group ids.
        metric: what to maximise: a callable ``(fused_scores, labels) -> float`` (``labels`` the
            dict, values as numpy arrays; called in the caller's thread); ``"auc:<label>"``
            (``tf_mtl.metrics.auc``); ``"gauc:<label>:<group>"`` (``tf_mtl.metrics.gauc`` with
            group ids ``labels[<group>]``); or a dict of such names to weights, e.g.
            ``{"auc:ctr": 0.3, "auc:cvr": 0.7}``, for the weighted sum.
        grid_step: float, default 0.1, the grid's spacing for ``method="grid"``; ``1 / grid_step``
            must be an integer (within 1e-9).
        method: ``"grid"`` (default): every combination of weights in ``{0, step, ..., 1}`` but all
            zeros, ``(1/step + 1)**k - 1`` of them, at most 200,000, in lexicographic order;
            ``"random"``: ``n_samples`` combinations drawn uniformly from ``[0, 1)**k``.
        n_samples: int, the number of combinations of ``method="random"``.
        seed: int, default 0, the seed of ``method="random"``.
        fusion: ``"sum"`` (default) or ``"product"``.
        outputs: list of output names: the columns of an array ``predictions``; for a dict, the
            outputs to fuse, in this order (default: all, in the dict's order).

    Returns:
        A ``SearchResult``.

    Example:
        >>> result = search_weights(
        ...     {"ctr": [0.9, 0.2, 0.6, 0.1], "cvr": [0.1, 0.4, 0.8, 0.3]},
        ...     {"click": [1, 0, 1, 0], "buy": [0, 0, 1, 0]},
        ...     {"auc:click": 0.5, "auc:buy": 0.5}, grid_step=0.5)
        >>> result.as_fusion()
        {'method': 'sum', 'weights': {'ctr': 0.5, 'cvr': 0.5}}
    """
    if fusion not in FUSIONS:
        raise ValueError(f"search_weights: `fusion` must be one of {list(FUSIONS)}. Received: `fusion={fusion!r}`.")
    names, columns = _prediction_columns(predictions, outputs)
    labels = _label_columns(labels, columns.shape[0])
    evaluate, threadsafe = _metric_fn(metric, labels)
    weights = _candidates(method, len(names), grid_step, n_samples, seed)
    if fusion == "product":
        columns = np.log(np.clip(columns, EPSILON, 1.0))
    scores = np.empty(len(weights))
    batch = max(1, _BATCH_VALUES // columns.shape[0])
    # numpy sorts without the GIL, so the built-in metrics of a batch run on every core; a
    # callable, which may keep state, runs in this thread.
    with ThreadPoolExecutor(_cores()) as pool:
        apply = pool.map if threadsafe else map
        for start in range(0, len(weights), batch):
            fused = weights[start : start + batch] @ columns.T
            if fusion == "product":
                fused = np.exp(fused)
            scores[start : start + len(fused)] = list(apply(evaluate, fused))
    if np.isnan(scores).any():
        first = dict(zip(names, weights[np.isnan(scores)][0].tolist()))
        raise ValueError(
            f"search_weights: the metric {metric!r} is nan for weights {first}, e.g. for a label column "
            "with one class only, or no group with both classes."
        )
    order = np.argsort(-scores, kind="stable")
    table = pd.DataFrame(weights[order], columns=names, index=order)
    table["score"] = scores[order]
    return SearchResult(
        best_weights={name: float(table[name].iloc[0]) for name in names},
        best_score=float(table["score"].iloc[0]),
        table=table,
        fusion=fusion,
    )


def _cores():
    """The CPU cores this process may run on (a container's share, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _prediction_columns(predictions, outputs):
    """The output names and their predictions as a float array `(n, k)`."""
    if isinstance(predictions, Mapping):
        known = list(predictions)
        names = known if outputs is None else list(outputs)
        for name in names:
            if name not in predictions:
                hint = did_you_mean(name, known, "Outputs of `predictions`")
                raise ValueError(f"search_weights: unknown output {name!r} in `outputs`{hint}")
        columns = [np.asarray(predictions[name], dtype=np.float64) for name in names]
        shapes = {name: column.shape for name, column in zip(names, columns)}
        if any(len(shape) != 1 for shape in shapes.values()) or len(set(shapes.values())) > 1:
            raise ValueError(f"search_weights: every output's predictions must have one shape (n,). Received: {shapes}.")
        columns = np.stack(columns, axis=1) if columns else np.empty((0, 0))
    else:
        columns = np.asarray(predictions, dtype=np.float64)
        if columns.ndim != 2 or outputs is None or len(outputs) != columns.shape[1]:
            raise ValueError(
                "search_weights: an array of `predictions` must have shape (n, k), with `outputs` naming its "
                f"k columns. Received shape {columns.shape} and `outputs={outputs!r}`."
            )
        names = list(outputs)
    if not names or len(set(names)) != len(names) or "score" in names:
        raise ValueError(
            "search_weights: needs one or more distinct output names, none of them 'score' (the table's metric "
            f"column). Received: {names}."
        )
    if columns.shape[0] == 0:
        raise ValueError("search_weights: needs at least one row of predictions. Received 0.")
    finite = np.isfinite(columns).all(axis=0)
    if not finite.all():
        bad = [name for name, ok in zip(names, finite) if not ok]
        raise ValueError(f"search_weights: predictions must be finite. Received nan or inf in outputs {bad}.")
    return names, columns


def _label_columns(labels, rows):
    if not isinstance(labels, Mapping):
        raise TypeError(f"search_weights: `labels` must be a dict name -> array (n,). Received: {type(labels).__name__}.")
    labels = {name: np.asarray(values) for name, values in labels.items()}
    wrong = {name: values.shape for name, values in labels.items() if values.shape != (rows,)}
    if wrong:
        raise ValueError(
            f"search_weights: every column of `labels` must have shape ({rows},), one value per row of "
            f"`predictions`. Received shapes: {wrong}."
        )
    return labels


def _metric_fn(metric, labels):
    """``metric`` as a function of the fused scores alone, and whether threads may share it."""
    if callable(metric):
        return (lambda scores: metric(scores, labels)), False
    if isinstance(metric, str):
        terms = [(1.0, _named_metric(metric, labels))]
    elif isinstance(metric, Mapping) and metric:
        terms = []
        for name, weight in metric.items():
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight):
                raise ValueError(
                    "search_weights: a dict `metric` maps names such as 'auc:ctr' to finite weights. "
                    f"Received: {name!r}: {weight!r}."
                )
            terms.append((float(weight), _named_metric(name, labels)))
    else:
        raise ValueError(
            "search_weights: `metric` must be a callable (scores, labels) -> float, 'auc:<label>', "
            f"'gauc:<label>:<group>' or a non-empty dict of those to weights. Received: `metric={metric!r}`."
        )
    used = sorted({column for _, (_, columns) in terms for column in columns})

    def evaluate(scores):
        # AUC and GAUC do not depend on row order. Rows in score order make the stable sort
        # inside them linear, and all terms share this one sort.
        order = np.argsort(scores)
        ranked, rows = scores[order], {column: labels[column][order] for column in used}
        return sum(weight * fn(ranked, rows) for weight, (fn, _) in terms)

    return evaluate, True


def _named_metric(name, labels):
    """``(fn(scores, rows), columns)`` of ``"auc:<label>"`` or ``"gauc:<label>:<group>"``."""
    kind, _, rest = name.partition(":") if isinstance(name, str) else (None, None, "")
    columns = rest.split(":") if kind == "gauc" else [rest]
    if kind not in ("auc", "gauc") or len(columns) != {"auc": 1, "gauc": 2}[kind] or not all(columns):
        raise ValueError(f"search_weights: metric names are 'auc:<label>' or 'gauc:<label>:<group>'. Received: {name!r}.")
    for column in columns:
        if column not in labels:
            hint = did_you_mean(column, labels, "Columns of `labels`")
            raise ValueError(f"search_weights: metric {name!r} names unknown column {column!r}{hint}")
    if kind == "auc":
        return (lambda scores, rows: auc(rows[columns[0]], scores)), columns
    return (lambda scores, rows: gauc(rows[columns[0]], scores, rows[columns[1]])), columns


def _candidates(method, k, grid_step, n_samples, seed):
    """The weight combinations to try, float array `(m, k)`, in the order tried."""
    if method == "grid":
        if n_samples is not None:
            raise ValueError(
                "search_weights: `n_samples` is for method='random'; method='grid' tries the whole grid. "
                f"Received: `n_samples={n_samples!r}`."
            )
        steps = _grid_steps(grid_step)
        size = (steps + 1) ** k - 1
        if size > MAX_GRID:
            raise ValueError(
                f"search_weights: a grid of step {grid_step} over {k} outputs has {size:,} combinations, more "
                f"than {MAX_GRID:,}; use a coarser `grid_step`, or method='random' with `n_samples`."
            )
        # Integer grid points over `steps`, all zeros (the first) left out: 0.3 is 3/10, exactly
        # the float 0.3, where 3 * 0.1 or 0.1 + 0.1 + 0.1 is not.
        return np.indices((steps + 1,) * k).reshape(k, -1).T[1:] / steps
    if method == "random":
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(
                f"search_weights: method='random' needs `n_samples`, a positive int. Received: `n_samples={n_samples!r}`."
            )
        return np.random.default_rng(seed).random((int(n_samples), k))
    raise ValueError(f"search_weights: `method` must be one of {list(SEARCH_METHODS)}. Received: `method={method!r}`.")


def _grid_steps(grid_step):
    """The number of steps from 0 to 1, ``1 / grid_step``, which must be an integer."""
    if isinstance(grid_step, bool) or not isinstance(grid_step, numbers.Real) or not 0 < grid_step <= 1:
        raise ValueError(f"search_weights: `grid_step` must be a number in (0, 1]. Received: `grid_step={grid_step!r}`.")
    steps = round(1 / grid_step)
    if abs(steps * grid_step - 1) > 1e-9:
        raise ValueError(
            f"search_weights: `grid_step` must divide 1, e.g. 0.1, 0.05 or 0.25. Received: `grid_step={grid_step!r}`."
        )
    return steps
