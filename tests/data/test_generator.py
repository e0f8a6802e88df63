"""to_feature_arrays and DataGenerator: dtypes, shapes, padding, splits, seeding, errors."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tf_mtl.data import DataGenerator, split_indices, to_feature_arrays
from tf_mtl.features import DenseFeature, SequenceFeature, SparseFeature

SEQ = SequenceFeature("items", 100, 4, "mean", 3)
STR_SEQ = SequenceFeature("tags", None, 4, "sum", 2, vocabulary=["a", "b", "c"])
CITY = SparseFeature("city", None, 4, vocabulary=["paris", "rome", "6"])
USER = SparseFeature("user", 10, 4)
PRICE = DenseFeature("price", mean=1.0, std=2.0)
VEC = DenseFeature("vec", embed_dim=2)
FEATURES = [USER, CITY, SEQ, STR_SEQ, PRICE, VEC]


def _frame():
    return pd.DataFrame(
        {
            "user": [1, 2, 3, 4],
            "city": ["paris", b"rome", 6.0, None],
            "items": ["3|5|9", "", "1|2|3|4|5", [7, 8]],
            "tags": [["a"], "b|c", ["a", "b", "c"], None],
            "price": [0.5, 1, 2, 3],
            "vec": [[1, 2], [3, 4], [5, 6], [7, 8]],
            "unused": ["x", "y", "z", "w"],
        }
    )


def test_to_feature_arrays_converts_each_kind_exactly():
    x = to_feature_arrays(_frame(), FEATURES)

    assert list(x) == ["user", "city", "items", "tags", "price", "vec"]
    assert x["user"].dtype == np.int64 and x["user"].tolist() == [1, 2, 3, 4]
    assert x["city"].dtype == object and x["city"].tolist() == ["paris", "rome", "6", ""]
    # Right padding with 0; the longest sequence keeps its last (most recent) max_len items.
    np.testing.assert_array_equal(x["items"], [[3, 5, 9], [0, 0, 0], [3, 4, 5], [7, 8, 0]])
    assert x["items"].dtype == np.int64
    assert x["tags"].tolist() == [["a", ""], ["b", "c"], ["b", "c"], ["", ""]]
    assert x["price"].dtype == np.float32 and x["price"].shape == (4,)
    np.testing.assert_array_equal(x["vec"], np.array([[1, 2], [3, 4], [5, 6], [7, 8]], np.float32))
    assert x["vec"].dtype == np.float32


def test_sequence_given_as_padded_matrix_keeps_real_items_when_truncated():
    padded = np.array([[1, 2, 3, 4, 0, 0], [5, 0, 0, 0, 0, 0]])
    x = to_feature_arrays({"items": padded}, [SEQ])
    np.testing.assert_array_equal(x["items"], [[2, 3, 4], [5, 0, 0]])


def test_dense_column_of_shape_n_by_1_is_flattened():
    x = to_feature_arrays({"price": np.array([[1.0], [2.0]])}, [PRICE])
    assert x["price"].shape == (2,) and x["price"].tolist() == [1.0, 2.0]
    # Numbers and one-number lists mixed: numpy cannot stack them, each row is still one number.
    mixed = to_feature_arrays({"price": [1.5, [2.0], np.array([3.0]), "4"]}, [PRICE])["price"]
    assert mixed.dtype == np.float32 and mixed.tolist() == [1.5, 2.0, 3.0, 4.0]


def test_missing_column_names_feature_and_available_columns():
    with pytest.raises(KeyError, match=r"'user'.*Available columns: \['city', 'items'"):
        to_feature_arrays(_frame().drop(columns="user"), FEATURES)


@pytest.mark.parametrize(
    "column, values, message",
    [
        ("user", [1.5, 2, 3, 4], r"SparseFeature 'user': 1 row\(s\) hold values that are not integer ids, the first 1.5 at row 0"),
        ("user", ["1", "a", "2", "b"], r"SparseFeature 'user': 2 row\(s\) .*the first 'a' at row 1"),
        ("user", [1, 2, 2**70, 3], r"SparseFeature 'user': 1 row\(s\) .*not integer ids, the first 1180591620717411303424 at row 2"),
        ("items", ["1|2", "1|x", "", "y"], r"SequenceFeature 'items': 2 row\(s\) hold items that are not integer ids, the first '1\|x' at row 1"),
        ("price", [1.0, None, 2.0, 3.0], r"DenseFeature 'price': 1 row\(s\) hold NaN \(missing\) or Inf values, the first nan at row 1.*fill_non_finite=\{'price': 0.0\}"),
        ("price", [1.0, 2.0, -np.inf, np.inf], r"DenseFeature 'price': 2 row\(s\) hold NaN \(missing\) or Inf values, the first -inf at row 2"),
        ("price", [1.0, "2.5", "abc", "x"], r"DenseFeature 'price': 2 row\(s\) hold values that are not numbers, the first 'abc' at row 2"),
        ("vec", [1.0, 2.0, 3.0, 4.0], r"DenseFeature 'vec' \(embed_dim=2\): expected shape \(N, 2\).*\(4,\)"),
        ("vec", [[1, 2], [3], [5, 6], [7, np.nan]], r"DenseFeature 'vec': 1 row\(s\) hold values that are not 2 numbers each, the first \[3\] at row 1"),
        ("vec", [[1, 2], [3, 4], [5, 6], [7, np.nan]], r"DenseFeature 'vec': 1 row\(s\) .*NaN.*the first \[7.0, nan\] at row 3"),
        ("price", 3.0, r"Column 'price' holds the single value 3.0; expected one value per row"),
    ],
)
def test_bad_values_name_the_feature(column, values, message):
    data = _frame().to_dict("list")
    data[column] = values
    with pytest.raises(ValueError, match=message):
        to_feature_arrays(data, FEATURES)


def test_columns_of_different_lengths_name_the_column():
    with pytest.raises(ValueError, match=r"Column 'city' has 2 rows; expected 3 like column 'user'"):
        to_feature_arrays({"user": [1, 2, 3], "city": ["paris", "rome"]}, [USER, CITY])


def _ids(dataset):
    return np.concatenate([x["id"].numpy() for x, _ in dataset])


def test_split_sizes_are_exact_and_disjoint():
    n = 1000
    generator = DataGenerator({"id": np.arange(n)}, np.zeros(n))
    train, val, test = generator.generate_dataloader(split_ratio=[0.7, 0.1], batch_size=64)
    ids = [_ids(train), _ids(val), _ids(test)]

    assert [len(i) for i in ids] == [700, 100, 200]
    assert sorted(np.concatenate(ids).tolist()) == list(range(n))
    assert [x["id"].shape[0] for x, _ in train] == [64] * 10 + [60]


def test_split_sizes_floor_without_losing_a_row_to_float_error():
    generator = DataGenerator({"id": np.arange(100)}, np.zeros(100))
    _, val, test = generator.generate_dataloader(split_ratio=[0.29, 0.3])
    assert len(_ids(val)) == 30 and len(_ids(test)) == 100 - 29 - 30


@pytest.mark.parametrize("n, split_ratio, sizes", [(10, [0.55, 0.25], [5, 2, 3]), (7, [0.5, 0.3], [3, 2, 2])])
def test_split_sizes_round_fractional_rows_down_and_test_takes_the_rest(n, split_ratio, sizes):
    train, val, test = DataGenerator({"id": np.arange(n)}, np.zeros(n)).generate_dataloader(split_ratio=split_ratio)
    assert [len(_ids(part)) for part in (train, val, test)] == sizes


def test_split_ratio_summing_to_one_leaves_an_empty_test_set():
    _, _, test = DataGenerator({"id": np.arange(10)}, np.zeros(10)).generate_dataloader(split_ratio=[0.7, 0.3])
    assert len(list(test)) == 0


def test_seeded_split_and_shuffle_are_deterministic():
    def loaders(seed):
        generator = DataGenerator({"id": np.arange(200)}, np.zeros(200))
        return generator.generate_dataloader(split_ratio=[0.5, 0.25], batch_size=32, seed=seed)

    train_a, val_a, _ = loaders(7)
    train_b, val_b, _ = loaders(7)
    first_epoch = _ids(train_a)
    np.testing.assert_array_equal(first_epoch, _ids(train_b))
    np.testing.assert_array_equal(_ids(val_a), _ids(val_b))
    # Training reshuffles every epoch over the same rows; validation keeps its order.
    second_epoch = _ids(train_a)
    assert not np.array_equal(first_epoch, second_epoch)
    assert sorted(first_epoch) == sorted(second_epoch)
    np.testing.assert_array_equal(_ids(val_a), _ids(val_b))
    assert not np.array_equal(_ids(loaders(8)[1]), _ids(val_a))


def test_training_shuffle_draws_from_the_whole_set_every_epoch():
    train, _, _ = DataGenerator({"id": np.arange(1000)}, np.zeros(1000)).generate_dataloader(batch_size=32, seed=3)
    for _ in range(2):
        first_batch = next(iter(train))[0]["id"].numpy()
        # A shuffle buffer smaller than the set would fill the first batch from the first rows only.
        assert (first_batch >= 500).sum() >= 8


def test_shuffled_batches_keep_every_row_whole():
    """Columns of one dtype are gathered stacked, the others alone: every batch row still holds
    one row of each column and its labels, and the last, smaller batch too."""
    n = 103
    x = {"a": np.arange(n), "b": np.arange(n) * 10, "c": np.arange(n) / 2, "seq": np.stack([np.arange(n)] * 3, 1), "s": np.array([str(i) for i in range(n)], object)}
    y = {"click": np.arange(n) % 2, "buy": np.arange(n) / 4}
    train, _, _ = DataGenerator(x, y).generate_dataloader(batch_size=16, seed=5)
    for _ in range(2):
        sizes, rows = [], []
        for features, labels in train:
            a = features["a"].numpy()
            np.testing.assert_array_equal(features["b"].numpy(), a * 10)
            np.testing.assert_array_equal(features["c"].numpy(), a / 2)
            np.testing.assert_array_equal(features["seq"].numpy(), np.stack([a] * 3, 1))
            assert [v.decode() for v in features["s"].numpy()] == [str(i) for i in a]
            np.testing.assert_array_equal(labels["click"].numpy(), a % 2)
            np.testing.assert_array_equal(labels["buy"].numpy(), a / 4)
            sizes.append(len(a))
            rows.extend(a)
        assert sizes == [16] * 6 + [7] and sorted(rows) == list(range(n))


def test_validation_and_test_keep_the_split_order_while_training_reshuffles():
    generator = DataGenerator({"id": np.arange(200)}, np.zeros(200))
    _, val, test = generator.generate_dataloader(split_ratio=[0.5, 0.25], batch_size=16, seed=7)
    _, val_rows, test_rows = split_indices(200, 0.5, 0.25, seed=7)
    for _ in range(2):
        np.testing.assert_array_equal(_ids(val), val_rows)
        np.testing.assert_array_equal(_ids(test), test_rows)
    _, val, test = generator.generate_dataloader(
        x_val={"id": np.arange(100, 0, -1)}, y_val=np.zeros(100), x_test={"id": np.arange(50)}, y_test=np.zeros(50)
    )
    assert _ids(val).tolist() == list(range(100, 0, -1)) and _ids(test).tolist() == list(range(50))


def test_without_shuffle_the_training_set_keeps_its_order():
    train, val, test = DataGenerator({"id": np.arange(10)}, np.zeros(10)).generate_dataloader(shuffle=False)
    assert _ids(train).tolist() == list(range(10))
    assert val is None and test is None


def test_array_labels_become_float32_columns():
    x = {"id": np.arange(6), "price": np.linspace(0, 1, 6)}
    train, _, _ = DataGenerator(x, np.array([1, 0, 1, 0, 1, 1])).generate_dataloader(batch_size=4, shuffle=False)
    features, labels = next(iter(train))
    assert labels.dtype == tf.float32 and labels.shape == (4, 1)
    assert labels.numpy()[:, 0].tolist() == [1, 0, 1, 0]
    assert features["id"].dtype == tf.int64 and features["price"].dtype == tf.float32

    two_tasks = np.arange(12).reshape(6, 2)
    train, _, _ = DataGenerator(x, two_tasks).generate_dataloader(batch_size=4, shuffle=False)
    np.testing.assert_array_equal(next(iter(train))[1].numpy(), two_tasks[:4].astype(np.float32))


@pytest.mark.parametrize("as_frame", [False, True])
def test_dict_or_frame_labels_become_a_dict_of_vectors(as_frame):
    y = {"ctr": [1, 0, 1], "cvr": [1, 0, 0]}
    y = pd.DataFrame(y) if as_frame else y
    train, _, _ = DataGenerator(pd.DataFrame({"city": ["a", "b", "c"]}), y).generate_dataloader(shuffle=False)
    features, labels = next(iter(train))
    assert features["city"].dtype == tf.string and features["city"].numpy().tolist() == [b"a", b"b", b"c"]
    assert sorted(labels) == ["ctr", "cvr"]
    assert labels["cvr"].dtype == tf.float32 and labels["cvr"].numpy().tolist() == [1, 0, 0]


def test_held_out_data_is_used_as_given_and_in_order():
    generator = DataGenerator({"id": np.arange(5)}, {"ctr": np.ones(5)})
    _, val, test = generator.generate_dataloader(
        x_val={"id": np.array([10, 11])}, y_val={"ctr": [0, 1]}, x_test={"id": np.array([20])}, y_test={"ctr": [1]}
    )
    assert _ids(val).tolist() == [10, 11] and _ids(test).tolist() == [20]
    assert next(iter(val))[1]["ctr"].numpy().tolist() == [0, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split_ratio": [0.0, 0.1]}, r"in \(0, 1\)"),
        ({"split_ratio": [0.7, 1.2]}, r"in \(0, 1\)"),
        ({"split_ratio": [0.7, 0.4]}, "sum to at most 1"),
        ({"split_ratio": [0.6, 0.2, 0.2]}, r"\[train_fraction, val_fraction\]"),
        ({"batch_size": 0}, "batch_size must be a positive integer. Received: batch_size=0"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
        ({"batch_size": True}, "batch_size=True"),
        ({"split_ratio": [0.7, 0.1], "x_val": {"id": [1]}}, r"not both.*\['x_val'\]"),
        ({"x_val": {"id": [1]}}, "Give both x_val and y_val"),
        ({"x_val": {"other": [1]}, "y_val": [1]}, "x_val lacks the feature column 'id'"),
        ({"x_test": {"id": [1]}, "y_test": {"ctr": [1]}}, r"y_test has labels \['ctr'\]; expected an array with 1"),
    ],
)
def test_generate_dataloader_rejects_bad_arguments(kwargs, message):
    generator = DataGenerator({"id": np.arange(10)}, np.zeros(10))
    with pytest.raises(ValueError, match=message):
        generator.generate_dataloader(**kwargs)


def test_row_count_mismatch_names_the_column():
    with pytest.raises(ValueError, match=r"x column 'price' has 3 rows; expected 4, the number of rows of y"):
        DataGenerator({"id": np.arange(4), "price": np.ones(3)}, np.zeros(4))
    with pytest.raises(ValueError, match=r"y column 'cvr' has 2 rows; expected 3"):
        DataGenerator({"id": np.arange(3)}, {"ctr": [1, 0, 1], "cvr": [1, 0]})


def test_unconverted_columns_and_bad_labels_are_named():
    with pytest.raises(TypeError, match=r"x column 'items' holds mixed values.*to_feature_arrays"):
        DataGenerator({"items": np.array([[1, 2], "3"], dtype=object)}, np.zeros(2))
    with pytest.raises(ValueError, match=r"x column 'items' cannot be one array.*to_feature_arrays"):
        DataGenerator({"items": [[1, 2], [3]]}, np.zeros(2))
    with pytest.raises(ValueError, match=r"x column 'price' holds the single value 2.0; expected one value per row"):
        DataGenerator({"price": 2.0}, np.zeros(2))
    with pytest.raises(ValueError, match=r"Label y\['ctr'\]: 1 row\(s\) hold NaN, Inf or beyond-float32 labels, the first nan at row 1"):
        DataGenerator({"id": np.arange(2)}, {"ctr": [1.0, np.nan]})
    with pytest.raises(ValueError, match=r"Label y\[:, 1\]: 1 row\(s\) hold NaN, Inf or beyond-float32 labels, the first -inf at row 2"):
        DataGenerator({"id": np.arange(3)}, np.array([[0, 0], [0, 0], [0, -np.inf]]))
    with pytest.raises(ValueError, match=r"Label y\['gmv'\]: 1 row\(s\) hold NaN, Inf or beyond-float32 labels, the first 1e\+300"):
        DataGenerator({"id": np.arange(2)}, {"gmv": [1.0, 1e300]})
    with pytest.raises(ValueError, match=r"Label y\['ctr'\]: 1 row\(s\) hold labels other than 0 and 1, the first 1e-300"):
        DataGenerator({"id": np.arange(2)}, {"ctr": [1.0, 1e-300]}, task_types=["classification"], task_names=["ctr"])
    with pytest.raises(TypeError, match=r"Label y\['ctr'\] must be numeric"):
        DataGenerator({"id": np.arange(2)}, {"ctr": ["yes", "no"]})
    with pytest.raises(ValueError, match=r"y: expected shape \(N,\) or \(N, n_tasks\)"):
        DataGenerator({"id": np.arange(2)}, np.zeros((2, 1, 1)))


def test_non_finite_feature_values_are_refused_with_the_column_count_and_first_row():
    price = np.array([1.0, np.nan, 2.0, np.inf], np.float64)
    with pytest.raises(ValueError, match=r"x column 'price': 2 row\(s\) hold NaN \(missing\) or Inf values, the first nan at row 1"):
        DataGenerator({"id": np.arange(4), "price": price}, np.zeros(4))
    vec = np.ones((4, 2), np.float32)
    vec[3, 1] = -np.inf
    with pytest.raises(ValueError, match=r"x_val column 'vec': 1 row\(s\) .*the first \[1.0, -inf\] at row 3"):
        DataGenerator({"vec": np.ones((4, 2))}, np.zeros(4)).generate_dataloader(x_val={"vec": vec}, y_val=np.zeros(4))


@pytest.mark.parametrize(
    "y, task_types, task_names, message",
    [
        (np.array([[0, 1], [2, 0.5]]), ["classification", "regression"], None,
         r"Label y\[:, 0\] \(task 'task1'\): 1 row\(s\) hold labels other than 0 and 1, the first 2.0 at row 1; expected 0 or 1"),
        ({"ctr": [0, 1, -1, 0.5], "gmv": [3.0, -2.0, 0.0, 1.0]}, ["classification", "regression"], ["ctr", "gmv"],
         r"Label y\['ctr'\]: 2 row\(s\) hold labels other than 0 and 1, the first -1.0 at row 2"),
        (np.zeros((4, 3)), ["classification", "regression"], None, r"y has 3 label columns; expected one per task \['task1', 'task2'\]"),
        ({"click": [0, 1, 0, 1]}, ["classification"], ["ctr"], r"y lacks the labels of the tasks \['ctr'\]. Received columns: \['click'\]"),
        ({"ctr": [0, 1, 0, 1]}, None, ["ctr"], r"task_names needs task_types"),
    ],
)
def test_labels_are_checked_against_the_task_types(y, task_types, task_names, message):
    with pytest.raises(ValueError, match=message):
        DataGenerator({"id": np.arange(len(next(iter(y.values()))) if isinstance(y, dict) else len(y))}, y,
                      task_types=task_types, task_names=task_names)


def test_labels_that_fit_their_tasks_and_extra_label_columns_pass():
    y = {"ctr": [0, 1, 1, 0], "gmv": [3.5, -2.0, 0.0, 1.0], "viewed": [1.0, 1.0, 0.0, 7.0]}
    generator = DataGenerator({"id": np.arange(4)}, y, task_types=["classification", "regression"], task_names=["ctr", "gmv"])
    train, val, _ = generator.generate_dataloader(x_val={"id": np.arange(2)}, y_val={k: v[:2] for k, v in y.items()}, shuffle=False)
    assert next(iter(train))[1]["viewed"].numpy().tolist() == [1.0, 1.0, 0.0, 7.0]
    with pytest.raises(ValueError, match=r"Label y_val\['ctr'\]: 1 row\(s\) hold labels other than 0 and 1, the first 3.0 at row 1"):
        generator.generate_dataloader(x_val={"id": np.arange(2)}, y_val={**y, "ctr": [1, 3]})


def test_data_without_rows_is_refused():
    with pytest.raises(ValueError, match=r"y has no rows; expected at least one example"):
        DataGenerator({"id": np.arange(0)}, {"ctr": np.zeros(0)})
    with pytest.raises(ValueError, match=r"y_test has no rows"):
        DataGenerator({"id": np.arange(3)}, np.zeros(3)).generate_dataloader(x_test={"id": []}, y_test=[])
    generator = DataGenerator({"id": np.arange(3)}, np.zeros(3))
    with pytest.raises(ValueError, match=r"split_ratio=\[0.2, 0.5\] of 3 rows leaves no training rows"):
        generator.generate_dataloader(split_ratio=[0.2, 0.5])
    with pytest.raises(ValueError, match=r"split_ratio=\[0.5, 0.2\] of 3 rows leaves no validation rows"):
        generator.generate_dataloader(split_ratio=[0.5, 0.2])


def test_empty_frame_gives_empty_arrays_of_the_input_shapes():
    x = to_feature_arrays(_frame().iloc[:0], FEATURES)
    assert {name: array.shape for name, array in x.items()} == {
        "user": (0,), "city": (0,), "items": (0, 3), "tags": (0, 2), "price": (0,), "vec": (0, 2)
    }


def test_fill_non_finite_replaces_nan_and_inf_of_the_chosen_features_only():
    data = _frame().to_dict("list")
    data["price"] = [np.nan, 1.0, np.inf, -np.inf]
    data["vec"] = [[1, np.nan], [3, 4], [5, 6], [7, 8]]
    x = to_feature_arrays(data, FEATURES, fill_non_finite={"price": -1.0, "vec": 0})
    assert x["price"].tolist() == [-1.0, 1.0, -1.0, -1.0]
    assert x["vec"].tolist() == [[1.0, 0.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]
    assert to_feature_arrays(data, FEATURES, fill_non_finite=2.5)["vec"][0].tolist() == [1.0, 2.5]
    with pytest.raises(ValueError, match=r"DenseFeature 'vec': 1 row\(s\) hold NaN"):
        to_feature_arrays(data, FEATURES, fill_non_finite={"price": 0.0})


@pytest.mark.parametrize(
    "fill, message",
    [
        ({"prices": 0.0}, r"fill_non_finite.prices: unknown key; did you mean 'price'\?"),
        ({"user": 0.0}, r"fill_non_finite.user: unknown key. Known keys: \['price', 'vec'\]"),
        ({"price": np.nan}, r"fill_non_finite.price: expected a finite number. Received: nan"),
        ("mean", r"fill_non_finite.price: expected a finite number. Received: 'mean'"),
    ],
)
def test_fill_non_finite_is_checked(fill, message):
    with pytest.raises(ValueError, match=message):
        to_feature_arrays(_frame(), FEATURES, fill_non_finite=fill)


@pytest.mark.parametrize(
    "column, values, message, kept_values",
    [
        ("user", [1, -1, 10, 3], r"SparseFeature 'user': 2 row\(s\) hold ids outside \[0, 10\), the first -1 at row 1; unknown_ids='raise'",
         [1, -1, 10, 3]),
        ("city", ["paris", "rome", "oslo", None], r"SparseFeature 'city': 2 row\(s\) hold ids outside the vocabulary, the first 'oslo' at row 2",
         ["paris", "rome", "oslo", ""]),
        ("items", ["1|2", "", "0|100|0", "-3"], r"SequenceFeature 'items': 2 row\(s\) hold ids outside \[0, 100\), the first \[100, 0, 0\] at row 2",
         [[1, 2, 0], [0, 0, 0], [100, 0, 0], [-3, 0, 0]]),
        ("tags", [["a"], "b|z", [], None], r"SequenceFeature 'tags': 1 row\(s\) hold ids outside the vocabulary, the first \['b', 'z'\] at row 1",
         [["a", ""], ["b", "z"], ["", ""], ["", ""]]),
    ],
)
def test_unknown_ids_raise_names_the_feature_count_and_first_row(column, values, message, kept_values):
    data = {**_frame().to_dict("list"), "city": ["paris", "rome", "6", "rome"], column: values}
    kept = to_feature_arrays(data, FEATURES)
    with pytest.raises(ValueError, match=message):
        to_feature_arrays(data, FEATURES, unknown_ids="raise")
    # The default keeps them as they are, for the model's OOV rows.
    assert np.asarray(kept[column]).shape[0] == 4
    assert kept[column].tolist() == kept_values
    with pytest.raises(ValueError, match=r"unknown_ids must be one of \('oov', 'raise'\). Received: unknown_ids='error'"):
        to_feature_arrays(data, FEATURES, unknown_ids="error")
