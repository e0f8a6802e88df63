"""Customized Gate Control: one extraction level of PLE (Tang et al., RecSys 2020, section 4)."""

import tensorflow as tf

from tf_mtl.compat import keras, register
from tf_mtl.features.spec import positive_int
from tf_mtl.layers.gate import GatedMixture
from tf_mtl.layers.mlp import MLP, check_mlp_params


@register
class ExtractionLevel(keras.layers.Layer):
    """Task-specific and shared experts, a gate per task and, except at the last level, a shared gate.

    Task k's gate mixes its own ``n_expert_specific`` experts and the ``n_expert_shared``
    shared experts, with task k's input as gate input. The shared gate mixes all experts
    (every task's and the shared ones), with the shared input as gate input; its output is
    the shared input of the next level.

    Args:
        n_task: number of tasks.
        n_expert_specific: experts per task.
        n_expert_shared: shared experts.
        expert_params: MLP arguments of each expert (``dims``, ``activation``, ...).
        is_last: the last level has no shared gate.
        gate_dropout: see ``GatedMixture``.

    Inputs: a list of ``n_task + 1`` tensors ``(batch, d)``: the task inputs, then the shared
    input; or, at the first level, one tensor ``(batch, d)`` (the embedded features) that is
    every task's input and the shared input. Returns
    ``(outputs, gate_weights)``: ``n_task`` outputs (plus the shared output unless
    ``is_last``), each ``(batch, expert_dim)``, and the matching gate weights.
    """

    def __init__(self, n_task, n_expert_specific, n_expert_shared, expert_params, is_last=False, gate_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.n_task = positive_int(n_task, "n_task", "ExtractionLevel")
        self.n_expert_specific = positive_int(n_expert_specific, "n_expert_specific", "ExtractionLevel")
        self.n_expert_shared = positive_int(n_expert_shared, "n_expert_shared", "ExtractionLevel")
        self.expert_params = check_mlp_params(expert_params, "expert_params", owner="ExtractionLevel")
        self.is_last = is_last
        self.gate_dropout = gate_dropout
        self.specific_experts = MLP(num_parallel=n_task * n_expert_specific, name="specific_experts", **self.expert_params)
        self.shared_experts = MLP(num_parallel=n_expert_shared, name="shared_experts", **self.expert_params)
        self.task_gates = [
            GatedMixture(n_expert_specific + n_expert_shared, gate_dropout, name=f"task_gate_{k}") for k in range(n_task)
        ]
        self.shared_gate = (
            None if is_last else GatedMixture(n_task * n_expert_specific + n_expert_shared, gate_dropout, name="shared_gate")
        )

    def call(self, inputs, training=None):
        if isinstance(inputs, (list, tuple)):
            task_inputs, shared_input = list(inputs[:-1]), inputs[-1]
            # Each task's input feeds that task's own experts: (batch, n_task * n_specific, d).
            expert_input = tf.repeat(tf.stack(task_inputs, axis=1), self.n_expert_specific, axis=1)
        else:
            # One input for all (the first level): every expert's first layer in one product.
            task_inputs, shared_input, expert_input = [inputs] * self.n_task, inputs, inputs
        specific = self.specific_experts(expert_input, training=training)
        shared = self.shared_experts(shared_input, training=training)
        outputs, weights = [], []
        # Split rather than sliced: a slice's gradient writes a zero tensor of the whole input.
        own = tf.split(specific, self.n_task, axis=1)
        for k, gate in enumerate(self.task_gates):
            mixed, w = gate([[own[k], shared], task_inputs[k]], training=training)
            outputs.append(mixed)
            weights.append(w)
        if self.shared_gate is not None:
            mixed, w = self.shared_gate([[specific, shared], shared_input], training=training)
            outputs.append(mixed)
            weights.append(w)
        return outputs, weights

    def compute_output_shape(self, input_shape):
        dim = self.expert_params["dims"][-1]
        batch = input_shape[0][0] if isinstance(input_shape, list) else input_shape[0]
        n_out = self.n_task + (0 if self.is_last else 1)
        sizes = [self.n_expert_specific + self.n_expert_shared] * self.n_task
        if not self.is_last:
            sizes.append(self.n_task * self.n_expert_specific + self.n_expert_shared)
        return [(batch, dim)] * n_out, [(batch, s) for s in sizes]

    def get_config(self):
        config = super().get_config()
        config.update(
            n_task=self.n_task,
            n_expert_specific=self.n_expert_specific,
            n_expert_shared=self.n_expert_shared,
            expert_params=self.expert_params,
            is_last=self.is_last,
            gate_dropout=self.gate_dropout,
        )
        return config
