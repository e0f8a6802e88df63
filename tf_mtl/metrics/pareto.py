"""Pareto fronts of runs over several metrics, to choose among models or task-loss weightings."""

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tf_mtl.errors import did_you_mean
from tf_mtl.files import atomic_path

DIRECTIONS = ("max", "min")
# A metric whose name contains one of these (case-insensitive) gets its direction inferred.
_INFERRED_DIRECTIONS = {"auc": "max", "loss": "min", "rmse": "min", "mae": "min"}


def pareto_front(runs, directions=None):
    """The runs that no other run dominates, sorted by name.

    Run b dominates run a when b is at least as good as a on every metric and strictly better
    on one. Runs with equal values on every metric do not dominate each other, so duplicates
    are all on the front or all off it.

    Args:
        runs: ``{run_name: {metric_name: value}}``, or a pandas DataFrame with one row per run,
            indexed by run name, one column per metric.
        directions: ``{metric_name: "max" | "min"}``; its keys are the metrics compared. Default:
            every metric of the runs, "max" when its name contains "auc", "min" when it contains
            "loss", "rmse" or "mae".

    Returns:
        A sorted list of run names.

    Example:
        >>> pareto_front({"a": {"ctr_auc": 0.71, "cvr_auc": 0.80},
        ...               "b": {"ctr_auc": 0.73, "cvr_auc": 0.78},
        ...               "c": {"ctr_auc": 0.70, "cvr_auc": 0.79}})
        ['a', 'b']
    """
    names, records = _records(runs)
    directions = _directions(records, directions)
    on_front = _non_dominated(_values(names, records, directions), directions)
    return sorted(name for name, on in zip(names, on_front) if on)


