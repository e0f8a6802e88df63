import pytest

from tf_mtl.tasks import Task, make_tasks


def test_default_names_and_types():
    assert make_tasks(["classification", "regression"]) == (Task("task1", "classification"), Task("task2", "regression"))


@pytest.mark.parametrize(
    "task_types, task_names, message",
    [
        ("classification", None, "must be a non-empty list"),
        ([], None, "must be a non-empty list"),
        (["classification", "regresion"], None, r"task_types\[1\]: unknown task type 'regresion'; did you mean 'regression'"),
        (["classification"], ["a", "b"], "task_names has 2 names for 1 task_types"),
        (["classification", "classification"], ["a", "a"], "task_names must be distinct"),
        (["classification"], ["bad name"], "Task name must start with a letter"),
    ],
)
def test_errors_name_the_task(task_types, task_names, message):
    with pytest.raises(ValueError, match=message):
        make_tasks(task_types, task_names)
