"""The one training step of tf_mtl: ``MTLTrainer`` and ``model.fit`` both run it.

Under a ``tf.distribute`` strategy it runs once per replica. Each replica's loss terms are its
share of the global batch's (its weighted loss sum divided by the weight summed over every
replica), so gradients summed over replicas (what optimizers do) are the global batch's; the
weighting sees the global losses and, when it asks, the per-term gradients summed over
replicas, so every replica computes the same weights and a replica count of 2 doubles
nothing.
"""

import tensorflow as tf

from tf_mtl.compat import divide_gradient, gradients_to_apply, keras, loss_scale
from tf_mtl.weighting.base import replicas

SUM = tf.distribute.ReduceOp.SUM


def all_reduce(value):
    """The sum of ``value`` over the replicas (itself outside a replica context)."""
    context = tf.distribute.get_replica_context()
    return value if context is None else context.all_reduce(SUM, value)


def _finite(gradient):
    """Non-finite entries as 0: a float16 step that overflows is skipped by the loss-scale
    optimizer, and must not leave inf in a weighting's state (MetaBalance's averages)."""
    return tf.where(tf.math.is_finite(gradient), gradient, tf.zeros_like(gradient))


def _dense(gradient, variable):
    """A dense gradient with the variable's static shape (an ``IndexedSlices`` made dense has
    none, and collective all-reduce groups tensors by their static shapes)."""
    if gradient is None:
        return tf.zeros(variable.shape, variable.dtype)
    return tf.reshape(tf.convert_to_tensor(gradient), variable.shape)


def deduplicate(gradient):
    """An ``IndexedSlices`` gradient with each row once, its repeats summed.

    Keras 3 optimizers apply the slices of a repeated row one by one, so Adam's second moment
    sums ``g_k^2`` instead of squaring ``sum_k g_k`` (a batch repeats ids all the time); Keras 2
    deduplicates itself. Summed first, a sparse step equals the dense one.
    """
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    rows, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, gradient.dense_shape)


def _rows_of_every_replica(gradient, variable):
    """An ``IndexedSlices`` gradient over the rows any replica's batch used, the same rows on
    every replica (this replica's own sums, 0 for rows only others used): its cross-replica
    sum has one shape everywhere, and an optimizer that sums repeated rows (``LazyAdam``)
    then updates exactly the global batch's rows, as on one device."""
    indices = tf.cast(gradient.indices, tf.int64)
    used = all_reduce(tf.scatter_nd(indices[:, None], tf.ones_like(indices, tf.float32), [variable.shape[0]]))
    rows = tf.where(used > 0)[:, 0]
    values = tf.math.unsorted_segment_sum(gradient.values, tf.searchsorted(rows, indices), tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, tf.constant(variable.shape.as_list(), tf.int64))


def weighting_variables(model, weighting):
    """The model variables whose per-term gradients ``weighting`` needs (maybe none)."""
    if weighting.gradients is None:
        return []
    if weighting.gradients == "all":
        return model.trainable_variables
    variables = model.shared_variables if weighting.gradients == "shared" else model.last_shared_variables
    if not variables:
        raise ValueError(
            f"{type(weighting).__name__} balances gradients on the variables all tasks share, and "
            f"{model.name} shares none (e.g. SingleTask). Choose a loss-based method: fixed, uwl or dwa."
        )
    return variables


def forward_losses(model, x, y, sample_weight, training):
    """Runs the model and returns ``(y_pred, terms, auxiliary, regularization)``: the loss
    terms ``(n_terms,)`` as this replica's share of the global batch's, the auxiliary losses
    and the regularization loss, both divided by the replica count."""
    y_pred = model(x, training=training)
    sums, totals = model.loss_sums(y, y_pred, sample_weight)
    terms = tf.math.divide_no_nan(sums, all_reduce(totals))
    count = float(replicas())
    auxiliary = {n: v / count for n, v in model.auxiliary_losses(y_pred).items()}
    regularization = [tf.cast(l, tf.float32) for l in model.losses]
    regularization = tf.add_n(regularization) / count if regularization else tf.constant(0.0)
    return y_pred, terms, auxiliary, regularization