def plot_pareto(runs, x_metric, y_metric, path, directions=None):
    """Writes a PNG scatter of ``runs`` on two metrics, with their Pareto front highlighted
    and labelled; the file is written beside ``path`` and renamed, so it is never half-written.

    Args:
        runs: as for ``pareto_front``.
        x_metric: str, the metric on the horizontal axis.
        y_metric: str, the metric on the vertical axis.
        path: str or path-like, the PNG to write; its folder must exist.
        directions: optional ``{metric_name: "max" | "min"}``; only the entries for
            ``x_metric`` and ``y_metric`` are used, and missing ones are inferred as in
            ``pareto_front``.

    Returns:
        The front on these two metrics: a sorted list of run names.

    Example:
        >>> runs = {"a": {"ctr_auc": 0.71, "log_loss": 0.42}, "b": {"ctr_auc": 0.73, "log_loss": 0.44}}
        >>> plot_pareto(runs, "ctr_auc", "log_loss", "pareto.png")
        ['a', 'b']
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if x_metric == y_metric:
        raise ValueError(f"plot_pareto: needs two different metrics. Received x_metric=y_metric={x_metric!r}.")
    names, records = _records(runs)
    given = dict(directions or {})
    axes = _directions(records, {m: given[m] if m in given else _infer_direction(m) for m in (x_metric, y_metric)})
    values = _values(names, records, axes)
    on_front = _non_dominated(values, axes)
    front = sorted(name for name, on in zip(names, on_front) if on)

    # Figure and its Agg canvas directly, not pyplot: no global backend switch, no open windows.
    figure = Figure(figsize=(7, 5), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.scatter(values[~on_front, 0], values[~on_front, 1], color="0.6", label="dominated")
    line = values[on_front][np.argsort(values[on_front, 0], kind="stable")]
    ax.plot(line[:, 0], line[:, 1], color="tab:red", linestyle="--", linewidth=1)
    ax.scatter(values[on_front, 0], values[on_front, 1], color="tab:red", zorder=3, label="Pareto front")
    # Runs on the same point share one label, so duplicates stay readable.
    labels = {}
    for name, point, on in zip(names, map(tuple, values), on_front):
        if on:
            labels.setdefault(point, []).append(str(name))
    for point, point_names in labels.items():
        ax.annotate(", ".join(sorted(point_names)), point, textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(f"{x_metric} ({'higher' if axes[x_metric] == 'max' else 'lower'} is better)")
    ax.set_ylabel(f"{y_metric} ({'higher' if axes[y_metric] == 'max' else 'lower'} is better)")
    ax.set_title(f"Pareto front: {len(front)} of {len(names)} runs")
    ax.margins(0.1)  # room for the labels, which autoscaling ignores
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as partial:
        figure.savefig(partial, format="png")
    return front


def _non_dominated(values, directions):
    """Boolean `(runs,)`: True for the runs of ``values`` `(runs, metrics)` that no run dominates."""
    better = values * np.array([1.0 if d == "max" else -1.0 for d in directions.values()])
    # at_least[b, a]: run b is at least as good as run a on every metric.
    at_least = (better[:, None, :] >= better[None, :, :]).all(axis=-1)
    strictly = (better[:, None, :] > better[None, :, :]).any(axis=-1)
    return ~(at_least & strictly).any(axis=0)


def _records(runs):
    """``(names, [{metric: value}, ...])`` from a dict of runs or a DataFrame."""
    if isinstance(runs, pd.DataFrame):
        duplicated = runs.index[runs.index.duplicated()].unique().tolist()
        if duplicated:
            raise ValueError(f"runs: the DataFrame's index names each run once. Received duplicates: {duplicated}.")
        names, records = list(runs.index), [row.to_dict() for _, row in runs.iterrows()]
    elif isinstance(runs, Mapping):
        names, records = list(runs), list(runs.values())
        for name, record in zip(names, records):
            if not isinstance(record, Mapping):
                raise ValueError(
                    f"runs: each run maps metric names to values. Received run {name!r}: {type(record).__name__}."
                )
    else:
        raise ValueError(
            "runs: expected a dict {run_name: {metric_name: value}} or a pandas DataFrame with one row per run. "
            f"Received: {type(runs).__name__}."
        )
    if not names:
        raise ValueError("runs: needs at least one run. Received none.")
    return names, records


def _directions(records, directions):
    """``{metric: "max" | "min"}``, checked, or inferred for every metric of the runs."""
    if directions is None:
        metrics = list(dict.fromkeys(metric for record in records for metric in record))
        return {metric: _infer_direction(metric) for metric in metrics}
    if not isinstance(directions, Mapping) or not directions:
        raise ValueError(
            f"directions: expected a non-empty dict {{metric_name: 'max' | 'min'}}. Received: {directions!r}."
        )
    for metric, direction in directions.items():
        if direction not in DIRECTIONS:
            raise ValueError(f"directions: {metric!r} must be 'max' or 'min'. Received: {direction!r}.")
    return dict(directions)


def _infer_direction(metric):
    found = {d for word, d in _INFERRED_DIRECTIONS.items() if word in str(metric).lower()}
    if len(found) != 1:
        rule = ", ".join(f"{word!r} -> {d!r}" for word, d in _INFERRED_DIRECTIONS.items())
        raise ValueError(
            f"directions: cannot infer whether metric {metric!r} is to be maximised or minimised; its name "
            f"matches {'both directions' if found else 'no rule'} of {{{rule}}}. "
            f"Pass directions={{{metric!r}: 'max' or 'min', ...}}."
        )
    return found.pop()


def _values(names, records, directions):
    """Float array `(runs, metrics)` in the order of ``directions``; every value present and not nan."""
    values = np.empty((len(names), len(directions)))
    for i, (name, record) in enumerate(zip(names, records)):
        for j, metric in enumerate(directions):
            if metric not in record:
                hint = did_you_mean(metric, record, "Its metrics")
                raise ValueError(f"runs: run {name!r} has no metric {metric!r}{hint}")
            try:
                values[i, j] = float(record[metric])
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"runs: run {name!r} metric {metric!r} is not a number. Received: {record[metric]!r}."
                ) from err
            if math.isnan(values[i, j]):
                raise ValueError(f"runs: run {name!r} metric {metric!r} is nan; a Pareto front compares numbers only.")
    return values
