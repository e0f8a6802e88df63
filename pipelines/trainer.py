"""Trainer: ``run_fn(fn_args)`` with the TFX Trainer contract, and the component that calls it.

The module file of a TFX pipeline can be this one: a TFX ``Trainer(module_file=...)`` calls
``run_fn`` with ``FnArgs`` (``train_files``, ``eval_files``, ``serving_model_dir``,
``model_run_dir``, ``train_steps``, ``eval_steps``, ``hyperparameters``, ``custom_config``,
``schema_path`` ...), and ``run_fn`` trains with ``MTLTrainer`` and writes the SavedModel
of ``tf_mtl.export`` into ``serving_model_dir``. It needs no schema: the columns' stored types
are read from the examples (ExampleGen's ``columns.json`` beside the splits, else the records). ``custom_config`` carries the pipeline
config's ``tasks``, ``model``, ``training`` and ``fusion`` sections and, outside this
package's pipelines, the feature spec (``features``: tf_mtl feature configs) and missing-value
``defaults``; inside them the Transform step's output (``transform_output``) provides both.
"""

import copy
import dataclasses
import glob
import json
import os
import time
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from pipelines.checks import choice
from pipelines.component import Component
from pipelines.hyperparameters import apply_hyperparameters, hyperparameter_values
from pipelines.example_gen import COLUMNS_FILE, PARSE_DTYPES, split_files
from pipelines.schema import check_tasks
from pipelines.transform import read_transform
from tf_mtl.compat import keras
from tf_mtl.export import save_servable
from tf_mtl.features import DenseFeature, SequenceFeature, features_from_config
from tf_mtl.features.inputs import pad_sequence
from tf_mtl.fusion import search_weights
from tf_mtl.metrics import predict_with_labels
from tf_mtl.models import build_model
from tf_mtl.trainers import MTLTrainer

_KINDS = {"int64_list": tf.int64, "float_list": tf.float32, "bytes_list": tf.string}
SHUFFLE_BUFFER = 65_536


@dataclasses.dataclass
class FnArgs:
    """The arguments a TFX Trainer passes to ``run_fn`` (the fields this module reads)."""

    train_files: list
    eval_files: list
    serving_model_dir: str
    model_run_dir: str
    custom_config: dict
    train_steps: Optional[int] = None
    eval_steps: Optional[int] = None
    hyperparameters: Any = None
    transform_output: Optional[str] = None


def _files(patterns):
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    files = sorted(f for p in patterns for f in glob.glob(p))
    if not files:
        raise FileNotFoundError(f"No example files match {patterns}.")
    return files


def stored_dtypes(files, names, records=256):
    """The dtype each named column is stored with (an integer column can feed a dense feature):
    from ExampleGen's ``columns.json`` beside the split folders, else from the first ``records``
    records (TFX's examples; a column absent from all of them is read as its feature's dtype)."""
    listing = os.path.join(os.path.dirname(os.path.dirname(files[0])), COLUMNS_FILE)
    if os.path.exists(listing):
        with open(listing) as file:
            types = json.load(file)
        return {name: PARSE_DTYPES[types[name]["type"]] for name in names if name in types}
    found = {}
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(records):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        for name in names:
            if name not in found and name in features:
                kind = features[name].WhichOneof("kind")
                if kind:
                    found[name] = _KINDS[kind]
        if len(found) == len(names):
            break
    return found


def _feature_dtype(feature):
    if isinstance(feature, DenseFeature):
        return tf.float32
    return tf.string if feature.dtype == "string" else tf.int64


def _cast(value, dtype):
    if value.dtype == dtype:
        return value
    if dtype == tf.string:
        return tf.strings.as_string(value)
    return tf.cast(value, dtype)


