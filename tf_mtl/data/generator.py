"""In-memory data -> model-ready arrays -> batched ``tf.data`` pipelines.

``to_feature_arrays`` turns a DataFrame (or dict of columns) into exactly the arrays a model
built from a feature spec takes; ``DataGenerator`` cuts such arrays into train/validation/test
``tf.data.Dataset``s with the API of torch-rechub's ``DataGenerator``.

Example:

>>> features = [SparseFeature("user_id", 100, 8), DenseFeature("price", mean=3.0, std=1.0)]
>>> frame = pd.DataFrame({"user_id": [3, 7, 9], "price": [1.5, 2.0, 4.0], "click": [1, 0, 1]})
>>> x = to_feature_arrays(frame, features)
>>> train, val, test = DataGenerator(x, frame[["click"]]).generate_dataloader(split_ratio=[0.7, 0.1])
"""

import numpy as np
import pandas as pd
import tensorflow as tf

from tf_mtl.data.checks import bad_rows_error, check_finite, check_label, rows_with
from tf_mtl.data.dataset import check_split_ratio, split_indices
from tf_mtl.features.spec import DenseFeature, SequenceFeature, finite_number, join_path, mapping, validate_features
from tf_mtl.tasks import make_tasks


def _columns(data, where):
    """A DataFrame or dict as a dict of columns, keeping the values as they are."""
    if isinstance(data, pd.DataFrame):
        return {name: data[name].to_numpy() for name in data.columns}
    if isinstance(data, dict):
        return dict(data)
    raise TypeError(f"{where} must be a pandas DataFrame or a dict of arrays. Received: {type(data).__name__}")


def _check_is_column(owner, values):
    """Refuses a single value where a column (one value per row) is expected."""
    if values is None or np.isscalar(values) or getattr(values, "ndim", 1) == 0:
        raise ValueError(f"{owner} holds the single value {values!r}; expected one value per row.")


def _is_missing(value):
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and np.isnan(value))


