"""Tasks: a name and a type. The type fixes the output activation, the loss and the metric.

``"classification"``: sigmoid output, log loss, AUC. ``"regression"``: identity output,
mean squared error, RMSE.
"""

import dataclasses

from tf_mtl.errors import did_you_mean
from tf_mtl.features.spec import FieldError, check_name

TASK_TYPES = ("classification", "regression")
OUTPUT_ACTIVATION = {"classification": "sigmoid", "regression": "linear"}


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    task_type: str


def _as_list(values, path, example):
    """A list or tuple as a list; a string (a list of characters to Python) or anything else is refused."""
    if not isinstance(values, (list, tuple)) or not values:
        raise FieldError(path, f"expected a non-empty list such as {example}. Received: {values!r}")
    return list(values)


def make_tasks(task_types, task_names=None):
    """Validates ``task_types`` and names (default ``task1..N``); returns a tuple of ``Task``.

    Errors are ``FieldError``s naming the entry, e.g. ``task_types[1]`` or ``task_names[2]``.
    """
    task_types = _as_list(task_types, "task_types", ["classification"])
    for i, task_type in enumerate(task_types):
        if not isinstance(task_type, str) or task_type not in TASK_TYPES:
            raise FieldError(f"task_types[{i}]", f"unknown task type {task_type!r}" + did_you_mean(task_type, TASK_TYPES, "Task types"))
    if task_names is None:
        task_names = [f"task{i + 1}" for i in range(len(task_types))]
    task_names = _as_list(task_names, "task_names", ["ctr", "cvr"])
    if len(task_names) != len(task_types):
        raise FieldError(
            "task_names", f"expected one name per task type ({len(task_types)}). Received {len(task_names)}: {task_names}"
        )
    first = {}
    for i, name in enumerate(task_names):
        check_name(name, f"task_names[{i}]")
        if name in first:
            raise FieldError(f"task_names[{i}]", f"{name!r} is used more than once (also task_names[{first[name]}]).")
        first[name] = i
    return tuple(Task(n, t) for n, t in zip(task_names, task_types))
