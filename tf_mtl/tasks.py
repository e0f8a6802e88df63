"""Tasks: a name and a type. The type fixes the output activation, the loss and the metric.

``"classification"``: sigmoid output, log loss, AUC. ``"regression"``: identity output,
mean squared error, RMSE.
"""

import dataclasses

from tf_mtl.errors import did_you_mean
from tf_mtl.features.spec import check_name

TASK_TYPES = ("classification", "regression")
OUTPUT_ACTIVATION = {"classification": "sigmoid", "regression": "linear"}


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    task_type: str


def make_tasks(task_types, task_names=None):
    """Validates ``task_types`` and names (default ``task1..N``); returns a tuple of ``Task``."""
    if isinstance(task_types, str) or not task_types:
        raise ValueError(f"task_types must be a non-empty list such as ['classification']. Received: {task_types!r}")
    task_types = list(task_types)
    for i, task_type in enumerate(task_types):
        if task_type not in TASK_TYPES:
            raise ValueError(
                f"task_types[{i}]: unknown task type {task_type!r}" + did_you_mean(task_type, TASK_TYPES, "Task types")
            )
    if task_names is None:
        task_names = [f"task{i + 1}" for i in range(len(task_types))]
    task_names = list(task_names)
    if len(task_names) != len(task_types):
        raise ValueError(
            f"task_names has {len(task_names)} names for {len(task_types)} task_types. Received: task_names={task_names}"
        )
    for name in task_names:
        check_name("Task", name)
    if len(set(task_names)) != len(task_names):
        raise ValueError(f"task_names must be distinct. Received: {task_names}")
    return tuple(Task(n, t) for n, t in zip(task_names, task_types))
