"""A tf_mtl model as a TensorFlow Recommenders model: ``compute_loss`` with one
``tfrs.tasks.Ranking`` per loss term, combined by a ``tf_mtl.weighting`` method.

TensorFlow Recommenders (tfrs) runs on Keras 2 only: this module needs
``TF_USE_LEGACY_KERAS=1``, set before TensorFlow is imported, and raises ``ImportError``
without it.

Inputs follow the tfrs convention: each batch is one dict holding the features (keyed by
feature name) and the labels (keyed by task name: the raw columns, e.g. ESMM's click and
conversion, never derived ones such as ``ctcvr``), e.g.
``tf.data.Dataset.from_tensor_slices({**data.x, **data.y}).batch(256)``. Keys that are
neither are ignored. A ``(features, labels)`` or ``(features, labels, sample_weight)`` tuple,
as ``tf_mtl.data.DataGenerator`` yields, is accepted too; sample weights (one array
``(batch,)`` for every term) need the tuple.
"""

from tf_mtl.compat import LEGACY_KERAS

if not LEGACY_KERAS:
    raise ImportError(
        "tf_mtl.integrations.tfrs needs Keras 2: TensorFlow Recommenders runs on tf_keras only. "
        "Set TF_USE_LEGACY_KERAS=1 in the environment before TensorFlow is imported."
    )

import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_mtl import weighting as weighting_lib
from tf_mtl.compat import keras
from tf_mtl.models.base import MultiTaskModel
from tf_mtl.weighting import step as step_lib
from tf_mtl.weighting.base import replicas
from tf_mtl.weighting.step import all_reduce

_LOSSES = {"classification": keras.losses.BinaryCrossentropy, "regression": keras.losses.MeanSquaredError}
# Each task type's metric and the suffix of its name (``ctr_auc``).
_METRICS = {"classification": ("auc", keras.metrics.AUC), "regression": ("rmse", keras.metrics.RootMeanSquaredError)}


def _column(values):
    """``(batch, 1)`` float32: the shape Keras losses and metrics reduce per example."""
    return tf.reshape(tf.cast(values, tf.float32), [-1, 1])


def _metric(name, task_type):
    suffix, metric = _METRICS[task_type]
    return metric(name=f"{name}_{suffix}")


