"""read_csv / read_parquet: (x, y) in DataGenerator's form, errors naming the file."""

import numpy as np
import pandas as pd
import pytest

from tf_mtl.data import DataGenerator, read_csv, read_parquet
from tf_mtl.features import DenseFeature, SequenceFeature, SparseFeature

FEATURES = [
    SparseFeature("user_id", 100, 4),
    SparseFeature("shop", None, 4, vocabulary=["007", "42"]),
    SequenceFeature("items", 50, 4, "mean", 3),
    DenseFeature("price", mean=2.0, std=1.0),
]
CSV = """user_id,shop,items,price,click,purchase,note
3,007,1|2,1.5,1,0,a
7,42,,2.5,0,0,b
9,007,4|5|6|7,3.0,1,1,c
"""


@pytest.fixture
def csv_path(tmp_path):
    path = tmp_path / "impressions.csv"
    path.write_text(CSV)
    return path


def test_read_csv_with_features_returns_model_arrays_and_float_labels(csv_path):
    x, y = read_csv(csv_path, FEATURES, label_columns=["click", "purchase"])

    assert sorted(x) == ["items", "price", "shop", "user_id"]
    assert x["user_id"].dtype == np.int64 and x["user_id"].tolist() == [3, 7, 9]
    # String ids keep their spelling ("007", not 7).
    assert x["shop"].tolist() == ["007", "42", "007"]
    np.testing.assert_array_equal(x["items"], [[1, 2, 0], [0, 0, 0], [5, 6, 7]])
    assert x["price"].dtype == np.float32 and x["price"].tolist() == [1.5, 2.5, 3.0]
    assert list(y.columns) == ["click", "purchase"] and (y.dtypes == np.float32).all()
    assert y["purchase"].tolist() == [0.0, 0.0, 1.0]

    train, _, _ = DataGenerator(x, y).generate_dataloader(shuffle=False)
    assert next(iter(train))[1]["click"].numpy().tolist() == [1, 0, 1]


def test_read_csv_without_features_returns_the_frame_without_labels(csv_path):
    x, y = read_csv(csv_path, label_columns="click")
    assert list(x.columns) == ["user_id", "shop", "items", "price", "purchase", "note"]
    assert y["click"].tolist() == [1.0, 0.0, 1.0]
    x, y = read_csv(csv_path)
    assert y is None and x.shape == (3, 7)


def test_read_parquet_accepts_list_columns(tmp_path):
    path = tmp_path / "impressions.parquet"
    frame = pd.DataFrame(
        {"user_id": [3, 7], "shop": ["42", "007"], "items": [[1, 2, 3, 4], []], "price": [1.0, 2.0], "click": [0, 1]}
    )
    frame.to_parquet(path)
    x, y = read_parquet(path, FEATURES, label_columns=["click"])
    np.testing.assert_array_equal(x["items"], [[2, 3, 4], [0, 0, 0]])
    assert x["shop"].tolist() == ["42", "007"] and y["click"].tolist() == [0.0, 1.0]


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: no such CSV file"):
        read_csv(missing)
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet: no such Parquet file"):
        read_parquet(tmp_path / "nope.parquet")


def test_unreadable_parquet_is_named(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_text("not parquet")
    with pytest.raises(ValueError, match=r"broken\.parquet: cannot be read as Parquet"):
        read_parquet(path)


def test_label_errors_name_the_file_and_column(csv_path):
    with pytest.raises(KeyError, match=r"impressions\.csv: label column 'buy' not found. Available columns: \['"):
        read_csv(csv_path, label_columns=["buy"])
    with pytest.raises(ValueError, match=r"impressions\.csv: label column 'note' must hold numbers"):
        read_csv(csv_path, label_columns=["note"])
    gappy = csv_path.with_name("gappy.csv")
    gappy.write_text("price,click\n1.0,1\n2.0,\n")
    with pytest.raises(ValueError, match=r"gappy\.csv: label column 'click' has 1 missing values"):
        read_csv(gappy, label_columns=["click"])
    with pytest.raises(ValueError, match=r"impressions\.csv: column 'click' is both a label and a feature"):
        read_csv(csv_path, [DenseFeature("click")], label_columns=["click"])


def test_feature_errors_name_the_file(csv_path):
    with pytest.raises(KeyError, match=r"impressions\.csv: Feature 'city' has no column"):
        read_csv(csv_path, [SparseFeature("city", 10, 4)])
    with pytest.raises(ValueError, match=r"impressions\.csv: SparseFeature 'note': 3 row\(s\) hold values that are not integer ids, the first 'a' at row 0"):
        read_csv(csv_path, [SparseFeature("note", 10, 4)])


def test_files_without_rows_are_refused(tmp_path):
    header_only = tmp_path / "header.csv"
    header_only.write_text("user_id,price,click\n")
    with pytest.raises(ValueError, match=r"header\.csv: holds no rows \(columns: \['user_id', 'price', 'click'\]\)"):
        read_csv(header_only, FEATURES[:1], label_columns="click")
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"user_id": pd.Series([], dtype="int64")}).to_parquet(empty)
    with pytest.raises(ValueError, match=r"empty\.parquet: holds no rows"):
        read_parquet(empty)


def test_conversion_options_reach_to_feature_arrays(tmp_path):
    path = tmp_path / "gappy.csv"
    path.write_text("user_id,price,click\n3,,1\n700,inf,0\n")
    with pytest.raises(ValueError, match=r"gappy\.csv: DenseFeature 'price': 2 row\(s\) hold NaN \(missing\) or Inf values, the first nan at row 0"):
        read_csv(path, [FEATURES[0], FEATURES[3]])
    x, _ = read_csv(path, [FEATURES[0], FEATURES[3]], fill_non_finite={"price": 2.0})
    assert x["price"].tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match=r"gappy\.csv: SparseFeature 'user_id': 1 row\(s\) hold ids outside \[0, 100\), the first 700 at row 1"):
        read_csv(path, [FEATURES[0]], unknown_ids="raise")
