import pytest

from tf_mtl.features.spec import FieldError
from tf_mtl.tasks import Task, make_tasks

NAME_RULE = "expected a name that starts with a letter or '_' and holds only letters, digits, '_', '.' or '-'."


def test_default_names_and_types():
    assert make_tasks(["classification", "regression"]) == (Task("task1", "classification"), Task("task2", "regression"))


@pytest.mark.parametrize(
    "task_types, task_names, message",
    [
        ("classification", None, "task_types: expected a non-empty list such as ['classification']. Received: 'classification'"),
        ([], None, "task_types: expected a non-empty list such as ['classification']. Received: []"),
        (None, None, "task_types: expected a non-empty list such as ['classification']. Received: None"),
        (["classification", "regresion"], None, "task_types[1]: unknown task type 'regresion'; did you mean 'regression'?"),
        (["classification", 3], None, "task_types[1]: unknown task type 3. Task types: ['classification', 'regression']"),
        (["classification"], ["a", "b"], "task_names: expected one name per task type (1). Received 2: ['a', 'b']"),
        # A string would be a list of names, one a character.
        (["classification"] * 3, "abc", "task_names: expected a non-empty list such as ['ctr', 'cvr']. Received: 'abc'"),
        (["classification"] * 3, ["a", "b", "a"], "task_names[2]: 'a' is used more than once (also task_names[0])."),
        (["classification"], ["bad name"], f"task_names[0]: {NAME_RULE} Received: 'bad name'"),
    ],
)
def test_errors_name_the_task(task_types, task_names, message):
    with pytest.raises(FieldError) as info:
        make_tasks(task_types, task_names)
    assert str(info.value) == message
