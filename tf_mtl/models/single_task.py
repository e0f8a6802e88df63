"""Single-task baseline: one independent network per task, nothing shared."""

from tf_mtl.compat import register
from tf_mtl.features import keras_inputs
from tf_mtl.layers import MLP, check_mlp_params
from tf_mtl.models.base import MultiTaskModel, check_tower_params, embed_features, make_tasks, task_towers


@register
class SingleTask(MultiTaskModel):
    """Every task has its own embedding tables, MLP and tower: separate models in one graph.

    The baseline multi-task models are compared with (e.g. in the MMoE paper's experiments).

    Args:
        features: the feature spec.
        task_types: ``"classification"`` or ``"regression"`` per task.
        bottom_params: each task's MLP, e.g. ``{"dims": [256, 128]}``.
        tower_params_list: one tower MLP dict per task.
        task_names: output and label names (default ``task1..N``).
    """

    def __init__(self, features, task_types, bottom_params, tower_params_list, task_names=None, **kwargs):
        tasks = make_tasks(task_types, task_names)
        bottom_params = check_mlp_params(bottom_params, "bottom_params", owner=type(self).__name__)
        towers = check_tower_params(tower_params_list, tasks, type(self).__name__)
        # === Layers ===
        bottoms = [MLP(name=f"{t.name}_bottom", **bottom_params) for t in tasks]
        # === Functional model ===
        inputs = keras_inputs(features)
        representations = []
        for task, bottom in zip(tasks, bottoms):
            _, _, x = embed_features(features, name=f"{task.name}_embedding", inputs=inputs)
            representations.append(bottom(x))
        outputs = task_towers(representations, tasks, towers)
        # === Config ===
        config = {"bottom_params": bottom_params, "tower_params_list": towers}
        super().__init__(inputs, outputs, features, tasks, config, **kwargs)
