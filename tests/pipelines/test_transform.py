import json

import numpy as np
import pandas as pd
import pytest

from pipelines.example_gen import Column, ExampleGen, Source
from pipelines.runner import run_pipeline
from pipelines.schema import SchemaGen
from pipelines.statistics import StatisticsAccumulator, StatisticsGen
from pipelines.transform import Transform, build_features, build_vocabulary, read_transform
from tf_mtl.features.spec import DenseFeature, SequenceFeature, SparseFeature

TYPES = {
    "item": {"type": "int", "list": False},
    "history": {"type": "int", "list": True, "separator": "|"},
    "city": {"type": "string", "list": False},
    "price": {"type": "float", "list": False},
}
ROWS = {
    "item": [[5], [7], [5], [9]],
    "history": [[7, 0, 9], [9], [], [9, 7]],
    "city": [[b"rome"], [b"paris"], [b"rome"], []],
    "price": [[1.0], [3.0], [2.0], [2.0]],
}


def train_statistics():
    accumulator = StatisticsAccumulator(TYPES)
    accumulator.add({name: Column(np.array([v for row in rows for v in row]), np.array([len(row) for row in rows]))
                     for name, rows in ROWS.items()})
    result = accumulator.result()
    return {"rows": result["rows"], "columns": result["columns"]}, result["value_counts"]


def build(entries, schema_columns=None):
    statistics, counts = train_statistics()
    return build_features(entries, statistics, counts.__getitem__, schema_columns or {})


def test_build_vocabulary_ranks_filters_and_caps():
    counts = {"b": 3, "a": 3, "c": 1, "d": 2}
    assert build_vocabulary(counts) == ["a", "b", "d", "c"]
    assert build_vocabulary(counts, max_vocab=2) == ["a", "b"]
    assert build_vocabulary(counts, min_count=2, exclude={"a"}) == ["b", "d"]


def test_shared_vocabulary_dense_normalization_and_defaults():
    features, defaults, derived = build([
        {"name": "item", "kind": "sparse", "embed_dim": 4, "shared_embed_name": "items"},
        {"name": "history", "kind": "sequence", "embed_dim": 4, "shared_embed_name": "items", "max_len": 3},
        {"name": "city", "kind": "sparse", "embed_dim": 2, "num_oov_buckets": 2},
        {"name": "price", "kind": "dense"},
    ])
    # item counts 5:2, 7:1, 9:1 plus history 7:2, 9:3, 0:1 (0 is the padding value, left out).
    assert features == (
        SparseFeature("item", None, 4, vocabulary=[9, 7, 5], shared_embed_name="items"),
        SequenceFeature("history", None, 4, "mean", 3, vocabulary=[9, 7, 5], shared_embed_name="items"),
        SparseFeature("city", None, 2, vocabulary=["rome", "paris"], num_oov_buckets=2),
        DenseFeature("price", mean=2.0, std=float(np.sqrt(0.5))),
    )
    assert defaults == {"item": -1, "city": "", "price": 2.0}
    assert derived["history"] == "vocabulary of 3 values shared as 'items'"
    assert derived["price"] == "mean 2, std 0.707107"


def test_vocab_size_hashing_minmax_and_schema_domain():
    features, defaults, derived = build(
        [{"name": "item", "kind": "sparse", "embed_dim": 4, "vocab_size": 100},
         {"name": "city", "kind": "sparse", "embed_dim": 2, "vocab_size": 50},
         {"name": "history", "kind": "sequence", "embed_dim": 2, "max_len": 2, "min_count": 2, "pooling": "sum"},
         {"name": "price", "kind": "dense", "normalize": "minmax"}],
        schema_columns={"history": {"domain": [7, 9]}},
    )
    assert features[0] == SparseFeature("item", 100, 4)
    assert features[1] == SparseFeature("city", 50, 2, dtype="string")
    assert features[2].vocabulary == (9, 7) and features[2].pooling == "sum"
    assert (features[3].min_value, features[3].max_value) == (1.0, 3.0)
    assert derived["city"] == "hashed into 50 buckets"
    assert derived["item"] == "ids used as they are (vocab_size 100)"


def test_errors_name_the_entry():
    with pytest.raises(ValueError, match=r"features\[0\].max_vocabs: unknown sparse feature key; did you mean 'max_vocab'"):
        build([{"name": "item", "kind": "sparse", "embed_dim": 4, "max_vocabs": 3}])
    with pytest.raises(ValueError, match=r"features\[1\].max_vocab: 'history' shares the table 'items' with 'item'"):
        build([{"name": "item", "kind": "sparse", "embed_dim": 4, "shared_embed_name": "items"},
               {"name": "history", "kind": "sequence", "embed_dim": 4, "shared_embed_name": "items", "max_len": 3,
                "max_vocab": 2}])
    with pytest.raises(ValueError, match=r"features\[0\]\.embed_dim: SparseFeature 'item': expected a positive integer. Received: 0"):
        build([{"name": "item", "kind": "sparse", "embed_dim": 0}])
    with pytest.raises(ValueError, match=r"features\[0\].normalize: expected one of .*Received: 'zscore'"):
        build([{"name": "price", "kind": "dense", "normalize": "zscore"}])


def test_transform_component_round_trip(tmp_path):
    frame = pd.DataFrame({"id": range(50), "city": ["rome", "paris", "rome", "oslo", "rome"] * 10,
                          "price": [float(i % 5) for i in range(50)], "click": [0, 1] * 25})
    features = [{"name": "city", "kind": "sparse", "embed_dim": 2}, {"name": "price", "kind": "dense"}]
    examples = ExampleGen(Source(frame=frame), key="id")
    statistics = StatisticsGen(examples=examples)
    schema = SchemaGen({"features": features, "tasks": [{"name": "ctr", "type": "classification", "label": "click"}]},
                       statistics=statistics)
    results = run_pipeline([examples, statistics, schema, Transform({"features": features}, statistics=statistics, schema=schema)], tmp_path,
                           log=lambda line: None)
    artifact = results[3].artifact
    spec, defaults = read_transform(artifact.path)
    assert spec[0].vocabulary[0] == "rome" and set(spec[0].vocabulary) == {"rome", "paris", "oslo"}
    assert defaults["city"] == "" and defaults["price"] == pytest.approx(spec[1].mean)
    with open(artifact.file("transform.json")) as file:
        assert set(json.load(file)) == {"features", "defaults", "derived"}
    assert results[3].summary == "2 features, 1 with a vocabulary"