def train_step(model, weighting, optimizer, x, y, sample_weight=None):
    """One weighted step on one replica's batch; applies the gradients.

    Returns:
        ``(y_pred, logs)``; ``logs`` holds global values: ``"terms"`` ``(n_terms,)``,
        ``"auxiliary"`` (dict), ``"loss"`` (the weighted total) and ``"weights"`` (the
        terms' effective weights).
    """
    gradient_variables = weighting_variables(model, weighting)
    # Under float16 a LossScaleOptimizer's scale keeps small gradients from flushing to 0:
    # every gradient is taken of the loss times the scale (``output_gradients``).
    scale = loss_scale(optimizer)
    with tf.GradientTape(persistent=bool(gradient_variables)) as tape:
        y_pred, terms, auxiliary, regularization = forward_losses(model, x, y, sample_weight, True)
        # Sliced while recording: a slice taken outside the tape has no gradient.
        term_list = tf.unstack(terms)
    global_terms = all_reduce(tf.stop_gradient(terms))
    task_gradients = None
    if gradient_variables:
        task_gradients = [
            all_reduce(
                [
                    _finite(_dense(g, v) / scale)
                    for g, v in zip(tape.gradient(term, gradient_variables, output_gradients=scale), gradient_variables)
                ]
            )
            for term in term_list
        ]
    with tape:
        weighted = weighting.weigh(global_terms, task_gradients)
        extra = tf.add_n(list(auxiliary.values()) + [regularization])
        total = tf.tensordot(weighted.weights, terms, 1) + weighted.regularizer / float(replicas()) + extra

    model_variables = model.trainable_variables
    if weighted.shared_gradients is None:
        gradients = tape.gradient(total, model_variables + list(weighting.trainable_variables), output_gradients=scale)
        model_gradients = gradients[: len(model_variables)]
        weighting_gradients = [divide_gradient(g, scale) for g in gradients[len(model_variables) :]]
    else:
        # The method's combination replaces the shared variables' gradients. It is already the
        # global batch's, and every replica hands it over: divide by the replica count.
        replaced = {id(v): g * (scale / float(replicas())) for v, g in zip(gradient_variables, weighted.shared_gradients)}
        extras = dict(zip(map(id, gradient_variables), tape.gradient(extra, gradient_variables, output_gradients=scale)))
        rest = [v for v in model_variables if id(v) not in replaced]
        own = dict(zip(map(id, rest), tape.gradient(total, rest, output_gradients=scale) if rest else []))
        model_gradients = [
            replaced[id(v)] + (0.0 if extras[id(v)] is None else tf.convert_to_tensor(extras[id(v)]))
            if id(v) in replaced
            else own[id(v)]
            for v in model_variables
        ]
        weighting_gradients = []
    if weighted.variable_gradients is not None:
        weighting_gradients = weighted.variable_gradients
    del tape
    sums_repeated_rows = getattr(optimizer, "sums_repeated_rows", False)
    if replicas() > 1:
        # Cross-replica sums of IndexedSlices of different lengths break collective all-reduce;
        # dense embedding gradients do not, nor slices over the same rows on every replica.
        model_gradients = [
            g if g is None else _rows_of_every_replica(g, v) if sums_repeated_rows and isinstance(g, tf.IndexedSlices) else _dense(g, v)
            for g, v in zip(model_gradients, model_variables)
        ]
    elif not sums_repeated_rows:
        model_gradients = [deduplicate(g) for g in model_gradients]
    model_gradients = gradients_to_apply(optimizer, model_gradients, scale)
    optimizer.apply_gradients([(g, v) for g, v in zip(model_gradients, model_variables) if g is not None])
    weighting.apply_gradients(weighting_gradients)
    logs = {
        "terms": global_terms,
        "auxiliary": {n: all_reduce(v) for n, v in auxiliary.items()},
        "loss": all_reduce(tf.stop_gradient(total)),
        "weights": weighted.effective,
    }
    return y_pred, logs


def test_step(model, weighting, x, y, sample_weight=None):
    """The same losses without training: ``(y_pred, logs)`` with the terms and the total
    weighted by the weighting's current weights (its state is not changed)."""
    y_pred, terms, auxiliary, regularization = forward_losses(model, x, y, sample_weight, False)
    global_terms = all_reduce(terms)
    weights = weighting.current_weights()
    total = tf.tensordot(weights, global_terms, 1) + tf.add_n([all_reduce(v) for v in auxiliary.values()] + [all_reduce(regularization)])
    return y_pred, {"terms": global_terms, "auxiliary": {n: all_reduce(v) for n, v in auxiliary.items()}, "loss": total, "weights": weights}


class EndEpoch(keras.callbacks.Callback):
    """Tells a weighting that a ``fit`` epoch ended (DWA averages losses per epoch)."""

    def __init__(self, weighting):
        super().__init__()
        object.__setattr__(self, "_weighting", weighting)

    def on_epoch_end(self, epoch, logs=None):
        self._weighting.end_epoch()
