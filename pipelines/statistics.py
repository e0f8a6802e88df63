"""StatisticsGen: per split and column, counts, numeric moments, value counts and vocabularies.

The work is done by ``StatisticsAccumulator``, a combinable accumulator (``add`` a batch of
columns, ``merge`` another accumulator, ``result``), so a Beam ``CombineFn`` can wrap it and run
over shards in parallel; the component here feeds it one split at a time.

``statistics.json`` (one entry per column; keys by column type)::

    {"splits": {"train": {"rows": 48172, "columns": {
        "item_price": {"type": "float", "list": false, "count": 47210, "missing": 962,
                       "missing_rate": 0.02, "min": 1.2, "max": 98.1, "mean": 20.3, "std": 7.9,
                       "non_finite": 0, "histogram": [[lower, upper, count], ...]},
        "clicked_categories": {..., "values_per_row": {"min": 1, "max": 9, "mean": 4.5},
                               "unique": 20, "top_values": [["cat_01", 9120], ...]}}}}}

Numeric columns (int, float) have ``min``/``max``/``mean``/``std`` (population) of their finite
values, ``non_finite`` (NaN and Inf) and a ``histogram`` whose bucket bounds grow by 1 %, so the
share of values outside any range can be read back within 1 %. Int and string columns have
``unique``, ``top_values`` and their full value counts in ``vocab/<split>/<column>.txt``: one
``value<TAB>count`` line per value, most frequent first, ties by value; strings are decoded as
UTF-8 with backslash, newline and carriage return escaped as ``\\\\``, ``\\n``, ``\\r``.
"""

import collections
import json
import math
import os
import re

import numpy as np

from pipelines.component import Component
from pipelines.example_gen import read_columns, read_types

STATISTICS_FILE = "statistics.json"
VOCAB_DIR = "vocab"
TOP_VALUES = 10
HISTOGRAM_GROWTH = 1.01
_KEY_OFFSET = 1 << 20  # keeps every non-zero bucket key away from 0, the key of the value 0
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r"}


def _value_counts(values):
    unique, counts = np.unique(values, return_counts=True)
    return dict(zip(unique.tolist(), counts.tolist()))


def _bucket_keys(values):
    """Histogram bucket of each finite value: 0 for 0, else sign * (exponent + offset)."""
    magnitude = np.abs(values)
    exponent = np.floor(np.log(np.where(magnitude > 0, magnitude, 1.0)) / math.log(HISTOGRAM_GROWTH))
    return np.where(magnitude > 0, np.sign(values) * (exponent + _KEY_OFFSET), 0).astype(np.int64)


def _bucket_bounds(key):
    if key == 0:
        return 0.0, 0.0
    exponent = abs(key) - _KEY_OFFSET
    low, high = HISTOGRAM_GROWTH**exponent, HISTOGRAM_GROWTH ** (exponent + 1)
    return (low, high) if key > 0 else (-high, -low)


def _combine_moments(a, b):
    """(count, mean, sum of squared deviations) of two parts merged (Chan et al.)."""
    (n_a, mean_a, m2_a), (n_b, mean_b, m2_b) = a, b
    n = n_a + n_b
    if n == 0:
        return a
    delta = mean_b - mean_a
    return n, mean_a + delta * n_b / n, m2_a + m2_b + delta * delta * n_a * n_b / n


