"""Evaluator: scores the exported SavedModel on the eval split, per slice and against the last
pushed model, and blesses it or says why not.

The candidate is the Trainer's ``serving/`` SavedModel, called through its ``serving_default``
signature (what TF Serving will run), not the Keras object; the run's ``model.keras`` only
supplies each output's metric rows (``metric_terms``: ESMM scores CVR on clicked rows). The
baseline is the newest numeric version under ``baseline_dir``, the Pusher's destination for
this model, scored on the same rows.
"""

import collections
import json
import math
import os

import numpy as np
import tensorflow as tf

from pipelines.component import Component, file_digest
from pipelines.example_gen import read_columns, read_types, split_files
from pipelines.schema import check_tasks
from pipelines.statistics import ranked
from pipelines.trainer import make_dataset
from pipelines.transform import read_transform
from tf_mtl.export import versions
from tf_mtl.export.saved_model import SCORE
from tf_mtl.features import features_from_config
from tf_mtl.metrics import auc, flat_figures, score
from tf_mtl.models import load_model
from tf_mtl.training.monitor import direction

EVALUATION_FILE = "evaluation.json"
REPORT_FILE = "report.md"
PLOT_FILE = "report.png"
ALL = "all"
MISSING = "(missing)"
TOP_SLICES = 10
_PARAMS = {"tasks", "slice_by", "thresholds", "tolerance", "baseline_dir", "batch_size"}


def latest_version(base_dir):
    """The newest version folder under ``base_dir`` (the last pushed model), or ``None``."""
    found = versions(base_dir) if base_dir else []
    return os.path.join(base_dir, str(found[-1])) if found else None


def serving_digest(path):
    """sha256 digests of a SavedModel's graph (``saved_model.pb``) and ``variables/``."""
    return {name: file_digest(os.path.join(path, name)) for name in ("saved_model.pb", "variables")}


class _Outputs:
    """A model's metric terms, restricted to the outputs a SavedModel returned."""

    def __init__(self, model, names):
        self.model, self.names = model, set(names)

    def metric_terms(self, labels):
        return {k: v for k, v in self.model.metric_terms(labels).items() if k in self.names}


def predict(signature, dataset):
    """Runs a serving signature on each ``(x, y)`` batch of ``dataset``.

    Returns ``(outputs, labels)``: ``{output: scores}`` and ``{column: labels}``, numpy.
    """
    outputs, labels = collections.defaultdict(list), collections.defaultdict(list)
    for x, y in dataset:
        for output, value in signature(**x).items():
            outputs[output].append(value.numpy().reshape(-1))
        for column, value in y.items():
            labels[column].append(value.numpy().reshape(-1))
    return _concat(outputs), _concat(labels)


def served_features(path):
    """The feature spec a tf_mtl SavedModel takes (its ``assets.extra/tf_mtl.json``)."""
    record = os.path.join(path, "assets.extra", "tf_mtl.json")
    with open(record) as file:
        return features_from_config(json.load(file)["features"], where=f"{record}: features")


def _concat(batches):
    return {k: np.concatenate(v) for k, v in batches.items()}


def metrics(model, outputs, labels, fused_label=None):
    """``{"<output>/<metric>": value}`` (``None`` where undefined, e.g. one class only) for the
    outputs present, plus ``score/auc``, the fused score's AUC against ``fused_label``."""
    found = score(_Outputs(model, outputs), outputs, labels)
    flat = flat_figures(found)
    if SCORE in outputs and fused_label is not None:
        flat[f"{SCORE}/auc"] = auc(labels[fused_label], outputs[SCORE])
    return {k: None if math.isnan(v) else float(v) for k, v in flat.items()}


def slice_rows(column, name, limit=TOP_SLICES):
    """``{value: row indices}`` for the ``limit`` most frequent values (as strings) of a
    ``Column`` read by ``read_columns``; rows without a value count as ``"(missing)"``."""
    if column.lengths.size and column.lengths.max() > 1:
        raise ValueError(
            f"slice_by: column {name!r} holds lists; a slice needs one value per row. "
            f"Received: up to {column.lengths.max()} values in a row."
        )
    present = column.lengths == 1
    values = np.full(column.lengths.size, MISSING, dtype=object)
    values[present] = [v.decode() if isinstance(v, bytes) else str(v.item()) for v in column.values]
    # Ties go to the smaller value, so the slices do not depend on the order of the rows.
    top = ranked(collections.Counter(values.tolist()))[:limit]
    return {value: np.flatnonzero(values == value) for value, _ in top}


