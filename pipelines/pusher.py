"""Pusher: copies a blessed model's SavedModel to ``<destination>/<model_name>/<version>/``,
the layout TF Serving watches, as the next version, atomically.

The copy is built in a hidden folder beside the version (TF Serving and ``versions`` skip it)
and renamed into place once complete: a failure or a kill leaves no visible partial version
(the next push removes a killed one's hidden folder), and an existing version is never
written over.
"""

import json
import os
import shutil

from pipelines.checks import string
from pipelines.component import Component
from pipelines.evaluator import latest_version, read_evaluation, serving_digest
from tf_mtl.export import next_version
from tf_mtl.files import atomic_path

PUSHED_FILE = "pushed.json"


def push(serving, base_dir):
    """Copies the SavedModel folder ``serving`` to ``base_dir/<newest + 1>/`` (1 when empty).

    The same model as the newest version (equal graph and variables; the Evaluator reruns
    against it once pushed) is not copied again.

    Returns:
        ``{"pushed": True, "path", "version", "already": bool}``.
    """
    newest = latest_version(base_dir)
    if newest is not None and serving_digest(newest) == serving_digest(serving):
        return {"pushed": True, "path": os.path.abspath(newest), "version": int(os.path.basename(newest)), "already": True}
    version = next_version(base_dir)
    target = os.path.join(base_dir, str(version))
    with atomic_path(target) as partial:
        shutil.copytree(serving, partial)
    return {"pushed": True, "path": os.path.abspath(target), "version": version, "already": False}


class Pusher(Component):
    """Pushes the model when the evaluation blessed it; records what it did in ``pushed.json``.

    Args (``params``):
        destination: the folder of pushed models (e.g. ``saved_models``).
        model_name: the model's folder there; the Evaluator's ``baseline_dir`` is
            ``<destination>/<model_name>``.

    Example:
        Pusher({"destination": "saved_models", "model_name": "ranker"}, model=trainer, evaluation=evaluator)
    """

    INPUTS = ("model", "evaluation")

    def __init__(self, params=None, name=None, **inputs):
        super().__init__(params, name, **inputs)
        for key in ("destination", "model_name"):
            string(self.params.get(key), f"{self.name}.{key}")

    @property
    def base_dir(self):
        return os.path.join(self.params["destination"], self.params["model_name"])

    def run(self, inputs, output_dir):
        evaluation = read_evaluation(inputs["evaluation"])
        if evaluation["blessed"]:
            record = push(inputs["model"].file("serving"), self.base_dir)
        else:
            record = {"pushed": False, "reason": "not blessed: " + "; ".join(evaluation["reasons"])}
        with open(os.path.join(output_dir, PUSHED_FILE), "w") as file:
            json.dump(record, file, indent=1)
        return record

    def still_valid(self, artifact):
        """False when the pushed version was removed since, so the step pushes again."""
        record = artifact.figures
        return not record["pushed"] or os.path.isdir(record["path"])

    def describe(self, artifact):
        record = artifact.figures
        if not record["pushed"]:
            return "not pushed: not blessed"
        return f"{'already pushed as' if record['already'] else 'pushed to'} {record['path']} (version {record['version']})"
