"""Tests of ExtractionLevel, one CGC level of PLE: experts, gates, routing and outputs."""

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.layers.cgc import ExtractionLevel

from ._reference import member, mlp, random_weights, softmax, value

N_TASK, N_SPECIFIC, N_SHARED, D = 2, 3, 2, 5
EXPERT_PARAMS = {"dims": [4, 3]}


def _inputs(n_task=N_TASK, batch=6, seed=0):
    """Different task and shared inputs, so a wrong routing shows in the outputs."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, D)).astype(np.float32) for _ in range(n_task + 1)]


def _reference(level, inputs):
    task_inputs, shared_input = inputs[:-1], inputs[-1]
    n = level.n_expert_specific
    specific = [mlp(task_inputs[e // n], *member(level.specific_experts, e)) for e in range(level.n_task * n)]
    shared = [mlp(shared_input, *member(level.shared_experts, s)) for s in range(level.n_expert_shared)]

    def gate(layer, experts, gate_input):
        weights = softmax(gate_input @ value(layer.gate.kernel) + value(layer.gate.bias))
        return np.einsum("be,ebd->bd", weights, np.stack(experts)), weights

    results = [gate(level.task_gates[k], specific[k * n : (k + 1) * n] + shared, task_inputs[k]) for k in range(level.n_task)]
    if level.shared_gate is not None:
        results.append(gate(level.shared_gate, specific + shared, shared_input))
    return [r[0] for r in results], [r[1] for r in results]


@pytest.mark.parametrize("is_last", [False, True])
def test_expert_and_gate_shapes(is_last):
    level = ExtractionLevel(N_TASK, N_SPECIFIC, N_SHARED, EXPERT_PARAMS, is_last=is_last)
    outputs, weights = level(_inputs())
    assert [tuple(k.shape) for k in level.specific_experts.kernels] == [(N_TASK * N_SPECIFIC, D, 4), (N_TASK * N_SPECIFIC, 4, 3)]
    assert [tuple(k.shape) for k in level.shared_experts.kernels] == [(N_SHARED, D, 4), (N_SHARED, 4, 3)]
    assert len(level.task_gates) == N_TASK
    for gate in level.task_gates:
        assert gate.num_experts == N_SPECIFIC + N_SHARED
        assert tuple(gate.gate.kernel.shape) == (D, N_SPECIFIC + N_SHARED)
    if is_last:
        assert level.shared_gate is None
    else:
        assert level.shared_gate.num_experts == N_TASK * N_SPECIFIC + N_SHARED
        assert tuple(level.shared_gate.gate.kernel.shape) == (D, N_TASK * N_SPECIFIC + N_SHARED)
    n_out = N_TASK + (0 if is_last else 1)
    assert len(outputs) == n_out and len(weights) == n_out
    assert [tuple(o.shape) for o in outputs] == [(6, 3)] * n_out
    sizes = [N_SPECIFIC + N_SHARED] * N_TASK + ([] if is_last else [N_TASK * N_SPECIFIC + N_SHARED])
    assert [tuple(w.shape) for w in weights] == [(6, s) for s in sizes]
    # Two kernels and two biases per expert group, a kernel and a bias per gate, nothing else.
    assert len(level.weights) == 2 * 4 + 2 * n_out


@pytest.mark.parametrize("n_task, n_specific, n_shared, is_last", [(2, 3, 2, False), (3, 1, 1, True), (1, 2, 3, False)])
def test_outputs_equal_numpy(n_task, n_specific, n_shared, is_last):
    level = ExtractionLevel(n_task, n_specific, n_shared, EXPERT_PARAMS, is_last=is_last)
    inputs = _inputs(n_task)
    level(inputs)
    random_weights(level, seed=n_task + n_specific, scale=0.5)
    outputs, weights = level(inputs)
    expected_outputs, expected_weights = _reference(level, inputs)
    for out, expected in zip(outputs, expected_outputs):
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    for w, expected in zip(weights, expected_weights):
        np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(np.sum(w, axis=-1), np.ones(6), rtol=1e-6)


def test_one_input_for_all_equals_the_same_input_repeated():
    """The first level takes the embedded features once; every expert and gate sees them."""
    level = ExtractionLevel(2, 2, 1, EXPERT_PARAMS)
    x = _inputs(2)[0]
    repeated = level([x] * 3)
    random_weights(level, seed=3, scale=0.5)
    for once, each in zip(tf.nest.flatten(level(x)), tf.nest.flatten(level([x] * 3))):
        np.testing.assert_allclose(once, each, rtol=1e-5, atol=1e-6)
    assert level.compute_output_shape((None, 4)) == level.compute_output_shape([(None, 4)] * 3)
    assert len(tf.nest.flatten(repeated)) == 6


def test_task_outputs_depend_only_on_own_experts_and_shared_ones():
    level = ExtractionLevel(2, 1, 1, {"dims": [2]}, is_last=True)
    inputs = _inputs()
    level(inputs)
    # Task 1's specific expert outputs 0 whatever its input; task 0's is the identity on 2 inputs.
    level.specific_experts.kernels[0].assign(np.stack([np.eye(D, 2), np.zeros((D, 2))]).astype(np.float32))
    level.shared_experts.kernels[0].assign(np.zeros((1, D, 2), np.float32))
    for gate in level.task_gates:
        gate.gate.kernel.assign(tf.zeros((D, 2)))
    outputs, weights = level(inputs)
    np.testing.assert_allclose(weights[0], np.full((6, 2), 0.5))
    np.testing.assert_allclose(outputs[0], 0.5 * np.maximum(inputs[0][:, :2], 0.0), rtol=1e-6)
    np.testing.assert_array_equal(outputs[1], np.zeros((6, 2)))


def test_experts_start_different():
    level = ExtractionLevel(2, 2, 2, {"dims": [8]})
    level(_inputs())
    specific = level.specific_experts.kernels[0].numpy()
    shared = level.shared_experts.kernels[0].numpy()
    members = list(specific) + list(shared)
    for a in range(len(members)):
        for b in range(a + 1, len(members)):
            assert not np.allclose(members[a], members[b])


def test_gate_dropout_reaches_every_gate():
    level = ExtractionLevel(2, 2, 1, EXPERT_PARAMS, gate_dropout=0.3)
    assert [g.gate_dropout for g in level.task_gates] + [level.shared_gate.gate_dropout] == [0.3] * 3
    tf.random.set_seed(0)
    inputs = _inputs(batch=256)
    _, weights = level(inputs, training=True)
    assert all((w.numpy() == 0).any() for w in weights)
    _, weights = level(inputs)
    assert all((w.numpy() > 0).all() for w in weights)


def test_in_a_functional_model_and_compute_output_shape():
    level = ExtractionLevel(N_TASK, N_SPECIFIC, N_SHARED, EXPERT_PARAMS)
    shapes = level.compute_output_shape([(None, D)] * (N_TASK + 1))
    assert [tuple(s) for s in shapes[0]] == [(None, 3)] * 3
    assert [tuple(s) for s in shapes[1]] == [(None, 5), (None, 5), (None, 8)]
    inputs = [keras.Input((D,)) for _ in range(N_TASK + 1)]
    outputs, weights = level(inputs)
    model = keras.Model(inputs, outputs + weights)
    assert [tuple(s) for s in model.output_shape] == [(None, 3)] * 3 + [(None, 5), (None, 5), (None, 8)]
    values = _inputs()
    expected_outputs, expected_weights = _reference(level, values)
    for out, expected in zip(model(values), expected_outputs + expected_weights):
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_config_round_trip():
    level = ExtractionLevel(2, 3, 1, {"dims": [4], "dropout": 0.1}, is_last=True, gate_dropout=0.2, name="level")
    config = level.get_config()
    expected = {
        "n_task": 2,
        "n_expert_specific": 3,
        "n_expert_shared": 1,
        "expert_params": {"dims": [4], "dropout": 0.1},
        "is_last": True,
        "gate_dropout": 0.2,
    }
    assert {k: config[k] for k in expected} == expected
    clone = ExtractionLevel.from_config(config)
    inputs = _inputs()
    level(inputs)
    clone(inputs)
    clone.set_weights(level.get_weights())
    for a, b in zip(clone(inputs)[0], level(inputs)[0]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, 1, 1), "n_task: expected a positive integer. Received: 0"),
        ((2, 0, 1), "n_expert_specific: expected a positive integer. Received: 0"),
        ((2, 1, 1.5), "n_expert_shared: expected a positive integer. Received: 1.5"),
        ((2, True, 1), "n_expert_specific: expected a positive integer. Received: True"),
    ],
)
def test_argument_errors(args, message):
    with pytest.raises(ValueError) as info:
        ExtractionLevel(*args, EXPERT_PARAMS)
    assert str(info.value) == f"ExtractionLevel: {message}"