def _take(arrays, rows):
    return {k: v[rows] for k, v in arrays.items()}


def _threshold_check(name, value, limit):
    higher = direction(name) > 0
    passed = value is not None and (value >= limit if higher else value <= limit)
    shown = "undefined" if value is None else f"{value:.4f}"
    reason = None if passed else f"{name} = {shown} is {'below the minimum' if higher else 'above the maximum'} {limit}"
    return {"check": "threshold", "metric": name, "value": value, "limit": limit, "passed": passed, "reason": reason}


def _baseline_check(name, value, base, tolerance):
    worse_by = direction(name) * (base - value)
    passed = worse_by <= tolerance
    reason = None
    if not passed:
        reason = f"{name} = {value:.4f} is worse than the baseline's {base:.4f} by {worse_by:.4f} (tolerance {tolerance})"
    return {
        "check": "baseline", "metric": name, "value": value, "baseline": base, "tolerance": tolerance,
        "passed": passed, "reason": reason,
    }


def checks(candidate, baseline, thresholds, tolerance):
    """The blessing checks: each threshold, then each metric both models have against the
    baseline's (direction-aware; undefined values are not compared)."""
    unknown = sorted(set(thresholds) - set(candidate))
    if unknown:
        raise ValueError(f"thresholds: {unknown} are not metrics of the model; it has {sorted(candidate)}.")
    results = [_threshold_check(name, candidate[name], limit) for name, limit in sorted(thresholds.items())]
    for name in sorted(set(candidate) & set(baseline or {})):
        if candidate[name] is not None and baseline[name] is not None:
            results.append(_baseline_check(name, candidate[name], baseline[name], tolerance))
    return results


def _nan(value):
    return np.nan if value is None else value


def _cell(value):
    return "–" if value is None else f"{value:.4f}"


def write_report(evaluation, path):
    """``report.md``: the verdict, the metrics against the baseline and thresholds, the slices."""
    baseline = evaluation["baseline"] or {}
    base_metrics = baseline.get("metrics") or {}
    limits = {c["metric"]: c["limit"] for c in evaluation["checks"] if c["check"] == "threshold"}
    lines = [f"# Evaluation: {'blessed' if evaluation['blessed'] else 'not blessed'}", ""]
    lines += [f"- {reason}" for reason in evaluation["reasons"]]
    lines += ["", f"Baseline: {baseline.get('path', 'none')}", ""]
    lines += [f"Baseline note: {note}" for note in baseline.get("notes", [])]
    lines += ["| metric | candidate | baseline | threshold |", "|---|---|---|---|"]
    for name, value in evaluation["metrics"].items():
        lines.append(f"| {name} | {_cell(value)} | {_cell(base_metrics.get(name))} | {limits.get(name, '–')} |")
    if evaluation["slice_by"]:
        names = list(evaluation["metrics"])
        lines += ["", f"## Slices by {evaluation['slice_by']}", "", "| slice | rows | " + " | ".join(names) + " |"]
        lines.append("|---" * (len(names) + 2) + "|")
        for value, part in evaluation["slices"].items():
            lines.append(f"| {value} | {part['rows']} | " + " | ".join(_cell(part["metrics"].get(n)) for n in names) + " |")
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")


