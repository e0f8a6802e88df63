"""ExampleGen's and StatisticsGen's data passes as Apache Beam pipelines.

The same code runs on DirectRunner here and on any Beam runner given in ``options``
(``["--runner=DataflowRunner", "--temp_location=gs://...", ...]``). Each pass reuses the pandas
path's functions for every decision, so both paths give the same results: rows reach splits
through ``split_assignment`` and become records through ``to_examples``; statistics come from
``StatisticsAccumulator``, wrapped in a ``CombineFn``.

Beam is optional: it needs protobuf 6 and pyarrow < 26, so it lives in its own virtual
environment (``.ci/beam`` builds it from ``requirements-beam.lock``). ``beam_available()`` says
whether this interpreter can import it.

Example:

>>> if beam_available():
...     rows = write_examples(source, types, {"train": 0.8, "eval": 0.2}, "user_id", out, 100_000)
...     stats = compute_statistics(out, "train", types)
"""

import contextlib
import math
import os
import json
import tempfile
import uuid

import tensorflow as tf

from pipelines.example_gen import EXECUTIONS, Column, Source, parse_spec, split_assignment, split_dir, split_files, to_examples
from pipelines.statistics import StatisticsAccumulator

try:
    import apache_beam as beam
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.metrics import Metrics
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions
except ImportError as err:  # the pandas path needs no Beam; beam_available() reports this
    beam, _IMPORT_ERROR = None, err

DEFAULT_OPTIONS = ("--runner=DirectRunner",)
CHUNK_ROWS = 10_000
BATCH_SIZE = 8192
_ROWS_NAMESPACE = "ExampleGen.rows"
def beam_available():
    """Whether ``apache_beam`` can be imported here (``execution: "auto"`` uses Beam if so)."""
    return beam is not None


def _require_beam():
    if beam is None:
        raise ImportError(
            f"Beam execution needs apache_beam, which cannot be imported here ({_IMPORT_ERROR}). Run in the "
            "venv .ci/beam builds from requirements-beam.lock, or use execution='pandas'."
        )


def use_beam(execution):
    """Whether a step's data pass runs on Beam.

    Args:
        execution: ``"beam"`` (raises ``ImportError`` when Beam cannot be imported),
            ``"pandas"``, or ``"auto"`` (Beam when it can be imported).
    """
    if execution not in EXECUTIONS:
        raise ValueError(f"execution: expected one of {EXECUTIONS}. Received: {execution!r}")
    if execution == "beam":
        _require_beam()
    return execution == "beam" or execution == "auto" and beam_available()


def _pipeline_options(options):
    _require_beam()
    return PipelineOptions(list(DEFAULT_OPTIONS if options is None else options))


def _examples_by_split(chunk, types, splits, key):
    """The serialized examples of a chunk of rows, each tagged with its split's name."""
    assignment = split_assignment(chunk, splits, key)
    for split in splits:
        part = chunk[assignment == split]
        Metrics.counter(_ROWS_NAMESPACE, split).inc(len(part))
        for example in to_examples(part, types):
            yield beam.pvalue.TaggedOutput(split, example)


def write_examples(source, types, splits, key, output_dir, rows_per_shard, options=None, chunk_rows=CHUNK_ROWS):
    """Writes ExampleGen's gzipped ``tf.Example`` shards with a Beam pipeline.

    Rows go to the same splits and become the same records as on the pandas path; only their
    order within a split differs. Each split gets ``ceil(expected rows / rows_per_shard)``
    files (expected rows: its fraction of all rows), named like the pandas path's
    (``Split-train/data_tfrecord-00000-of-00002.gz``); Beam spreads records over them, so a
    file holds about ``rows_per_shard`` rows.

    Args:
        source: a ``Source`` or a DataFrame (read through ``Source(frame=...)``). Its rows are
            read here and handed to the pipeline in chunks, so the whole source's dtypes decide
            the row hashes, exactly as on the pandas path.
        types: ``column_types`` of the source.
        splits: ``{"train": 0.8, "eval": 0.2}``, as ExampleGen's ``splits``.
        key: the column whose hash picks the split (``None``: the whole row).
        output_dir: the examples folder; ``Split-<name>/`` folders are made in it.
        rows_per_shard: rows per TFRecord file, about.
        options: Beam pipeline arguments (default ``["--runner=DirectRunner"]``).
        chunk_rows: rows per pipeline element.

    Returns:
        ``{split: rows}``, from the pipeline's counters.
    """
    pipeline_options = _pipeline_options(options)
    frame = source.read() if isinstance(source, Source) else Source(frame=source).read()
    if chunk_rows < 1 or rows_per_shard < 1:
        raise ValueError(f"chunk_rows and rows_per_shard must be positive. Received: {chunk_rows}, {rows_per_shard}")
    chunks = [frame.iloc[start : start + chunk_rows] for start in range(0, len(frame), chunk_rows)]
    pipeline = beam.Pipeline(options=pipeline_options)
    examples = (
        pipeline
        | "Chunks" >> beam.Create(chunks)
        | "Examples" >> beam.FlatMap(_examples_by_split, types, dict(splits), key).with_outputs(*splits)
    )
    for split, fraction in splits.items():
        examples[split] | f"Write-{split}" >> beam.io.WriteToTFRecord(
            os.path.join(split_dir(output_dir, split), "data_tfrecord"),
            file_name_suffix=".gz",
            num_shards=max(1, math.ceil(len(frame) * fraction / rows_per_shard)),
            shard_name_template="-SSSSS-of-NNNNN",
            compression_type=CompressionTypes.GZIP,
        )
    result = pipeline.run()
    result.wait_until_finish()
    rows = dict.fromkeys(splits, 0)
    for counter in result.metrics().query(MetricsFilter().with_namespace(_ROWS_NAMESPACE))["counters"]:
        rows[counter.key.metric.name] += counter.committed
    return rows


