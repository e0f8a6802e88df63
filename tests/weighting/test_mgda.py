"""MGDA (Sener and Koltun 2018): the min-norm point of the convex hull of the terms' gradients."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.weighting import MGDA, min_norm_weights

from ._reference import C, flat, losses, task_gradients


def mgda(*vectors, normalization="none", values=None, names=("a", "b", "c")):
    names = names[: len(vectors)]
    method = MGDA(normalization=normalization).build(list(names), [C] * len(names))
    values = losses(*([1.0] * len(vectors) if values is None else values))
    return method, method.weigh(values, task_gradients(*vectors))


def pad(*values):
    return list(values) + [0.0] * (7 - len(values))


def two_task_closed_form(g1, g2):
    """The paper's Algorithm 1: a = clip((g2 - g1) . g2 / ||g1 - g2||^2, 0, 1)."""
    g1, g2 = np.asarray(g1, np.float64), np.asarray(g2, np.float64)
    a = np.clip(np.dot(g2 - g1, g2) / np.dot(g1 - g2, g1 - g2), 0.0, 1.0)
    return np.array([a, 1.0 - a])


def test_two_conflicting_gradients():
    method, weighted = mgda(pad(2, 0), pad(-1, 1))
    # (g2 - g1) . g2 = (-3, 1) . (-1, 1) = 4 and ||g1 - g2||^2 = 10: a = (0.4, 0.6).
    np.testing.assert_allclose(weighted.weights, [0.4, 0.6], rtol=1e-6)
    # The combination 0.4 g1 + 0.6 g2 = (0.2, 0.6) is orthogonal to g1 - g2 (the min-norm point).
    combined = 0.4 * np.array([2.0, 0.0]) + 0.6 * np.array([-1.0, 1.0])
    assert np.dot(combined, [3.0, -1.0]) == pytest.approx(0.0)
    assert weighted.shared_gradients is None
    np.testing.assert_allclose(method.current_weights(), [0.4, 0.6], rtol=1e-6)


@pytest.mark.parametrize(
    "g1, g2",
    [(pad(1, 2, 0, -1), pad(0.5, -1, 3, 0, 0, 1, 2)), (pad(0, 0, 0, 0, 1, 1, 1), pad(0, 0, 0, 0, 1, -1, 0.5))],
    ids=["spread", "bias_only"],
)
def test_two_tasks_match_the_closed_form(g1, g2):
    _, weighted = mgda(g1, g2)
    np.testing.assert_allclose(weighted.weights, two_task_closed_form(g1, g2), rtol=1e-5, atol=1e-6)


def test_orthogonal_gradients_weigh_by_inverse_squared_norm():
    # Orthogonal g_i: ||sum a_i g_i||^2 = sum a_i^2 ||g_i||^2, minimal at a_i ~ 1 / ||g_i||^2.
    _, weighted = mgda(pad(1), pad(0, 2))
    np.testing.assert_allclose(weighted.weights, [0.8, 0.2], rtol=1e-6)
    _, weighted = mgda(pad(1), pad(0, 2), pad(0, 0, 0, 0, 0, 0, 3))
    inverse = 1.0 / np.array([1.0, 4.0, 9.0])
    np.testing.assert_allclose(weighted.weights, inverse / inverse.sum(), rtol=1e-4)


def test_a_gradient_inside_the_others_direction_takes_all_the_weight():
    # g1 . g2 = 3 >= ||g1||^2 = 1: the shortest point of the segment is g1 itself.
    _, weighted = mgda(pad(1, 0), pad(3, 1))
    np.testing.assert_allclose(weighted.weights, [1.0, 0.0], atol=1e-7)
    _, weighted = mgda(pad(0, 0, 5), pad(0, 0, 0.5))
    np.testing.assert_allclose(weighted.weights, [0.0, 1.0], atol=1e-7)


