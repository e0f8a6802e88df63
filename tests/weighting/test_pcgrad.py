"""PCGrad (Yu et al. 2020): each term's gradient loses its component along conflicting gradients."""

import itertools

import numpy as np
import pytest

from tf_mtl.weighting import PCGrad

from ._reference import C, SHAPES, flat, losses, task_gradients


def pad(*values):
    return list(values) + [0.0] * (7 - len(values))


def pcgrad(*vectors, shuffle=False, seed=0, steps=1):
    method = PCGrad(shuffle=shuffle, seed=seed).build(["a", "b", "c"][: len(vectors)], [C] * len(vectors))
    for _ in range(steps):
        weighted = method.weigh(losses(*[1.0] * len(vectors)), task_gradients(*vectors))
    return weighted


def project(vectors, orders):
    """The paper's Algorithm 1 in numpy: term i visits the others in ``orders[i]``."""
    vectors = [np.asarray(v, np.float64) for v in vectors]
    result = np.zeros_like(vectors[0])
    for i, order in enumerate(orders):
        g = vectors[i].copy()
        for j in order:
            dot = g @ vectors[j]
            if dot < 0:
                g = g - dot / (vectors[j] @ vectors[j]) * vectors[j]
        result += g
    return result


def test_two_conflicting_gradients():
    g1, g2 = pad(1, 1, 0, 0, 1), pad(-1, 0, 0, 0, 0, 1)
    weighted = pcgrad(g1, g2)
    # g1 . g2 = -1; ||g2||^2 = 2, ||g1||^2 = 3:
    # g1 + g2 / 2 = (0.5, 1, 0, 0, 1, 0.5, 0) and g2 + g1 / 3 = (-2/3, 1/3, 0, 0, 1/3, 1, 0).
    expected = np.array([-1 / 6, 4 / 3, 0, 0, 4 / 3, 3 / 2, 0])
    np.testing.assert_allclose(flat(weighted.shared_gradients), expected, rtol=1e-6, atol=1e-7)
    assert [tuple(g.shape) for g in weighted.shared_gradients] == list(SHAPES)
    # The non-shared variables get the plain sum: every term weighs 1.
    np.testing.assert_array_equal(weighted.weights, [1.0, 1.0])
    # Each projected gradient is orthogonal to the other original gradient.
    assert np.dot([0.5, 1, 0, 0, 1, 0.5, 0], g2) == pytest.approx(0.0)


def test_gradients_without_conflict_are_summed_unchanged():
    g1, g2 = pad(1, 2, 0, 0, -1), pad(3, 0, 1, 0, 0, 2)
    np.testing.assert_allclose(flat(pcgrad(g1, g2).shared_gradients), np.add(g1, g2), rtol=1e-6)


def test_three_gradients_in_loss_term_order():
    g1, g2, g3 = pad(1, 1, 1), pad(2, 2, -2), pad(-2, -2, 1)
    weighted = pcgrad(g1, g2, g3)
    # g1: no conflict with g2 (dot 2); with g3 (dot -3): g1 + 3/9 g3 = (1/3, 1/3, 4/3).
    # g2: no conflict with g1 (dot 2); with g3 (dot -10): g2 + 10/9 g3 = (-2/9, -2/9, -8/9).
    # g3: with g1 (dot -3): g3 + g1 = (-1, -1, 2); then with g2 (dot -8): + 8/12 g2 = (1/3, 1/3, 2/3).
    expected = pad(4 / 9, 4 / 9, 10 / 9)
    np.testing.assert_allclose(flat(weighted.shared_gradients), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(expected, project([g1, g2, g3], [[1, 2], [0, 2], [0, 1]]), rtol=1e-12)
    # Visiting the others in reverse order would give another result: the order matters here.
    assert not np.allclose(expected, project([g1, g2, g3], [[2, 1], [2, 0], [1, 0]]))


def test_shuffled_order_is_one_of_the_papers_orders_and_a_function_of_seed_and_step():
    vectors = [pad(1, 1, 1), pad(2, 2, -2), pad(-2, -2, 1)]
    possible = [
        project(vectors, orders)
        for orders in itertools.product(*[list(itertools.permutations([j for j in range(3) if j != i])) for i in range(3)])
    ]
    seen = []
    for steps in range(1, 9):
        first = flat(pcgrad(*vectors, shuffle=True, steps=steps).shared_gradients)
        again = flat(pcgrad(*vectors, shuffle=True, steps=steps).shared_gradients)
        np.testing.assert_array_equal(first, again)
        assert min(np.abs(first - p).max() for p in possible) < 1e-6
        seen.append(min(range(len(possible)), key=lambda k: np.abs(first - possible[k]).max()))
    # Over 8 steps the order changes (it is drawn afresh each step).
    assert len(set(seen)) > 1


def test_two_terms_are_never_shuffled():
    g1, g2 = pad(1, 1, 0, 0, 1), pad(-1, 0, 0, 0, 0, 1)
    np.testing.assert_array_equal(
        flat(pcgrad(g1, g2, shuffle=True).shared_gradients), flat(pcgrad(g1, g2, shuffle=False).shared_gradients)
    )