def parse_columns(records, types):
    """A batch of serialized ``tf.Example``s as ``{column: Column}``, as ``read_columns`` reads them."""
    spec = parse_spec(types)
    parsed = tf.io.parse_example(tf.constant(records, tf.string), spec)
    return {name: Column(parsed[name].flat_values.numpy(), parsed[name].row_lengths().numpy()) for name in types}


# The base is Beam's CombineFn when Beam is installed; without Beam the class is never used.
class StatisticsCombineFn(beam.CombineFn if beam else object):
    """``StatisticsAccumulator`` as a Beam ``CombineFn`` over batches of ``{column: Column}``.

    Args:
        types: ``{column: {"type": ..., "list": ...}}`` (``columns.json``).
    """

    def __init__(self, types):
        self.types = types

    def create_accumulator(self):
        return StatisticsAccumulator(self.types)

    def add_input(self, accumulator, columns):
        accumulator.add(columns)
        return accumulator

    def merge_accumulators(self, accumulators):
        first, *others = accumulators
        for other in others:
            first.merge(other)
        return first

    def extract_output(self, accumulator):
        return accumulator.result()


@contextlib.contextmanager
def _result_path(pipeline_options):
    """Where a pipeline leaves its one result for this process to read: under
    ``--temp_location`` when given (workers on other machines need a shared store), else in a
    local temporary folder (DirectRunner)."""
    temp_location = pipeline_options.view_as(GoogleCloudOptions).temp_location
    if temp_location is None:
        with tempfile.TemporaryDirectory() as folder:
            yield os.path.join(folder, "result.json")
        return
    path = FileSystems.join(temp_location, f"result-{uuid.uuid4().hex}.json")
    try:
        yield path
    finally:
        if FileSystems.exists(path):
            FileSystems.delete([path])


def _save(value, path):
    with FileSystems.create(path) as file:
        # JSON, never pickle: nothing this package reads back is executed.
        file.write(json.dumps(value, default=lambda number: number.item()).encode())


def compute_statistics(examples_dir, split, types, options=None, batch_size=BATCH_SIZE):
    """StatisticsGen's statistics of one split, computed by a Beam pipeline.

    Args:
        examples_dir: ExampleGen's examples folder.
        split: e.g. ``"train"``.
        types: ``columns.json`` of the examples.
        options: Beam pipeline arguments (default ``["--runner=DirectRunner"]``); on a runner
            whose workers do not share this machine's disk, include ``--temp_location``.
        batch_size: most records parsed at once.

    Returns:
        ``StatisticsAccumulator.result()`` of the split's rows.
    """
    pipeline_options = _pipeline_options(options)
    files = split_files(examples_dir, split)
    with _result_path(pipeline_options) as path:
        pipeline = beam.Pipeline(options=pipeline_options)
        (
            pipeline
            | "Files" >> beam.Create(files)
            | "Records" >> beam.io.ReadAllFromTFRecord(compression_type=CompressionTypes.GZIP)
            | "Batches" >> beam.BatchElements(max_batch_size=batch_size)
            | "Columns" >> beam.Map(parse_columns, types)
            | "Statistics" >> beam.CombineGlobally(StatisticsCombineFn(types))
            | "Save" >> beam.Map(_save, path)
        )
        pipeline.run().wait_until_finish()
        with FileSystems.open(path) as file:
            result = json.loads(file.read())
    result["value_counts"] = {column: [tuple(pair) for pair in counts] for column, counts in result["value_counts"].items()}
    return result
