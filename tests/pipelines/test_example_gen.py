import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from pipelines.example_gen import ExampleGen, Source, read_columns, read_types, split_assignment, split_files
from pipelines.runner import run_pipeline
from tests.data.test_census import _row, _write


def _generate(tmp_path, source, **kwargs):
    return run_pipeline([ExampleGen(source, **kwargs)], tmp_path / "root", log=lambda _: None)[0].artifact


def _records(artifact, split):
    dataset = tf.data.TFRecordDataset(split_files(artifact.path, split), compression_type="GZIP")
    return [tf.train.Example.FromString(r.numpy()) for r in dataset]


@pytest.fixture
def frame():
    return pd.DataFrame({
        "id": np.arange(200),
        "user": np.arange(200) % 7,
        "city": ["paris", "rome", None, "oslo"] * 50,
        "price": [1.5, np.nan, 2.0, 3.25] * 50,
        "history": ["3|5", "", "7", None] * 50,
        "click": [0, 1] * 100,
    })


def test_examples_hold_raw_values_and_leave_out_missing_ones(tmp_path, frame):
    artifact = _generate(tmp_path, Source(frame=frame), key="id", list_columns={"history": "|"})
    types = read_types(artifact)
    assert types["user"] == {"type": "int", "list": False} and types["price"]["type"] == "float"
    assert types["city"]["type"] == "string" and types["history"] == {"type": "int", "list": True, "separator": "|"}
    rows = artifact.figures["rows"]
    assert rows["train"] + rows["eval"] == 200 and 120 < rows["train"] < 190
    examples = {e.features.feature["id"].int64_list.value[0]: e.features.feature for e in _records(artifact, "train") + _records(artifact, "eval")}
    assert list(examples[0]["history"].int64_list.value) == [3, 5] and examples[0]["city"].bytes_list.value == [b"paris"]
    assert "price" not in examples[1] and "history" not in examples[1]
    assert "city" not in examples[2] and list(examples[2]["history"].int64_list.value) == [7]
    assert examples[3]["price"].float_list.value == [3.25]
    columns = read_columns(artifact.path, "eval", types, ["price", "history"])
    assert len(columns["price"].lengths) == rows["eval"] and set(columns["price"].lengths) <= {0, 1}


def test_the_split_is_deterministic_and_follows_the_key(frame):
    splits = {"train": 0.7, "eval": 0.3}
    first = split_assignment(frame, splits, "id")
    shuffled = frame.sample(frac=1.0, random_state=3)
    again = pd.Series(split_assignment(shuffled, splits, "id"), index=shuffled.index).sort_index().to_numpy()
    assert (first == again).all()
    assert 0.2 < (first == "eval").mean() < 0.4
    # Without a key, identical rows land in the same split.
    doubled = pd.concat([frame, frame], ignore_index=True)
    by_row = split_assignment(doubled, splits)
    assert (by_row[:200] == by_row[200:]).all()
    with pytest.raises(KeyError, match="data.key: column 'user_id' is not in the data's columns"):
        split_assignment(frame, splits, "user_id")


def test_csv_and_parquet_give_the_same_examples(tmp_path, frame):
    csv, parquet = tmp_path / "d.csv", tmp_path / "d.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False)
    a = _generate(tmp_path / "a", Source(str(csv)), key="id", list_columns={"history": "|"})
    b = _generate(tmp_path / "b", Source(str(parquet)), key="id", list_columns={"history": "|"})
    assert read_types(a) == read_types(b)
    for split in ("train", "eval"):
        assert [e.SerializeToString() for e in _records(a, split)] == [e.SerializeToString() for e in _records(b, split)]


def test_the_source_file_is_part_of_the_cache_key(tmp_path, frame):
    csv = tmp_path / "d.csv"
    frame.to_csv(csv, index=False)
    step = lambda: ExampleGen(Source(str(csv)), key="id")  # noqa: E731
    assert run_pipeline([step()], tmp_path / "root", log=lambda _: None)[0].status == "run"
    assert run_pipeline([step()], tmp_path / "root", log=lambda _: None)[0].status == "cached"
    frame.iloc[:100].to_csv(csv, index=False)
    result = run_pipeline([step()], tmp_path / "root", log=lambda _: None)[0]
    assert result.status == "run" and sum(result.artifact.figures["rows"].values()) == 100


def test_census_income_format(tmp_path):
    path = _write(tmp_path / "census.gz", [_row(30 + i, "Never married" if i % 2 else "Divorced", "50000+." if i % 3 else "- 50000.") for i in range(40)], True)
    artifact = _generate(tmp_path, Source(str(path), "census_income"))
    types = read_types(artifact)
    assert types["age"]["type"] == "int" and types["marital_stat"]["type"] == "string" and len(types) == 42
    records = _records(artifact, "train") + _records(artifact, "eval")
    assert sorted(r.features.feature["age"].int64_list.value[0] for r in records) == list(range(30, 70))


def test_bad_sources_are_named(tmp_path, frame):
    with pytest.raises(FileNotFoundError, match="data.path: no such file"):
        Source(str(tmp_path / "nope.csv")).read()
    (tmp_path / "d.txt").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="data.format: expected one of"):
        Source(str(tmp_path / "d.txt")).read()
    (tmp_path / "empty.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="empty.csv: the file holds no rows"):
        Source(str(tmp_path / "empty.csv")).read()
    with pytest.raises(ValueError, match="data.splits.eval: required key is missing"):
        ExampleGen(Source(frame=frame), splits={"train": 1.0})
    with pytest.raises(KeyError, match=r"list columns \['hist'\] are not in the data's columns"):
        _generate(tmp_path, Source(frame=frame), list_columns={"hist": "|"})
    assert not [p for p in os.listdir(tmp_path / "root" / "ExampleGen") if not p.startswith(".work")]


def test_the_split_of_a_key_is_fixed_across_runs_and_machines():
    """pandas' row hash uses a fixed key: these assignments are part of the data's contract."""
    splits = {"train": 0.5, "eval": 0.5}
    assert list(split_assignment(pd.DataFrame({"id": range(12)}), splits, "id")) == [
        "train", "eval", "train", "train", "train", "train", "eval", "eval", "eval", "train", "train", "eval"]
    assert list(split_assignment(pd.DataFrame({"id": [f"u{i}" for i in range(6)]}), splits, "id")) == [
        "train", "train", "eval", "eval", "train", "eval"]


def test_a_parquet_list_column_is_read_as_lists(tmp_path):
    frame = pd.DataFrame({"id": [1, 2, 3], "history": [[3, 5], [], [7]]})
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    artifact = _generate(tmp_path, Source(str(tmp_path / "d.parquet")), key="id", list_columns={"history": "|"})
    assert read_types(artifact)["history"] == {"type": "int", "list": True, "separator": "|"}
    records = {e.features.feature["id"].int64_list.value[0]: e.features.feature for e in _records(artifact, "train") + _records(artifact, "eval")}
    assert list(records[1]["history"].int64_list.value) == [3, 5] and "history" not in records[2]
