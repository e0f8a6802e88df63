import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.models import PLE

C, R = "classification", "regression"


@pytest.mark.parametrize("n_level, n_specific, n_shared", [(1, 2, 1), (2, 1, 3), (3, 2, 2)])
def test_builds_the_experts_and_gates_its_config_implies(features, inputs, n_level, n_specific, n_shared):
    tasks = [C, R, C]
    model = PLE(features, tasks, n_level, n_specific, n_shared, {"dims": [8, 6]}, [{}, {}, {}])
    gates = model.gate_weights(inputs)
    expected = {}
    for level in range(n_level):
        for task in ("task1", "task2", "task3"):
            expected[f"level{level}/{task}"] = n_specific + n_shared
        if level < n_level - 1:
            expected[f"level{level}/shared"] = 3 * n_specific + n_shared
    assert {k: v.shape[1] for k, v in gates.items()} == expected
    for weights in gates.values():
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    for level in range(n_level):
        layer = model.get_layer(f"level_{level}")
        assert layer.specific_experts.kernels[0].shape[0] == 3 * n_specific
        assert layer.shared_experts.kernels[0].shape[0] == n_shared
        assert (layer.shared_gate is None) == (level == n_level - 1)


def test_towers_read_the_last_level(features, inputs):
    model = PLE(features, [C, C], 2, 1, 1, {"dims": [5]}, [{}, {}])
    assert model.get_layer("task1").output_unit.kernel.shape == (5, 1)
    assert sorted(model(inputs)) == ["task1", "task2"]


def test_levels_pass_task_and_shared_outputs_on_and_each_tower_reads_its_task(features, inputs):
    """Level 0 gets the embedding as every input; level 1 gets level 0's task outputs and shared output."""
    model = PLE(features, [C, R], 2, 1, 2, {"dims": [6]}, [{"dims": [3]}, {}])
    x = {name: tf.constant(value) for name, value in inputs.items()}
    embedded = model.get_layer("feature_embedding")(x)
    first, first_weights = model.get_layer("level_0")([embedded] * 3)
    last, last_weights = model.get_layer("level_1")(first)
    assert len(first) == 3 and len(last) == 2
    # The next level's task inputs differ from its shared input, so a wrong routing would show.
    assert not np.allclose(first[0], first[2]) and not np.allclose(first[1], first[2])
    gates = model.gate_weights(x)
    names = ["level0/task1", "level0/task2", "level0/shared", "level1/task1", "level1/task2"]
    assert sorted(gates) == sorted(names)
    for name, weights in zip(names, first_weights + last_weights):
        np.testing.assert_allclose(gates[name], weights, rtol=1e-5, atol=1e-7)
    outputs = model(x)
    for task, representation in zip(("task1", "task2"), last):
        np.testing.assert_allclose(outputs[task], model.get_layer(task)(representation), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, 1, 1), "n_level: expected a positive integer. Received: 0"),
        ((1, 0, 1), "n_expert_specific: expected a positive integer. Received: 0"),
        ((1, 1, -2), "n_expert_shared: expected a positive integer. Received: -2"),
        ((1, True, 1), "n_expert_specific: expected a positive integer. Received: True"),
    ],
)
def test_sizes_must_be_positive_integers(features, args, message):
    with pytest.raises(ValueError) as info:
        PLE(features, [C, C], *args, {"dims": [5]}, [{}, {}])
    assert str(info.value) == f"PLE: {message}"
