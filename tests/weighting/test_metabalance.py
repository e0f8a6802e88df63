"""MetaBalance (He et al. 2022): auxiliary gradients scaled towards the target's magnitude."""

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.weighting import MetaBalance

from ._reference import C, SHAPES, flat, losses, task_gradients


def pad(*values):
    return list(values) + [0.0] * (7 - len(values))


# Norms 1, 2 and 5; "b" is the target.
A, B, CC = np.array(pad(1)), np.array(pad(0, 0, 0, 0, 2)), np.array(pad(0, 3, 0, 0, 0, 4))


VARIABLES = [tf.Variable(tf.zeros(shape)) for shape in SHAPES]


def build(**kwargs):
    return MetaBalance(**{"target": "b", **kwargs}).build(["a", "b", "c"], [C, C, C], gradient_variables=VARIABLES)


def per_variable_norms(*vectors):
    """norms[i, p]: term i's gradient norm on shared variable p (a 2x2 kernel, a bias of 3)."""
    return np.array([[np.linalg.norm(v[:4]), np.linalg.norm(v[4:])] for v in vectors])


def combine(scale, *vectors):
    """sum_i scale[i, p] g_i(p), flattened."""
    return np.concatenate([sum(scale[i, p] * v[part] for i, v in enumerate(vectors)) for p, part in enumerate((slice(0, 4), slice(4, 7)))])


def weigh(method, *vectors):
    return method.weigh(losses(1.0, 1.0, 1.0), task_gradients(*vectors))


def test_first_step_scales_auxiliary_gradients_per_variable():
    method = build(relax_factor=0.7, beta=0.9)
    weighted = weigh(method, A, B, CC)
    # Per variable (kernel, bias): |a| = (1, 0), |b| = (0, 2), |c| = (3, 4); m = 0.1 * norms.
    m = 0.1 * np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(method.norm_averages.numpy(), m, rtol=1e-6)
    # scale = 0.7 * m_b / m + 0.3 where m > 0 (0.3 where a term has no gradient), the target's 1:
    # a: kernel 0.7 * 0 / 0.1 + 0.3 = 0.3; c: kernel 0.3, bias 0.7 * 0.2 / 0.4 + 0.3 = 0.65.
    scale = np.array([[0.3, 0.3], [1.0, 1.0], [0.3, 0.65]])
    np.testing.assert_allclose(weighted.effective, scale.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(flat(weighted.shared_gradients), combine(scale, A, B, CC), rtol=1e-6)
    assert [tuple(g.shape) for g in weighted.shared_gradients] == list(SHAPES)
    # The other parameters get the plain sum of the terms' gradients.
    np.testing.assert_array_equal(weighted.weights, [1.0, 1.0, 1.0])


def test_second_step_uses_the_moving_averages():
    method = build(relax_factor=0.7, beta=0.9)
    weigh(method, A, B, CC)
    a2, b2, c2 = np.array(pad(3, 0, 0, 0, 1)), np.array(pad(4, 0, 0, 0, 2)), np.array(pad(0, 0, 0, 0, 0, 1))
    weighted = weigh(method, a2, b2, c2)
    m = 0.9 * 0.1 * per_variable_norms(A, B, CC) + 0.1 * per_variable_norms(a2, b2, c2)
    np.testing.assert_allclose(method.norm_averages.numpy(), m, rtol=1e-6)
    scale = 0.7 * m[1] / m + 0.3
    scale[1] = 1.0
    np.testing.assert_allclose(weighted.effective, scale.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(flat(weighted.shared_gradients), combine(scale, a2, b2, c2), rtol=1e-6)


def test_relax_factor_one_matches_magnitudes_and_zero_leaves_them():
    method = build(relax_factor=1.0)
    a2, b2, c2 = np.array(pad(1, 0, 0, 0, 3)), np.array(pad(0, 2, 0, 0, 4)), np.array(pad(0, 0, 6, 0, 0, 8))
    weighted = weigh(method, a2, b2, c2)
    # After one step the averages are proportional to the norms: on each variable every
    # auxiliary gradient takes the target's norm there.
    combined = flat(weighted.shared_gradients) - b2
    for part, target in ((slice(0, 4), 2.0), (slice(4, 7), 4.0)):
        np.testing.assert_allclose(combined[part], target * (a2[part] / np.linalg.norm(a2[part]) + c2[part] / np.linalg.norm(c2[part])), rtol=1e-6)
    weighted = weigh(build(relax_factor=0.0), A, B, CC)
    np.testing.assert_allclose(flat(weighted.shared_gradients), A + B + CC, rtol=1e-6)


def test_the_first_term_is_the_default_target():
    method = MetaBalance(relax_factor=1.0).build(["a", "b", "c"], [C, C, C], gradient_variables=VARIABLES)
    weighted = weigh(method, np.array(pad(1, 0, 0, 0, 1)), np.array(pad(2, 0, 0, 0, 4)), np.array(pad(5, 0, 0, 0, 1)))
    # Scales (kernel, bias): b (1/2, 1/4), c (1/5, 1): effective = their means.
    np.testing.assert_allclose(weighted.effective, [1.0, 0.375, 0.6], rtol=1e-6)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="target 'd' is not a loss term"):
        MetaBalance(target="d").build(["a", "b"], [C, C], gradient_variables=VARIABLES)
    with pytest.raises(ValueError, match="with the shared variables"):
        MetaBalance().build(["a", "b"], [C, C])
    with pytest.raises(ValueError, match="relax_factor must be in"):
        MetaBalance(relax_factor=1.5)
    with pytest.raises(ValueError, match="beta must be in"):
        MetaBalance(beta=1.0)
