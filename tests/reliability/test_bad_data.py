"""Bad input in data: missing and extra columns, wrong dtypes, NaN/Inf in dense features, labels
outside {0, 1}, unknown ids, empty data and sequences longer than ``max_len``, each through the
entry points a user calls (``to_feature_arrays``, ``read_csv``, ``read_parquet``,
``DataGenerator``, ``MultiTaskData``, ``model.fit``/``model(x)``, ``MTLTrainer``)."""

import math

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tf_mtl.compat import keras
from tf_mtl.data import DataGenerator, MultiTaskData, read_csv, read_parquet, to_feature_arrays
from tf_mtl.features import DenseFeature, SequenceFeature, SparseFeature, parse_examples
from tf_mtl.models import SharedBottom
from tf_mtl.training import MTLTrainer

pytestmark = pytest.mark.reliability

AREA = "Bad input: data"
USER = SparseFeature("user", 50, 4)
CITY = SparseFeature("city", None, 4, vocabulary=["paris", "rome", "oslo"])
QUERY = SparseFeature("query", 16, 4, dtype="string")
ITEMS = SequenceFeature("items", 30, 4, "mean", 5)
PRICE = DenseFeature("price", mean=2.0, std=1.0)
VEC = DenseFeature("vec", embed_dim=3)
FEATURES = (USER, CITY, QUERY, ITEMS, PRICE, VEC)
# A CSV cell holds one value: every feature but the vector.
CSV_FEATURES = FEATURES[:-1]
TASK_TYPES, TASK_NAMES = ("classification", "regression"), ("ctr", "gmv")


