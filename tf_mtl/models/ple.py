"""PLE, Progressive Layered Extraction (Tang et al., RecSys 2020)."""

from tf_mtl.compat import register
from tf_mtl.features.spec import check_rate, positive_int
from tf_mtl.layers import ExtractionLevel, check_mlp_params
from tf_mtl.models.base import MultiTaskModel, check_tower_params, embed_features, make_tasks, task_towers


@register
class PLE(MultiTaskModel):
    """Stacked extraction levels of task-specific and shared experts (CGC when ``n_level=1``).

    At each level task k's gate mixes task k's experts and the shared experts; the shared
    gate mixes all experts and feeds the next level's shared experts (the last level has
    none). Towers read the last level's task outputs. ``gate_weights(x)`` returns keys
    ``level{l}/{task}`` and ``level{l}/shared``.

    Args:
        features: the feature spec.
        task_types: ``"classification"`` or ``"regression"`` per task.
        n_level: number of extraction levels.
        n_expert_specific: experts of each task, per level.
        n_expert_shared: shared experts, per level.
        expert_params: each expert's MLP, e.g. ``{"dims": [256, 128]}``.
        tower_params_list: one tower MLP dict per task.
        task_names: output and label names (default ``task1..N``).
        gate_dropout: see ``GatedMixture``.
    """

    def __init__(
        self,
        features,
        task_types,
        n_level,
        n_expert_specific,
        n_expert_shared,
        expert_params,
        tower_params_list,
        task_names=None,
        gate_dropout=0.0,
        **kwargs,
    ):
        tasks = make_tasks(task_types, task_names)
        n_level = positive_int(n_level, "n_level", "PLE")
        n_expert_specific = positive_int(n_expert_specific, "n_expert_specific", "PLE")
        n_expert_shared = positive_int(n_expert_shared, "n_expert_shared", "PLE")
        expert_params = check_mlp_params(expert_params, "expert_params", owner="PLE")
        towers = check_tower_params(tower_params_list, tasks, "PLE")
        gate_dropout = check_rate(gate_dropout, "gate_dropout", "PLE")
        # === Layers ===
        levels = [
            ExtractionLevel(
                len(tasks), n_expert_specific, n_expert_shared, expert_params,
                is_last=level == n_level - 1, gate_dropout=gate_dropout, name=f"level_{level}",
            )
            for level in range(n_level)
        ]
        # === Functional model ===
        inputs, embedding, x = embed_features(features)
        representations = x
        gates = {}
        for level, layer in enumerate(levels):
            representations, weights = layer(representations)
            gate_names = [t.name for t in tasks] + ([] if layer.is_last else ["shared"])
            gates.update({f"level{level}/{n}": w for n, w in zip(gate_names, weights)})
        outputs = task_towers(representations[: len(tasks)], tasks, towers)
        # === Config ===
        config = {
            "n_level": n_level,
            "n_expert_specific": n_expert_specific,
            "n_expert_shared": n_expert_shared,
            "expert_params": expert_params,
            "tower_params_list": towers,
            "gate_dropout": gate_dropout,
        }
        shared_layers = [embedding] + [layer.shared_experts for layer in levels]
        super().__init__(inputs, outputs, features, tasks, config, gates=gates, shared_layers=shared_layers, **kwargs)
