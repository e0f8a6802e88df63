"""The one training step: with SGD(1) the variables move by exactly minus the combined gradient."""

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.compat import keras
from tf_mtl.features import DenseFeature, SequenceFeature, SparseFeature
from tf_mtl.models import build_model
from tf_mtl.weighting import MGDA, DynamicWeightAverage, FixedWeighting, GradNorm, MetaBalance, PCGrad, UncertaintyWeighting
from tf_mtl.weighting.step import train_step

C, R = "classification", "regression"
TERMS = ("click", "time")
# A sequence sharing the user table: the table's gradient is a sum of IndexedSlices.
FEATURES = (
    SparseFeature("user", 20, 3),
    SequenceFeature("history", 20, 3, "mean", 4, shared_embed_name="user"),
    DenseFeature("price", mean=10.0, std=5.0),
)


def shared_bottom(seed=1):
    # Seed 1 gives the two tasks conflicting gradients on the shared variables (checked below),
    # so that PCGrad projects and MGDA's weights are strictly inside (0, 1).
    keras.utils.set_random_seed(seed)
    return build_model(
        "shared_bottom", FEATURES, [C, R], task_names=list(TERMS), bottom_params={"dims": [8]},
        tower_params_list=[{"dims": [4]}, {}],
    )


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    price = rng.normal(10, 5, 64).astype("float32")
    x = {"user": rng.integers(0, 20, 64), "history": rng.integers(0, 20, (64, 4)), "price": price}
    y = {"click": (price > 10).astype("float32"), "time": price / 5}
    return x, y, np.linspace(0.5, 1.5, 64).astype("float32")


def term_gradients(model, x, y, sample_weight):
    """Each term's loss and its dense gradient on every trainable variable, from our own tape."""
    with tf.GradientTape(persistent=True) as tape:
        losses = model.compute_task_losses(y, model(x, training=True), sample_weight)
    gradients = {}
    for name in TERMS:
        gradients[name] = [
            np.zeros(v.shape, np.float64) if g is None else np.asarray(tf.convert_to_tensor(g), np.float64)
            for g, v in zip(tape.gradient(losses[name], model.trainable_variables), model.trainable_variables)
        ]
    return {n: float(losses[n]) for n in TERMS}, gradients


def one_step(model, weighting, x, y, sample_weight):
    """Compiles with SGD(1), runs ``train_step`` once; returns the variables' change and the logs."""
    model.compile(optimizer=keras.optimizers.SGD(1.0), weighting=weighting)
    before = [np.asarray(v.numpy(), np.float64) for v in model.trainable_variables]
    _, logs = train_step(model, model.weighting, model.optimizer, x, y, sample_weight)
    after = [np.asarray(v.numpy(), np.float64) for v in model.trainable_variables]
    return [a - b for a, b in zip(after, before)], logs


def is_shared(model):
    shared = {id(v) for v in model.shared_variables}
    return [id(v) in shared for v in model.trainable_variables]


def assert_moved_by(delta, expected_gradients):
    for d, g in zip(delta, expected_gradients):
        np.testing.assert_allclose(d, -g, rtol=1e-4, atol=2e-6)


def test_fixed_weights(batch):
    model = shared_bottom()
    losses, g = term_gradients(model, *batch)
    delta, logs = one_step(model, FixedWeighting({"click": 2.0, "time": 0.5}), *batch)
    assert_moved_by(delta, [2.0 * a + 0.5 * b for a, b in zip(g["click"], g["time"])])
    np.testing.assert_array_equal(logs["weights"], [2.0, 0.5])
    assert float(logs["loss"]) == pytest.approx(2.0 * losses["click"] + 0.5 * losses["time"], rel=1e-6)


def test_uncertainty_weighting_and_its_log_variance_update(batch):
    model = shared_bottom()
    losses, g = term_gradients(model, *batch)
    delta, logs = one_step(model, UncertaintyWeighting(initial_log_variance=0.2), *batch)
    w = np.array([1.0, 0.5]) * np.exp(-0.2)
    assert_moved_by(delta, [w[0] * a + w[1] * b for a, b in zip(g["click"], g["time"])])
    np.testing.assert_allclose(logs["weights"], w, rtol=1e-6)
    # s <- s - d/ds (c exp(-s) L + s / 2) = s + c exp(-s) L - 1/2, with the SGD(1) copy.
    L = np.array([losses["click"], losses["time"]])
    expected = 0.2 + w * L - 0.5
    np.testing.assert_allclose(model.weighting.log_variance.numpy(), expected, rtol=1e-5)
    assert float(logs["loss"]) == pytest.approx(w @ L + 0.5 * 0.4, rel=1e-5)


