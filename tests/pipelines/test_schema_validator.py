import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.example_gen import Column, ExampleGen, Source, split_assignment
from pipelines.runner import PipelineStopped, run_pipeline
from pipelines.schema import SchemaGen, check_features, check_schema, infer_schema, load_schema
from pipelines.statistics import StatisticsAccumulator, StatisticsGen
from pipelines.validator import ExampleValidator, find_anomalies, format_report

TYPES = {
    "user": {"type": "int", "list": False},
    "cat": {"type": "string", "list": False},
    "price": {"type": "float", "list": False},
    "click": {"type": "int", "list": False},
    "note": {"type": "string", "list": False},
}
FEATURES = [{"name": "user", "kind": "sparse", "embed_dim": 4}, {"name": "cat", "kind": "sparse", "embed_dim": 4},
            {"name": "price", "kind": "dense"}]
TASKS = [{"name": "ctr", "type": "classification", "label": "click"}]


def split_statistics(rows):
    """Statistics and value counts of one split from ``{column: [value or None per row]}``."""
    accumulator = StatisticsAccumulator(TYPES)
    accumulator.add({
        name: Column(np.array([v for v in values if v is not None]), np.array([v is not None for v in values], int))
        for name, values in rows.items()
    })
    result = accumulator.result()
    return {"rows": result["rows"], "columns": result["columns"]}, dict(result["value_counts"])


TRAIN = {"user": [1, 2, 2, 3], "cat": [b"a", b"b", b"a", b"a"], "price": [1.0, None, 3.0, 2.0], "click": [0, 1, 0, 0],
         "note": [b"n", b"n", b"n", b"n"]}


def test_infer_schema_exact():
    stats, counts = split_statistics(TRAIN)
    schema = infer_schema(stats, counts, FEATURES, TASKS)
    assert schema["columns"]["user"] == {
        "type": "int", "list": False, "role": "feature", "required_column": True, "required": True,
        "max_missing_rate": 0.0, "domain": [1, 2, 3], "max_unseen_rate": 0.05, "min": 1, "max": 3,
        "max_out_of_range_rate": 0.01}
    assert schema["columns"]["price"] == {
        "type": "float", "list": False, "role": "feature", "required_column": True, "required": False,
        "max_missing_rate": 0.3, "min": 1.0, "max": 3.0, "max_out_of_range_rate": 0.01}
    assert schema["columns"]["click"]["domain"] == [0, 1]
    assert schema["columns"]["click"]["role"] == "label"
    assert schema["columns"]["cat"]["domain"] == ["a", "b"]
    assert schema["columns"]["note"] == {"type": "string", "list": False, "role": "unused", "required_column": False,
                                         "required": True, "max_missing_rate": 0.0}
    assert check_schema(schema)["columns"]["user"] == schema["columns"]["user"]


def test_load_schema_names_the_key_path(tmp_path):
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump({"columns": {"user_id": {"type": "int", "list": False, "max_unseen_rate": "x"}}}))
    with pytest.raises(ValueError) as info:
        load_schema(path)
    assert str(info.value) == f"{path}: columns.user_id.max_unseen_rate: expected a number in [0, 1]. Received: 'x'"
    path.write_text(yaml.safe_dump({"columns": {"user_id": {"type": "int", "list": False, "max_unseen": 0.1}}}))
    with pytest.raises(ValueError, match=r"columns.user_id.max_unseen: unknown column key; did you mean 'max_unseen_rate'"):
        load_schema(path)
    path.write_text(yaml.safe_dump({"columns": {"price": {"type": "float", "list": False, "domain": [1.0]}}}))
    with pytest.raises(ValueError, match=r"columns.price.domain: only int and string columns have a domain"):
        load_schema(path)


def test_feature_entries_errors():
    with pytest.raises(ValueError, match=r"features\[0\].kind: expected one of .*Received: 'sparce'; did you mean 'sparse'"):
        check_features([{"name": "user", "kind": "sparce"}])
    with pytest.raises(ValueError, match=r"features\[0\].embed_dims: unknown sparse feature key; did you mean 'embed_dim'"):
        check_features([{"name": "user", "kind": "sparse", "embed_dims": 4}])
    with pytest.raises(ValueError, match=r"features\[0\].name: no column 'usr' in the data; did you mean 'user'"):
        check_features([{"name": "usr", "kind": "sparse"}], TYPES)
    with pytest.raises(ValueError, match=r"features\[0\].kind: 'dense' needs a numeric column; 'cat' holds strings"):
        check_features([{"name": "cat", "kind": "dense"}], TYPES)


