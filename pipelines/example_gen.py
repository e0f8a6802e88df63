"""ExampleGen: CSV, Parquet or a pandas DataFrame -> gzipped TFRecord ``tf.Example`` shards.

Rows go to splits by a hash of a key column (or of the whole row when no key is named), so
the split is deterministic: the same row lands in the same split on every run and machine.
The layout is TFX's (``Split-train/data_tfrecord-00000-of-00001.gz``), so a real TFX
Trainer can read these examples and this pipeline's Trainer can read TFX's.
"""

import dataclasses
import glob
import json
import os
from typing import NamedTuple

import numpy as np
import pandas as pd
import tensorflow as tf

from pipelines.checks import fail, mapping, number
from pipelines.component import Component, file_digest
from tf_mtl.data.census import NUMERIC_COLUMNS as CENSUS_NUMERIC_COLUMNS
from tf_mtl.data.census import read_census_frame

FORMATS = ("csv", "parquet", "census_income")
# How the data pass runs: Apache Beam when it imports ("auto"), always Beam, or pandas.
EXECUTIONS = ("auto", "beam", "pandas")
COLUMNS_FILE = "columns.json"
HASH_BUCKETS = 10_000


class Column(NamedTuple):
    """One column of a split: the values of all rows, flat, and how many each row has
    (0: missing; 1 for a scalar; any number for a list column)."""

    values: np.ndarray
    lengths: np.ndarray


def source_format(path, format=None):
    if format is None:
        format = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(os.path.splitext(path)[1].lower())
        if format is None and path.endswith((".csv.gz", ".csv.zip")):
            format = "csv"
    if format not in FORMATS:
        raise ValueError(f"data.format: expected one of {FORMATS} for {path}. Received: {format!r}")
    return format


def read_source(path, format=None, read_options=None):
    """The source file as a DataFrame (nullable dtypes, so integer columns with gaps stay integer)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data.path: no such file {path}")
    format = source_format(path, format)
    options = dict(read_options or {})
    if format == "census_income":
        frame = read_census_frame(path)
        for name in CENSUS_NUMERIC_COLUMNS:
            frame[name] = pd.to_numeric(frame[name])
        return frame.convert_dtypes(convert_floating=False, dtype_backend="numpy_nullable")
    reader = pd.read_csv if format == "csv" else pd.read_parquet
    try:
        frame = reader(path, dtype_backend="numpy_nullable", **options)
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: cannot be read as {format}: {err}") from err
    if frame.empty:
        raise ValueError(f"{path}: the file holds no rows.")
    return frame


def _tokens(value, sep):
    """The items of a list column's value: a delimiter-joined string, or a list (Parquet)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(item) for item in value]
    return [] if value is None or value is pd.NA or value == "" else str(value).split(sep)


def column_types(frame, list_columns=None):
    """``{column: {"type": "int" | "float" | "string", "list": bool}}`` from the frame's dtypes.

    ``list_columns`` maps columns holding delimiter-joined lists (``"3|5|9"``) to their
    delimiter; their items are ints when every item reads as one.
    """
    list_columns = dict(list_columns or {})
    missing = sorted(set(list_columns) - set(frame.columns))
    if missing:
        raise KeyError(f"list columns {missing} are not in the data's columns {list(frame.columns)}.")
    types = {}
    for name in frame.columns:
        if not isinstance(name, str):
            raise ValueError(f"Column names must be strings. Received: {name!r}")
        if name in list_columns:
            items = [t for v in frame[name].dropna() for t in _tokens(v, list_columns[name])]
            kind = "int" if items and all(_parses_as_int(t) for t in items) else "string"
            types[name] = {"type": kind, "list": True, "separator": list_columns[name]}
            continue
        dtype = frame[name].dtype
        kind = "int" if dtype.kind in "iub" else "float" if dtype.kind == "f" else "string"
        types[name] = {"type": kind, "list": False}
    return types


def _parses_as_int(text):
    try:
        int(text)
        return True
    except ValueError:
        return False


