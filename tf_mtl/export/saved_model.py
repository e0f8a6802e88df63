"""SavedModels for TF Serving: raw features or tf.Examples in, every task's score and the fused
ranking score out, written atomically as ``base_dir/<version>/``.

    path = export_saved_model(model, "saved_models/ranker", fusion={"method": "product",
                              "weights": {"ctr": 1.0, "cvr": 0.5}})
    # saved_models/ranker/1/  -> tensorflow_model_server --model_base_path=.../ranker

Signatures:
- ``serving_default``: one tensor per feature, named after it (free batch dimension; see
  ``tf_mtl.features.tensor_specs``) -> one ``(batch,)`` float32 score per model output and
  ``score``, the fused ranking score.
- ``serve_tf_examples``: ``examples``, a batch of serialized ``tf.Example`` (the TFX
  convention) -> the same outputs.

Preprocessing (vocabulary lookup with OOV buckets, hashing, normalization, sequence padding)
is part of the model's graph, so clients send raw values. The fusion weights are a variable,
``fusion_weights`` (in the order of ``fusion_outputs``), readable and assignable after
``tf.saved_model.load``. ``assets.extra/`` holds TF Serving's warmup requests and
``tf_mtl.json`` (the feature spec, tasks and fusion).
"""

import json
import os
import re

import numpy as np
import tensorflow as tf

from tf_mtl.features import SequenceFeature, features_to_config, parse_examples, tensor_specs
from tf_mtl.files import atomic_path
from tf_mtl.fusion.score import check_fusion, fuse

SCORE = "score"
WARMUP_FILE = "tf_serving_warmup_requests"
# Where TF Serving looks for it in a version's folder.
WARMUP_PATH = os.path.join("assets.extra", WARMUP_FILE)
# A version folder's name: an int64 in plain ASCII decimal, as TF Serving and the gRPC API's
# model_spec.version take it; "0005" or "٣" would load another folder than str(version).
_VERSION = re.compile(r"[1-9][0-9]*|0")
_MAX_VERSION = 2**63 - 1


class ServingModule(tf.Module):
    """What the SavedModel holds: the model, its variables and the fusion weights."""

    def __init__(self, model, fusion=None):
        super().__init__(name="tf_mtl_serving")
        if SCORE in model.output_names:
            raise ValueError(f"An output named {SCORE!r} would clash with the fused score; rename that task.")
        self.model = model
        # Keras 3 layers keep some variables in lists a SavedModel does not follow: listed here,
        # every variable the serving functions use is saved and restored. The tf.Variables
        # themselves, not Keras 3's wrappers: a wrapper saves a copy of its variable, and
        # TensorFlow's C++ loader (TF Serving's) would restore the copy while the graph reads
        # the original.
        self.model_variables = [v if isinstance(v, tf.Variable) else v.value for v in model.variables]
        method, names, weights = check_fusion(fusion, model.task_names if fusion is None else model.output_names)
        self.fusion_method = method
        self.fusion_weights = tf.Variable(weights, dtype=tf.float32, trainable=False, name="fusion_weights")
        self.fusion_outputs = tf.Variable(names, dtype=tf.string, trainable=False, name="fusion_outputs")
        self._names = names
        self._features = model.features
        self.serve = tf.function(self._serve, input_signature=[tensor_specs(model.features)])
        self.serve_tf_examples = tf.function(
            self._serve_tf_examples, input_signature=[tf.TensorSpec([None], tf.string, name="examples")]
        )

    def _scores(self, features):
        outputs = self.model(features, training=False)
        scores = {name: tf.reshape(tf.cast(value, tf.float32), [-1]) for name, value in outputs.items()}
        scores[SCORE] = fuse(scores, self._names, self.fusion_weights, self.fusion_method)
        return scores

    def _serve(self, features):
        return self._scores(features)

    def _serve_tf_examples(self, examples):
        return self._scores(parse_examples(examples, self._features))

    def signatures(self):
        return {
            "serving_default": self.serve.get_concrete_function(),
            "serve_tf_examples": self.serve_tf_examples.get_concrete_function(),
        }


def versions(base_dir):
    """The version numbers under ``base_dir``: its folders named by an int64 in plain decimal
    (the rest are ignored, such as the hidden folders exports are built in), ascending."""
    if not os.path.isdir(base_dir):
        return []
    names = [n for n in os.listdir(base_dir) if _VERSION.fullmatch(n) and int(n) <= _MAX_VERSION]
    return sorted(int(n) for n in names if os.path.isdir(os.path.join(base_dir, n)))