def test_opposite_gradients_give_a_pareto_stationary_zero_combination():
    _, weighted = mgda(pad(1, 1), pad(-2, -2))
    a = weighted.weights.numpy()
    np.testing.assert_allclose(a, [2 / 3, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(a[0] * np.array([1, 1]) + a[1] * np.array([-2, -2]), [0, 0], atol=1e-6)


@pytest.mark.parametrize(
    "normalization, expected",
    [
        # g1 = (3, 0), g2 = (0, 1), losses (2, 4); orthogonal, so a_i ~ 1 / ||g_i / n_i||^2.
        ("none", [1 / 10, 9 / 10]),  # norms 3, 1
        ("l2", [1 / 2, 1 / 2]),  # norms 1, 1
        ("loss", [1 / 37, 36 / 37]),  # g / L: norms 1.5, 0.25 -> a ~ (1 / 2.25, 16)
        ("loss+", [1 / 5, 4 / 5]),  # g / (L ||g||): norms 1/2, 1/4 -> a ~ (4, 16)
    ],
)
def test_normalizations(normalization, expected):
    _, weighted = mgda(pad(3), pad(0, 1), normalization=normalization, values=(2.0, 4.0))
    np.testing.assert_allclose(weighted.weights, expected, rtol=1e-5)


def test_l2_normalization_of_conflicting_gradients_follows_the_unit_vectors():
    g1, g2 = np.array(pad(2, 0)), np.array(pad(-3, 3))
    _, weighted = mgda(g1, g2, normalization="l2")
    u1, u2 = g1 / np.linalg.norm(g1), g2 / np.linalg.norm(g2)
    np.testing.assert_allclose(weighted.weights, two_task_closed_form(u1, u2), rtol=1e-5)
    _, weighted = mgda(g1, g2, normalization="loss", values=(0.5, 3.0))
    np.testing.assert_allclose(weighted.weights, two_task_closed_form(g1 / 0.5, g2 / 3.0), rtol=1e-5)


def exact_min_norm(gram):
    """The min-norm point by enumerating the active sets (KKT on each face of the simplex)."""
    n, best = len(gram), (np.inf, None)
    for k in range(1, n + 1):
        for face in itertools.combinations(range(n), k):
            face = list(face)
            system = np.zeros((k + 1, k + 1))
            system[:k, :k], system[:k, k], system[k, :k] = 2 * gram[np.ix_(face, face)], 1.0, 1.0
            solution = np.linalg.lstsq(system, np.r_[np.zeros(k), 1.0], rcond=None)[0][:k]
            if (solution >= -1e-12).all():
                a = np.zeros(n)
                a[face] = solution
                if a @ gram @ a < best[0]:
                    best = (a @ gram @ a, a)
    return best


def test_frank_wolfe_reaches_the_min_norm_point_of_three_gradients():
    vectors = np.random.default_rng(1).normal(size=(3, 7))
    _, weighted = mgda(*vectors)
    a = weighted.weights.numpy().astype(np.float64)
    gram = np.array([[np.dot(flat(u), flat(v)) for v in task_gradients(*vectors)] for u in task_gradients(*vectors)])
    norm, expected = exact_min_norm(gram)
    assert a.min() >= 0 and a.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(a, expected, atol=2e-3)
    assert a @ gram @ a == pytest.approx(norm, rel=1e-4)


def test_solver_on_a_gram_matrix():
    # g1 . g2 = 3 >= g1 . g1 = 1: the first line search reaches the vertex e_1 and stays.
    a = min_norm_weights(tf.constant([[1.0, 3.0], [3.0, 10.0]]))
    np.testing.assert_allclose(a, [1.0, 0.0], atol=1e-7)
    # With zero gradients every combination is minimal: the start (1/T) stays.
    np.testing.assert_allclose(min_norm_weights(tf.zeros([3, 3])), [1 / 3] * 3, rtol=1e-6)


def test_normalization_is_checked():
    with pytest.raises(ValueError, match="Received: 'l1'"):
        MGDA(normalization="l1")