def check_splits(splits, where="data.splits"):
    """``{"train": 0.8, "eval": 0.2, ...}``: positive fractions summing to 1, train and eval among them."""
    mapping(splits, where, required=("train", "eval"))
    for split, fraction in splits.items():
        number(fraction, f"{where}.{split}", 0, 1)
        if fraction <= 0:
            fail(f"{where}.{split}", "a positive fraction", fraction)
    if abs(sum(splits.values()) - 1) > 1e-6:
        fail(where, "fractions summing to 1", splits)
    return splits


def split_assignment(frame, splits, key=None):
    """The split name of every row: buckets of a deterministic hash of ``key`` (or the row)."""
    if key is not None and key not in frame.columns:
        raise KeyError(f"data.key: column {key!r} is not in the data's columns {list(frame.columns)}.")
    hashed = pd.util.hash_pandas_object(frame[key] if key else frame, index=False).to_numpy()
    bucket = hashed % np.uint64(HASH_BUCKETS)
    names, bounds = list(splits), np.cumsum([splits[n] for n in splits]) * HASH_BUCKETS
    return np.array(names, dtype=object)[np.searchsorted(bounds, bucket, side="right").clip(0, len(names) - 1)]


def _feature(kind, values):
    if kind == "int":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    if kind == "float":
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(v).encode() for v in values]))


def _python_values(series, spec):
    """Per row, the list of values of one column ([] where missing)."""
    if spec["list"]:
        cast = int if spec["type"] == "int" else str
        return [[cast(t) for t in _tokens(v, spec["separator"])] for v in series.tolist()]
    missing = series.isna().to_numpy()
    values = series.astype(object).tolist()
    if spec["type"] == "float":
        return [[] if m or np.isnan(v) else [float(v)] for v, m in zip(values, missing)]
    if spec["type"] == "int":
        return [[] if m else [int(v)] for v, m in zip(values, missing)]
    return [[] if m else [v] for v, m in zip(values, missing)]


def to_examples(frame, types):
    """Serialized ``tf.Example``s, one per row; a missing value leaves its feature out."""
    columns = {name: _python_values(frame[name], spec) for name, spec in types.items()}
    examples = []
    for row in range(len(frame)):
        feature = {name: _feature(types[name]["type"], values[row]) for name, values in columns.items() if values[row]}
        examples.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return examples


def split_dir(root, split):
    return os.path.join(root, f"Split-{split}")


def split_files(root, split):
    """The shard files of one split of an examples folder (raises naming the split if none)."""
    files = sorted(glob.glob(os.path.join(split_dir(root, split), "*")))
    if not files:
        raise FileNotFoundError(f"{root}: no examples for split {split!r}.")
    return files


