"""What every tf_mtl model shares: the spec, the task contract, losses and the Keras train step.

A model is a functional ``keras.Model`` from raw feature inputs to a dict of outputs keyed by
task name. Subclasses build their graph in ``__init__`` and pass it here; they may override
the task contract:

- ``loss_terms(labels)``: which output is trained against which label (ESMM trains CTR and
  CTCVR, not CVR);
- ``metric_terms(labels)``: which output is scored against which label, on which rows (ESMM
  scores CVR on clicked rows only);
- ``auxiliary_losses(outputs)``: loss terms added outside task weighting (AITM's calibrator).

``compile(optimizer, loss=None, loss_weights=None, metrics=None)`` + ``fit`` train with those
terms: ``loss`` (optional) replaces the default loss of a term, ``loss_weights`` weight them.
"""


import numpy as np
import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.errors import did_you_mean
from tf_mtl.features import FeatureEmbedding, features_from_config, features_to_config, keras_inputs, validate_features
from tf_mtl.layers import Tower, check_mlp_params
from tf_mtl.losses import TASK_LOSSES, weighted_mean
from tf_mtl.tasks import make_tasks


def embed_features(features, name="feature_embedding", inputs=None):
    """The Keras inputs of a spec (new unless given), the embedding layer and the embedded vector."""
    inputs = keras_inputs(features) if inputs is None else inputs
    layer = FeatureEmbedding(features, name=name)
    return inputs, layer, layer(inputs)


def check_tower_params(tower_params_list, tasks):
    if not isinstance(tower_params_list, (list, tuple)) or len(tower_params_list) != len(tasks):
        raise ValueError(
            f"tower_params_list must hold one dict per task ({len(tasks)} tasks: "
            f"{[t.name for t in tasks]}). Received: {tower_params_list!r}"
        )
    return [check_mlp_params(p, f"tower_params_list[{i}]", required=()) for i, p in enumerate(tower_params_list)]


def task_towers(representations, tasks, tower_params_list):
    """Each task's tower on its representation: a dict of ``(batch,)`` outputs keyed by task name."""
    return {
        task.name: Tower(task.task_type, name=task.name, **params)(rep)
        for task, rep, params in zip(tasks, representations, tower_params_list)
    }


def _strings_as_objects(x):
    """Keras 3 refuses numpy ``str``/``bytes`` arrays but takes the same values as ``object`` arrays."""
    if isinstance(x, dict):
        return {k: v.astype(object) if isinstance(v, np.ndarray) and v.dtype.kind in "US" else v for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_strings_as_objects(part) for part in x)
    return x


def _fresh_metric(metric):
    """A metric per output: one metric object updated by several outputs would mix them."""
    if isinstance(metric, str) or callable(metric) and not isinstance(metric, keras.metrics.Metric):
        return metric
    return type(metric).from_config(metric.get_config())