def _as_str(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


_INT64 = np.iinfo(np.int64)


def _as_int(value):
    """An int64 id, or None for anything that is not one (1.5, 'a', NaN, None, 2**70)."""
    if isinstance(value, (float, np.floating)) and not (np.isfinite(value) and float(value).is_integer()):
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if _INT64.min <= value <= _INT64.max else None


def _check_unknown_ids(feature, ids, unknown_ids):
    """With ``unknown_ids="raise"``, refuses ids the feature's table has no row for: integers
    outside ``[0, vocab_size)`` or values outside the vocabulary (padding is no id)."""
    if unknown_ids == "oov" or feature.hashed or len(ids) == 0:
        return
    flat = ids.reshape(-1)
    if feature.vocabulary is None:
        known = (flat >= 0) & (flat < feature.vocab_size)
    else:
        vocabulary = set(feature.vocabulary)
        known = np.fromiter((v in vocabulary for v in flat.tolist()), bool, len(flat))
    if isinstance(feature, SequenceFeature):
        known |= flat == feature.padding_value
    unknown = rows_with(~known.reshape(ids.shape))
    if unknown.any():
        table = f"[0, {feature.vocab_size})" if feature.vocabulary is None else "the vocabulary"
        raise bad_rows_error(
            f"{type(feature).__name__} {feature.name!r}", unknown, ids, f"ids outside {table}",
            "unknown_ids='raise' refuses them (unknown_ids='oov' sends them to the OOV rows)",
        )


def _sparse_array(feature, values):
    owner = f"SparseFeature {feature.name!r}"
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{owner}: expected one id per row, shape (N,). Received shape {array.shape}.")
    if feature.dtype == "string":
        return np.array(["" if _is_missing(v) else _as_str(v) for v in array.tolist()], dtype=object)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    raw = array.tolist()
    ids = [_as_int(v) for v in raw]
    bad = np.array([v is None for v in ids], bool)
    if bad.any():
        raise bad_rows_error(owner, bad, raw, "values that are not integer ids", "expected dtype='int64'")
    return np.array(ids, dtype=np.int64)


def _dense_row_is_numbers(row, embed_dim):
    try:
        shape = np.asarray(row, dtype=np.float32).shape
    except (TypeError, ValueError):
        return False
    return shape in (((), (1,)) if embed_dim == 1 else ((embed_dim,),))


def _dense_array(feature, values, fill):
    owner = f"DenseFeature {feature.name!r}"
    rows = values.tolist() if isinstance(values, np.ndarray) and values.dtype == object else values
    try:
        array = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        rows = list(rows)
        bad = np.array([not _dense_row_is_numbers(row, feature.embed_dim) for row in rows], bool)
        wanted = "numbers" if feature.embed_dim == 1 else f"{feature.embed_dim} numbers each"
        if bad.any():
            raise bad_rows_error(owner, bad, rows, f"values that are not {wanted}", "expected float32 values") from None
        # Every row is good, so numpy refused a mix of numbers and one-number lists (embed_dim 1).
        array = np.array([np.asarray(row, np.float32).reshape(()) for row in rows], np.float32)
    if feature.embed_dim == 1 and array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    expected = (len(array),) if feature.embed_dim == 1 else (len(array), feature.embed_dim)
    if not len(array):
        array = array.reshape(expected)
    if array.shape != expected:
        wanted = "(N,)" if feature.embed_dim == 1 else f"(N, {feature.embed_dim})"
        raise ValueError(
            f"{owner} (embed_dim={feature.embed_dim}): expected shape {wanted}. Received shape {array.shape}."
        )
    if fill is not None:
        return np.where(np.isfinite(array), array, np.float32(fill))
    check_finite(
        owner, array, f"fill them before training, or choose their value with to_feature_arrays(..., "
        f"fill_non_finite={{{feature.name!r}: 0.0}})",
    )
    return array


def _sequence_items(row, sep):
    """One row of a sequence column as a list of raw items (a list, an array or 'a|b|c')."""
    if isinstance(row, bytes):
        row = row.decode("utf-8")
    if isinstance(row, str):
        return [item.strip() for item in row.split(sep)] if row.strip() else []
    if isinstance(row, (list, tuple, np.ndarray)):
        return list(row)
    return [] if _is_missing(row) else [row]


def _sequence_array(feature, values, sep):
    owner = f"SequenceFeature {feature.name!r}"
    if isinstance(values, np.ndarray) and values.ndim > 2:
        raise ValueError(f"{owner}: expected one sequence per row. Received shape {values.shape}.")
    rows = list(values)
    is_string = feature.dtype == "string"
    matrix = np.full((len(rows), feature.max_len), feature.padding_value, dtype=object if is_string else np.int64)
    bad = np.zeros(len(rows), bool)
    for index, row in enumerate(rows):
        items = _sequence_items(row, sep)
        items = [_as_str(v) for v in items] if is_string else [_as_int(v) for v in items]
        if None in items:
            bad[index] = True
            continue
        # Padding values are masked by the model anyway; dropping them first means a padded
        # input keeps its real items when it is truncated.
        items = [v for v in items if v != feature.padding_value][-feature.max_len :]
        matrix[index, : len(items)] = items
    if bad.any():
        raise bad_rows_error(owner, bad, rows, "items that are not integer ids", "expected dtype='int64' items")
    return matrix


_UNKNOWN_IDS = ("oov", "raise")


def _fill_values(fill_non_finite, features):
    """``fill_non_finite`` as dense feature name -> fill value (a float), checked."""
    if fill_non_finite is None:
        return {}
    dense = [f.name for f in features if isinstance(f, DenseFeature)]
    if not isinstance(fill_non_finite, dict):
        fill_non_finite = dict.fromkeys(dense, fill_non_finite)
    fills = mapping(fill_non_finite, "fill_non_finite", dense)
    return {name: finite_number(value, join_path("fill_non_finite", name)) for name, value in fills.items()}


def to_feature_arrays(frame_or_dict, features, sequence_sep="|", fill_non_finite=None, unknown_ids="oov"):
    """The arrays a model built from ``features`` takes, from a DataFrame or a dict of columns.

    Only the spec's columns are kept (other columns are left out), converted to the input
    dtypes and shapes of ``tf_mtl.features.keras_inputs``:

    - ``SparseFeature``: ``(N,)`` int64, or ``(N,)`` Python ``str`` objects when
      ``dtype="string"`` (bytes are decoded, whole floats such as ``6.0`` become ``"6"`` and
      missing values ``""``, which lands in an OOV row);
    - ``SequenceFeature``: ``(N, max_len)``; each row given as a list/array or as one string of
      items joined by ``sequence_sep`` (``"3|5|9"``; ``""`` or a missing value is an empty
      sequence). Items equal to ``padding_value`` are dropped, longer sequences keep their
      last (most recent) ``max_len`` items, shorter ones are padded at the end (the model
      does the same with a wider or ragged input);
    - ``DenseFeature``: float32 ``(N,)`` when ``embed_dim == 1``, else ``(N, embed_dim)``
      (a column of lists/arrays is stacked). NaN (missing) and Inf values raise an error
      unless ``fill_non_finite`` chooses a value for them.

    Ids the embedding table has no row for (negative or ``>= vocab_size``, or outside the
    vocabulary) go to the feature's OOV rows in the model; ``unknown_ids="raise"`` refuses them.

    Args:
        frame_or_dict: a ``pandas.DataFrame`` or a dict of column name -> values.
        features: the feature spec.
        sequence_sep: the delimiter of sequence columns given as strings.
        fill_non_finite: the imputation of dense features: ``None`` (default) refuses NaN and
            Inf; a number replaces them in every dense feature; a dict dense feature name ->
            number replaces them in those features (the others still refuse them).
        unknown_ids: ``"oov"`` (default) keeps unknown ids for the OOV rows; ``"raise"``
            refuses them.

    Returns:
        A dict feature name -> numpy array, in the spec's order.

    Raises:
        KeyError: a feature has no column (names the feature and the available columns).
        ValueError: a column cannot be converted, holds NaN/Inf or (with
            ``unknown_ids="raise"``) unknown ids, or its row count differs from the others;
            names the feature, the number of bad rows and the first of them.

    Example:

    >>> x = to_feature_arrays({"items": ["3|5|9", "", [1, 2]]}, [SequenceFeature("items", 10, 4, "sum", 2)])
    >>> x["items"].tolist()
    [[5, 9], [0, 0], [1, 2]]
    >>> to_feature_arrays({"price": [1.0, None]}, [DenseFeature("price")], fill_non_finite=0.0)["price"].tolist()
    [1.0, 0.0]
    """
    columns = _columns(frame_or_dict, "to_feature_arrays: frame_or_dict")
    features = validate_features(features)
    fill = _fill_values(fill_non_finite, features)
    if unknown_ids not in _UNKNOWN_IDS:
        raise ValueError(f"unknown_ids must be one of {_UNKNOWN_IDS}. Received: unknown_ids={unknown_ids!r}")
    arrays = {}
    for feature in features:
        if feature.name not in columns:
            raise KeyError(
                f"Feature {feature.name!r} has no column in the data. Available columns: {sorted(map(str, columns))}"
            )
        values = columns[feature.name]
        _check_is_column(f"Column {feature.name!r}", values)
        if isinstance(feature, DenseFeature):
            array = _dense_array(feature, values, fill.get(feature.name))
        else:
            if isinstance(feature, SequenceFeature):
                array = _sequence_array(feature, values, sequence_sep)
            else:
                array = _sparse_array(feature, values)
            _check_unknown_ids(feature, array, unknown_ids)
        first = next(iter(arrays), None)
        if first is not None and len(array) != len(arrays[first]):
            raise ValueError(
                f"Column {feature.name!r} has {len(array)} rows; expected {len(arrays[first])} like column {first!r}."
            )
        arrays[feature.name] = array
    return arrays


def _model_array(part, name, values):
    """Floats as float32 and integers as int64 (the dtypes model inputs take); strings as they are.
    Floats must be finite: a NaN or Inf feature value would poison the weights it reaches."""
    owner = f"{part} column {name!r}"
    _check_is_column(owner, values)
    try:
        array = np.asarray(values)
    except ValueError as err:
        raise ValueError(
            f"{owner} cannot be one array ({err}); pad sequences of different lengths with "
            "to_feature_arrays(data, features)."
        ) from None
    if array.dtype.kind == "f":
        with np.errstate(over="ignore"):  # values beyond float32 become Inf, which check_finite refuses
            array = array.astype(np.float32)
        check_finite(
            owner, array, "expected finite feature values; to_feature_arrays(data, features, fill_non_finite=...) "
            "can fill them",
        )
        return array
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind in "bUS":
        return array
    kind = pd.api.types.infer_dtype(array.ravel(), skipna=False)
    if array.dtype == object and kind in ("string", "bytes", "empty"):
        return array
    raise TypeError(
        f"{owner} holds {kind} values of dtype {array.dtype}; expected numbers or strings. Convert raw "
        "columns (lists, missing values) with to_feature_arrays(data, features)."
    )


def _label_array(owner, values):
    """One label column (or an array of them), numeric; ``check_label`` sees it before it
    becomes float32, where 1e-300 would pass for 0."""
    _check_is_column(owner, values)
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{owner} must be numeric. Received dtype {array.dtype}.")
    return array


def _labels(y, where, tasks):
    """An array (N,) or (N, T) -> float32 (N, T); a dict or DataFrame -> name -> float32 (N,).

    Every column is checked by ``check_label``; with ``tasks``, an array has one column per task
    in task order, a dict a column named after each task (other columns, e.g. loss masks, may
    come along), and each task's labels are checked against its type."""
    if isinstance(y, (pd.DataFrame, dict)):
        columns = _columns(y, where)
        if not columns:
            raise ValueError(f"{where} has no label columns.")
        types = {} if tasks is None else {t.name: t.task_type for t in tasks}
        missing = [name for name in types if name not in columns]
        if missing:
            raise ValueError(f"{where} lacks the labels of the tasks {missing}. Received columns: {sorted(columns)}")
        labels = {}
        for name, values in columns.items():
            owner = f"Label {where}[{name!r}]"
            labels[name] = _label_array(owner, values)
            if labels[name].ndim != 1:
                raise ValueError(f"{owner}: expected shape (N,). Received shape {labels[name].shape}.")
            check_label(owner, types.get(name), labels[name])
            labels[name] = labels[name].astype(np.float32)
        return labels
    array = _label_array(f"Label {where}", y)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{where}: expected shape (N,) or (N, n_tasks). Received shape {array.shape}.")
    if tasks is not None and array.shape[1] != len(tasks):
        raise ValueError(
            f"{where} has {array.shape[1]} label columns; expected one per task {[t.name for t in tasks]}."
        )
    for column in range(array.shape[1]):
        task = None if tasks is None else tasks[column]
        owner = f"Label {where}[:, {column}]" + ("" if task is None else f" (task {task.name!r})")
        check_label(owner, None if task is None else task.task_type, array[:, column])
    return array.astype(np.float32)


def _label_layout(y):
    return sorted(y) if isinstance(y, dict) else f"an array with {y.shape[1]} columns"


def _n_rows(y):
    return len(next(iter(y.values()))) if isinstance(y, dict) else len(y)


def _checked(x, y, tasks, suffix=""):
    """``(x, y)`` as ``DataGenerator`` keeps them, checked; ``suffix`` names held-out data
    (``"_val"``) in the errors."""
    y = _labels(y, f"y{suffix}", tasks)
    n_rows = _n_rows(y)
    for name, values in (y.items() if isinstance(y, dict) else ()):
        if len(values) != n_rows:
            raise ValueError(
                f"y{suffix} column {name!r} has {len(values)} rows; expected {n_rows} like the first label."
            )
    if not n_rows:
        raise ValueError(f"y{suffix} has no rows; expected at least one example.")
    arrays = {}
    for name, values in _columns(x, f"x{suffix}").items():
        if not isinstance(name, str):
            raise TypeError(f"x{suffix} column names must be strings (feature names). Received: {name!r}")
        array = _model_array(f"x{suffix}", name, values)
        if len(array) != n_rows:
            raise ValueError(
                f"x{suffix} column {name!r} has {len(array)} rows; expected {n_rows}, the number of rows of y{suffix}."
            )
        arrays[name] = array
    if not arrays:
        raise ValueError(f"x{suffix} has no columns.")
    return arrays, y


class DataGenerator:
    """Train/validation/test ``tf.data`` pipelines from in-memory features and labels.

    The API of torch-rechub's ``DataGenerator`` (rechub ``utils/data.py``), on ``tf.data``:
    batches are ``(x, y)`` with ``x`` a dict feature name -> tensor and ``y`` either a float32
    tensor ``(batch, n_tasks)`` (labels given as an array; a 1-D array gives one column) or a
    dict task name -> float32 ``(batch,)`` (labels given as a dict or a DataFrame).

    Data without rows, NaN or Inf in a float feature column or a label, and (given the tasks)
    classification labels other than 0 and 1 are refused with an error naming the column, the
    number of bad rows and the first of them.

    Args:
        x: a dict of arrays or a DataFrame of model-ready columns (see ``to_feature_arrays``);
            floats become float32, integers int64, strings stay strings.
        y: an array ``(N,)`` or ``(N, n_tasks)``, or a dict / DataFrame task name -> ``(N,)``.
        task_types: optional, the tasks' types in task order (as the model takes them): labels
            are then checked against them (one array column, or a dict entry named after each
            task, per task; classification labels 0 or 1).
        task_names: the tasks' names with ``task_types`` (default ``task1..N``).

    Example:

    >>> data = mmoe_synthetic(10_000, correlation=0.9)
    >>> train, val, test = DataGenerator(data.x, data.y).generate_dataloader(
    ...     split_ratio=[0.7, 0.1], batch_size=256)
    >>> x, y = read_csv("impressions.csv", features, label_columns=["click", "buy"])
    >>> loaders = DataGenerator(x, y, task_types=["classification"] * 2, task_names=["click", "buy"])
    """

    def __init__(self, x, y, *, task_types=None, task_names=None):
        if task_types is None and task_names is not None:
            raise ValueError(f"task_names needs task_types. Received: task_names={task_names!r}")
        self.tasks = None if task_types is None else make_tasks(task_types, task_names)
        self.x, self.y = _checked(x, y, self.tasks)

    def __len__(self):
        return _n_rows(self.y)

    def _take(self, indices):
        y = {k: v[indices] for k, v in self.y.items()} if isinstance(self.y, dict) else self.y[indices]
        return {k: v[indices] for k, v in self.x.items()}, y

    def _extra(self, x, y, where):
        if x is None and y is None:
            return None
        if x is None or y is None:
            raise ValueError(f"Give both x_{where} and y_{where}, or neither.")
        other_x, other_y = _checked(x, y, self.tasks, f"_{where}")
        missing = sorted(set(self.x) - set(other_x))
        if missing:
            raise ValueError(f"x_{where} lacks the feature column {missing[0]!r}; expected columns {sorted(self.x)}.")
        if _label_layout(other_y) != _label_layout(self.y):
            raise ValueError(f"y_{where} has labels {_label_layout(other_y)}; expected {_label_layout(self.y)} like y.")
        return {k: other_x[k] for k in self.x}, other_y

    def generate_dataloader(
        self, x_val=None, y_val=None, x_test=None, y_test=None, split_ratio=None, batch_size=16, shuffle=True,
        seed=2022,
    ):
        """Returns ``(train, val, test)`` batched, prefetched ``tf.data.Dataset``s.

        With ``split_ratio=[train, val]`` the rows are shuffled with ``seed`` and cut into
        ``floor(N * train)`` training rows, ``floor(N * val)`` validation rows and the rest for
        test. Otherwise all rows train, and ``x_val``/``y_val`` and ``x_test``/``y_test`` (given
        like ``x`` and ``y``) build the other two, ``None`` where not given. The training set is
        reshuffled every epoch (seeded, over the whole set) when ``shuffle``; validation and
        test keep their order.

        Args:
            x_val, y_val, x_test, y_test: optional held-out data; not with ``split_ratio``.
            split_ratio: ``[train_fraction, val_fraction]``, each in (0, 1), summing to <= 1.
            batch_size: rows per batch (the last batch may be smaller).
            shuffle: reshuffle the training set each epoch.
            seed: seeds the split and the shuffle.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
        if split_ratio is not None:
            held_out = {"x_val": x_val, "y_val": y_val, "x_test": x_test, "y_test": y_test}
            given = [name for name, value in held_out.items() if value is not None]
            if given:
                raise ValueError(f"Give split_ratio or held-out data, not both. Received split_ratio and {given}.")
            rows = split_indices(len(self), *check_split_ratio(split_ratio), seed)
            for part, part_rows in zip(("training", "validation"), rows):
                if not len(part_rows):
                    raise ValueError(
                        f"split_ratio={split_ratio!r} of {len(self)} rows leaves no {part} rows; expected at least "
                        "one. Give more rows or a larger fraction."
                    )
            parts = [self._take(i) for i in rows]
        else:
            parts = [(self.x, self.y), self._extra(x_val, y_val, "val"), self._extra(x_test, y_test, "test")]
        train, val, test = parts
        return (
            _dataset(train, batch_size, shuffle, seed),
            None if val is None else _dataset(val, batch_size, False, seed),
            None if test is None else _dataset(test, batch_size, False, seed),
        )


def _dataset(part, batch_size, shuffle, seed):
    """Batches of ``part`` gathered from its arrays by blocks of row indices.

    A batch is one gather per group of columns: the one-dimensional columns of one dtype are
    stacked into a matrix (the twenty ids of a ranking workload, one gather), the others are
    gathered alone. The indices of an epoch are cut into batches as one tensor: a permutation
    of the whole set when ``shuffle``, drawn from ``seed`` and new every iteration of the
    dataset (every epoch, and every repetition of ``.repeat()``). Slicing the arrays into
    single rows and batching them again, the usual pipeline, costs a core per 30,000 rows a
    second here; shuffling and batching the indices one by one cost 2 ms of a batch of 1024.
    """
    n_rows = _n_rows(part[1])
    flat = tf.nest.flatten(part)
    groups = {}
    for i, array in enumerate(flat):
        key = (array.dtype.str, i) if array.ndim != 1 or array.dtype.kind not in "biuf" else (array.dtype.str,)
        groups.setdefault(key, []).append(i)
    stacked = [
        (members, tf.constant(np.stack([flat[i] for i in members], axis=1) if len(members) > 1 else flat[members[0]]))
        for members in groups.values()
    ]

    def gather(rows):
        columns = [None] * len(flat)
        for members, values in stacked:
            taken = tf.gather(values, rows)
            for i, column in zip(members, tf.unstack(taken, axis=1) if len(members) > 1 else [taken]):
                columns[i] = column
        return tf.nest.pack_sequence_as(part, columns)

    return _index_batches(n_rows, batch_size, shuffle, seed).map(
        gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    ).prefetch(tf.data.AUTOTUNE)


def _index_batches(n_rows, batch_size, shuffle, seed):
    """Row indices of an epoch, ``(batch_size,)`` blocks and a smaller last one: in order, or a
    permutation seeded by ``seed`` and the iteration (``tf.data.Dataset.random`` draws a new
    seed for each iteration, the same ones in every process)."""
    full = n_rows // batch_size

    def epoch(key):
        rows = tf.range(n_rows, dtype=tf.int64)
        if shuffle:
            rows = tf.random.experimental.stateless_shuffle(rows, seed=tf.stack([key, tf.constant(seed or 0, tf.int64)]))
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(rows[: full * batch_size], [full, batch_size]))
        if n_rows % batch_size:
            batches = batches.concatenate(tf.data.Dataset.from_tensors(rows[full * batch_size :]))
        return batches

    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True) if shuffle else tf.data.Dataset.from_tensors(tf.constant(0, tf.int64))
    # flat_map hides the number of batches, which the trainer reads.
    return keys.take(1).flat_map(epoch).apply(tf.data.experimental.assert_cardinality(-(-n_rows // batch_size)))