def write_shards(examples, directory, rows_per_shard):
    """Writes serialized examples as gzipped TFRecord shards into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    n_shards = max(1, -(-len(examples) // rows_per_shard))
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    for shard in range(n_shards):
        path = os.path.join(directory, f"data_tfrecord-{shard:05d}-of-{n_shards:05d}.gz")
        with tf.io.TFRecordWriter(path, options) as writer:
            for example in examples[shard * rows_per_shard : (shard + 1) * rows_per_shard]:
                writer.write(example)


PARSE_DTYPES = {"int": tf.int64, "float": tf.float32, "string": tf.string}


def parse_spec(types, names=None):
    """The ``tf.io.parse_example`` spec of columns: ragged, so a missing value is a row of length 0."""
    return {name: tf.io.RaggedFeature(PARSE_DTYPES[types[name]["type"]]) for name in (types if names is None else names)}


def read_columns(root, split, types, names=None, batch_size=8192):
    """Reads columns of one split back as ``Column``s (values flat, per-row lengths)."""
    names = list(types) if names is None else list(names)
    spec = parse_spec(types, names)
    dataset = tf.data.TFRecordDataset(split_files(root, split), compression_type="GZIP").batch(batch_size)
    dataset = dataset.map(lambda s: tf.io.parse_example(s, spec), num_parallel_calls=tf.data.AUTOTUNE)
    values = {name: [] for name in names}
    lengths = {name: [] for name in names}
    for batch in dataset:
        for name in names:
            values[name].append(batch[name].flat_values.numpy())
            lengths[name].append(batch[name].row_lengths().numpy())
    return {
        name: Column(np.concatenate(values[name]) if values[name] else np.array([]), np.concatenate(lengths[name]) if lengths[name] else np.zeros(0, np.int64))
        for name in names
    }


def read_types(artifact):
    with open(artifact.file(COLUMNS_FILE)) as file:
        return json.load(file)


@dataclasses.dataclass(frozen=True)
class Source:
    """Where ExampleGen reads: a file path (with format and pandas read options) or a DataFrame."""

    path: str = None
    format: str = None
    read_options: dict = None
    frame: pd.DataFrame = None

    def read(self):
        if self.frame is not None:
            if self.frame.empty:
                raise ValueError("data: the DataFrame holds no rows.")
            # Floats stay floats: pandas would otherwise make integral-valued floats integers.
            return self.frame.convert_dtypes(convert_floating=False, dtype_backend="numpy_nullable")
        return read_source(self.path, self.format, self.read_options)

    def fingerprint(self):
        if self.frame is not None:
            hashed = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
            return {"frame": pd.util.hash_array(hashed).sum().item(), "columns": list(map(str, self.frame.columns))}
        return {"path": os.path.abspath(self.path), "sha256": file_digest(self.path)}


class ExampleGen(Component):
    """Reads the source and writes ``tf.Example`` shards per split plus ``columns.json``.

    Args:
        source: a ``Source`` (file or DataFrame).
        splits: ``{"train": 0.8, "eval": 0.2}``: fractions of the hash buckets, in order.
        key: the column whose hash picks the split (default: the whole row).
        list_columns: ``{column: delimiter}`` for columns holding joined lists.
        rows_per_shard: rows per TFRecord file.
        execution: ``"auto"`` (Apache Beam when installed, else pandas), ``"beam"`` or ``"pandas"``.
        beam_options: Beam pipeline arguments (default ``["--runner=DirectRunner"]``).
    """

    def __init__(self, source, splits=None, key=None, list_columns=None, rows_per_shard=100_000, name=None,
                 execution="auto", beam_options=None):
        splits = check_splits(dict(splits or {"train": 0.8, "eval": 0.2}))
        super().__init__(
            {"source": {"format": source.format, "read_options": source.read_options}, "splits": splits, "key": key,
             "list_columns": dict(list_columns or {}), "rows_per_shard": int(rows_per_shard)},
            name=name,
        )
        self.source = source
        from pipelines.beam import use_beam  # pipelines.beam imports this module

        # Not params: both executions write the same examples, so the cache key ignores how.
        self.use_beam, self.beam_options = use_beam(execution), beam_options

    def fingerprint(self):
        return self.source.fingerprint()

    def run(self, inputs, output_dir):
        frame = self.source.read()
        types = column_types(frame, self.params["list_columns"])
        if self.use_beam:
            from pipelines.beam import write_examples  # pipelines.beam imports this module

            rows = write_examples(frame, types, self.params["splits"], self.params["key"], output_dir,
                                  self.params["rows_per_shard"], self.beam_options)
        else:
            assignment = split_assignment(frame, self.params["splits"], self.params["key"])
            rows = {}
            for split in self.params["splits"]:
                part = frame[assignment == split]
                write_shards(to_examples(part, types), split_dir(output_dir, split), self.params["rows_per_shard"])
                rows[split] = len(part)
        with open(os.path.join(output_dir, COLUMNS_FILE), "w") as file:
            json.dump(types, file, indent=1)
        return {"rows": rows, "columns": len(types), "execution": "beam" if self.use_beam else "pandas"}

    def describe(self, artifact):
        rows = artifact.figures["rows"]
        return f"{artifact.figures['columns']} columns; rows " + ", ".join(f"{k} {v:,}" for k, v in rows.items()) + (
            f" ({artifact.figures['execution']})")
