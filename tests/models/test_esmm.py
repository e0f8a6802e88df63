import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.models import ESMM

C = "classification"


def esmm(features, **kwargs):
    return ESMM(features, [C, C], None, [{"dims": [8]}, {"dims": [8]}], **kwargs)


def test_ctcvr_is_exactly_ctr_times_cvr(features, inputs):
    out = esmm(features)(inputs)
    np.testing.assert_array_equal(out["ctcvr"].numpy(), out["ctr"].numpy() * out["cvr"].numpy())


def test_trained_on_ctr_and_derived_ctcvr_over_all_impressions(features, inputs):
    model = esmm(features, task_names=["click", "buy"])
    click = np.tile([1.0, 1.0, 0.0, 0.0], 16)
    buy = np.tile([1.0, 0.0, 0.0, 0.0], 16)
    pred = model(inputs)
    losses = model.compute_task_losses({"click": click, "buy": buy}, pred)
    assert sorted(losses) == ["click", "ctcvr"]

    def log_loss(y, p):
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))

    np.testing.assert_allclose(losses["click"].numpy(), log_loss(click, pred["click"].numpy()), rtol=1e-5)
    np.testing.assert_allclose(losses["ctcvr"].numpy(), log_loss(click * buy, pred["ctcvr"].numpy()), rtol=1e-5)


def test_cvr_tower_is_trained_only_through_ctcvr(features, inputs):
    model = esmm(features)
    y = {"ctr": np.ones(64), "cvr": np.ones(64)}
    cvr_vars = model.get_layer("cvr").trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        losses = model.compute_task_losses(y, model(inputs))
    assert all(g is None or not np.any(g) for g in tape.gradient(losses["ctr"], cvr_vars))
    assert all(g is not None and np.any(g) for g in tape.gradient(losses["ctcvr"], cvr_vars))


def test_cvr_metric_uses_clicked_rows_only(features):
    model = esmm(features)
    labels = {"ctr": tf.constant([1.0, 0.0, 1.0]), "cvr": tf.constant([1.0, 0.0, 0.0])}
    terms = model.metric_terms(labels)
    np.testing.assert_array_equal(terms["cvr"][2].numpy(), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(terms["ctcvr"][1].numpy(), [1.0, 0.0, 0.0])


def test_ctcvr_label_is_click_and_conversion_even_if_the_raw_conversion_column_is_not(features, inputs):
    """Raw logs may hold conversions without a click (e.g. bought from a search page): CTCVR ignores them."""
    model = esmm(features)
    click = np.tile([1.0, 1.0, 0.0, 0.0], 16)
    conversion = np.tile([1.0, 0.0, 1.0, 0.0], 16)
    pred = model(inputs)
    losses = model.compute_task_losses({"ctr": click, "cvr": conversion}, pred)
    p = np.clip(pred["ctcvr"].numpy().astype(np.float64), 1e-7, 1 - 1e-7)
    clicked_and_converted = click * conversion
    expected = np.mean(-(clicked_and_converted * np.log(p) + (1 - clicked_and_converted) * np.log(1 - p)))
    np.testing.assert_allclose(losses["ctcvr"].numpy(), expected, rtol=1e-5)
    assert not np.isclose(losses["ctcvr"].numpy(), np.mean(-(conversion * np.log(p) + (1 - conversion) * np.log(1 - p))))
    terms = model.metric_terms({"ctr": tf.constant(click), "cvr": tf.constant(conversion)})
    np.testing.assert_array_equal(terms["ctcvr"][1].numpy(), clicked_and_converted)
    np.testing.assert_array_equal(terms["cvr"][1].numpy(), conversion)
    np.testing.assert_array_equal(terms["cvr"][2].numpy(), click)


@pytest.mark.parametrize(
    "task_types, names, message",
    [
        ([C, "regression"], None, "task_types[1]: expected 'classification'. Received: 'regression'"),
        ([C, C, C], None, "task_types: ESMM models two tasks, click then conversion. Received: ['classification', 'classification', 'classification']"),
        ([C, C], ["ctr", "ctcvr"], "task_names[1]: 'ctcvr' names the derived output; choose another name."),
    ],
)
def test_rejects_what_it_cannot_model(features, task_types, names, message):
    with pytest.raises(ValueError) as info:
        ESMM(features, task_types, None, [{}] * len(task_types), task_names=names)
    assert str(info.value) == f"ESMM: {message}"


def test_optional_shared_hidden_layers(features):
    model = ESMM(features, [C, C], {"dims": [16]}, [{}, {}])
    assert [layer.name for layer in model.shared_layers] == ["feature_embedding", "bottom"]
