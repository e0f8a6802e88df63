"""Evaluator and Pusher on a small trained model: metrics of the exported SavedModel, slices,
blessing against a pushed baseline, atomic versioned pushes and the runner's cache."""

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from pipelines.component import Artifact, Component
from pipelines.evaluator import EVALUATION_FILE, Evaluator, checks, read_evaluation
from pipelines.example_gen import ExampleGen, Source
from pipelines.pusher import PUSHED_FILE, Pusher, push
from pipelines.runner import run_pipeline
from pipelines.trainer import FnArgs, make_dataset, run_fn
from pipelines.transform import TRANSFORM_FILE
from tf_mtl.compat import keras
from tf_mtl.data import click_conversion
from tf_mtl.export import versions
from tf_mtl.features import features_to_config, tensor_specs
from tf_mtl.metrics import auc, predict_with_labels

TASKS = [{"name": "ctr", "type": "classification", "label": "click"}, {"name": "cvr", "type": "classification", "label": "conversion"}]
DEFAULTS = {"item_price": 25.0}
SLICE = "user_city"


def quiet(*_):
    pass


class Given(Component):
    """A step whose artifact is a copy of a prepared folder (``params["source"]``)."""

    def run(self, inputs, output_dir):
        shutil.copytree(self.params["source"], output_dir, dirs_exist_ok=True)


