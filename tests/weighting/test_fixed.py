"""FixedWeighting: constant weights, in order or by name."""

import numpy as np
import pytest

from tf_mtl.weighting import FixedWeighting, get

from ._reference import C, R, losses


def test_default_weights_are_one_and_nothing_else_is_returned():
    method = FixedWeighting().build(["ctr", "cvr", "time"], [C, C, R])
    weighted = method.weigh(losses(0.7, 0.2, 3.0))
    np.testing.assert_array_equal(weighted.weights, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(weighted.effective, [1.0, 1.0, 1.0])
    assert float(weighted.regularizer) == 0.0
    assert weighted.shared_gradients is None


def test_list_weights_in_loss_term_order():
    method = FixedWeighting([2.0, 0.5]).build(["ctr", "time"], [C, R])
    weighted = method.weigh(losses(0.7, 3.0))
    np.testing.assert_array_equal(weighted.weights, [2.0, 0.5])
    # The weighted total the step forms from them: 2 * 0.7 + 0.5 * 3.
    assert float(np.dot(weighted.weights, [0.7, 3.0])) == pytest.approx(2.9)


def test_dict_weights_by_name_and_missing_terms_weigh_one():
    method = FixedWeighting({"time": 0.25}).build(["ctr", "cvr", "time"], [C, C, R])
    np.testing.assert_array_equal(method.weigh(losses(1.0, 1.0, 1.0)).weights, [1.0, 1.0, 0.25])
    np.testing.assert_array_equal(method.current_weights(), [1.0, 1.0, 0.25])


def test_weights_do_not_depend_on_the_losses_or_the_step():
    method = FixedWeighting([3.0, 1.0]).build(["a", "b"], [C, C])
    for values in [(0.1, 9.0), (5.0, 0.0), (0.0, 0.0)]:
        np.testing.assert_array_equal(method.weigh(losses(*values)).weights, [3.0, 1.0])
    assert int(method.step.numpy()) == 3


def test_loss_weights_spec_builds_the_same_method():
    method = get({"method": "equal", "weights": {"b": 2.0}}).build(["a", "b"], [C, C])
    assert isinstance(method, FixedWeighting)
    np.testing.assert_array_equal(method.weigh(losses(1.0, 1.0)).weights, [1.0, 2.0])


def test_wrong_weights_name_what_was_received():
    with pytest.raises(ValueError, match=r"3 values for the 2 loss terms \['a', 'b'\]"):
        FixedWeighting([1.0, 2.0, 3.0]).build(["a", "b"], [C, C])
    with pytest.raises(ValueError, match="'c' is not a loss term"):
        FixedWeighting({"c": 1.0}).build(["a", "b"], [C, C])
    with pytest.raises(ValueError, match="Received: 2.0"):
        FixedWeighting(2.0)