def plot_report(evaluation, path):
    """``report.png``: candidate against baseline per metric and, with slices, AUC per slice."""
    from matplotlib.figure import Figure

    sliced = bool(evaluation["slice_by"])
    figure = Figure(figsize=(14 if sliced else 7, 4), layout="constrained")
    axes = figure.subplots(1, 2 if sliced else 1, squeeze=False)[0]
    names = list(evaluation["metrics"])
    base = (evaluation["baseline"] or {}).get("metrics") or {}
    positions = np.arange(len(names))
    axes[0].bar(positions - 0.2, [_nan(evaluation["metrics"][n]) for n in names], 0.4, label="candidate")
    if base:
        axes[0].bar(positions + 0.2, [_nan(base.get(n)) for n in names], 0.4, label="baseline")
    axes[0].set_xticks(positions, names, rotation=45, ha="right")
    axes[0].set_title("candidate vs baseline")
    axes[0].legend()
    if sliced:
        slices = list(evaluation["slices"])
        aucs = [n for n in names if n.endswith("/auc")]
        width = 0.8 / max(len(aucs), 1)
        for i, name in enumerate(aucs):
            values = [_nan(evaluation["slices"][s]["metrics"].get(name)) for s in slices]
            axes[1].bar(np.arange(len(slices)) + i * width, values, width, label=name)
        axes[1].set_xticks(np.arange(len(slices)) + 0.4 - width / 2, slices, rotation=45, ha="right")
        axes[1].set_title(f"AUC by {evaluation['slice_by']}")
        axes[1].legend()
    figure.savefig(path, dpi=80)