class MultiTaskModel(keras.Model):
    """Base of every tf_mtl model. Subclasses call ``super().__init__`` with their graph.

    Args:
        inputs, outputs: the functional graph (outputs: a dict keyed by output name).
        features: the feature spec.
        tasks: the ``Task`` tuple from ``make_tasks``.
        config: the subclass's own constructor arguments, for ``get_config``.
        gates: optional dict of gate-weight tensors, read out by ``gate_weights``.
        shared_layers: the layers all tasks share, from input to output (the embedding, the
            bottom, the experts), used by weighting methods that need gradients of the shared
            parameters.
    """

    def __init__(self, inputs, outputs, features, tasks, config, gates=None, shared_layers=(), **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.features = validate_features(features)
        self.tasks = tasks
        object.__setattr__(self, "_model_config", dict(config))
        # Plain attributes, kept out of Keras' tracking: they are views of the model's own layers
        # or step bookkeeping, not weights to save (Keras 2 would count the trackers as weights).
        for attribute, value in (
            ("_gate_tensors", dict(gates or {})),
            ("_gate_model", None),
            ("_shared_layers", list(shared_layers)),
            ("_term_losses", {}),
            ("_term_weights", {}),
            ("_loss_trackers", None),
        ):
            object.__setattr__(self, attribute, value)

    # ---- the task contract ------------------------------------------------------------------

    @property
    def task_names(self):
        return [t.name for t in self.tasks]

    @property
    def task_types(self):
        return [t.task_type for t in self.tasks]

    def label_dict(self, y):
        """Labels as a dict of float ``(batch,)`` tensors keyed by task name.

        Accepts a dict keyed by task name, or an array ``(batch, n_tasks)`` in task order
        (``(batch,)`` for a single task).
        """
        if isinstance(y, dict):
            missing = [n for n in self.task_names if n not in y]
            if missing:
                raise KeyError(f"Labels lack the tasks {missing}. Received label keys: {sorted(y)}")
            return {n: tf.reshape(tf.cast(y[n], tf.float32), [-1]) for n in self.task_names}
        y = tf.cast(y, tf.float32)
        if y.shape.rank == 1 and len(self.tasks) == 1:
            y = y[:, None]
        if y.shape.rank != 2 or y.shape[-1] != len(self.tasks):
            raise ValueError(
                f"Labels must be a dict keyed by task name or an array (batch, {len(self.tasks)}) in "
                f"task order {self.task_names}. Received shape: {y.shape}"
            )
        return {n: y[:, i] for i, n in enumerate(self.task_names)}

    def loss_terms(self, labels):
        """``{output_name: (task_type, label, mask)}``: what the loss trains. Default: each task."""
        return {t.name: (t.task_type, labels[t.name], None) for t in self.tasks}

    def metric_terms(self, labels):
        """``{output_name: (task_type, label, mask)}``: what metrics score. Default: each task."""
        return self.loss_terms(labels)

    auxiliary_loss_names = ()

    def auxiliary_losses(self, outputs):
        """``{name: scalar}`` loss terms (named in ``auxiliary_loss_names``) added to the
        weighted task losses. Default: none."""
        return {}

    @property
    def shared_layers(self):
        """The layers whose parameters every task shares."""
        return list(self._shared_layers)

    @property
    def shared_variables(self):
        """Trainable variables of ``shared_layers``: where gradient-based weighting compares tasks."""
        return [v for layer in self._shared_layers for v in layer.trainable_variables]

    @property
    def embedding_trainable_variables(self):
        """The embedding tables: rows a batch touches get gradients (``tf.IndexedSlices``)."""
        ids = {id(v) for layer in self.layers if isinstance(layer, FeatureEmbedding) for v in layer.trainable_variables}
        return [v for v in self.trainable_variables if id(v) in ids]

    @property
    def dense_trainable_variables(self):
        ids = {id(v) for v in self.embedding_trainable_variables}
        return [v for v in self.trainable_variables if id(v) not in ids]

    def gate_weights(self, x):
        """Gate weights per gate for inputs ``x`` (expert utilisation; spot gate collapse).

        Returns a dict of numpy arrays ``(batch, n_experts)`` keyed by gate name; empty for
        models without gates.
        """
        if not self._gate_tensors:
            return {}
        if self._gate_model is None:
            object.__setattr__(self, "_gate_model", keras.Model(self.inputs, self._gate_tensors))
        return {k: v.numpy() for k, v in self._gate_model(x, training=False).items()}

    # ---- losses -----------------------------------------------------------------------------

    def weighted_terms(self, terms, sample_weight=None):
        """``{name: (task_type, label, weights)}``: each term's mask times its row weights.

        ``sample_weight`` is one array ``(batch,)`` or ``(batch, 1)`` for every term, or a dict
        keyed by task name (Keras 3 hands ``fit``'s single array over as such a dict); terms that
        are not tasks (ESMM's ``ctcvr``) take the first task's weights. ``weights`` is ``None``
        when there is neither mask nor weight.
        """
        weighted = {}
        for name, (task_type, label, mask) in terms.items():
            rows = self._row_weights(sample_weight, name)
            weights = rows if mask is None else mask if rows is None else mask * rows
            weighted[name] = (task_type, label, weights)
        return weighted

    def _row_weights(self, sample_weight, name):
        if isinstance(sample_weight, dict):
            sample_weight = sample_weight.get(name, sample_weight.get(self.task_names[0]))
        return None if sample_weight is None else tf.reshape(tf.cast(sample_weight, tf.float32), [-1])

    def compute_task_losses(self, y, y_pred, sample_weight=None):
        """One scalar loss per loss term, ``{output_name: loss}``: the mean over the batch of the
        per-example losses, weighted by the term's mask and ``sample_weight`` and divided by the
        total weight (see ``weighted_terms``)."""
        terms = self.weighted_terms(self.loss_terms(self.label_dict(y)), sample_weight)
        return {
            name: weighted_mean(
                self._term_losses.get(name, TASK_LOSSES[task_type])(label, tf.cast(y_pred[name], tf.float32)), weights
            )
            for name, (task_type, label, weights) in terms.items()
        }

    def total_loss(self, task_losses, auxiliary_losses):
        """Weighted task losses + auxiliary losses + regularization losses."""
        total = tf.add_n([self._term_weights.get(n, 1.0) * loss for n, loss in task_losses.items()])
        extra = list(auxiliary_losses.values()) + [tf.cast(l, tf.float32) for l in self.losses]
        return total + tf.add_n(extra) if extra else total

    # ---- Keras training ---------------------------------------------------------------------

    def _loss_term_names(self):
        return list(self.loss_terms({n: tf.zeros([1]) for n in self.task_names}))

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, **kwargs):
        """Keras ``compile``; ``loss`` and ``loss_weights`` are keyed by loss term (task) name.

        ``loss`` may be a single loss for every term or a dict; values are Keras loss
        identifiers or callables ``(y_true, y_pred) -> per-example loss``. ``loss_weights``
        is a dict or a list in loss-term order.
        """
        names = self._loss_term_names()
        object.__setattr__(self, "_term_losses", self._per_term(loss, names, "loss", keras.losses.get))
        if isinstance(loss_weights, (list, tuple)):
            if len(loss_weights) != len(names):
                raise ValueError(f"loss_weights has {len(loss_weights)} values for the loss terms {names}.")
            loss_weights = dict(zip(names, loss_weights))
        object.__setattr__(self, "_term_weights", self._per_term(loss_weights, names, "loss_weights", float))
        if metrics is not None and not isinstance(metrics, dict):
            metrics = {name: [_fresh_metric(m) for m in metrics] for name in self.output_names}
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)
        self._trackers()

    def get_compile_config(self):
        """The optimizer and loss weights, so a saved model comes back compiled (custom losses
        and metrics are not saved: compile again to use them)."""
        if getattr(self, "optimizer", None) is None:
            return None
        return {"optimizer": keras.optimizers.serialize(self.optimizer), "loss_weights": dict(self._term_weights)}

    def compile_from_config(self, config):
        self.compile(optimizer=keras.optimizers.deserialize(config["optimizer"]), loss_weights=config["loss_weights"] or None)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @staticmethod
    def _per_term(value, names, what, convert):
        if value is None:
            return {}
        if not isinstance(value, dict):
            return {n: convert(value) for n in names}
        for key in value:
            if key not in names:
                raise ValueError(f"{what}: {key!r} is not a loss term of this model" + did_you_mean(key, names, "Loss terms"))
        return {n: convert(v) for n, v in value.items()}

    def _trackers(self):
        if self._loss_trackers is None:
            names = ["loss"] + [f"{n}_loss" for n in self._loss_term_names() + list(self.auxiliary_loss_names)]
            object.__setattr__(self, "_loss_trackers", {n: keras.metrics.Mean(name=n) for n in names})
        return self._loss_trackers

    @property
    def metrics(self):
        # The step's own loss trackers replace Keras' same-named ones, which this step never updates.
        trackers = getattr(self, "_loss_trackers", None) or {}
        return list(trackers.values()) + [m for m in super().metrics if m.name not in trackers]

    def _step_logs(self, x, y, y_pred, sample_weight, losses, total):
        trackers = self._trackers()
        trackers["loss"].update_state(total)
        for name, value in losses.items():
            trackers[f"{name}_loss"].update_state(value)
        logs = {name: tracker.result() for name, tracker in trackers.items()}
        # Compiled metrics see each output's own label and rows (ESMM's CVR: clicked rows only);
        # as in Keras, sample weights reach only ``weighted_metrics``.
        labels, predictions, weights = {}, {}, {}
        for name, (_, label, mask) in self.metric_terms(self.label_dict(y)).items():
            prediction, rows = tf.reshape(y_pred[name], [-1]), self._row_weights(sample_weight, name)
            if mask is not None:
                keep = mask > 0
                label, prediction = tf.boolean_mask(label, keep), tf.boolean_mask(prediction, keep)
                rows = None if rows is None else tf.boolean_mask(rows, keep)
            labels[name], predictions[name], weights[name] = label, prediction, rows
        compiled = self.compute_metrics(x, labels, predictions, None if sample_weight is None else weights)
        logs.update({k: v for k, v in compiled.items() if k not in logs})
        return logs

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            task_losses = self.compute_task_losses(y, y_pred, sample_weight)
            auxiliary = self.auxiliary_losses(y_pred)
            total = self.total_loss(task_losses, auxiliary)
        variables = self.trainable_variables
        gradients = tape.gradient(total, variables)
        self.optimizer.apply_gradients(
            [(g, v) for g, v in zip(gradients, variables) if g is not None]
        )
        return self._step_logs(x, y, y_pred, sample_weight, {**task_losses, **auxiliary}, total)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        task_losses = self.compute_task_losses(y, y_pred, sample_weight)
        auxiliary = self.auxiliary_losses(y_pred)
        total = self.total_loss(task_losses, auxiliary)
        return self._step_logs(x, y, y_pred, sample_weight, {**task_losses, **auxiliary}, total)

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        return super().fit(_strings_as_objects(x), y, *args, validation_data=_strings_as_objects(validation_data), **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        return super().evaluate(_strings_as_objects(x), *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        return super().predict(_strings_as_objects(x), *args, **kwargs)

    # ---- serialization ----------------------------------------------------------------------

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "features": features_to_config(self.features),
            "task_types": self.task_types,
            "task_names": self.task_names,
            **self._model_config,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["features"] = features_from_config(config["features"])
        return cls(**config)


__all__ = ["MultiTaskModel", "check_tower_params", "embed_features", "make_tasks", "task_towers"]