def _constant_model(features, good, path):
    """A model artifact scoring every row 0.5 (with the good run's ``model.keras`` for the terms
    and its ``tf_mtl.json``, the record every tf_mtl export holds)."""

    @tf.function(input_signature=[tensor_specs(features)])
    def serve(x):
        half = tf.fill(tf.shape(x[features[0].name])[:1], 0.5)
        return {"ctr": half, "cvr": half, "score": half}

    tf.saved_model.save(tf.Module(), os.path.join(path, "serving"), signatures={"serving_default": serve})
    shutil.copytree(os.path.join(good, "serving", "assets.extra"), os.path.join(path, "serving", "assets.extra"))
    os.makedirs(os.path.join(path, "run"))
    shutil.copy(os.path.join(good, "run", "model.keras"), os.path.join(path, "run", "model.keras"))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Examples, a Transform output, a model trained one epoch and a constant model."""
    root = tmp_path_factory.mktemp("evaluator")
    data = click_conversion(4000, seed=0)
    columns = {k: v for k, v in data.x.items() if v.ndim == 1}
    columns["clicked_categories"] = ["|".join(t for t in r if t) for r in data.x["clicked_categories"]]
    columns.update({"click": data.y["ctr"].astype(int), "conversion": data.y["cvr"].astype(int)})
    frame = pd.DataFrame(columns)
    frame.insert(0, "impression_id", np.arange(len(frame)))
    example_gen = ExampleGen(Source(frame=frame), key="impression_id", list_columns={"clicked_categories": "|"})
    steps = run_pipeline([example_gen], root / "pipeline", log=quiet)
    examples = steps[0].artifact.path
    transform = root / "transform"
    transform.mkdir()
    (transform / TRANSFORM_FILE).write_text(json.dumps({"features": features_to_config(data.features), "defaults": DEFAULTS}))
    good = root / "good"
    config = {
        "features": features_to_config(data.features), "defaults": DEFAULTS, "tasks": TASKS, "verbose": 0,
        "model": {"name": "mmoe", "params": {"n_expert": 2, "expert_params": {"dims": [16]}}},
        "training": {"epochs": 2, "batch_size": 128, "optimizer": {"name": "adam", "learning_rate": 0.01}},
    }
    run_fn(FnArgs(
        train_files=[os.path.join(examples, "Split-train", "*")], eval_files=[os.path.join(examples, "Split-eval", "*")],
        serving_model_dir=str(good / "serving"), model_run_dir=str(good / "run"), custom_config=config,
    ))
    return {
        "root": root, "features": list(data.features), "examples": examples, "transform": str(transform),
        "good": str(good), "constant": _constant_model(list(data.features), str(good), str(root / "constant")),
    }


def _evaluate(world, model, out, **params):
    evaluator = Evaluator({"tasks": TASKS, "batch_size": 256, **params}, examples=Given(), model=Given(), transform=Given())
    paths = {"examples": world["examples"], "model": model, "transform": world["transform"]}
    inputs = {name: Artifact(path, {}) for name, path in paths.items()}
    os.makedirs(out)
    figures = evaluator.run(inputs, str(out))
    return evaluator, figures, read_evaluation(Artifact(str(out), {}))


def test_metrics_are_the_keras_models_and_slices_split_the_rows(world, tmp_path):
    _, figures, evaluation = _evaluate(world, world["good"], tmp_path / "eval", slice_by=SLICE, thresholds={"ctr/auc": 0.55})
    model = keras.models.load_model(os.path.join(world["good"], "run", "model.keras"))
    dataset = make_dataset(os.path.join(world["examples"], "Split-eval", "*"), world["features"], TASKS, DEFAULTS, 256)
    outputs, labels, values = predict_with_labels(model, dataset, (SLICE,))

    assert sorted(evaluation["metrics"]) == ["ctr/auc", "ctr/log_loss", "cvr/auc", "cvr/log_loss", "score/auc"]
    assert evaluation["metrics"]["ctr/auc"] == pytest.approx(auc(labels["ctr"], outputs["ctr"]), abs=1e-5)
    assert evaluation["metrics"]["cvr/auc"] == pytest.approx(auc(labels["cvr"], outputs["cvr"]), abs=1e-5)
    assert evaluation["metrics"]["ctr/auc"] > 0.55
    assert evaluation["rows"] == len(labels["ctr"])
    assert evaluation["blessed"] and figures["blessed"] and evaluation["reasons"] == []
    assert evaluation["baseline"] is None

    slices = evaluation["slices"]
    assert len(slices) == 11 and slices["all"] == {"rows": evaluation["rows"], "metrics": evaluation["metrics"]}
    city, counts = np.unique(values[SLICE], return_counts=True)
    top = sorted(zip(-counts, city.astype(str)))[:10]
    assert [(slices[c]["rows"], c) for _, c in top] == [(-n, c) for n, c in top]
    largest = top[0][1]
    rows = values[SLICE] == int(largest)
    assert slices[largest]["metrics"]["ctr/auc"] == pytest.approx(auc(labels["ctr"][rows], outputs["ctr"][rows]), abs=1e-5)
    assert {"report.md", "report.png", EVALUATION_FILE} <= set(os.listdir(tmp_path / "eval"))
    assert "| ctr/auc |" in (tmp_path / "eval" / "report.md").read_text()


def test_thresholds_are_minimums_for_auc_and_maximums_for_errors():
    results = checks({"ctr/auc": 0.7, "cvr/rmse": 1.0}, None, {"ctr/auc": 0.6, "cvr/rmse": 0.9}, 0.01)
    assert [(c["metric"], c["passed"]) for c in results] == [("ctr/auc", True), ("cvr/rmse", False)]
    assert results[1]["reason"] == "cvr/rmse = 1.0000 is above the maximum 0.9"
    failed = checks({"ctr/auc": 0.5}, None, {"ctr/auc": 0.6}, 0.01)
    assert failed[0]["reason"] == "ctr/auc = 0.5000 is below the minimum 0.6"
    undefined = checks({"cvr/auc": None}, None, {"cvr/auc": 0.6}, 0.01)
    assert not undefined[0]["passed"] and "undefined" in undefined[0]["reason"]
    with pytest.raises(ValueError, match="'ctr/acu'"):
        checks({"ctr/auc": 0.7}, None, {"ctr/acu": 0.6}, 0.01)


def test_baseline_regressions_beyond_the_tolerance_fail_in_either_direction():
    candidate = {"ctr/auc": 0.695, "ctr/log_loss": 0.40, "cvr/rmse": 1.0}
    results = checks(candidate, {"ctr/auc": 0.70, "ctr/log_loss": 0.30, "cvr/rmse": None}, {}, 0.01)
    assert [(c["metric"], c["passed"]) for c in results] == [("ctr/auc", True), ("ctr/log_loss", False)]
    assert results[1]["reason"] == "ctr/log_loss = 0.4000 is worse than the baseline's 0.3000 by 0.1000 (tolerance 0.01)"


def test_a_worse_model_is_not_blessed_against_the_pushed_better_one(world, tmp_path):
    base = tmp_path / "saved_models" / "ranker"
    push(os.path.join(world["good"], "serving"), str(base))
    evaluator, figures, evaluation = _evaluate(
        world, world["constant"], tmp_path / "eval", baseline_dir=str(base), thresholds={"ctr/auc": 0.55}
    )
    assert not evaluation["blessed"]
    assert evaluation["metrics"]["ctr/auc"] == 0.5
    assert evaluation["baseline"]["version"] == 1 and evaluation["baseline"]["metrics"]["ctr/auc"] > 0.55
    assert any(r.startswith("ctr/auc = 0.5000 is below the minimum 0.55") for r in evaluation["reasons"])
    assert any(r.startswith("ctr/auc = 0.5000 is worse than the baseline's") for r in evaluation["reasons"])
    assert evaluator.stop_reason(Artifact(str(tmp_path / "eval"), {"figures": figures})) is None
    assert evaluator.describe(Artifact("", {"figures": figures})).startswith("not blessed (")
    assert evaluator.fingerprint()["baseline"] == str(base / "1")


def _artifact(path, record):
    os.makedirs(path)
    with open(os.path.join(path, EVALUATION_FILE), "w") as file:
        json.dump(record, file)
    return Artifact(str(path), {})


def _push(tmp_path, model, blessed=True, name="out"):
    pusher = Pusher({"destination": str(tmp_path / "saved_models"), "model_name": "ranker"}, model=Given(), evaluation=Given())
    reasons = [] if blessed else ["ctr/auc = 0.5000 is below the minimum 0.6"]
    evaluation = _artifact(tmp_path / f"{name}-evaluation", {"blessed": blessed, "reasons": reasons})
    os.makedirs(tmp_path / name)
    figures = pusher.run({"model": Artifact(model, {}), "evaluation": evaluation}, str(tmp_path / name))
    return pusher, Artifact(str(tmp_path / name), {"figures": figures})


def test_pusher_writes_versions_one_then_two_and_not_the_same_model_twice(world, tmp_path):
    base = tmp_path / "saved_models" / "ranker"
    pusher, first = _push(tmp_path, world["good"], name="a")
    _, second = _push(tmp_path, world["constant"], name="b")
    _, again = _push(tmp_path, world["constant"], name="c")
    assert versions(str(base)) == [1, 2] and sorted(os.listdir(base)) == ["1", "2"]
    record = json.loads((tmp_path / "a" / PUSHED_FILE).read_text())
    assert record == {"pushed": True, "path": str(base / "1"), "version": 1, "already": False}
    assert second.figures["version"] == 2 and again.figures == {"pushed": True, "path": str(base / "2"), "version": 2, "already": True}
    with open(os.path.join(world["constant"], "serving", "saved_model.pb"), "rb") as file:
        assert (base / "2" / "saved_model.pb").read_bytes() == file.read()
    assert pusher.describe(first) == f"pushed to {base / '1'} (version 1)"
    assert pusher.still_valid(first)
    shutil.rmtree(base / "1")
    assert not pusher.still_valid(first)


def test_a_failed_copy_leaves_no_version(world, tmp_path, monkeypatch):
    _push(tmp_path, world["good"], name="a")

    def copy_then_fail(source, target):
        os.makedirs(target)
        shutil.copy(os.path.join(source, "saved_model.pb"), target)
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copytree", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _push(tmp_path, world["constant"], name="b")
    assert os.listdir(tmp_path / "saved_models" / "ranker") == ["1"]


def test_pusher_does_nothing_when_not_blessed(world, tmp_path):
    pusher, artifact = _push(tmp_path, world["good"], blessed=False)
    assert artifact.figures == {"pushed": False, "reason": "not blessed: ctr/auc = 0.5000 is below the minimum 0.6"}
    assert not (tmp_path / "saved_models").exists()
    assert pusher.describe(artifact) == "not pushed: not blessed"
    assert pusher.still_valid(artifact)


def test_the_runner_reruns_the_evaluator_when_a_new_version_is_pushed(world, tmp_path):
    base = tmp_path / "saved_models" / "ranker"
    examples, transform, model = (Given({"source": world[k]}, name=k) for k in ("examples", "transform", "good"))
    params = {"tasks": TASKS, "batch_size": 256, "baseline_dir": str(base)}
    evaluator = Evaluator(params, examples=examples, model=model, transform=transform)
    pusher = Pusher({"destination": str(tmp_path / "saved_models"), "model_name": "ranker"}, model=model, evaluation=evaluator)

    def statuses():
        steps = run_pipeline([examples, transform, model, evaluator, pusher], tmp_path / "root", log=quiet)
        return {s.name: s.status for s in steps if s.name in ("Evaluator", "Pusher")}, steps

    assert statuses()[0] == {"Evaluator": "run", "Pusher": "run"}
    assert versions(str(base)) == [1]
    # The pushed model is now the baseline: evaluated against itself, and not pushed again.
    ran, steps = statuses()
    assert ran == {"Evaluator": "run", "Pusher": "run"} and steps[-1].artifact.figures["already"]
    assert statuses()[0] == {"Evaluator": "cached", "Pusher": "cached"}
    shutil.copytree(os.path.join(world["constant"], "serving"), base / "2")
    ran, steps = statuses()
    assert ran == {"Evaluator": "run", "Pusher": "run"}
    assert steps[-2].artifact.figures["baseline_version"] == 2 and steps[-2].artifact.figures["blessed"]
    assert versions(str(base)) == [1, 2, 3]


def test_a_baseline_with_other_features_is_scored_through_its_own_spec(world, tmp_path):
    """The baseline reads the eval rows with its own feature spec; one it cannot score fails the
    comparison."""
    baseline_dir = tmp_path / "pushed" / "ranker"
    shutil.copytree(os.path.join(world["good"], "serving"), baseline_dir / "1")
    record = baseline_dir / "1" / "assets.extra" / "tf_mtl.json"
    spec = json.loads(record.read_text())
    _, _, evaluation = _evaluate(world, world["good"], tmp_path / "a", baseline_dir=str(baseline_dir))
    assert evaluation["baseline"]["metrics"]["ctr/auc"] == pytest.approx(evaluation["metrics"]["ctr/auc"])
    spec["features"][0]["name"] = "no_such_column"
    record.write_text(json.dumps(spec))
    _, _, evaluation = _evaluate(world, world["good"], tmp_path / "b", baseline_dir=str(baseline_dir))
    assert evaluation["baseline"]["metrics"] is None
    assert "cannot score the eval split" in evaluation["baseline"]["notes"][0]
    assert not evaluation["blessed"] and "compare_to_pushed: false" in evaluation["reasons"][0]