def test_find_anomalies_kinds():
    train, train_counts = split_statistics(TRAIN)
    schema = check_schema(infer_schema(train, train_counts, FEATURES, TASKS))
    eval_rows = {"user": [1, 9, 9, 2], "cat": [b"a", b"a", b"a", b"a"], "price": [1.0, None, None, np.inf],
                 "click": [0, 1, 2, 0], "note": [b"n", b"n", b"n", b"n"]}
    evaluation, eval_counts = split_statistics(eval_rows)
    evaluation["columns"]["extra"] = evaluation["columns"].pop("note")
    statistics = {"splits": {"train": train, "eval": evaluation}}
    counts = {"train": train_counts, "eval": eval_counts}
    anomalies = find_anomalies(statistics, schema, lambda split, column: counts[split][column])
    assert [(a["split"], a["column"], a["kind"], a["severity"]) for a in anomalies] == [
        ("eval", "user", "unseen_values", "error"),
        ("eval", "user", "out_of_range", "error"),
        ("eval", "price", "missing_values", "error"),
        ("eval", "price", "non_finite", "error"),
        ("eval", "click", "label_domain", "error"),
        ("eval", "click", "out_of_range", "error"),
        ("eval", "note", "missing_column", "warning"),
        ("eval", "extra", "new_column", "warning"),
    ]
    assert anomalies[0]["detail"] == "50.00% of values are outside the domain (at most 5.00% allowed), e.g. [9]"
    assert anomalies[1]["detail"] == ("50.00% of values are outside [1, 3] (at most 1.00% allowed); "
                                      "the data spans [1, 9]")
    assert format_report(anomalies).splitlines()[2] == "6 errors, 2 warnings."
    evaluation["columns"]["user"]["type"] = "string"
    kinds = [(a["column"], a["kind"]) for a in find_anomalies(statistics, schema, lambda s, c: counts[s][c])]
    assert ("user", "type_change") in kinds and ("user", "unseen_values") not in kinds


def pipeline(frame, features, tasks, pinned=None):
    examples = ExampleGen(Source(frame=frame), key="id")
    statistics = StatisticsGen(examples=examples)
    schema = SchemaGen({"features": features, "tasks": tasks, "pinned": pinned}, statistics=statistics)
    return [examples, statistics, schema, ExampleValidator(statistics=statistics, schema=schema)]


def click_frame(rows=400):
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "id": np.arange(rows),
        "category": [f"cat_{i % 7}" for i in range(rows)],
        "price": rng.uniform(1.0, 50.0, rows),
        "click": rng.integers(0, 2, rows),
    })


CLICK_TASKS = [{"name": "ctr", "type": "classification", "label": "click"}]
PIPELINE_FEATURES = [{"name": "category", "kind": "sparse", "embed_dim": 4}, {"name": "price", "kind": "dense"}]


def test_corrupted_eval_columns_stop_the_pipeline(tmp_path):
    frame = click_frame()
    evaluation = split_assignment(frame, {"train": 0.8, "eval": 0.2}, "id") == "eval"
    frame.loc[evaluation, "category"] = [f"garbage_{i}" for i in range(evaluation.sum())]
    frame.loc[evaluation, "price"] *= 1000
    with pytest.raises(PipelineStopped) as info:
        run_pipeline(pipeline(frame, PIPELINE_FEATURES, CLICK_TASKS), tmp_path, log=lambda l: None)
    assert info.value.reason.startswith(
        "2 error anomalies: category: unseen_values (eval); price: out_of_range (eval).")
    with open(info.value.artifact.file("anomalies.md")) as file:
        assert "| error | eval | category | unseen_values | 100.00% of values are outside the domain" in file.read()


def test_clean_data_passes_and_a_pinned_schema_reruns_when_edited(tmp_path):
    results = run_pipeline(pipeline(click_frame(), PIPELINE_FEATURES, CLICK_TASKS), tmp_path / "a", log=lambda l: None)
    assert results[3].summary == "0 errors, 0 warnings"
    pinned = tmp_path / "schema.yaml"
    schema = load_schema(results[2].artifact.file("schema.yaml"))
    schema["columns"]["category"]["domain"] = ["cat_0"]
    pinned.write_text(yaml.safe_dump(schema))
    with pytest.raises(PipelineStopped, match=r"category: unseen_values \(train\)"):
        run_pipeline(pipeline(click_frame(), PIPELINE_FEATURES, CLICK_TASKS, pinned=str(pinned)), tmp_path / "b",
                     log=lambda l: None)
    schema["columns"]["category"]["max_unseen_rate"] = 1.0
    pinned.write_text(yaml.safe_dump(schema))
    results = run_pipeline(pipeline(click_frame(), PIPELINE_FEATURES, CLICK_TASKS, pinned=str(pinned)), tmp_path / "b",
                           log=lambda l: None)
    assert [r.status for r in results] == ["cached", "cached", "run", "run"]
    assert results[2].summary == f"4 columns; pinned {pinned}"


def test_rows_without_a_label_stop_the_pipeline_before_training(tmp_path):
    frame = click_frame().astype({"click": "Int64"})
    frame.loc[::10, "click"] = pd.NA
    with pytest.raises(PipelineStopped, match=r"click: missing_values \(train\)"):
        run_pipeline(pipeline(frame, PIPELINE_FEATURES, CLICK_TASKS), tmp_path, log=lambda l: None)
