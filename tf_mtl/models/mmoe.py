"""MMoE and OMoE (Ma et al., "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018)."""

from tf_mtl.compat import register
from tf_mtl.features.spec import check_rate, positive_int
from tf_mtl.layers import MLP, GatedMixture, check_mlp_params
from tf_mtl.models.base import MultiTaskModel, check_tower_params, embed_features, make_tasks, task_towers


@register
class MMOE(MultiTaskModel):
    """Experts shared by all tasks; each task mixes them with its own softmax gate.

    ``f_k(x) = sum_i g_k(x)_i * expert_i(x)``, ``g_k(x) = softmax(W_k x)``, then task k's
    tower. Gate weights are read out with ``gate_weights(x)`` (keys: task names).

    Args:
        features: the feature spec.
        task_types: ``"classification"`` or ``"regression"`` per task.
        n_expert: number of experts.
        expert_params: each expert's MLP, e.g. ``{"dims": [256, 128]}``; every expert gets its
            own random initialization.
        tower_params_list: one tower MLP dict per task.
        task_names: output and label names (default ``task1..N``).
        bottom_params: optional MLP dict for a shared layer between the input and the experts
            and gates (dimension reduction of wide inputs); ``None`` feeds the embedded
            features straight in.
        gate_dropout: probability of dropping an expert's gate weight while training
            (see ``GatedMixture``).

    Example:

    >>> model = MMOE([SparseFeature("user", 100, 8)], ["classification", "classification"],
    ...              4, {"dims": [16]}, [{"dims": [8]}, {"dims": [8]}])
    >>> model.gate_weights({"user": np.array([1, 2])})["task1"].shape
    (2, 4)
    """

    one_gate = False

    def __init__(
        self,
        features,
        task_types,
        n_expert,
        expert_params,
        tower_params_list,
        task_names=None,
        bottom_params=None,
        gate_dropout=0.0,
        **kwargs,
    ):
        tasks = make_tasks(task_types, task_names)
        owner = type(self).__name__
        n_expert = positive_int(n_expert, "n_expert", owner)
        expert_params = check_mlp_params(expert_params, "expert_params", owner=owner)
        bottom_params = None if bottom_params is None else check_mlp_params(bottom_params, "bottom_params", owner=owner)
        towers = check_tower_params(tower_params_list, tasks, owner)
        gate_dropout = check_rate(gate_dropout, "gate_dropout", owner)
        # === Layers ===
        bottom = None if bottom_params is None else MLP(name="bottom", **bottom_params)
        experts = MLP(num_parallel=n_expert, name="experts", **expert_params)
        gate_names = ["shared"] if self.one_gate else [t.name for t in tasks]
        gates = {n: GatedMixture(n_expert, gate_dropout, name=f"gate_{n}") for n in gate_names}
        # === Functional model ===
        inputs, embedding, x = embed_features(features)
        if bottom is not None:
            x = bottom(x)
        expert_outputs = experts(x)
        mixed, weights = {}, {}
        for name, gate in gates.items():
            mixed[name], weights[name] = gate([expert_outputs, x])
        representations = [mixed["shared"] if self.one_gate else mixed[t.name] for t in tasks]
        outputs = task_towers(representations, tasks, towers)
        # === Config ===
        config = {
            "n_expert": n_expert,
            "expert_params": expert_params,
            "tower_params_list": towers,
            "bottom_params": bottom_params,
            "gate_dropout": gate_dropout,
        }
        shared_layers = [embedding] + ([] if bottom is None else [bottom]) + [experts]
        super().__init__(inputs, outputs, features, tasks, config, gates=weights, shared_layers=shared_layers, **kwargs)


@register
class OMoE(MMOE):
    """One-gate Mixture-of-Experts: MMoE's baseline, one gate shared by all tasks.

    Arguments as ``MMOE``; ``gate_weights(x)`` has the single key ``"shared"``.
    """

    one_gate = True
