"""What every tf_mtl model shares: the spec, the task contract, losses and the Keras train step.

A model is a functional ``keras.Model`` from raw feature inputs to a dict of outputs keyed by
task name. Subclasses build their graph in ``__init__`` and pass it here; they may override
the task contract:

- ``loss_terms(labels)``: which output is trained against which label (ESMM trains CTR and
  CTCVR, not CVR);
- ``metric_terms(labels)``: which output is scored against which label, on which rows (ESMM
  scores CVR on clicked rows only);
- ``auxiliary_losses(outputs)``: loss terms added outside task weighting (AITM's calibrator).

``compile(optimizer, loss=None, metrics=None, weighting=None, ...)`` + ``fit`` train with those
terms through ``tf_mtl.weighting.step.train_step``, the step ``MTLTrainer`` runs too.
"""

import inspect
import os

import numpy as np
import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.errors import did_you_mean
from tf_mtl.features import FeatureEmbedding, features_from_config, features_to_config, keras_inputs, validate_features
from tf_mtl.features.inputs import fit_sequence
from tf_mtl.features.spec import FieldError, SequenceFeature
from tf_mtl.layers import Tower, check_mlp_params
from tf_mtl.losses import TASK_LOSSES
from tf_mtl.tasks import make_tasks
from tf_mtl import weighting as weighting_lib
from tf_mtl.weighting import step as step_lib

# What a tf_mtl model passes on to ``keras.Model`` (its config saves name and trainable).
KERAS_MODEL_ARGUMENTS = frozenset({"name", "trainable", "dtype"})


def embed_features(features, name="feature_embedding", inputs=None):
    """The Keras inputs of a spec (new unless given), the embedding layer and the embedded vector."""
    inputs = keras_inputs(features) if inputs is None else inputs
    layer = FeatureEmbedding(features, name=name)
    return inputs, layer, layer(inputs)


def check_tower_params(tower_params_list, tasks, owner=None):
    """One checked MLP dict per task (``check_mlp_params``; a tower's ``dims`` may be empty)."""
    if not isinstance(tower_params_list, (list, tuple)) or len(tower_params_list) != len(tasks):
        raise FieldError(
            "tower_params_list",
            f"expected one dict per task ({len(tasks)} tasks: {[t.name for t in tasks]}). Received: {tower_params_list!r}",
            owner,
        )
    return [check_mlp_params(p, f"tower_params_list[{i}]", required=(), owner=owner) for i, p in enumerate(tower_params_list)]


def task_towers(representations, tasks, tower_params_list):
    """Each task's tower on its representation: a dict of ``(batch,)`` outputs keyed by task name."""
    return {
        task.name: Tower(task.task_type, name=task.name, **params)(rep)
        for task, rep, params in zip(tasks, representations, tower_params_list)
    }


def _check_binary(name, label, weights=None):
    """Fails the step when a row that counts (non-zero weight) of classification term ``name``
    has a label other than 0 or 1: a label of 2 or -1 would otherwise train silently."""
    bad = tf.logical_and(tf.not_equal(label, 0.0), tf.not_equal(label, 1.0))
    if weights is not None:
        bad = tf.logical_and(bad, tf.not_equal(weights, 0.0))
    tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(bad)),
        [
            # No quotes around the name: TensorFlow escapes them in the error message.
            f"Task {name} is a classification task: its labels must be 0 or 1 (rows with weight 0 excepted). "
            "Rows with other labels, and the first of them:",
            tf.reduce_sum(tf.cast(bad, tf.int32)),
            tf.boolean_mask(label, bad)[:1],
        ],
        summarize=1,
    )


def _sequences_of_max_len(features, inputs):
    """Sequence inputs given as matrices of a known width other than ``max_len``, fitted to it as
    the model fits ragged ones (``fit_sequence``: the last ``max_len`` ids): Keras' input check
    would refuse them before the model sees them. Ragged inputs have no known width."""
    fitted = {}
    for feature in features:
        values = inputs.get(feature.name)
        shape = getattr(values, "shape", ())
        if isinstance(feature, SequenceFeature) and len(shape) == 2 and shape[1] not in (None, feature.max_len):
            fitted[feature.name] = fit_sequence(feature, tf.convert_to_tensor(values))
    return fitted