def test_pareto_trains_on_the_min_norm_combination(batch):
    model = shared_bottom()
    _, g = term_gradients(model, *batch)
    shared = is_shared(model)
    g1 = np.concatenate([a.ravel() for a, s in zip(g["click"], shared) if s])
    g2 = np.concatenate([b.ravel() for b, s in zip(g["time"], shared) if s])
    assert g1 @ g2 < 0, "the test case needs conflicting gradients"
    # Two tasks: a = ((g2 - g1) . g2) / ||g1 - g2||^2 (the paper's Algorithm 1).
    a = (g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2))
    assert 0 < a < 1
    delta, logs = one_step(model, MGDA(), *batch)
    np.testing.assert_allclose(logs["weights"], [a, 1 - a], rtol=1e-4)
    assert_moved_by(delta, [a * x + (1 - a) * y for x, y in zip(g["click"], g["time"])])


def test_pcgrad_projects_the_whole_gradients(batch):
    # As in the paper's code, g_i and g_j span every parameter: the dot product only meets on
    # the shared ones, but ||g_j||^2 and the projection reach task j's own tower too.
    model = shared_bottom()
    _, g = term_gradients(model, *batch)
    sizes = [a.size for a in g["click"]]
    g1 = np.concatenate([a.ravel() for a in g["click"]])
    g2 = np.concatenate([b.ravel() for b in g["time"]])
    dot = g1 @ g2
    assert dot < 0, "the test case needs conflicting gradients"
    combined = (g1 - dot / (g2 @ g2) * g2) + (g2 - dot / (g1 @ g1) * g1)
    expected = [part.reshape(a.shape) for part, a in zip(np.split(combined, np.cumsum(sizes)[:-1]), g["click"])]
    delta, logs = one_step(model, PCGrad(shuffle=False), *batch)
    np.testing.assert_array_equal(logs["weights"], [1.0, 1.0])
    assert_moved_by(delta, expected)


def test_gradnorm_steps_the_model_with_the_old_weights_then_updates_them(batch):
    model = shared_bottom()
    _, g = term_gradients(model, *batch)
    # GradNorm's W: the last shared layer's kernel and bias.
    last_ids = {id(v) for v in model.last_shared_variables}
    last = [id(v) in last_ids for v in model.trainable_variables]
    norms = np.array([np.sqrt(sum((x**2).sum() for x, in_w in zip(g[n], last) if in_w)) for n in TERMS])
    delta, logs = one_step(model, GradNorm(alpha=1.5, learning_rate=0.01), *batch)
    assert_moved_by(delta, [a + b for a, b in zip(g["click"], g["time"])])
    np.testing.assert_array_equal(logs["weights"], [1.0, 1.0])
    # Step 0: the target is the mean norm; one SGD(0.01) step, then renormalized to sum to 2.
    moved = 1.0 - 0.01 * np.sign(norms - norms.mean()) * norms
    np.testing.assert_allclose(model.weighting.task_weights.numpy(), 2.0 * moved / moved.sum(), rtol=1e-5)


@pytest.mark.parametrize("method", [GradNorm, MGDA, MetaBalance])
def test_gradient_methods_refuse_a_model_that_shares_nothing(batch, method):
    model = build_model("single_task", FEATURES, [C, R], task_names=list(TERMS), bottom_params={"dims": [4]})
    with pytest.raises(ValueError, match=rf"{method.__name__} balances gradients .* {model.name} shares none"):
        model.compile(optimizer=keras.optimizers.SGD(1.0), weighting=method())


def test_loss_based_methods_train_a_model_that_shares_nothing(batch):
    model = build_model("single_task", FEATURES, [C, R], task_names=list(TERMS), bottom_params={"dims": [4]})
    _, g = term_gradients(model, *batch)
    delta, _ = one_step(model, UncertaintyWeighting(), *batch)
    assert_moved_by(delta, [a + 0.5 * b for a, b in zip(g["click"], g["time"])])


def test_fit_logs_the_weights_and_ends_epochs(batch):
    x, y, _ = batch
    model = shared_bottom()
    model.compile(optimizer=keras.optimizers.SGD(0.01), weighting=DynamicWeightAverage(temperature=2.0))
    history = model.fit(x, y, batch_size=64, epochs=3, verbose=0).history
    # One step per epoch: an epoch's mean loss is its step's loss.
    losses = np.array([history["click_loss"], history["time_loss"]])
    rate = losses[:, 1] / losses[:, 0]
    third = 2.0 * np.exp(rate / 2.0) / np.exp(rate / 2.0).sum()
    np.testing.assert_allclose(history["click_weight"], [1.0, 1.0, third[0]], rtol=1e-5)
    np.testing.assert_allclose(history["time_weight"], [1.0, 1.0, third[1]], rtol=1e-5)


def test_fit_logs_fixed_weights(batch):
    x, y, _ = batch
    model = shared_bottom()
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss_weights={"time": 0.25})
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    assert history["click_weight"] == [1.0]
    assert history["time_weight"] == [0.25]