def next_version(base_dir):
    """One more than the largest version under ``base_dir`` (1 if none)."""
    return max(versions(base_dir), default=0) + 1


def warmup_inputs(features, batch_size=1):
    """A batch of valid raw inputs (id 0 or the first vocabulary entry, the mean of dense
    features): enough for TF Serving to run each signature once before taking traffic."""
    inputs = {}
    for name, spec in tensor_specs(features).items():
        feature = next(f for f in features if f.name == name)
        shape = (batch_size, *spec.shape[1:])
        if spec.dtype == tf.string:
            first = feature.vocabulary[0] if feature.vocabulary else ""
            inputs[name] = np.full(shape, str(first).encode(), dtype=object)
        elif spec.dtype == tf.int64:
            value = feature.padding_value if isinstance(feature, SequenceFeature) else 0
            inputs[name] = np.full(shape, value, dtype=np.int64)
        else:
            inputs[name] = np.full(shape, getattr(feature, "mean", None) or 0.0, dtype=np.float32)
    return inputs


def _example(row):
    feature = {}
    for name, value in row.items():
        values = np.asarray(value).reshape(-1)
        if values.dtype.kind in "OSU":
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v if isinstance(v, bytes) else str(v).encode() for v in values]))
        elif values.dtype.kind in "iu":
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values.tolist()))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def to_examples(inputs):
    """Serialized ``tf.Example``s, one per row of ``inputs`` (a dict of arrays keyed by feature)."""
    n = len(next(iter(inputs.values())))
    return [_example({name: values[i] for name, values in inputs.items()}) for i in range(n)]


def write_warmup(path, model_name, inputs):
    """TF Serving's warmup file: PredictionLog records, one per signature, for ``inputs``."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    requests = {
        "serving_default": {name: tf.make_tensor_proto(value) for name, value in inputs.items()},
        "serve_tf_examples": {"examples": tf.make_tensor_proto(np.array(to_examples(inputs), dtype=object))},
    }
    with tf.io.TFRecordWriter(path) as writer:
        for signature, tensors in requests.items():
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
            for name, proto in tensors.items():
                request.inputs[name].CopyFrom(proto)
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def export_saved_model(model, base_dir, version=None, fusion=None, warmup=None, model_name=None):
    """Exports ``model`` for TF Serving as ``base_dir/<version>/`` and returns that path.

    The version is built in a hidden folder beside it and renamed into place, so a server
    scanning ``base_dir`` never sees a partial version, and an export that fails leaves nothing
    (one killed leaves its hidden folder, which the next export there removes).

    Args:
        model: a tf_mtl model.
        base_dir: the model's folder (TF Serving's ``--model_base_path``).
        version: an integer; default one more than the newest version there. An existing
            version is never overwritten.
        fusion: the ranking score: ``{"method": "sum" | "product", "weights": {output: w}}``
            (e.g. ``search_weights(...).as_fusion()``); default the mean of the task scores.
        warmup: a dict of input arrays for TF Serving's warmup requests; default one
            synthesized row (``warmup_inputs``).
        model_name: the name in the warmup requests (default ``model.name``).
    """
    base_dir = os.fspath(base_dir)
    version = next_version(base_dir) if version is None else version
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"version must be a positive integer. Received: version={version!r}")
    target = os.path.join(base_dir, str(version))
    if os.path.exists(target):
        raise FileExistsError(f"{target} exists; versions are never overwritten. Export a new version.")
    return save_servable(model, target, fusion, warmup, model_name)


def save_servable(model, path, fusion=None, warmup=None, model_name=None):
    """Writes the SavedModel of ``export_saved_model`` at exactly ``path`` (which must not
    exist), atomically; TFX Trainers write to their ``serving_model_dir`` this way."""
    path = os.fspath(path)
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists; a SavedModel is never written over another.")
    module = ServingModule(model, fusion)
    inputs = warmup_inputs(model.features) if warmup is None else warmup
    with atomic_path(path) as partial:
        tf.saved_model.save(module, partial, signatures=module.signatures())
        extra = os.path.join(partial, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        write_warmup(os.path.join(partial, WARMUP_PATH), model_name or model.name, inputs)
        metadata = {
            "features": features_to_config(model.features),
            "tasks": dict(zip(model.task_names, model.task_types)),
            "outputs": list(model.output_names),
            "fusion": {"method": module.fusion_method, "outputs": module._names, "weights": module.fusion_weights.numpy().tolist()},
        }
        with open(os.path.join(extra, "tf_mtl.json"), "w") as file:
            json.dump(metadata, file, indent=1)
    return path
