import numpy as np
import pytest

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


def test_gate_dropout_only_while_training(features, inputs):
    model = MMOE(features, [C, C], 4, {"dims": [8]}, [{}, {}], gate_dropout=0.5)
    first = model(inputs, training=False)["task1"].numpy()
    np.testing.assert_array_equal(model(inputs, training=False)["task1"].numpy(), first)
    assert not np.allclose(model(inputs, training=True)["task1"].numpy(), first)


def test_gate_dropout_out_of_range(features):
    with pytest.raises(ValueError, match="gate_dropout must be in"):
        MMOE(features, [C, C], 2, {"dims": [8]}, [{}, {}], gate_dropout=1.0)
