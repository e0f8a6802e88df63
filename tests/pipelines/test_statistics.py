import json
import math

import numpy as np
import pandas as pd
import pytest

from pipelines.example_gen import Column, ExampleGen, Source, split_assignment
from pipelines.runner import run_pipeline
from pipelines.statistics import StatisticsAccumulator, StatisticsGen, read_statistics, read_value_counts

TYPES = {
    "a": {"type": "int", "list": False},
    "f": {"type": "float", "list": False},
    "s": {"type": "string", "list": True, "separator": "|"},
}


def columns(rows):
    """``{column: Column}`` from ``{column: [per-row list of values]}``."""
    return {
        name: Column(np.array([v for row in values for v in row]), np.array([len(row) for row in values]))
        for name, values in rows.items()
    }


ROWS = {
    "a": [[3], [], [1], [3], [2]],
    "f": [[1.0], [np.inf], [3.0], [-2.0], []],
    "s": [[b"x", b"y"], [], [b"y"], [b"z", b"y", b"x"], [b"y"]],
}


def test_accumulator_exact_statistics():
    accumulator = StatisticsAccumulator(TYPES)
    accumulator.add(columns(ROWS))
    result = accumulator.result()
    a, f, s = (result["columns"][name] for name in "afs")
    assert result["rows"] == 5
    assert {k: a[k] for k in ("count", "missing", "missing_rate", "min", "max", "mean", "non_finite", "unique")} == {
        "count": 4, "missing": 1, "missing_rate": 0.2, "min": 1, "max": 3, "mean": 2.25, "non_finite": 0, "unique": 3}
    assert a["std"] == pytest.approx(math.sqrt(0.6875))
    assert a["top_values"] == [[3, 2], [1, 1], [2, 1]]
    assert [count for _, _, count in a["histogram"]] == [1, 1, 2]
    assert all(low <= value < high for value, (low, high, _) in zip([1, 2, 3], a["histogram"]))
    assert [high / low for low, high, _ in a["histogram"]] == pytest.approx([1.01] * 3)
    assert (f["count"], f["non_finite"], f["min"], f["max"]) == (4, 1, -2.0, 3.0)
    assert f["mean"] == pytest.approx(2 / 3)
    assert f["std"] == pytest.approx(math.sqrt(114 / 27))
    assert "top_values" not in f and "f" not in result["value_counts"]
    assert s["values_per_row"] == {"min": 1, "max": 3, "mean": 1.75}
    assert s["top_values"] == [["y", 4], ["x", 2], ["z", 1]]
    assert "min" not in s
    assert result["value_counts"]["a"] == [(3, 2), (1, 1), (2, 1)]


def test_merge_equals_one_pass():
    whole = StatisticsAccumulator(TYPES)
    whole.add(columns(ROWS))
    first, second = StatisticsAccumulator(TYPES), StatisticsAccumulator(TYPES)
    first.add(columns({name: rows[:2] for name, rows in ROWS.items()}))
    second.add(columns({name: rows[2:] for name, rows in ROWS.items()}))
    merged = first.merge(second).result()
    expected = whole.result()
    for name in TYPES:
        for key, value in expected["columns"][name].items():
            assert merged["columns"][name][key] == (pytest.approx(value) if key in ("mean", "std") else value), key
    assert merged["value_counts"] == expected["value_counts"]


def test_add_names_missing_columns():
    with pytest.raises(KeyError, match=r"lacks columns \['s'\]"):
        StatisticsAccumulator(TYPES).add(columns({"a": [[1]], "f": [[1.0]]}))


def test_statistics_gen_writes_json_and_vocabularies(tmp_path):
    frame = pd.DataFrame({
        "id": range(40),
        "city": ["b", "a", "c\td", "a\nz"] * 10,
        "price": [float(i) for i in range(40)],
    })
    examples = ExampleGen(Source(frame=frame), key="id")
    results = run_pipeline([examples, StatisticsGen(examples=examples)], tmp_path, log=lambda line: None)
    artifact = results[1].artifact
    statistics = read_statistics(artifact)
    train = frame[split_assignment(frame, {"train": 0.8, "eval": 0.2}, "id") == "train"]
    assert {split: stats["rows"] for split, stats in statistics["splits"].items()} == {
        "train": len(train), "eval": 40 - len(train)}
    counts = train["city"].value_counts()
    expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    assert read_value_counts(artifact, "train", "city", "string") == expected
    assert statistics["splits"]["train"]["columns"]["price"]["max"] == train["price"].max()
    assert results[1].summary == f"rows train {len(train)}, eval {40 - len(train)}; 3 columns (pandas)"
    with open(artifact.file("statistics.json")) as file:
        assert json.load(file) == statistics
