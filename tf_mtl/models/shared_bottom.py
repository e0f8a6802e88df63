"""Shared-Bottom (Caruana, "Multitask Learning", Machine Learning 1997)."""

from tf_mtl.compat import register
from tf_mtl.layers import MLP, check_mlp_params
from tf_mtl.models.base import MultiTaskModel, check_tower_params, embed_features, make_tasks, task_towers


@register
class SharedBottom(MultiTaskModel):
    """One MLP shared by all tasks, then a tower per task.

    Args:
        features: the feature spec.
        task_types: ``"classification"`` or ``"regression"`` per task.
        bottom_params: the shared MLP, e.g. ``{"dims": [256, 128], "dropout": 0.2}``.
        tower_params_list: one tower MLP dict per task, e.g. ``[{"dims": [64]}, {"dims": [64]}]``.
        task_names: output and label names (default ``task1..N``).

    Example:

    >>> model = SharedBottom([SparseFeature("user", 100, 8)], ["classification", "regression"],
    ...                      {"dims": [32]}, [{"dims": [16]}, {"dims": [16]}])
    >>> sorted(model.output_names)
    ['task1', 'task2']
    """

    def __init__(self, features, task_types, bottom_params, tower_params_list, task_names=None, **kwargs):
        tasks = make_tasks(task_types, task_names)
        bottom_params = check_mlp_params(bottom_params, "bottom_params", owner=type(self).__name__)
        towers = check_tower_params(tower_params_list, tasks, type(self).__name__)
        # === Layers ===
        bottom = MLP(name="bottom", **bottom_params)
        # === Functional model ===
        inputs, embedding, x = embed_features(features)
        shared = bottom(x)
        outputs = task_towers([shared] * len(tasks), tasks, towers)
        # === Config ===
        config = {"bottom_params": bottom_params, "tower_params_list": towers}
        super().__init__(inputs, outputs, features, tasks, config, shared_layers=[embedding, bottom], **kwargs)
