"""The reference the benchmarks compare with: MMoE and PLE written the obvious way in plain
Keras 3 (functional API, one ``Embedding`` per feature, ``Adam``, ``model.fit`` on ``tf.data``),
as a recommendation engineer would without tf_mtl."""

import keras
from keras import layers, ops

from benchmarks.workload import EMBED_DIM, EXPERT_DIMS, LEARNING_RATE, TASKS, TOWER_DIMS


def _mlp(x, dims):
    for units in dims:
        x = layers.Dense(units, activation="relu")(x)
    return x


def _mix(experts, gate_input, n, name):
    """The gate's softmax weights times the stacked experts."""
    gate = layers.Dense(n, activation="softmax", name=f"gate_{name}")(gate_input)
    stacked = ops.stack(experts, axis=1)
    return ops.sum(stacked * ops.expand_dims(gate, -1), axis=1)


def reference_model(kind, workload):
    """A compiled plain-Keras ``"mmoe"`` or ``"ple"`` for the workload's features."""
    inputs, parts = {}, []
    for name, vocab in workload.vocab_sizes.items():
        inputs[name] = keras.Input(shape=(), dtype="int64", name=name)
        parts.append(layers.Embedding(vocab, EMBED_DIM, name=f"embedding_{name}")(inputs[name]))
    dense = [name for name in workload.train_x if name not in inputs]
    for name in dense:
        inputs[name] = keras.Input(shape=(), dtype="float32", name=name)
    parts.append(ops.stack([inputs[name] for name in dense], axis=1))
    x = layers.Concatenate()(parts)
    if kind == "mmoe":
        experts = [_mlp(x, EXPERT_DIMS) for _ in range(4)]
        mixed = {task: _mix(experts, x, 4, task) for task in TASKS}
    elif kind == "ple":
        shared = [_mlp(x, EXPERT_DIMS) for _ in range(2)]
        mixed = {task: _mix([_mlp(x, EXPERT_DIMS) for _ in range(2)] + shared, x, 4, task) for task in TASKS}
    else:
        raise ValueError(f"kind must be 'mmoe' or 'ple'. Received: {kind!r}")
    outputs = {task: layers.Dense(1, activation="sigmoid", name=task)(_mlp(mixed[task], TOWER_DIMS)) for task in TASKS}
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss={t: "binary_crossentropy" for t in TASKS})
    return model