def _strings_as_tensors(x):
    """Keras refuses numpy string (``str``, ``bytes`` or ``object``) arrays, and Keras 3 a dict
    mixing numpy arrays and tensors; numpy arrays as tensors are taken everywhere."""
    if isinstance(x, dict):
        if not any(isinstance(v, np.ndarray) and v.dtype.kind in "USO" for v in x.values()):
            return x
        return {k: tf.constant(v.astype(str) if v.dtype.kind == "O" else v) if isinstance(v, np.ndarray) else v for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_strings_as_tensors(part) for part in x)
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
        # Keras' functional Model drops arguments it does not know; a misspelled one
        # (n_experts=8) would otherwise build a model other than the one asked for.
        unknown = sorted(set(kwargs) - KERAS_MODEL_ARGUMENTS)
        if unknown:
            raise FieldError(
                unknown[0],
                "unknown argument" + did_you_mean(unknown[0], sorted(set(config) | {"task_names"}), "Known model arguments"),
                type(self).__name__,
            )
        name, trainable = kwargs.get("name"), kwargs.get("trainable", True)
        if name is not None and (not isinstance(name, str) or "/" in name):
            raise FieldError("name", f"expected a string without '/'. Received: {name!r}", type(self).__name__)
        if not isinstance(trainable, bool):
            raise FieldError("trainable", f"expected true or false. Received: {trainable!r}", type(self).__name__)
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
            ("_weighting", None),
            ("_label_weights", {}),
            ("_loss_masks", {}),
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
    def last_shared_variables(self):
        """The last shared layer's output weights (GradNorm's ``W``): the layer's
        ``output_variables`` when it names them (an MLP: its last kernel and bias), else all
        its trainable variables."""
        if not self._shared_layers:
            return []
        layer = self._shared_layers[-1]
        return list(getattr(layer, "output_variables", layer.trainable_variables))

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

    def weighted_terms(self, terms, sample_weight=None, y=None):
        """``{name: (task_type, label, weights)}``: each term's row weights.

        A term's weights multiply its mask, the mask compile's ``loss_masks`` names (another
        task's label or a column of a label dict ``y``), its positive-class weight
        (compile's ``label_weights``) and ``sample_weight``: one array ``(batch,)`` or
        ``(batch, 1)`` for every term, or a dict keyed by task name (Keras 3 hands ``fit``'s
        single array over as such a dict); terms that are not tasks (ESMM's ``ctcvr``) take
        the first task's weights. ``weights`` is ``None`` when all of these are absent.
        """
        weighted = {}
        for name, (task_type, label, mask) in terms.items():
            factors = [self._row_weights(sample_weight, name), mask]
            if name in self._loss_masks:
                factors.append(self._mask_column(self._loss_masks[name], y))
            if name in self._label_weights:
                factors.append(tf.where(label > 0.5, self._label_weights[name], 1.0))
            factors = [f for f in factors if f is not None]
            weights = None
            for factor in factors:
                factor = tf.reshape(tf.cast(factor, tf.float32), [-1])
                weights = factor if weights is None else weights * factor
            weighted[name] = (task_type, label, weights)
        return weighted

    def _row_weights(self, sample_weight, name):
        if isinstance(sample_weight, dict):
            sample_weight = sample_weight.get(name, sample_weight.get(self.task_names[0]))
        return None if sample_weight is None else tf.reshape(tf.cast(sample_weight, tf.float32), [-1])

    def _mask_column(self, source, y):
        if isinstance(y, dict) and source in y:
            column = y[source]
        elif source in self.task_names:
            column = self.label_dict(y)[source]
        else:
            raise KeyError(
                f"loss_masks: the mask column {source!r} is neither a task ({self.task_names}) nor a key of the "
                f"labels" + (f" ({sorted(y)})" if isinstance(y, dict) else "") + "."
            )
        return tf.cast(tf.reshape(column, [-1]) > 0.5, tf.float32)

    def loss_sums(self, y, y_pred, sample_weight=None):
        """Per loss term, in ``loss_term_names`` order, the weighted sum of the per-example
        losses and the sum of the weights: two ``(n_terms,)`` tensors. Their ratio is the
        term's loss (see ``weighted_terms``); summed over replicas first, the global batch's."""
        terms = self.weighted_terms(self.loss_terms(self.label_dict(y)), sample_weight, y)
        sums, totals = [], []
        for name in self.loss_term_names:
            task_type, label, weights = terms[name]
            if task_type == "classification":
                _check_binary(name, label, weights)
            values = self._term_losses.get(name, TASK_LOSSES[task_type])(label, tf.cast(tf.reshape(y_pred[name], [-1]), tf.float32))
            weights = tf.ones_like(values) if weights is None else weights
            sums.append(tf.reduce_sum(values * weights))
            totals.append(tf.reduce_sum(weights))
        return tf.stack(sums), tf.stack(totals)

    def compute_task_losses(self, y, y_pred, sample_weight=None):
        """One scalar loss per loss term, ``{name: loss}``: the per-example losses' mean
        weighted by the term's row weights (see ``weighted_terms``); 0 when they sum to 0."""
        sums, totals = self.loss_sums(y, y_pred, sample_weight)
        losses = tf.math.divide_no_nan(sums, totals)
        return {name: losses[i] for i, name in enumerate(self.loss_term_names)}

    def total_loss(self, task_losses, auxiliary_losses):
        """Task losses weighted by the compiled weighting's current weights + auxiliary losses
        + regularization losses."""
        weights = self.weighting.current_weights()
        total = tf.add_n([weights[i] * task_losses[n] for i, n in enumerate(self.loss_term_names)])
        extra = list(auxiliary_losses.values()) + [tf.cast(l, tf.float32) for l in self.losses]
        return total + tf.add_n(extra) if extra else total

    # ---- Keras training ---------------------------------------------------------------------

    @property
    def loss_term_names(self):
        """The names of the loss terms, in the order weightings see them."""
        return list(self.loss_terms({n: tf.zeros([1]) for n in self.task_names}))

    @property
    def loss_term_types(self):
        return [t[0] for t in self.loss_terms({n: tf.zeros([1]) for n in self.task_names}).values()]

    @property
    def weighting(self):
        """The compiled loss weighting (equal weights before ``compile``)."""
        if self._weighting is None:
            object.__setattr__(self, "_weighting", weighting_lib.get(None).build(self.loss_term_names, self.loss_term_types))
        return self._weighting

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighting=None,
        label_weights=None,
        loss_masks=None,
        **kwargs,
    ):
        """Keras ``compile``, with the multi-task options keyed by loss term (task) name.

        Args:
            optimizer: as in Keras.
            loss: one loss for every term or a dict; Keras loss identifiers or callables
                ``(y_true, y_pred) -> per-example loss``.
            loss_weights: fixed weights, a dict or a list in loss-term order (the same as
                ``weighting={"method": "fixed", "weights": ...}``).
            metrics: as in Keras; a list applies to every output.
            weighting: a loss-weighting method (see ``tf_mtl.weighting.get``): a name such as
                ``"uwl"``, a dict such as ``{"method": "gradnorm", "alpha": 1.5}``, or a
                ``LossWeighting``. Default: equal weights.
            label_weights: ``{term: w}``: rows whose label is 1 weigh ``w`` in that term's
                loss (classification terms).
            loss_masks: ``{term: column}``: the term's loss counts only rows where ``column``
                (another task's label, or a key of the label dict) is 1, e.g.
                ``{"cvr": "ctr"}`` trains CVR on clicked rows only.
        """
        names, types = self.loss_term_names, self.loss_term_types
        object.__setattr__(self, "_term_losses", self._per_term(loss, names, "loss", keras.losses.get))
        if loss_weights is not None:
            if weighting is not None:
                raise ValueError("Pass either loss_weights or weighting, not both: loss_weights are the fixed weighting.")
            weighting = {"method": "fixed", "weights": list(loss_weights) if isinstance(loss_weights, (list, tuple)) else dict(loss_weights)}
        label_weights = self._per_term(label_weights, names, "label_weights", float)
        for name, value in label_weights.items():
            if types[names.index(name)] != "classification" or not value > 0:
                raise ValueError(f"label_weights[{name!r}]: a positive weight for a classification term. Received: {value!r}")
        object.__setattr__(self, "_label_weights", label_weights)
        object.__setattr__(self, "_loss_masks", self._per_term(loss_masks, names, "loss_masks", str))
        if metrics is not None and not isinstance(metrics, dict):
            metrics = {name: [_fresh_metric(m) for m in metrics] for name in self.output_names}
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)
        method = weighting_lib.get(weighting)
        method.build(names, types, self.optimizer, step_lib.weighting_variables(self, method))
        object.__setattr__(self, "_weighting", method)
        self._trackers()

    def get_compile_config(self):
        """The optimizer, the weighting method and the label options, so a saved model comes
        back compiled (custom losses, metrics and weightings are not saved: compile again)."""
        if getattr(self, "optimizer", None) is None:
            return None
        return {
            "optimizer": keras.optimizers.serialize(self.optimizer),
            "weighting": weighting_lib.serialize(self.weighting),
            "label_weights": dict(self._label_weights),
            "loss_masks": dict(self._loss_masks),
        }

    def compile_from_config(self, config):
        self.compile(
            optimizer=keras.optimizers.deserialize(config["optimizer"]),
            weighting=config.get("weighting"),
            label_weights=config.get("label_weights") or None,
            loss_masks=config.get("loss_masks") or None,
        )
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
            names = ["loss"] + [f"{n}_loss" for n in self.loss_term_names + list(self.auxiliary_loss_names)]
            names += [f"{n}_weight" for n in self.loss_term_names]
            object.__setattr__(self, "_loss_trackers", {n: keras.metrics.Mean(name=n) for n in names})
        return self._loss_trackers

    @property
    def metrics(self):
        # The step's own loss trackers replace Keras' same-named ones, which this step never updates.
        trackers = getattr(self, "_loss_trackers", None) or {}
        return list(trackers.values()) + [m for m in super().metrics if m.name not in trackers]

    def _step_logs(self, x, y, y_pred, sample_weight, step_logs):
        trackers = self._trackers()
        trackers["loss"].update_state(step_logs["loss"])
        for i, name in enumerate(self.loss_term_names):
            trackers[f"{name}_loss"].update_state(step_logs["terms"][i])
            trackers[f"{name}_weight"].update_state(step_logs["weights"][i])
        for name, value in step_logs["auxiliary"].items():
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
        y_pred, logs = step_lib.train_step(self, self.weighting, self.optimizer, x, y, sample_weight)
        return self._step_logs(x, y, y_pred, sample_weight, logs)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred, logs = step_lib.test_step(self, self.weighting, x, y, sample_weight)
        return self._step_logs(x, y, y_pred, sample_weight, logs)

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, dict):
            # Keras 3 feeds a dict's values to the inputs by sorted position: a column that is not
            # a feature would shift the others into the wrong inputs, so it is left out here.
            names = {f.name for f in self.features}
            inputs = {k: v for k, v in inputs.items() if k in names}
            inputs.update(_sequences_of_max_len(self.features, inputs))
        return super().__call__(_strings_as_tensors(inputs), *args, **kwargs)

    def fit(self, x=None, y=None, *args, validation_data=None, callbacks=None, **kwargs):
        callbacks = list(callbacks or []) + [step_lib.EndEpoch(self.weighting)]
        return super().fit(
            _strings_as_tensors(x), y, *args, validation_data=_strings_as_tensors(validation_data), callbacks=callbacks, **kwargs
        )

    def evaluate(self, x=None, *args, **kwargs):
        return super().evaluate(_strings_as_tensors(x), *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        return super().predict(_strings_as_tensors(x), *args, **kwargs)

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
        """The model of a ``get_config`` dict (a saved file's config); errors name the key."""
        config = dict(config)
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            required = parameter.default is inspect.Parameter.empty and parameter.kind is not inspect.Parameter.VAR_KEYWORD
            if required and name != "self" and name not in config:
                raise FieldError(name, "required argument is missing.", cls.__name__)
        config["features"] = features_from_config(config["features"])
        return cls(**config)


def load_model(path, compile=True):
    """Loads a tf_mtl model saved with ``model.save(path)``, a ``.keras`` file.

    Keras' safe mode stays on: Python code in the file (a ``Lambda`` layer's function, a lambda
    anywhere in a config) is refused, never run. Other formats are refused too: Keras 2 reads
    ``.h5`` files without safe mode. The model classes are registered when ``tf_mtl.models``
    is imported, so no ``custom_objects`` are needed.

    Raises:
        ValueError: naming the file: not a ``.keras`` file, code in it, a config that does not
            build, or a Keras model that is not a tf_mtl model.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"{path}: expected a .keras file (model.save's format, read in Keras' safe mode).")
    try:
        model = keras.models.load_model(path, compile=compile, safe_mode=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err
    if not isinstance(model, MultiTaskModel):
        raise ValueError(f"{path}: holds a {type(model).__name__}, not a tf_mtl model (MultiTaskModel).")
    return model


__all__ = ["MultiTaskModel", "check_tower_params", "embed_features", "load_model", "make_tasks", "task_towers"]