def make_dataset(files, features, tasks, defaults=None, batch_size=512, shuffle=False, seed=0, extra_labels=None):
    """``(x, y)`` batches from ``tf.Example`` files holding raw values.

    ``x`` holds every feature, cast to the feature's dtype (a missing value takes
    ``defaults[name]``; sequences are padded as in serving); ``y`` holds each task's label as
    float32 (``positive`` given: 1.0 where the column equals it) and each ``extra_labels``
    column (``{name: column}``, e.g. a loss mask).

    Args:
        files: file patterns or paths of gzipped TFRecords.
        shuffle: reshuffle each pass with ``seed`` (the same order on every run).
    """
    files = _files(files)
    defaults = dict(defaults or {})
    labels = {t["name"]: t["label"] for t in tasks}
    labels.update(extra_labels or {})
    columns = [f.name for f in features] + sorted(set(labels.values()))
    stored = stored_dtypes(files, columns)
    spec = {}
    for feature in features:
        dtype = stored.get(feature.name, _feature_dtype(feature))
        if isinstance(feature, SequenceFeature):
            spec[feature.name] = tf.io.RaggedFeature(dtype)
            continue
        shape = [feature.embed_dim] if isinstance(feature, DenseFeature) and feature.embed_dim > 1 else []
        default = defaults.get(feature.name)
        if default is not None:
            default = np.array(default).astype(dtype.as_numpy_dtype) if dtype != tf.string else str(default)
        spec[feature.name] = tf.io.FixedLenFeature(shape, dtype, default_value=default)
    for column in set(labels.values()):
        spec[column] = tf.io.FixedLenFeature([], stored.get(column, tf.float32))
    positives = {t["name"]: t.get("positive") for t in tasks}

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        x = {}
        for feature in features:
            value = _cast(parsed[feature.name], _feature_dtype(feature))
            x[feature.name] = pad_sequence(feature, value) if isinstance(feature, SequenceFeature) else value
        y = {}
        for name, column in labels.items():
            value = parsed[column]
            positive = positives.get(name)
            if positive is not None:
                value = tf.equal(value, tf.constant(positive, dtype=value.dtype))
            y[name] = tf.cast(value, tf.float32)
        return x, y

    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    # A TFRecord dataset's length is unknown; one pass over the records counts it, so epochs
    # know their number of steps.
    rows = int(dataset.reduce(np.int64(0), lambda n, _: n + 1))
    if rows == 0:
        raise ValueError(f"No examples in {files}.")
    if shuffle:
        dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).apply(tf.data.experimental.assert_cardinality(-(-rows // batch_size)))
    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


STRATEGIES = ("default", "mirrored", "multi_worker")


def _strategy(name, devices=None):
    """The ``training.strategy`` (``devices``: MirroredStrategy's, default every GPU or the CPU)."""
    choice(name or "default", STRATEGIES, "training.strategy")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def build(config, features, strategy=None):
    """The model the ``model`` section names, with its ``params``, built under ``strategy``."""
    tasks = config["tasks"]
    with (strategy or tf.distribute.get_strategy()).scope():
        return build_model(
            config["model"]["name"],
            features,
            [t["type"] for t in tasks],
            [t["name"] for t in tasks],
            **copy.deepcopy(config["model"].get("params") or {}),
        )


def mask_columns(config):
    """Loss-mask sources that are label columns rather than tasks (``{name: column}``)."""
    tasks = {t["name"] for t in config["tasks"]}
    masks = (config.get("training") or {}).get("loss_masks") or {}
    return {source: source for source in masks.values() if source not in tasks}


def train(config, features, defaults, train_files, eval_files, run_dir, train_steps=None, eval_steps=None, verbose=2):
    """Builds and trains the configured model with ``MTLTrainer``; returns ``(model, trainer,
    eval_data)``."""
    training = config.get("training") or {}
    keras.utils.set_random_seed(training.get("seed", 0))
    strategy = _strategy(training.get("strategy"), training.get("devices"))
    model = build(config, features, strategy)
    batch_size = training.get("batch_size", 512)
    extra = mask_columns(config)
    train_data = make_dataset(train_files, features, config["tasks"], defaults, batch_size, True, training.get("seed", 0), extra)
    eval_data = make_dataset(eval_files, features, config["tasks"], defaults, batch_size, extra_labels=extra)
    epochs = training.get("epochs", 2)
    steps_per_epoch = None
    if train_steps:
        steps_per_epoch = max(1, int(train_steps) // epochs)
    if eval_steps:
        eval_data = eval_data.take(int(eval_steps))
    trainer = MTLTrainer(
        model,
        optimizer_fn=training.get("optimizer", {}).get("name"),
        optimizer_params={k: v for k, v in (training.get("optimizer") or {}).items() if k != "name"} or None,
        adaptive_params=training.get("weighting"),
        n_epoch=epochs,
        earlystop_patience=training.get("earlystop_patience", epochs),
        model_path=run_dir,
        strategy=strategy,
        monitor=training.get("monitor"),
        label_weights=training.get("label_weights"),
        loss_masks=training.get("loss_masks"),
        steps_per_epoch=steps_per_epoch,
        verbose=verbose,
    )
    trainer.fit(train_data, eval_data)
    return model, trainer, eval_data


def choose_fusion(config, model, eval_data):
    """The export's fusion: the config's weights, or the best of a search on the eval data."""
    fusion = config.get("fusion")
    if not fusion or "search" not in fusion:
        return fusion, None
    search = dict(fusion["search"])
    outputs, labels, _ = predict_with_labels(model, eval_data)
    result = search_weights(outputs, labels, fusion=fusion.get("method", "sum"), **search)
    return result.as_fusion(), {"weights": result.best_weights, "score": result.best_score}


def _warmup_rows(eval_data, rows=2):
    x, _ = next(iter(eval_data.unbatch().batch(rows)))
    return {k: v.numpy() for k, v in x.items()}


def run_fn(fn_args):
    """Trains the configured model and writes its SavedModel to ``fn_args.serving_model_dir``.

    Called by this package's Trainer step and, unchanged, by a TFX Trainer. Writes into
    ``fn_args.model_run_dir``: MTLTrainer's run (checkpoints, so a restarted run resumes;
    ``history.json``; TensorBoard logs), ``model.keras`` and ``training.json`` (validation
    figures of the best epoch, the fusion and any fusion search).
    """
    custom = dict(fn_args.custom_config or {})
    config = apply_hyperparameters(custom, hyperparameter_values(getattr(fn_args, "hyperparameters", None)))
    check_tasks(config.get("tasks"), where="custom_config.tasks")
    if "features" in config:
        features = features_from_config(config["features"], where="custom_config.features")
        defaults = config.get("defaults", {})
    elif getattr(fn_args, "transform_output", None):
        features, defaults = read_transform(fn_args.transform_output)
    else:
        raise ValueError("run_fn: no feature spec: give custom_config['features'] or a Transform output (transform_output).")
    started = time.perf_counter()
    model, trainer, eval_data = train(
        config, features, defaults, fn_args.train_files, fn_args.eval_files, fn_args.model_run_dir,
        getattr(fn_args, "train_steps", None), getattr(fn_args, "eval_steps", None), config.get("verbose", 2),
    )
    fusion, search = choose_fusion(config, model, eval_data)
    model.save(os.path.join(fn_args.model_run_dir, "model.keras"))
    save_servable(model, fn_args.serving_model_dir, fusion, _warmup_rows(eval_data), config.get("name"))
    best = max(trainer.history, key=lambda r: r["monitor"]["score"])
    summary = {
        "epochs": len(trainer.history),
        "best_epoch": best["epoch"],
        "val": best["val"],
        "fusion": fusion,
        "fusion_search": search,
        "parameters": int(model.count_params()),
        "replicas": trainer.strategy.num_replicas_in_sync,
        "seconds": round(time.perf_counter() - started, 1),
    }
    with open(os.path.join(fn_args.model_run_dir, "training.json"), "w") as file:
        json.dump(summary, file, indent=1, default=float)
    return summary


class Trainer(Component):
    """Runs ``run_fn`` on the examples with the Transform's features (and the Tuner's best
    hyperparameters, when a Tuner step is given).

    Output: ``serving/`` (the SavedModel) and ``run/`` (``model_run_dir``). The run folder is
    kept outside the artifact until the step ends, so a step interrupted mid-training resumes
    from its last epoch checkpoint when the pipeline runs again.
    """

    INPUTS = ("examples", "transform", "tuner?")

    def run(self, inputs, output_dir):
        hyperparameters = None
        if "tuner" in inputs:
            with open(inputs["tuner"].file("best_hyperparameters.json")) as file:
                hyperparameters = json.load(file)
        run_dir = self.work_dir
        examples = inputs["examples"].path
        fn_args = FnArgs(
            train_files=split_files(examples, "train"),
            eval_files=split_files(examples, "eval"),
            serving_model_dir=os.path.join(output_dir, "serving"),
            model_run_dir=run_dir,
            custom_config=self.params,
            train_steps=(self.params.get("training") or {}).get("train_steps"),
            eval_steps=(self.params.get("training") or {}).get("eval_steps"),
            hyperparameters=hyperparameters,
            transform_output=inputs["transform"].path,
        )
        summary = run_fn(fn_args)
        os.replace(run_dir, os.path.join(output_dir, "run"))
        return {"best_epoch": summary["best_epoch"], "val": summary["val"], "parameters": summary["parameters"], "fusion": summary["fusion"]}

    def describe(self, artifact):
        figures = artifact.figures
        val = ", ".join(f"{k} {v:.4f}" for k, v in figures["val"].items() if k.endswith("/auc") or k.endswith("/rmse"))
        return f"best epoch {figures['best_epoch']}: {val}; {figures['parameters']:,} parameters"
