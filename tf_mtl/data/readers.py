"""CSV and Parquet files -> ``(x, y)`` in the form ``DataGenerator`` takes.

Example:

>>> x, y = read_csv("train.csv", features, label_columns=["click", "purchase"])
>>> train, val, test = DataGenerator(x, y).generate_dataloader(split_ratio=[0.8, 0.1])
"""

import os

import pandas as pd

from tf_mtl.data.generator import to_feature_arrays
from tf_mtl.features.spec import DenseFeature, SequenceFeature, validate_features


def read_csv(path, features=None, label_columns=None, fill_non_finite=None, unknown_ids="oov", **pandas_kwargs):
    """Reads a CSV file into feature columns and label columns.

    Sequence columns are expected as delimiter-joined strings (``"3|5|9"``, see
    ``to_feature_arrays``). When ``features`` is given and ``pandas_kwargs`` has no ``dtype``,
    sequence columns and string-valued sparse columns are read as strings, so that ids such
    as ``"007"`` keep their spelling. pandas' missing-value markers apply as usual
    (``keep_default_na`` and ``na_values`` go through ``pandas_kwargs``).

    Args:
        path: the CSV file.
        features: optional feature spec; ``x`` is then ``to_feature_arrays(frame, features)``.
        label_columns: a column name or a list of them; they must hold numbers.
        fill_non_finite, unknown_ids: with ``features``, as in ``to_feature_arrays``.
        **pandas_kwargs: passed to ``pandas.read_csv`` (``sep``, ``usecols``, ...).

    Returns:
        ``(x, y)``: ``x`` a dict of arrays (with ``features``) or the DataFrame of all columns
        but the labels; ``y`` a float32 DataFrame of the label columns, or ``None``.

    Raises:
        FileNotFoundError, ValueError, KeyError: with the file's path in the message (a file
        without rows is refused).
    """
    if features is not None and "dtype" not in pandas_kwargs:
        pandas_kwargs["dtype"] = _string_columns(features)
    frame = _read(pd.read_csv, "CSV", path, pandas_kwargs)
    return _split(frame, path, features, label_columns, fill_non_finite=fill_non_finite, unknown_ids=unknown_ids)


def read_parquet(path, features=None, label_columns=None, fill_non_finite=None, unknown_ids="oov", **pandas_kwargs):
    """Reads a Parquet file into feature columns and label columns, like ``read_csv``.

    Sequence columns may be stored as list columns or as delimiter-joined strings.

    Args:
        path: the Parquet file (or directory of a partitioned dataset).
        features: optional feature spec; ``x`` is then ``to_feature_arrays(frame, features)``.
        label_columns: a column name or a list of them; they must hold numbers.
        fill_non_finite, unknown_ids: with ``features``, as in ``to_feature_arrays``.
        **pandas_kwargs: passed to ``pandas.read_parquet`` (``columns``, ``filters``, ...).

    Returns:
        ``(x, y)`` as ``read_csv`` returns them.
    """
    frame = _read(pd.read_parquet, "Parquet", path, pandas_kwargs)
    return _split(frame, path, features, label_columns, fill_non_finite=fill_non_finite, unknown_ids=unknown_ids)


def _string_columns(features):
    return {
        f.name: str
        for f in validate_features(features)
        if isinstance(f, SequenceFeature) or (not isinstance(f, DenseFeature) and f.dtype == "string")
    }


def _read(reader, kind, path, pandas_kwargs):
    try:
        return reader(path, **pandas_kwargs)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{os.fspath(path)}: no such {kind} file. {err}") from err
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{os.fspath(path)}: cannot be read as {kind}: {err}") from err


def _split(frame, path, features, label_columns, **conversion):
    """``(x, y)`` of a file's frame; ``conversion``: ``to_feature_arrays``' options."""
    path = os.fspath(path)
    if frame.empty:
        raise ValueError(f"{path}: holds no rows (columns: {list(frame.columns)}); expected at least one example.")
    labels = [label_columns] if isinstance(label_columns, str) else list(label_columns or [])
    for name in labels:
        if name not in frame.columns:
            raise KeyError(f"{path}: label column {name!r} not found. Available columns: {list(frame.columns)}")
        if not (pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name])):
            raise ValueError(f"{path}: label column {name!r} must hold numbers. Received dtype {frame[name].dtype}.")
        missing = int(frame[name].isna().sum())
        if missing:
            raise ValueError(
                f"{path}: label column {name!r} has {missing} missing values; expected a label on every row."
            )
    y = frame[labels].astype("float32") if labels else None
    if features is None:
        return frame.drop(columns=labels), y
    clash = [f.name for f in validate_features(features) if f.name in labels]
    if clash:
        raise ValueError(f"{path}: column {clash[0]!r} is both a label and a feature; a label must not be an input.")
    try:
        return to_feature_arrays(frame, features, **conversion), y
    except KeyError as err:
        raise KeyError(f"{path}: {err.args[0]}") from err
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
