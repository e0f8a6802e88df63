"""AITM, Adaptive Information Transfer Multi-task (Xi et al., KDD 2021)."""


import tensorflow as tf

from tf_mtl.compat import register
from tf_mtl.features.spec import FieldError, finite_number, mapping, positive_int
from tf_mtl.layers import MLP, InformationTransfer, check_mlp_params
from tf_mtl.models.base import MultiTaskModel, check_tower_params, embed_features, make_tasks, task_towers

# The calibrator weight alpha of the paper's experiments (section 4.1.4).
DEFAULT_CALIBRATION_WEIGHT = 0.6
CALIBRATION = "calibration"


@register
class AITM(MultiTaskModel):
    """Tasks along a conversion funnel (impression -> click -> purchase ...), each passing
    information to the next through attention.

    Each task t has its own network on the shared embeddings, ``q_t``; ``z_1 = q_1`` and
    ``z_t = AIT(q_t, z_{t-1})`` (``InformationTransfer``); task t's tower reads ``z_t``. Each
    task is trained on its own label over all impressions (label t: reached step t), plus the
    behavioural expectation calibrator
    ``alpha * sum_{t>=2} mean(max(p_t - p_{t-1}, 0))``, which penalises a later step
    predicted more likely than the earlier one.

    Args:
        features: the feature spec.
        task_types: ``"classification"`` for every task, in funnel order.
        bottom_params: the MLP of each task's own network ``q_t``, e.g. ``{"dims": [128, 64]}``.
        tower_params_list: one tower MLP dict per task.
        attention_params: ``{"dim": k}``, the attention width (default: the bottom's output width).
        calibration_weight: ``alpha`` (default 0.6, the paper's setting); 0 turns the calibrator off.
        task_names: output and label names (default ``task1..N``).
    """

    def __init__(
        self,
        features,
        task_types,
        bottom_params,
        tower_params_list,
        attention_params=None,
        calibration_weight=DEFAULT_CALIBRATION_WEIGHT,
        task_names=None,
        **kwargs,
    ):
        tasks = make_tasks(task_types, task_names)
        if len(tasks) < 2:
            raise FieldError(
                "task_types", f"AITM transfers information between tasks: it needs at least 2. Received: {task_types!r}", "AITM"
            )
        for i, task in enumerate(tasks):
            if task.task_type != "classification":
                raise FieldError(f"task_types[{i}]", f"expected 'classification'. Received: {task.task_type!r}", "AITM")
        bottom_params = check_mlp_params(bottom_params, "bottom_params", owner="AITM")
        towers = check_tower_params(tower_params_list, tasks, "AITM")
        attention_params = mapping(attention_params, "attention_params", ("dim",), "AITM")
        if "dim" in attention_params:
            attention_params["dim"] = positive_int(attention_params["dim"], "attention_params.dim", "AITM")
        attention_dim = attention_params.get("dim", bottom_params["dims"][-1])
        if finite_number(calibration_weight, "calibration_weight", "AITM") < 0:
            raise FieldError("calibration_weight", f"expected a number >= 0. Received: {calibration_weight!r}", "AITM")
        # === Layers ===
        bottoms = [MLP(name=f"{t.name}_bottom", **bottom_params) for t in tasks]
        transfers = [InformationTransfer(attention_dim, name=f"{t.name}_transfer") for t in tasks[1:]]
        # === Functional model ===
        inputs, embedding, x = embed_features(features)
        representations = [bottoms[0](x)]
        gates = {}
        for task, bottom, transfer in zip(tasks[1:], bottoms[1:], transfers):
            z, gates[task.name] = transfer([bottom(x), representations[-1]])
            representations.append(z)
        outputs = task_towers(representations, tasks, towers)
        # === Config ===
        config = {
            "bottom_params": bottom_params,
            "tower_params_list": towers,
            "attention_params": attention_params,
            "calibration_weight": float(calibration_weight),
        }
        super().__init__(inputs, outputs, features, tasks, config, gates=gates, shared_layers=[embedding], **kwargs)
        self.calibration_weight = float(calibration_weight)

    @property
    def auxiliary_loss_names(self):
        return (CALIBRATION,) if self.calibration_weight else ()

    def auxiliary_losses(self, outputs):
        if not self.calibration_weight:
            return {}
        names = self.task_names
        violations = [
            tf.reduce_mean(tf.nn.relu(tf.cast(outputs[later], tf.float32) - tf.cast(outputs[earlier], tf.float32)))
            for earlier, later in zip(names, names[1:])
        ]
        return {CALIBRATION: self.calibration_weight * tf.add_n(violations)}