def _frame(n=40, seed=0):
    """Raw columns as a file holds them (sequences joined by '|') and the two labels."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user": rng.integers(0, 50, n),
            "city": rng.choice(["paris", "rome", "oslo"], n),
            "query": [f"q{i}" for i in rng.integers(0, 100, n)],
            "items": ["|".join(map(str, rng.integers(1, 30, rng.integers(0, 8)))) for _ in range(n)],
            "price": rng.normal(2.0, 1.0, n),
            "vec": list(rng.normal(size=(n, 3))),
            "ctr": rng.integers(0, 2, n).astype(np.float64),
            "gmv": rng.normal(size=n),
        }
    )


def _labels(frame):
    return {name: frame[name].to_numpy(np.float32) for name in TASK_NAMES}


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    return SharedBottom(FEATURES, TASK_TYPES, {"dims": [8]}, [{"dims": [4]}, {"dims": [4]}], task_names=TASK_NAMES)


@pytest.fixture(scope="module")
def model():
    return _model()


def _error(call):
    """The exception ``call`` raises (``None`` when it raises none)."""
    try:
        call()
    except Exception as err:  # noqa: BLE001 - the test inspects whatever is raised
        return err
    return None


def _names(err, name):
    return err is not None and (f"'{name}'" in str(err) or f'"{name}"' in str(err))


def _rows_named(err, name, count, first):
    """The error names the column, the number of bad rows and the first bad row."""
    text = str(err)
    return _names(err, name) and f": {count} row(s) hold" in text and f" at row {first};" in text


# ---------------------------------------------------------------------------- missing and extra columns


def test_missing_columns_are_refused_naming_the_column(reliability, model, tmp_path):
    frame = _frame()
    x, y = to_feature_arrays(frame, FEATURES), _labels(frame)
    model.compile(optimizer="adam")
    trainer = MTLTrainer(_model(), list(TASK_TYPES), n_epoch=1, model_path=str(tmp_path / "run"), verbose=0)

    def csv(dropped):
        path = tmp_path / f"without_{dropped}.csv"
        frame.drop(columns=["vec", dropped]).to_csv(path, index=False)
        return read_csv(path, CSV_FEATURES, label_columns=list(TASK_NAMES))

    def parquet(dropped):
        path = tmp_path / f"without_{dropped}.parquet"
        frame.drop(columns=dropped).to_parquet(path)
        return read_parquet(path, FEATURES, label_columns=list(TASK_NAMES))

    def without(dropped):
        return {k: v for k, v in x.items() if k != dropped}

    entry_points = {
        "to_feature_arrays": lambda dropped: to_feature_arrays(frame.drop(columns=dropped), FEATURES),
        "read_csv": csv,
        "read_parquet": parquet,
        "DataGenerator (x_val)": lambda dropped: DataGenerator(x, y).generate_dataloader(x_val=without(dropped), y_val=y),
        "MultiTaskData": lambda dropped: MultiTaskData(FEATURES, TASK_TYPES, TASK_NAMES, without(dropped), y),
        "model.fit": lambda dropped: model.fit(without(dropped), y, epochs=1, verbose=0),
        "MTLTrainer.fit": lambda dropped: trainer.fit(tf.data.Dataset.from_tensor_slices((without(dropped), y)).batch(8)),
    }
    tried = 0
    for entry, call in entry_points.items():
        for feature in CSV_FEATURES if entry == "read_csv" else FEATURES:
            err = _error(lambda: call(feature.name))
            # KeyError from the converters and readers, ValueError from the checks and Keras: no crash
            # of another kind that happens to quote the name.
            assert isinstance(err, (KeyError, ValueError)) and _names(err, feature.name), (
                f"{entry} without {feature.name!r}: {err!r}"
            )
            tried += 1
    reliability.record(
        AREA,
        f"{tried} datasets each lacking one feature column (sparse int, vocabulary, hashed string, sequence, "
        f"scalar and vector dense) through {len(entry_points)} entry points: {', '.join(entry_points)}",
        f"{tried}/{tried} refused with an error naming the missing column",
    )


def test_extra_columns_are_left_out(reliability, tmp_path):
    frame = _frame()
    extras = {
        "aaa": np.full(len(frame), 1e6),  # sorts before every feature
        "items_2": ["1|2|3"] * len(frame),  # between two features
        "zzz": ["text"] * len(frame),  # after them
        "price ": np.arange(len(frame)),  # a near-twin of a feature's name
    }
    wider = frame.assign(**extras)
    clean = to_feature_arrays(frame, FEATURES)
    results = {"to_feature_arrays": to_feature_arrays(wider, FEATURES)}
    wider.drop(columns="vec").to_csv(tmp_path / "wide.csv", index=False)
    results["read_csv"] = read_csv(tmp_path / "wide.csv", CSV_FEATURES, label_columns=list(TASK_NAMES))[0]
    wider.to_parquet(tmp_path / "wide.parquet")
    results["read_parquet"] = read_parquet(tmp_path / "wide.parquet", FEATURES, label_columns=list(TASK_NAMES))[0]
    for entry, arrays in results.items():
        assert list(arrays) == [f.name for f in (CSV_FEATURES if entry == "read_csv" else FEATURES)]
        for name, array in arrays.items():
            assert array.dtype == clean[name].dtype and np.array_equal(array, clean[name]), (entry, name)
    # At the model: Keras 3 would feed a dict's values by sorted position, so an extra key shifted
    # the others into the wrong inputs; the model leaves it out.
    model = _model()
    with_extras = {**clean, **{name: np.asarray(values) for name, values in extras.items() if name != "items_2"}}
    expected = model.predict(clean, verbose=0)
    for name, scores in model.predict(with_extras, verbose=0).items():
        np.testing.assert_array_equal(scores, expected[name])
    entries = [*results, "model.predict"]
    reliability.record(
        AREA,
        f"{len(extras)} extra columns (names sorting before, between and after the features, and one differing "
        f"from a feature's name by a space) through {', '.join(entries)}",
        f"left out: {len(entries)}/{len(entries)} entry points gave arrays (the model: scores) equal, dtype and value, "
        "to those of the data without the extra columns",
    )


# ---------------------------------------------------------------------------------------- wrong dtypes


def _parses(convert, value):
    try:
        convert(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _not_an_int64(value):
    return not _parses(int, value) or not -(2**63) <= int(value) < 2**63


_TEXT = st.text(min_size=1, max_size=6).filter(lambda s: "|" not in s)
# Values that are no integer id: fractions, text that int() refuses, None, NaN, ids beyond int64.
NOT_IDS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: not float(v).is_integer()),
    _TEXT.filter(lambda s: not _parses(int, s)),
    st.none(),
    st.just(math.nan),
    st.integers(min_value=2**63, max_value=2**80),
)
NOT_NUMBERS = st.one_of(
    _TEXT.filter(lambda s: not _parses(lambda v: np.asarray(v, np.float32), s)),
    st.lists(st.floats(-1, 1), min_size=2, max_size=4),
)
NOT_VECTORS = st.one_of(
    st.lists(st.floats(-1, 1), max_size=5).filter(lambda v: len(v) != 3),
    _TEXT.filter(lambda s: not _parses(lambda v: np.asarray(v, np.float32), s)),
)


def test_wrong_dtypes_are_refused_naming_column_count_and_first_row(reliability, tmp_path):
    frame = _frame(30)
    raw = {name: list(frame[name]) for name in ("user", "items", "price", "vec")}
    kinds = {
        "user": NOT_IDS,
        # A sequence row given as a list holding one item that is no id among good ones.
        "items": st.tuples(st.lists(st.integers(1, 29), max_size=4), NOT_IDS).map(lambda t: [*t[0], t[1]]),
        "price": NOT_NUMBERS,
        "vec": NOT_VECTORS,
    }
    seen = []

    @settings(max_examples=160)
    @given(data=st.data(), column=st.sampled_from(sorted(kinds)))
    def check(data, column):
        rows = sorted(data.draw(st.sets(st.integers(0, len(frame) - 1), min_size=1, max_size=6)))
        values = list(raw[column])
        for row in rows:
            values[row] = data.draw(kinds[column])
        err = _error(lambda: to_feature_arrays({**frame.to_dict("list"), column: values}, FEATURES))
        assert isinstance(err, ValueError) and _rows_named(err, column, len(rows), rows[0]), (column, rows, err)
        seen.append(column)

    check()
    # The same through the file readers: one bad cell in a CSV, a bad list in a Parquet file.
    bad_cell = frame.drop(columns="vec").astype({"user": object})
    bad_cell.loc[7, "user"] = "u7"
    bad_cell.to_csv(tmp_path / "bad.csv", index=False)
    csv_err = _error(lambda: read_csv(tmp_path / "bad.csv", CSV_FEATURES))
    assert isinstance(csv_err, ValueError) and "bad.csv" in str(csv_err) and _rows_named(csv_err, "user", 1, 7), csv_err
    bad_list = frame.copy()
    bad_list.loc[3, "vec"] = [1.0, 2.0]
    bad_list.to_parquet(tmp_path / "bad.parquet")
    parquet_err = _error(lambda: read_parquet(tmp_path / "bad.parquet", FEATURES))
    assert isinstance(parquet_err, ValueError) and "bad.parquet" in str(parquet_err), parquet_err
    assert _rows_named(parquet_err, "vec", 1, 3), parquet_err
    # DataGenerator takes model-ready columns: raw ones (ragged lists, mixed objects) are refused.
    y = _labels(frame)
    raw_columns = {"items": [[1, 2]] * 29 + [[3]], "city": np.array([1, "rome"] * 15, dtype=object), "when": [None] * 30}
    for name, values in raw_columns.items():
        err = _error(lambda: DataGenerator({"user": frame["user"].to_numpy(), name: values}, y))
        assert isinstance(err, (TypeError, ValueError)) and _names(err, name) and "to_feature_arrays" in str(err), err
    counts = {column: seen.count(column) for column in sorted(kinds)}
    reliability.record(
        AREA,
        f"{len(seen)} columns given to to_feature_arrays with 1 to 6 garbage values at random rows ({counts}: "
        "fractions, text, None, NaN and ids beyond int64 as ids or sequence items; text and lists as numbers; "
        "vectors of the wrong length); a bad cell in a CSV and a bad list in a Parquet file; "
        f"{len(raw_columns)} raw columns (ragged lists, mixed objects, None) given to DataGenerator",
        f"all {len(seen) + 2 + len(raw_columns)} refused with a ValueError/TypeError naming the column; every "
        f"one of the {len(seen) + 2} with garbage values also gave the exact number of bad rows and the first of "
        "them (and the file's path); the DataGenerator errors point to to_feature_arrays",
    )


# ------------------------------------------------------------------------------- NaN and Inf in dense features

NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf, None])


def test_nan_and_inf_in_dense_features_are_refused_or_filled_as_asked(reliability, tmp_path):
    frame = _frame(30)
    y = _labels(frame)
    drawn = []

    @settings(max_examples=120)
    @given(data=st.data(), column=st.sampled_from(["price", "vec"]), fill=st.floats(-5, 5))
    def check(data, column, fill):
        rows = sorted(data.draw(st.sets(st.integers(0, len(frame) - 1), min_size=1, max_size=8)))
        values = [np.array(v, dtype=object) if column == "vec" else v for v in frame[column]]
        for row in rows:
            bad = data.draw(NON_FINITE)
            if column == "vec":
                values[row] = values[row].copy()
                values[row][data.draw(st.integers(0, 2))] = bad
            else:
                values[row] = bad
        columns = {**frame.to_dict("list"), column: [v.tolist() if column == "vec" else v for v in values]}
        err = _error(lambda: to_feature_arrays(columns, FEATURES))
        assert isinstance(err, ValueError) and _rows_named(err, column, len(rows), rows[0]), err
        assert f"fill_non_finite={{'{column}': 0.0}}" in str(err)
        # Floats straight into DataGenerator, as numpy holds them: refused the same way.
        floats = np.array(columns[column], dtype=np.float64)
        err = _error(lambda: DataGenerator({column: floats}, y))
        assert isinstance(err, ValueError) and _rows_named(err, column, len(rows), rows[0]), err
        filled = to_feature_arrays(columns, FEATURES, fill_non_finite={column: fill})[column]
        np.testing.assert_array_equal(filled, np.where(np.isfinite(floats), floats, fill).astype(np.float32))
        drawn.append(column)

    check()
    # A CSV with empty, "nan", "inf" and "-inf" cells: refused naming the file; filled when asked, and a
    # model trains on the filled data with finite losses.
    gappy = frame.drop(columns="vec").astype({"price": object})
    gappy.loc[[4, 9, 11, 20], "price"] = ["", "nan", "inf", "-inf"]
    path = tmp_path / "gappy.csv"
    gappy.to_csv(path, index=False)
    err = _error(lambda: read_csv(path, CSV_FEATURES, label_columns=list(TASK_NAMES)))
    assert isinstance(err, ValueError) and "gappy.csv" in str(err) and _rows_named(err, "price", 4, 4), err
    x, labels = read_csv(path, CSV_FEATURES, label_columns=list(TASK_NAMES), fill_non_finite={"price": 2.0})
    assert x["price"][[4, 9, 11, 20]].tolist() == [2.0] * 4
    x["vec"] = np.zeros((len(frame), 3), np.float32)
    model = _model()
    model.compile(optimizer="adam")
    losses = model.fit(x, {k: labels[k].to_numpy() for k in labels}, epochs=1, batch_size=8, verbose=0).history["loss"]
    assert np.isfinite(losses).all()
    # Non-finite labels are refused too, naming the label.
    for bad in (math.nan, math.inf):
        err = _error(lambda: DataGenerator(x, {**y, "gmv": np.where(np.arange(len(frame)) == 13, bad, y["gmv"])}))
        assert isinstance(err, ValueError) and _rows_named(err, "gmv", 1, 13), err
    reliability.record(
        AREA,
        f"{len(drawn)} datasets with NaN, +Inf, -Inf or None at 1 to 8 random rows of a scalar or a vector "
        "dense feature, through to_feature_arrays (default and with fill_non_finite) and as floats through "
        "DataGenerator; a CSV with '', 'nan', 'inf', '-inf' cells; NaN and Inf labels",
        f"refused by default: {len(drawn)}/{len(drawn)} by to_feature_arrays and "
        f"{len(drawn)}/{len(drawn)} by DataGenerator, each naming the column, the exact "
        f"number of bad rows and the first, and naming the fill_non_finite option; with fill_non_finite the chosen "
        f"value replaced exactly the non-finite values ({len(drawn)}/{len(drawn)}); the CSV refused "
        f"naming the file, filled on request, and a model trained on it with finite loss {losses[0]:.3f}; "
        "2/2 non-finite labels refused",
    )


# ---------------------------------------------------------------------------- labels outside {0, 1}

NOT_BINARY = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v not in (0.0, 1.0)),
    st.sampled_from([2.0, -1.0, 0.5, math.nan, math.inf]),
)


def test_classification_labels_outside_0_and_1_are_refused(reliability, tmp_path):
    frame = _frame(30)
    x = to_feature_arrays(frame, FEATURES)
    refused = {"DataGenerator (dict labels)": 0, "DataGenerator (array labels)": 0, "MultiTaskData": 0}

    @settings(max_examples=100)
    @given(data=st.data())
    def check(data):
        rows = sorted(data.draw(st.sets(st.integers(0, len(frame) - 1), min_size=1, max_size=6)))
        ctr = frame["ctr"].to_numpy().copy()
        for row in rows:
            ctr[row] = data.draw(NOT_BINARY)
        y = {"ctr": ctr, "gmv": frame["gmv"].to_numpy()}
        calls = {
            "DataGenerator (dict labels)": lambda: DataGenerator(x, y, task_types=TASK_TYPES, task_names=TASK_NAMES),
            "DataGenerator (array labels)": lambda: DataGenerator(x, np.stack([ctr, y["gmv"]], 1), task_types=TASK_TYPES),
            "MultiTaskData": lambda: MultiTaskData(FEATURES, TASK_TYPES, TASK_NAMES, x, y),
        }
        for entry, call in calls.items():
            err = _error(call)
            assert isinstance(err, ValueError), (entry, err)
            name = "ctr" if entry != "DataGenerator (array labels)" else "task1"
            assert _rows_named(err, name, len(rows), rows[0]), (entry, err)
            refused[entry] += 1

    check()
    # Labels that never went through a check (a tf.data pipeline of the user's): the training step
    # refuses them, naming the task.
    for entry in ("model.fit", "MTLTrainer.fit"):
        y = {"ctr": frame["ctr"].to_numpy(np.float32), "gmv": frame["gmv"].to_numpy(np.float32)}
        y["ctr"][[3, 7]] = [2.0, -1.0]
        batches = tf.data.Dataset.from_tensor_slices((dict(x), y)).batch(10)
        model = _model()
        if entry == "model.fit":
            model.compile(optimizer="adam")
            err = _error(lambda: model.fit(batches, epochs=1, verbose=0))
        else:
            trainer = MTLTrainer(model, task_types=TASK_TYPES, n_epoch=1, model_path=str(tmp_path / "run"), verbose=0)
            err = _error(lambda: trainer.fit(batches))
        assert isinstance(err, tf.errors.InvalidArgumentError) and "Task ctr is a classification task" in str(err), (entry, err)
        refused[entry] = 1
    # Regression labels may be any finite number; an extra label column (a loss mask) is no task.
    wide = {"ctr": frame["ctr"].to_numpy(), "gmv": frame["gmv"].to_numpy() * 1e6, "viewed": np.full(30, 3.0)}
    assert len(DataGenerator(x, wide, task_types=TASK_TYPES, task_names=TASK_NAMES)) == 30
    drawn = refused["MultiTaskData"]
    total = sum(refused.values())
    reliability.record(
        AREA,
        f"{drawn} label sets with 1 to 6 values other than 0 and 1 (any float, NaN, Inf) in a classification "
        f"task, through DataGenerator (dict labels), DataGenerator (array labels), MultiTaskData; labels 2 and -1 "
        "in a tf.data pipeline through model.fit and MTLTrainer.fit",
        f"{total}/{total} refused naming the task (the data checks: the exact number of bad rows and the first; "
        "the training step: the count and the first bad label); regression labels of any finite size and extra "
        "label columns accepted. DataGenerator checks labels when given task_types (MultiTaskData always)",
    )


# -------------------------------------------------------------------------- negative and out-of-range ids


def test_unknown_ids_go_to_oov_rows_or_are_refused_as_asked(reliability):
    frame = _frame(24)
    frame["user"] = np.resize([-1, 50, 10**12, -(2**63), 2**63 - 1, 51], 24)
    frame["city"] = np.resize(["lima", "", "Paris", "rome"], 24)
    frame["items"] = np.resize(["-5|30|7", "99", "0|0|-1"], 24)
    x = to_feature_arrays(frame, FEATURES)
    model = _model()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    layer = model.get_layer("feature_embedding")
    before = {name: np.array(table) for name, table in layer.tables.items()}
    loss = model.fit(x, _labels(frame), epochs=1, batch_size=24, shuffle=False, verbose=0).history["loss"][0]
    after = {name: np.array(table) for name, table in layer.tables.items()}
    assert np.isfinite(loss)
    # Every user id is unknown: only the OOV row (50) moved. Items 7 and 30/99/-1/-5 only: row 7 and OOV row 30.
    moved = {
        name: sorted(np.flatnonzero((after[name] != before[name]).any(axis=1)).tolist())
        for name in ("user", "city", "items")
    }
    assert moved == {"user": [50], "city": [1, 3], "items": [7, 30]}, moved
    # unknown_ids="raise" refuses them instead, naming the feature, the count and the first row.
    refused, cases = 0, (("user", 24, 0), ("city", 18, 0), ("items", 24, 0))
    for feature, count, first in cases:
        only = {**_frame(24).to_dict("list"), feature: frame[feature].tolist()}
        err = _error(lambda: to_feature_arrays(only, FEATURES, unknown_ids="raise"))
        assert isinstance(err, ValueError) and _rows_named(err, feature, count, first) and "unknown_ids" in str(err), err
        refused += 1
    no_oov = _error(lambda: SparseFeature("user", 50, 4, num_oov_buckets=0))
    assert isinstance(no_oov, ValueError) and "num_oov_buckets" in str(no_oov)
    reliability.record(
        AREA,
        "ids -1, vocab_size, 10^12, -2^63, 2^63-1 for an integer feature, unseen and empty strings for a vocabulary "
        "feature, negative and too-large sequence items: one SGD step of model.fit; the same through "
        "to_feature_arrays(unknown_ids='raise'); a feature with num_oov_buckets=0",
        f"default: trained with finite loss {loss:.3f}; the table rows that moved were the OOV rows and the rows "
        f"of the known ids among them, no other ({moved}); with unknown_ids='raise' {refused}/{len(cases)} "
        "refused naming the feature, the count and the first row; num_oov_buckets=0 refused by the spec naming "
        "the field",
    )


# ---------------------------------------------------------------------------------------- empty data


def test_empty_data_is_refused(reliability, tmp_path):
    frame = _frame(5)
    x, y = to_feature_arrays(frame, FEATURES), _labels(frame)
    (tmp_path / "header.csv").write_text(",".join(frame.drop(columns="vec").columns) + "\n")
    (tmp_path / "zero_bytes.csv").write_text("")
    frame.iloc[:0].to_parquet(tmp_path / "no_rows.parquet")
    empty_x = to_feature_arrays(frame.iloc[:0], FEATURES)
    trainer = MTLTrainer(_model(), list(TASK_TYPES), n_epoch=1, model_path=str(tmp_path / "run"), verbose=0)
    empty_dataset = tf.data.Dataset.from_tensor_slices((empty_x, {k: v[:0] for k, v in y.items()})).batch(4)
    cases = {
        "header-only CSV": (lambda: read_csv(tmp_path / "header.csv", CSV_FEATURES), "header.csv: holds no rows"),
        "0-byte CSV": (lambda: read_csv(tmp_path / "zero_bytes.csv", CSV_FEATURES), "zero_bytes.csv: cannot be read"),
        "Parquet without rows": (lambda: read_parquet(tmp_path / "no_rows.parquet"), "no_rows.parquet: holds no rows"),
        "DataGenerator of 0 rows": (lambda: DataGenerator(empty_x, {k: v[:0] for k, v in y.items()}), "y has no rows"),
        "empty y_val": (
            lambda: DataGenerator(x, y).generate_dataloader(x_val=empty_x, y_val={k: v[:0] for k, v in y.items()}),
            "y_val has no rows",
        ),
        "split leaving no training rows": (
            lambda: DataGenerator(x, y).generate_dataloader(split_ratio=[0.1, 0.5]), "leaves no training rows"
        ),
        "split leaving no validation rows": (
            lambda: DataGenerator(x, y).generate_dataloader(split_ratio=[0.8, 0.1]), "leaves no validation rows"
        ),
        "MTLTrainer.fit on an empty dataset": (lambda: trainer.fit(empty_dataset), "the training dataset is empty"),
        "MTLTrainer.evaluate on an empty dataset": (
            lambda: trainer.evaluate(trainer.model, empty_dataset), "the dataset is empty"
        ),
    }
    for case, (call, message) in cases.items():
        err = _error(call)
        assert isinstance(err, ValueError) and message in str(err), (case, err)
    reliability.record(
        AREA,
        f"{len(cases)} empty datasets: {', '.join(cases)}",
        f"{len(cases)}/{len(cases)} refused with a ValueError saying what is empty (and naming the file)",
    )


# ------------------------------------------------------------------------- sequences longer than max_len


def _example(items):
    return tf.train.Example(
        features=tf.train.Features(feature={"items": tf.train.Feature(int64_list=tf.train.Int64List(value=items))})
    ).SerializeToString()


def test_sequences_longer_than_max_len_keep_their_last_items_everywhere(reliability, model):
    length = 3 * ITEMS.max_len
    counts = {"rows": 0, "longer": 0, "batches": 0, "matrices": 0}
    one_row = to_feature_arrays(_frame(1), FEATURES)

    @settings(max_examples=40)
    @given(st.lists(st.lists(st.integers(0, 35), max_size=length), min_size=1, max_size=8))
    def check(rows):
        # What to_feature_arrays keeps: the last max_len items that are not padding (0), right-padded.
        kept = [[v for v in row if v != 0][-ITEMS.max_len :] for row in rows]
        x = to_feature_arrays({"items": rows}, [ITEMS])["items"]
        assert x.tolist() == [k + [0] * (ITEMS.max_len - len(k)) for k in kept]
        others = {
            k: tf.constant(np.repeat(v.astype(str) if v.dtype == object else v, len(rows), axis=0))
            for k, v in one_row.items()
            if k != "items"
        }
        forms = [
            tf.constant(x),
            tf.ragged.constant(rows, dtype=tf.int64),
            parse_examples(tf.constant([_example(row) for row in rows]), [ITEMS])["items"],
        ]
        scores = [model({**others, "items": items}, training=False) for items in forms]
        for other in scores[1:]:
            for name in TASK_NAMES:
                np.testing.assert_array_equal(other[name], scores[0][name])
        # A padded matrix of another width: the model fits it to max_len as it fits ragged rows.
        width = max(map(len, rows))
        if width != ITEMS.max_len:
            matrix = np.array([row + [0] * (width - len(row)) for row in rows], np.int64).reshape(len(rows), width)
            other = model({**others, "items": tf.constant(matrix)}, training=False)
            for name in TASK_NAMES:
                np.testing.assert_array_equal(other[name], scores[0][name])
            counts["matrices"] += 1
        counts["rows"] += len(rows)
        counts["longer"] += sum(len(k) < len([v for v in row if v != 0]) for k, row in zip(kept, rows))
        counts["batches"] += 1

    check()
    reliability.record(
        AREA,
        f"{counts['rows']} sequences in {counts['batches']} batches, of 0 to {length} ids (max_len "
        f"{ITEMS.max_len}; {counts['longer']} longer than it, padding ids among the items): through "
        "to_feature_arrays, as a RaggedTensor at the model's input and as tf.Example records through "
        "parse_examples; padded matrices of another width at the model's input",
        "every row kept its last max_len non-padding ids; the model's scores were identical, bit for bit, for "
        f"every form of every batch, and for the {counts['matrices']} matrices of another width, which the "
        "model fitted to max_len",
    )
