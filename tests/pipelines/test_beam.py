"""The Beam path of ExampleGen and StatisticsGen gives what the pandas path gives.

Tests marked ``beam`` run in the Beam venv: ``.venv-beam/bin/python -m pytest -m beam
tests/pipelines`` (``.ci/beam``); ``test_use_beam_follows_execution`` runs everywhere.
"""

import math
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from pipelines.beam import beam_available, compute_statistics, use_beam, write_examples
from pipelines.example_gen import (
    Source,
    column_types,
    read_columns,
    split_assignment,
    split_dir,
    split_files,
    to_examples,
    write_shards,
)
from pipelines.statistics import StatisticsAccumulator

requires_beam = pytest.mark.skipif(
    not beam_available(),
    reason="apache_beam cannot be imported here; run in the venv .ci/beam builds from requirements-beam.lock",
)

SPLITS = {"train": 0.75, "eval": 0.25}
LIST_COLUMNS = {"tags": "|"}


@pytest.fixture(scope="module")
def frame():
    """60 rows with gaps in every column but the key, an infinity and a list column."""
    rng = np.random.default_rng(3)
    rows = 60
    price = np.where(rng.random(rows) < 0.2, np.nan, rng.random(rows) * 100)
    price[7] = np.inf
    return pd.DataFrame(
        {
            "user_id": np.arange(rows),
            "price": price,
            "age": pd.array(np.where(rng.random(rows) < 0.2, None, rng.integers(18, 90, rows)), dtype="Int64"),
            "city": rng.choice(["paris", "oslo", "lima", None], rows),
            "tags": rng.choice(["1|2", "3", "2|3|5", "", None], rows),
        }
    )


def pandas_examples(frame, key, output_dir, rows_per_shard):
    """The pandas path's shards (ExampleGen.run's loop), as the reference."""
    frame = Source(frame=frame).read()
    types = column_types(frame, LIST_COLUMNS)
    assignment = split_assignment(frame, SPLITS, key)
    for split in SPLITS:
        write_shards(to_examples(frame[assignment == split], types), split_dir(output_dir, split), rows_per_shard)
    return types, {split: int((assignment == split).sum()) for split in SPLITS}


def parsed_records(root, split):
    """The split's examples as ``{feature: [values]}`` dicts, sorted by user_id."""
    records = []
    for serialized in tf.data.TFRecordDataset(split_files(root, split), compression_type="GZIP"):
        example = tf.train.Example.FromString(serialized.numpy())
        features = example.features.feature.items()
        records.append({name: list(getattr(f, f.WhichOneof("kind")).value) for name, f in features})
    return sorted(records, key=lambda record: record["user_id"])


@pytest.mark.beam
@requires_beam
@pytest.mark.parametrize("key", ["user_id", None])
def test_beam_examples_equal_pandas_examples(frame, key, tmp_path):
    types, pandas_rows = pandas_examples(frame, key, tmp_path / "pandas", rows_per_shard=100)
    rows = write_examples(Source(frame=frame), types, SPLITS, key, tmp_path / "beam", rows_per_shard=100, chunk_rows=17)
    assert rows == pandas_rows
    assert sum(rows.values()) == 60 and min(rows.values()) > 0
    for split in SPLITS:
        beam_records = parsed_records(tmp_path / "beam", split)
        assert beam_records == parsed_records(tmp_path / "pandas", split)
        assert len(beam_records) == rows[split]
    some = parsed_records(tmp_path / "beam", "train")
    assert any("price" not in r for r in some) and any("tags" not in r for r in some)
    assert any(len(r.get("tags", [])) == 3 for r in some)


@pytest.mark.beam
@requires_beam
def test_beam_shards_are_named_like_pandas_shards(frame, tmp_path):
    types = column_types(Source(frame=frame).read(), LIST_COLUMNS)
    write_examples(frame, types, SPLITS, "user_id", tmp_path, rows_per_shard=10)
    for split, fraction in SPLITS.items():
        shards = math.ceil(60 * fraction / 10)
        names = sorted(os.listdir(split_dir(tmp_path, split)))
        assert names == [f"data_tfrecord-{i:05d}-of-{shards:05d}.gz" for i in range(shards)]
        assert [os.path.basename(path) for path in split_files(tmp_path, split)] == names


@pytest.mark.beam
@requires_beam
# BatchElements sizes batches by a line fit over their timings, ill-conditioned on tiny batches.
@pytest.mark.filterwarnings("ignore:Polyfit may be poorly conditioned")
def test_beam_statistics_equal_pandas_statistics(frame, tmp_path):
    types, _ = pandas_examples(frame, "user_id", tmp_path, rows_per_shard=20)
    non_finite = 0
    for split in SPLITS:
        reference = StatisticsAccumulator(types)
        reference.add(read_columns(tmp_path, split, types))
        expected = reference.result()
        # Batches of 4 rows: the combine merges many accumulators, as it would across workers.
        result = compute_statistics(tmp_path, split, types, batch_size=4)
        assert result["rows"] == expected["rows"] > 0
        assert result["value_counts"] == expected["value_counts"]
        assert set(result["columns"]) == set(types)
        for name, stats in result["columns"].items():
            want = dict(expected["columns"][name])
            if stats["type"] in ("int", "float"):
                # Moments merged batch by batch differ from one pass in the last bits only.
                moments = (want.pop("mean"), want.pop("std"))
                assert (stats.pop("mean"), stats.pop("std")) == pytest.approx(moments, rel=1e-9)
            assert stats == want, (split, name)
        non_finite += result["columns"]["price"]["non_finite"]
    assert non_finite == 1


@pytest.mark.beam
@requires_beam
def test_statistics_of_a_missing_split_name_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="'test'"):
        compute_statistics(tmp_path, "test", {"a": {"type": "int", "list": False}})


def test_use_beam_follows_execution():
    assert use_beam("pandas") is False
    assert use_beam("auto") is beam_available()
    with pytest.raises(ValueError, match="'spark'"):
        use_beam("spark")
    if beam_available():
        assert use_beam("beam") is True
    else:
        with pytest.raises(ImportError, match="requirements-beam.lock"):
            use_beam("beam")


@pytest.mark.beam
@requires_beam
def test_the_pipeline_on_beam_builds_the_same_features_as_on_pandas(tmp_path, small_frame):
    from pipelines.pipeline import create_pipeline
    from pipelines.runner import run_pipeline
    from pipelines.transform import read_transform
    from tests.pipelines.conftest import small_config

    transforms = {}
    for execution in ("beam", "pandas"):
        config = small_config(tmp_path / execution, data={"path": "unused.csv", "key": "impression_id", "execution": execution})
        steps = create_pipeline(config, frame=small_frame)[:5]
        results = run_pipeline(steps, config["pipeline_root"], log=lambda _: None)
        assert results[0].artifact.figures["execution"] == results[1].artifact.figures["execution"] == execution
        transforms[execution] = read_transform(results[-1].artifact.path)
    (beam_features, beam_defaults), (features, defaults) = transforms["beam"], transforms["pandas"]
    for ours, theirs in zip(beam_features, features):
        assert type(ours) is type(theirs) and ours.name == theirs.name
        if hasattr(ours, "vocabulary"):
            assert ours.vocabulary == theirs.vocabulary
        else:  # mean and std: sums merged in another order
            assert (ours.mean, ours.std) == pytest.approx((theirs.mean, theirs.std), rel=1e-9)
    assert beam_defaults.keys() == defaults.keys()
    for name, value in defaults.items():
        assert beam_defaults[name] == (pytest.approx(value, rel=1e-9) if isinstance(value, float) else value)