class MultiTaskRanking(tfrs.models.Model):
    """A tf_mtl ``MultiTaskModel`` trained as a ``tfrs.models.Model``.

    What is trained comes from the model's contract, never from its class: one
    ``tfrs.tasks.Ranking`` per loss term (``model.loss_terms``: each task, or ESMM's ``ctr``
    and ``ctcvr`` against the label ``ctr * cvr``), with binary cross-entropy for
    classification and mean squared error for regression, plus the model's auxiliary
    losses (AITM's calibrator). With ``L_i`` a term's loss (the mean of its per-example
    losses weighted by the term's row weights, ``MultiTaskModel.weighted_terms``), ``w_i``
    and ``R`` the weighting's weights and regularizer:

        compute_loss = sum_i w_i L_i + R + sum(auxiliary losses)

    e.g. ``uwl``: ``w_i = exp(-s_i)`` (classification) or ``0.5 exp(-s_i)`` (regression) and
    ``R = 0.5 sum_i s_i``. With ``training=False``, ``w`` are the weighting's current
    weights and ``R = 0`` (as ``tf_mtl.weighting.step.test_step``). Regularization losses
    are added by the train step, as in tfrs. Under a ``tf.distribute`` strategy each replica
    returns its share of the global batch's loss (see ``tf_mtl.weighting.step``).

    Metrics: ``{name}_auc`` (``tf.keras.metrics.AUC``) or ``{name}_rmse``
    (``RootMeanSquaredError``) for each term the model scores (``model.metric_terms``, on
    the rows it names: ESMM's ``cvr`` on clicked rows only), owned by that name's
    ``Ranking`` task. Logs: those metrics, and ``loss``, ``regularization_loss`` and
    ``total_loss`` as tfrs names them, averaged over the epoch.

    Loss-based weightings (``fixed``, ``uwl``, ``dwa``) train through ``compute_loss``;
    trainable state (``uwl``'s log-variances) takes its step with the weighting's own
    optimizer, a copy of the compiled one. Gradient-based ones (``gradnorm``, ``pareto``,
    ``pcgrad``, ``metabalance``) need each term's gradient on the shared variables, which
    one loss cannot carry: ``train_step`` runs tf_mtl's shared step for them
    (``tf_mtl.weighting.step.train_step``, whose log loss and squared error are the tasks'
    losses) and updates the same metrics, and ``compute_loss(..., training=True)`` refuses
    them.

    Args:
        model: a ``tf_mtl.models.MultiTaskModel``. Compile this wrapper, not the model.
        weighting: the loss weighting, anything ``tf_mtl.weighting.get`` takes: ``None``
            (equal weights), a name (``"uwl"``), a dict (``{"method": "fixed", "weights":
            {"ctcvr": 2.0}}``) or a ``LossWeighting``. It is built by ``compile``.
        name: the Keras model's name.

    Example (with ``TF_USE_LEGACY_KERAS=1``):

    >>> data = click_conversion(10_000)
    >>> esmm = build_model("esmm", data.features, data.task_types, data.task_names)
    >>> ranking = MultiTaskRanking(esmm, weighting="uwl")
    >>> ranking.compile(optimizer=tf.keras.optimizers.Adam(3e-3))
    >>> history = ranking.fit(tf.data.Dataset.from_tensor_slices({**data.x, **data.y}).batch(256))
    >>> sorted(history.history)
    ['ctcvr_auc', 'ctr_auc', 'cvr_auc', 'loss', 'regularization_loss', 'total_loss']

    Serve the wrapped model (``ranking.multitask_model``): this wrapper only trains it.
    """

    def __init__(self, model, weighting=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not isinstance(model, MultiTaskModel):
            raise TypeError(f"MultiTaskRanking wraps a tf_mtl.models.MultiTaskModel. Received: {type(model).__name__}")
        feature_names = [f.name for f in model.features]
        clashes = sorted(set(feature_names) & set(model.task_names))
        if clashes:
            raise ValueError(
                f"MultiTaskRanking: {clashes} name both a feature and a task, so a batch dict cannot hold both. "
                "Rename the tasks (task_names=...)."
            )
        self.multitask_model = model
        placeholders = {n: tf.zeros([1]) for n in model.task_names}
        terms = {**model.loss_terms(placeholders), **model.metric_terms(placeholders)}
        self.ranking_tasks = {
            name: tfrs.tasks.Ranking(
                loss=_LOSSES[task_type](reduction=keras.losses.Reduction.SUM),
                metrics=[_metric(name, task_type)],
                name=f"{name}_ranking",
            )
            for name, (task_type, _, _) in terms.items()
        }
        self.loss_trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "regularization_loss", "total_loss")}
        # Kept out of Keras' tracking, as in MultiTaskModel: the method's state has its own
        # optimizer, and the train step must not hand it to the model's.
        object.__setattr__(self, "_weighting", weighting_lib.get(weighting))
        object.__setattr__(self, "_feature_names", feature_names)

    @property
    def weighting(self):
        """The loss-weighting method (built by ``compile``)."""
        return self._weighting

    def compile(self, optimizer="rmsprop", **kwargs):
        """Keras ``compile``; also builds the weighting for the model's loss terms, giving its
        trainable state a copy of ``optimizer``."""
        super().compile(optimizer=optimizer, **kwargs)
        model = self.multitask_model
        self._weighting.build(
            model.loss_term_names, model.loss_term_types, self.optimizer, step_lib.weighting_variables(model, self._weighting)
        )

    def split_inputs(self, inputs):
        """``(features, labels, sample_weight)`` of a batch: a dict of features and labels, or
        a ``(features, labels[, sample_weight])`` tuple. ``labels`` is a dict of the task
        labels present, or what the tuple holds."""
        if isinstance(inputs, (tuple, list)):
            features, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(tuple(inputs))
        elif isinstance(inputs, dict):
            features, sample_weight = inputs, None
            labels = {n: inputs[n] for n in self.multitask_model.task_names if n in inputs}
        else:
            raise TypeError(
                "MultiTaskRanking takes a dict of features and labels, or a (features, labels[, sample_weight]) "
                f"tuple. Received: {type(inputs).__name__}"
            )
        if not isinstance(features, dict):
            raise TypeError(f"MultiTaskRanking: features must be a dict keyed by feature name. Received: {type(features).__name__}")
        if isinstance(sample_weight, dict):
            raise TypeError("MultiTaskRanking: sample_weight must be one array (batch,) for every loss term, not a dict.")
        missing = [n for n in self._feature_names if n not in features]
        if missing:
            raise KeyError(f"MultiTaskRanking: the batch lacks the features {missing}. Received keys: {sorted(features)}")
        return {n: features[n] for n in self._feature_names}, labels, sample_weight

    def call(self, inputs, training=False):
        """The wrapped model's outputs, a dict keyed by output name (label keys are ignored)."""
        features, _, _ = self.split_inputs(inputs)
        return self.multitask_model(features, training=training)

    def term_losses(self, outputs, labels, sample_weight=None, training=False):
        """Each loss term's loss from its ``Ranking`` task, ``(n_terms,)`` in
        ``model.loss_term_names`` order: this replica's share of the global batch's."""
        model = self.multitask_model
        terms = model.weighted_terms(model.loss_terms(model.label_dict(labels)), sample_weight, labels)
        losses = []
        for name in model.loss_term_names:
            _, label, weights = terms[name]
            weights = tf.ones_like(label) if weights is None else weights
            # A SUM of per-example losses times weights normalised over the global batch: the
            # weighted mean tf_mtl's own step takes, unlike Keras' sum over the batch size.
            share = tf.math.divide_no_nan(weights, all_reduce(tf.reduce_sum(weights)))
            losses.append(
                self.ranking_tasks[name](
                    _column(label), _column(outputs[name]), sample_weight=_column(share), training=training, compute_metrics=False
                )
            )
        return tf.stack(losses)

    def update_metrics(self, outputs, labels, sample_weight=None):
        """Updates each scored term's metrics on the rows ``model.metric_terms`` names."""
        model = self.multitask_model
        for name, (_, label, mask) in model.metric_terms(model.label_dict(labels)).items():
            weights = None
            for factor in (mask, sample_weight):
                if factor is not None:
                    weights = _column(factor) if weights is None else weights * _column(factor)
            self.ranking_tasks[name](_column(label), _column(outputs[name]), sample_weight=weights, compute_metrics=True)

    def compute_loss(self, inputs, training=False):
        """The weighted loss of a batch (see the class docstring); updates the metrics."""
        if not self._weighting.built:
            raise ValueError("MultiTaskRanking: call compile() first; it builds the loss weighting for the model's loss terms.")
        if training and self._weighting.gradients is not None:
            raise ValueError(
                f"{type(self._weighting).__name__} weighs per-term gradients, which compute_loss cannot supply. "
                "Train with fit() (its train_step runs tf_mtl's shared step), or choose fixed, uwl or dwa."
            )
        features, labels, sample_weight = self.split_inputs(inputs)
        outputs = self.multitask_model(features, training=training)
        self.update_metrics(outputs, labels, sample_weight)
        terms = self.term_losses(outputs, labels, sample_weight, training)
        if training:
            weighted = self._weighting.weigh(all_reduce(tf.stop_gradient(terms)))
            weights, regularizer = weighted.weights, weighted.regularizer
        else:
            weights, regularizer = self._weighting.current_weights(), tf.constant(0.0)
        auxiliary = list(self.multitask_model.auxiliary_losses(outputs).values())
        extra = tf.add_n([regularizer] + [tf.cast(a, tf.float32) for a in auxiliary])
        return tf.tensordot(weights, terms, 1) + extra / float(replicas())

    def _regularization(self):
        losses = [tf.cast(l, tf.float32) for l in self.losses]
        return tf.add_n(losses) if losses else tf.constant(0.0)

    def _logs(self, loss, regularization):
        """Every metric's result after the step's global ``loss`` and ``regularization`` (the
        same on every replica) enter the loss trackers: Mean metrics, which Keras aggregates
        over replicas and resets each epoch, so the logs are epoch means."""
        for name, value in (("loss", loss), ("regularization_loss", regularization), ("total_loss", loss + regularization)):
            self.loss_trackers[name].update_state(value)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, inputs):
        if self._weighting.gradients is not None:
            features, labels, sample_weight = self.split_inputs(inputs)
            outputs, step_logs = step_lib.train_step(
                self.multitask_model, self._weighting, self.optimizer, features, labels, sample_weight
            )
            self.update_metrics(outputs, labels, sample_weight)
            regularization = self._regularization()
            return self._logs(step_logs["loss"] - regularization, regularization)
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            regularization = self._regularization()
            total = loss + regularization / float(replicas())
        variables = self.trainable_variables
        weighting_variables = list(self._weighting.trainable_variables)
        gradients = tape.gradient(total, variables + weighting_variables)
        self.optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables) if g is not None])
        self._weighting.apply_gradients(gradients[len(variables) :])
        return self._logs(all_reduce(tf.stop_gradient(loss)), regularization)

    def test_step(self, inputs):
        loss = self.compute_loss(inputs, training=False)
        return self._logs(all_reduce(loss), self._regularization())

    def fit(self, *args, callbacks=None, **kwargs):
        """Keras ``fit``; tells the weighting when an epoch ends (``dwa`` needs it)."""
        return super().fit(*args, callbacks=list(callbacks or []) + [step_lib.EndEpoch(self._weighting)], **kwargs)


__all__ = ["MultiTaskRanking"]
