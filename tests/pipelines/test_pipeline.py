"""The standard pipeline end to end on a small dataset, and a Trainer step resumed after a crash."""

import json
import os

import pytest

import pipelines.trainer
import tf_mtl.models  # noqa: F401  (registers tf_mtl's classes for load_model)
from pipelines.pipeline import create_pipeline
from pipelines.runner import run_pipeline
from tests.pipelines.conftest import small_config
from tf_mtl.compat import keras


def _quiet(_):
    pass


def test_a_small_dataset_end_to_end(tmp_path, small_frame):
    config = small_config(
        tmp_path,
        tuning={"algorithm": "random", "max_trials": 2, "epochs": 1, "space": {"training.optimizer.lr": [0.003, 0.01]}},
        fusion={"method": "product", "search": {"metric": {"auc:ctr": 0.5, "auc:cvr": 0.5}, "grid_step": 0.5}},
        evaluation={"slice_by": "item_category", "thresholds": {"ctr/auc": 0.3}},
    )
    results = run_pipeline(create_pipeline(config, frame=small_frame), config["pipeline_root"], log=_quiet)
    assert [r.name for r in results] == ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
                                         "Tuner", "Trainer", "Evaluator", "Pusher"]
    assert all(r.status == "run" for r in results)
    for result in results:
        record = json.load(open(result.artifact.file("artifact.json")))
        assert record["step"] == result.name and record["key"].startswith(os.path.basename(result.artifact.path))
    tuned = results[5].artifact.figures["best_values"]["training.optimizer.lr"]
    trainer = results[6].artifact
    training = json.load(open(trainer.file("run", "training.json")))
    assert training["fusion"]["method"] == "product" and training["fusion_search"] is not None
    assert os.path.exists(trainer.file("serving", "saved_model.pb"))
    assert json.load(open(trainer.file("run", "history.json")))[0]["epoch"] == 1
    # The Tuner's best value reached the Trainer's optimizer.
    trained = keras.models.load_model(trainer.file("run", "model.keras"))
    assert tuned in (0.003, 0.01) and float(trained.optimizer.learning_rate) == pytest.approx(tuned)
    pushed = results[-1].artifact.figures
    assert pushed["pushed"] and pushed["path"] == str(tmp_path / "saved_models" / "small" / "1")
    assert os.path.exists(os.path.join(pushed["path"], "assets.extra", "tf_serving_warmup_requests"))
    # A change in the training section reruns the Trainer and what follows; not the data steps.
    config["training"]["epochs"] = 2
    again = run_pipeline(create_pipeline(config, frame=small_frame), config["pipeline_root"], log=_quiet)
    assert [r.status for r in again] == ["cached"] * 6 + ["run"] * 3  # the search reads no epochs


def test_a_trainer_step_killed_after_training_resumes_from_its_checkpoints(tmp_path, small_frame, monkeypatch):
    config = small_config(tmp_path, training={"epochs": 2, "batch_size": 256})
    steps = create_pipeline(config, frame=small_frame)[:6]

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipelines.trainer, "save_servable", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        run_pipeline(steps, config["pipeline_root"], log=_quiet)
    assert not [p for p in os.listdir(os.path.join(config["pipeline_root"], "Trainer")) if not p.startswith(".work")]
    monkeypatch.undo()
    said = []
    monkeypatch.setattr("tf_mtl.training.trainer.MTLTrainer._say", lambda self, message: said.append(message))
    results = run_pipeline(steps, config["pipeline_root"], log=_quiet)
    assert [r.status for r in results] == ["cached"] * 5 + ["run"]
    # Both epochs were trained before the crash: the rerun resumes at the end and trains none.
    assert any(m.startswith("Resumed from") and "(epoch 2)" in m for m in said)
    assert not any(m.startswith("epoch ") for m in said)
    assert os.path.exists(results[-1].artifact.file("serving", "saved_model.pb"))
    assert not os.path.exists(os.path.join(config["pipeline_root"], "Trainer", ".work-" + results[-1].artifact.metadata["key"][:16]))


def test_a_regression_task_and_string_labels_go_through_every_step(tmp_path, small_frame):
    frame = small_frame.assign(clicked=small_frame["click"].map({0: "no", 1: "yes"}))
    config = small_config(
        tmp_path,
        tasks=[{"name": "ctr", "type": "classification", "label": "clicked", "positive": "yes"},
               {"name": "past_ctr", "type": "regression", "label": "item_ctr_7d"}],
        evaluation={"thresholds": {"past_ctr/rmse": 1.0, "ctr/auc": 0.3}},
    )
    results = run_pipeline(create_pipeline(config, frame=frame), config["pipeline_root"], log=_quiet)
    evaluation = results[-2].artifact.figures
    assert evaluation["blessed"], evaluation["reasons"]
    assert 0 < evaluation["metrics"]["past_ctr/rmse"] < 1.0 and "past_ctr/mae" in evaluation["metrics"]
    assert results[-1].artifact.figures["pushed"]