def ranked(counts):
    """``[(value, count), ...]`` most frequent first, ties by value."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


class _ColumnAccumulator:
    """The running statistics of one column."""

    def __init__(self, spec):
        self.spec = spec
        self.numeric = spec["type"] in ("int", "float")
        self.counted = spec["type"] in ("int", "string")
        self.present = self.missing = self.values = self.non_finite = 0
        self.min_length, self.max_length = math.inf, -math.inf
        self.low, self.high = math.inf, -math.inf
        self.moments = (0, 0.0, 0.0)
        self.histogram = collections.Counter()
        self.counts = collections.Counter()

    def add(self, column):
        lengths = column.lengths[column.lengths > 0]
        self.present += len(lengths)
        self.missing += len(column.lengths) - len(lengths)
        self.values += int(lengths.sum())
        if len(lengths):
            self.min_length = min(self.min_length, int(lengths.min()))
            self.max_length = max(self.max_length, int(lengths.max()))
        if self.numeric:
            finite = column.values[np.isfinite(column.values)]
            self.non_finite += len(column.values) - len(finite)
            if len(finite):
                self.low, self.high = min(self.low, finite.min().item()), max(self.high, finite.max().item())
                as_float = finite.astype(np.float64)
                mean = as_float.mean()
                self.moments = _combine_moments(self.moments, (len(finite), mean, ((as_float - mean) ** 2).sum()))
                self.histogram.update(_value_counts(_bucket_keys(as_float)))
        if self.counted and len(column.values):
            self.counts.update(_value_counts(column.values))

    def merge(self, other):
        self.present += other.present
        self.missing += other.missing
        self.values += other.values
        self.non_finite += other.non_finite
        self.min_length, self.max_length = min(self.min_length, other.min_length), max(self.max_length, other.max_length)
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)
        self.moments = _combine_moments(self.moments, other.moments)
        self.histogram.update(other.histogram)
        self.counts.update(other.counts)

    def result(self):
        """``(stats, value_counts)``; value counts ranked, or ``None`` for float columns."""
        rows = self.present + self.missing
        stats = {
            "type": self.spec["type"],
            "list": self.spec["list"],
            "count": self.present,
            "missing": self.missing,
            "missing_rate": self.missing / rows if rows else 0.0,
        }
        if self.spec["list"]:
            known = self.present > 0
            stats["values_per_row"] = {
                "min": self.min_length if known else None,
                "max": self.max_length if known else None,
                "mean": self.values / self.present if known else None,
            }
        if self.numeric:
            n, mean, m2 = self.moments
            stats.update(
                min=self.low if n else None,
                max=self.high if n else None,
                mean=float(mean) if n else None,
                std=math.sqrt(m2 / n) if n else None,
                non_finite=self.non_finite,
                histogram=[[*_bucket_bounds(key), count] for key, count in sorted(self.histogram.items())],
            )
        if not self.counted:
            return stats, None
        counts = self.counts
        if self.spec["type"] == "string":
            counts = {value.decode("utf-8", errors="backslashreplace"): count for value, count in counts.items()}
        value_counts = ranked(counts)
        stats["unique"] = len(value_counts)
        stats["top_values"] = [[value, count] for value, count in value_counts[:TOP_VALUES]]
        return stats, value_counts


class StatisticsAccumulator:
    """Statistics of one split, built batch by batch and mergeable (a Beam ``CombineFn``'s
    accumulator).

    Args:
        types: ``{column: {"type": "int" | "float" | "string", "list": bool}}`` (``columns.json``).

    Example:

    >>> accumulator = StatisticsAccumulator(types)
    >>> accumulator.add(read_columns(root, "train", types))
    >>> accumulator.result()["columns"]["user_id"]["unique"]
    """

    def __init__(self, types):
        self.rows = 0
        self.columns = {name: _ColumnAccumulator(spec) for name, spec in types.items()}

    def add(self, columns):
        """Adds a batch: ``{column: Column}`` for every column, all with the same rows."""
        missing = sorted(set(self.columns) - set(columns))
        if missing:
            raise KeyError(f"StatisticsAccumulator.add: the batch lacks columns {missing}. Received: {sorted(columns)}")
        self.rows += len(next(iter(columns.values())).lengths) if columns else 0
        for name, accumulator in self.columns.items():
            accumulator.add(columns[name])

    def merge(self, other):
        """Adds the rows another accumulator (of the same columns) has seen."""
        if set(other.columns) != set(self.columns):
            raise ValueError(f"Cannot merge statistics of columns {sorted(other.columns)} into {sorted(self.columns)}.")
        self.rows += other.rows
        for name, accumulator in self.columns.items():
            accumulator.merge(other.columns[name])
        return self

    def result(self):
        """``{"rows": n, "columns": {column: stats}, "value_counts": {column: [(value, count)]}}``."""
        columns, value_counts = {}, {}
        for name, accumulator in self.columns.items():
            columns[name], counts = accumulator.result()
            if counts is not None:
                value_counts[name] = counts
        return {"rows": self.rows, "columns": columns, "value_counts": value_counts}


def _escape(value):
    return "".join(_ESCAPES.get(char, char) for char in str(value))


def _unescape(text):
    return re.sub(r"\\(.)", lambda match: _UNESCAPES.get(match[1], match[1]), text)


def vocab_path(root, split, column):
    return os.path.join(root, VOCAB_DIR, split, f"{column}.txt")


def write_value_counts(root, split, column, value_counts):
    path = vocab_path(root, split, column)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as file:
        file.writelines(f"{_escape(value)}\t{count}\n" for value, count in value_counts)


def read_value_counts(artifact, split, column, kind):
    """The ranked ``[(value, count), ...]`` of an int or string column of one split.

    Args:
        artifact: StatisticsGen's artifact.
        split: e.g. ``"train"``.
        column: the column name.
        kind: the column's type, ``"int"`` or ``"string"`` (values come back as ``int`` or ``str``).
    """
    cast = int if kind == "int" else _unescape
    with open(vocab_path(artifact.path, split, column), encoding="utf-8", newline="\n") as file:
        return [(cast(value), int(count)) for value, count in (line[:-1].rsplit("\t", 1) for line in file)]


def read_statistics(artifact):
    """``statistics.json`` of a StatisticsGen artifact: ``{"splits": {split: {"rows", "columns"}}}``."""
    with open(artifact.file(STATISTICS_FILE)) as file:
        return json.load(file)


class StatisticsGen(Component):
    """Computes the statistics of every split of ExampleGen's examples.

    Args:
        params: ``{"execution": "auto" | "beam" | "pandas", "beam_options": [...]}`` (how, not
            what: the statistics are the same either way, so neither is part of the cache key).
        examples: the ExampleGen step.
        name: the step's name (default ``"StatisticsGen"``).
    """

    INPUTS = ("examples",)

    def __init__(self, params=None, name=None, **inputs):
        from pipelines.beam import use_beam  # pipelines.beam imports this module

        params = dict(params or {})
        self.use_beam, self.beam_options = use_beam(params.pop("execution", "auto")), params.pop("beam_options", None)
        super().__init__(params, name, **inputs)

    def run(self, inputs, output_dir):
        examples = inputs["examples"]
        types = read_types(examples)
        splits = {}
        for split in examples.figures["rows"]:
            if self.use_beam:
                from pipelines.beam import compute_statistics  # pipelines.beam imports this module

                result = compute_statistics(examples.path, split, types, self.beam_options)
            else:
                accumulator = StatisticsAccumulator(types)
                accumulator.add(read_columns(examples.path, split, types))
                result = accumulator.result()
            for column, value_counts in result["value_counts"].items():
                write_value_counts(output_dir, split, column, value_counts)
            splits[split] = {"rows": result["rows"], "columns": result["columns"]}
        with open(os.path.join(output_dir, STATISTICS_FILE), "w") as file:
            json.dump({"splits": splits}, file, indent=1)
        return {"rows": {split: stats["rows"] for split, stats in splits.items()}, "columns": len(types),
                "execution": "beam" if self.use_beam else "pandas"}

    def describe(self, artifact):
        rows = ", ".join(f"{split} {count:,}" for split, count in artifact.figures["rows"].items())
        return f"rows {rows}; {artifact.figures['columns']} columns ({artifact.figures['execution']})"
