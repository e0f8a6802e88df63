"""The contract every loss-weighting method follows.

A method sees the loss terms of one step (one scalar per term, in the model's loss-term order)
and, when it asks for them, each term's gradient on the model's shared variables. It returns
the weights of the terms, a regularizer (uncertainty weighting's log-variances) and, for
methods that reshape gradients (PCGrad, MetaBalance), the combined gradient of the shared
variables. It never looks at the model's type: the model declares which variables are shared.

State lives in ``tf.Variable``s so that a ``tf.train.Checkpoint`` of the method restores it;
trainable state (log-variances) is updated by the method's own optimizer, a copy of the
model's optimizer without weight decay.
"""

import collections

import tensorflow as tf

from tf_mtl.compat import keras

# What ``weigh`` returns. ``effective``: the weights to report (defaults to ``weights``);
# ``variable_gradients``: gradients of the method's trainable variables that the method
# computes itself (GradNorm), instead of the tape's, already divided by the replica count.
Weighted = collections.namedtuple(
    "Weighted", ["weights", "regularizer", "shared_gradients", "effective", "variable_gradients"]
)


def _state(name, value, trainable=False):
    """A variable whose value every replica computes alike: the first replica's write wins."""
    return tf.Variable(value, name=name, trainable=trainable, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


def replicas():
    """The number of replicas in sync under the current ``tf.distribute`` strategy (1 without)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def flatten(gradients):
    """One vector from a list of per-variable gradients (``IndexedSlices`` made dense)."""
    return tf.concat([tf.reshape(tf.convert_to_tensor(g), [-1]) for g in gradients], axis=0)


def unflatten(vector, like):
    """The inverse of ``flatten``: one tensor per entry of ``like`` (variables or dense
    gradients), shaped like it."""
    sizes = [v.shape.num_elements() for v in like]
    return [tf.reshape(part, v.shape) for part, v in zip(tf.split(vector, sizes), like)]


class LossWeighting(tf.Module):
    """Base class. Subclasses set ``gradients`` and implement ``_build`` and ``weigh``.

    Attributes:
        gradients: which per-term gradients ``weigh`` needs: ``None`` (none), ``"shared"``
            (all shared variables), ``"last_shared"`` (the last shared layer's) or ``"all"``
            (every trainable variable of the model).
    """

    gradients = None
    # The model's variables it is built for: references, not state of the method.
    _TF_MODULE_IGNORED_PROPERTIES = frozenset(["gradient_variables"]).union(tf.Module._TF_MODULE_IGNORED_PROPERTIES)

    def __init__(self, name=None):
        super().__init__(name=name)
        self.term_names = None
        self.task_types = None
        self.optimizer = None
        self.gradient_variables = None

    @property
    def built(self):
        return self.term_names is not None

    def build(self, term_names, task_types, optimizer=None, gradient_variables=None):
        """Creates the state for these loss terms (call under the distribution strategy's scope).

        Args:
            term_names: the model's loss-term names, in order.
            task_types: ``"classification"`` or ``"regression"`` per term.
            optimizer: the model's optimizer; trainable state gets a copy of it (same class
                and learning rate, no weight decay).
            gradient_variables: the variables whose per-term gradients ``weigh`` will get
                (``step.weighting_variables``), for methods that keep state per variable.
        """
        if self.built:
            if tuple(term_names) != self.term_names:
                raise ValueError(
                    f"{type(self).__name__} was built for the loss terms {list(self.term_names)}; "
                    f"received {list(term_names)}. Use one weighting object per model."
                )
            return self
        self.term_names, self.task_types = tuple(term_names), tuple(task_types)
        # A tuple of plain references: tf.Module would otherwise track the model's variables.
        object.__setattr__(self, "gradient_variables", tuple(gradient_variables or ()))
        self.step = _state("step", tf.constant(0, tf.int64))
        self.last_weights = _state("last_weights", tf.ones([len(self.term_names)]))
        self._build(len(self.term_names))
        if self.trainable_variables:
            self.optimizer = _copy_optimizer(optimizer)
            if hasattr(self.optimizer, "build"):
                self.optimizer.build(list(self.trainable_variables))
        return self

    def _build(self, n_terms):
        """Creates the method's variables."""

    def weigh(self, losses, task_gradients=None):
        """The weights for one step.

        Args:
            losses: ``(n_terms,)`` loss of each term over the global batch (no gradient).
            task_gradients: when ``gradients`` is set, one list per term of the gradients of
                that term's loss on the requested shared variables, summed over replicas.

        Returns:
            ``Weighted``: ``weights`` ``(n_terms,)``; ``regularizer`` (a scalar added to the
            loss once per global batch); ``shared_gradients`` (``None``, or the gradients
            that replace those of the shared variables); ``variable_gradients`` (``None``, or
            the gradients ``apply_gradients`` gets for the method's variables).
        """
        raise NotImplementedError

    def current_weights(self):
        """The terms' weights as of the last step, without changing any state (for evaluation)."""
        return tf.identity(self.last_weights)

    def apply_gradients(self, gradients):
        """Updates trainable state (e.g. log-variances) with the method's optimizer."""
        pairs = [(g, v) for g, v in zip(gradients, self.trainable_variables) if g is not None]
        if pairs:
            self.optimizer.apply_gradients(pairs)

    def end_epoch(self):
        """Called after each training epoch (DWA uses it)."""

    def get_config(self):
        return {}

    def _weighted(self, weights, regularizer=None, shared_gradients=None, effective=None, variable_gradients=None):
        self.step.assign_add(1)
        self.last_weights.assign(tf.stop_gradient(weights))
        regularizer = tf.constant(0.0) if regularizer is None else regularizer
        effective = weights if effective is None else effective
        return Weighted(weights, regularizer, shared_gradients, effective, variable_gradients)


def _copy_optimizer(optimizer):
    if optimizer is None:
        return keras.optimizers.Adam()
    if isinstance(optimizer, str):
        optimizer = keras.optimizers.get(optimizer)
    # The method's variables are float32: they need no loss scaling.
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    config = optimizer.get_config()
    config.pop("weight_decay", None)
    return type(optimizer).from_config(config)
