import numpy as np
import tensorflow as tf

from tf_mtl.features import FeatureEmbedding
from tf_mtl.models import SingleTask

C, R = "classification", "regression"


def test_tasks_share_no_variable(features, inputs):
    """The baseline's claim: separate models in one graph, each trained by its own task only."""
    model = SingleTask(features, [C, R, C], {"dims": [8]}, [{}, {"dims": [4]}, {}])
    assert [layer.name for layer in model.layers if isinstance(layer, FeatureEmbedding)] == [
        "task1_embedding",
        "task2_embedding",
        "task3_embedding",
    ]
    assert model.shared_layers == [] and model.shared_variables == []
    labels = {"task1": np.ones(64), "task2": np.zeros(64), "task3": np.zeros(64)}
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        losses = model.compute_task_losses(labels, model(inputs))
    owners = [set() for _ in variables]
    for task in model.task_names:
        for owner, gradient in zip(owners, tape.gradient(losses[task], variables)):
            if gradient is not None and np.any(tf.convert_to_tensor(gradient)):
                owner.add(task)
    # Every variable is trained by exactly one task: the one whose embedding, bottom and tower hold it.
    assert all(len(owner) == 1 for owner in owners)
    for task in model.task_names:
        layers = [model.get_layer(f"{task}_embedding"), model.get_layer(f"{task}_bottom"), model.get_layer(task)]
        own = {id(v) for layer in layers for v in layer.trainable_variables}
        assert own == {id(v) for v, owner in zip(variables, owners) if owner == {task}}
        assert len(own) == (8 if task == "task2" else 6)  # 2 tables, bottom and tower kernels and biases
