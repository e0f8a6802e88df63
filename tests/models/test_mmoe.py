import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.models import MMOE, OMoE

C, R = "classification", "regression"


def test_one_gate_per_task_whose_weights_sum_to_one(features, inputs):
    model = MMOE(features, [C, R, C], 3, {"dims": [8]}, [{}, {}, {}])
    gates = model.gate_weights(inputs)
    assert sorted(gates) == ["task1", "task2", "task3"]
    for weights in gates.values():
        assert weights.shape == (64, 3)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)


def test_omoe_has_one_gate_for_all_tasks(features, inputs):
    model = OMoE(features, [C, C], 3, {"dims": [8]}, [{}, {}])
    assert list(model.gate_weights(inputs)) == ["shared"]
    assert isinstance(model, MMOE) and model.get_config()["n_expert"] == 3


def test_every_expert_starts_different(features):
    model = MMOE(features, [C, C], 4, {"dims": [8, 4]}, [{}, {}])
    experts = model.get_layer("experts")
    for kernel in experts.kernels:
        values = np.asarray(kernel)
        assert values.shape[0] == 4
        assert all(not np.allclose(values[i], values[j]) for i in range(4) for j in range(i))


def test_shared_bottom_layer_before_experts(features, inputs):
    model = MMOE(features, [C, C], 2, {"dims": [8]}, [{}, {}], bottom_params={"dims": [6]})
    assert model.get_layer("experts").kernels[0].shape == (2, 6, 8)
    assert [layer.name for layer in model.shared_layers] == ["feature_embedding", "bottom", "experts"]


def _tensors(inputs):
    return {name: tf.constant(value) for name, value in inputs.items()}


def test_each_task_mixes_the_experts_with_its_own_gate_reading_the_bottom_output(features, inputs):
    model = MMOE(features, [C, R], 3, {"dims": [8]}, [{"dims": [4]}, {}], bottom_params={"dims": [6]})
    x = _tensors(inputs)
    hidden = model.get_layer("bottom")(model.get_layer("feature_embedding")(x))
    experts = model.get_layer("experts")(hidden)
    outputs, gates = model(x), model.gate_weights(x)
    for task in ("task1", "task2"):
        gate = model.get_layer(f"gate_{task}")
        assert tuple(gate.gate.kernel.shape) == (6, 3)  # the gate reads the bottom's output
        mixed, weights = gate([experts, hidden])
        np.testing.assert_allclose(gates[task], weights, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(outputs[task], model.get_layer(task)(mixed), rtol=1e-5, atol=1e-6)
    # The gates differ, so a task reading another task's mixture would show.
    assert not np.allclose(gates["task1"], gates["task2"], atol=1e-3)


def test_omoe_towers_all_read_the_one_gates_mixture(features, inputs):
    model = OMoE(features, [C, C], 3, {"dims": [8]}, [{}, {}])
    x = _tensors(inputs)
    embedded = model.get_layer("feature_embedding")(x)
    mixed, weights = model.get_layer("gate_shared")([model.get_layer("experts")(embedded), embedded])
    np.testing.assert_allclose(model.gate_weights(x)["shared"], weights, rtol=1e-5, atol=1e-7)
    outputs = model(x)
    for task in ("task1", "task2"):
        np.testing.assert_allclose(outputs[task], model.get_layer(task)(mixed), rtol=1e-5, atol=1e-6)


def test_gate_dropout_only_while_training(features, inputs):
    model = MMOE(features, [C, C], 4, {"dims": [8]}, [{}, {}], gate_dropout=0.5)
    first = model(inputs, training=False)["task1"].numpy()
    np.testing.assert_array_equal(model(inputs, training=False)["task1"].numpy(), first)
    assert not np.allclose(model(inputs, training=True)["task1"].numpy(), first)


def test_gate_dropout_out_of_range(features):
    with pytest.raises(ValueError) as info:
        MMOE(features, [C, C], 2, {"dims": [8]}, [{}, {}], gate_dropout=1.0)
    assert str(info.value) == "MMOE: gate_dropout: expected a number in [0, 1). Received: 1.0"