class Evaluator(Component):
    """Metrics of the candidate SavedModel on the eval split, overall, per slice and against the
    baseline, and the blessing.

    Blessed when every threshold passes and no metric is worse than the baseline's by more than
    ``tolerance``. ``score/auc`` is the fused ranking score's AUC against the label of the first
    classification task. A model not blessed is a normal outcome (the Pusher skips it), so the
    pipeline does not stop.

    Args (``params``):
        tasks: ``[{"name", "type", "label", "positive"?}]``, as for the Trainer.
        slice_by: a column of the examples: metrics for its 10 most frequent values too.
        thresholds: ``{"ctr/auc": 0.6, "cvr/rmse": 0.9}``: minimums for metrics where higher
            is better (AUC, GAUC), maximums for the others.
        tolerance: how much worse than the baseline a metric may be (default 0.01).
        baseline_dir: ``<destination>/<model_name>`` of the Pusher; its newest version is the
            baseline (none: no comparison). A baseline that cannot score the eval split (it
            reads columns the data lacks) fails the comparison: the model is not blessed.
        batch_size: rows per batch (default 512).

    Output: ``evaluation.json``, ``report.md``, ``report.png``.

    Example:
        Evaluator({"tasks": tasks, "thresholds": {"ctr/auc": 0.6}, "baseline_dir": "saved_models/ranker"},
                  examples=example_gen, model=trainer, transform=transform)
    """

    INPUTS = ("examples", "model", "transform")

    def __init__(self, params=None, name=None, **inputs):
        super().__init__(params, name, **inputs)
        unknown = sorted(set(self.params) - _PARAMS)
        if unknown:
            raise ValueError(f"{self.name}: unknown parameters {unknown}; expected some of {sorted(_PARAMS)}.")
        check_tasks(self.params.get("tasks"), where=f"{self.name}.tasks")
        thresholds = self.params.get("thresholds") or {}
        if not isinstance(thresholds, dict) or not all(isinstance(v, (int, float)) for v in thresholds.values()):
            raise ValueError(f"{self.name}.thresholds: expected {{metric: number}}, e.g. {{'ctr/auc': 0.6}}. Received: {thresholds!r}")
        tolerance = self.params.get("tolerance", 0.01)
        if not isinstance(tolerance, (int, float)) or tolerance < 0:
            raise ValueError(f"{self.name}.tolerance: expected a number >= 0. Received: {tolerance!r}")

    def fingerprint(self):
        baseline = latest_version(self.params.get("baseline_dir"))
        return None if baseline is None else {"baseline": baseline, **serving_digest(baseline)}

    def run(self, inputs, output_dir):
        params = self.params
        tasks = params["tasks"]
        batch_size = params.get("batch_size") or 512
        features, defaults = read_transform(inputs["transform"].path)
        examples = inputs["examples"]
        files = split_files(examples.path, "eval")
        model = load_model(inputs["model"].file("run", "model.keras"))
        # The loaded object owns the variables: kept alive while its signature runs.
        loaded = tf.saved_model.load(inputs["model"].file("serving"))
        outputs = {}
        outputs["candidate"], labels = predict(
            loaded.signatures["serving_default"], make_dataset(files, features, tasks, defaults, batch_size))
        baseline_path = latest_version(params.get("baseline_dir"))
        baseline_error = None
        if baseline_path:
            # The baseline reads the same rows through its own feature spec (it may take other
            # features); the dataset is unshuffled, so its rows align with the candidate's.
            try:
                spec = served_features(baseline_path)
                data = make_dataset(files, spec, tasks, {k: v for k, v in defaults.items() if k in {f.name for f in spec}}, batch_size)
                baseline = tf.saved_model.load(baseline_path)
                outputs["baseline"], _ = predict(baseline.signatures["serving_default"], data)
            except (OSError, KeyError, ValueError, tf.errors.OpError) as err:
                baseline_error = (f"the last pushed model {baseline_path} cannot score the eval split, so the candidate "
                                  f"cannot be compared with it (set evaluation.compare_to_pushed: false to bless on "
                                  f"thresholds alone): {type(err).__name__}: {err}")
        fused_label = next((t["name"] for t in tasks if t["type"] == "classification"), None)

        def measure(name, rows=None):
            scores = outputs[name] if rows is None else _take(outputs[name], rows)
            return metrics(model, scores, labels if rows is None else _take(labels, rows), fused_label)

        evaluation = {
            "rows": int(len(next(iter(labels.values())))),
            "metrics": measure("candidate"),
            "slice_by": params.get("slice_by"),
            "slices": {},
        }
        if evaluation["slice_by"]:
            column = read_columns(examples.path, "eval", read_types(examples), [evaluation["slice_by"]])[evaluation["slice_by"]]
            groups = {ALL: np.arange(evaluation["rows"]), **slice_rows(column, evaluation["slice_by"])}
            evaluation["slices"] = {str(v): {"rows": len(rows), "metrics": measure("candidate", rows)} for v, rows in groups.items()}
        evaluation["baseline"] = None
        if baseline_error:
            evaluation["baseline"] = {"path": baseline_path, "version": int(os.path.basename(baseline_path)),
                                      "metrics": None, "notes": [baseline_error[:2000]]}
        elif baseline_path:
            lacking = sorted(set(outputs["candidate"]) - set(outputs["baseline"]))
            evaluation["baseline"] = {
                "path": baseline_path,
                "version": int(os.path.basename(baseline_path)),
                "metrics": measure("baseline"),
                "notes": [f"the baseline has no output {name!r}; its metrics are skipped" for name in lacking],
            }
        evaluation["checks"] = checks(
            evaluation["metrics"], (evaluation["baseline"] or {}).get("metrics"),
            params.get("thresholds") or {}, params.get("tolerance", 0.01),
        )
        if baseline_error:
            evaluation["checks"].append({"check": "baseline", "metric": None, "passed": False, "reason": baseline_error[:2000]})
        evaluation["reasons"] = [c["reason"] for c in evaluation["checks"] if not c["passed"]]
        evaluation["blessed"] = not evaluation["reasons"]
        with open(os.path.join(output_dir, EVALUATION_FILE), "w") as file:
            json.dump(evaluation, file, indent=1)
        write_report(evaluation, os.path.join(output_dir, REPORT_FILE))
        plot_report(evaluation, os.path.join(output_dir, PLOT_FILE))
        return {
            "blessed": evaluation["blessed"],
            "metrics": evaluation["metrics"],
            "baseline_version": evaluation["baseline"] and evaluation["baseline"]["version"],
            "reasons": evaluation["reasons"],
        }

    def describe(self, artifact):
        figures = artifact.figures
        shown = ", ".join(f"{k} {_cell(v)}" for k, v in figures["metrics"].items() if k.endswith(("/auc", "/rmse")))
        against = f" vs baseline v{figures['baseline_version']}" if figures["baseline_version"] else ""
        verdict = "blessed" if figures["blessed"] else f"not blessed ({len(figures['reasons'])} failed checks)"
        return f"{verdict}: {shown}{against}"


def read_evaluation(artifact):
    """The ``evaluation.json`` record of an Evaluator artifact."""
    with open(artifact.file(EVALUATION_FILE)) as file:
        return json.load(file)
