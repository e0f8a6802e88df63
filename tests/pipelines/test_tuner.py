"""The Tuner step: the search-space format, the three algorithms, the output files, resuming."""

import json
import os

import pytest

from pipelines import tuner as tuner_lib
from pipelines.component import Component
from pipelines.checks import ConfigError
from pipelines.hyperparameters import apply_hyperparameters, hyperparameter_values
from pipelines.example_gen import ExampleGen, Source
from pipelines.runner import run_pipeline
from pipelines.trainer import build
from pipelines.transform import TRANSFORM_FILE
from pipelines.tuner import BEST_FILE, TRIALS_FILE, Tuner, search_space
from tests.pipelines.conftest import TASKS
from tf_mtl.features import DenseFeature, SparseFeature, features_to_config

FEATURES = (
    SparseFeature("user_id", 1000, 4),
    SparseFeature("item_category", None, 4, vocabulary=[f"cat_{i:02d}" for i in range(20)]),
    DenseFeature("item_price", mean=25.0, std=10.0),
)
SPACE = {
    "model.params.n_expert": [2, 3],
    "model.params.expert_params.dims": [[4], [8, 4]],
    "training.optimizer.lr": {"min": 0.001, "max": 0.01, "sampling": "log"},
}


class HandTransform(Component):
    """Stands in for the Transform step: writes a fixed ``transform.json``."""

    def run(self, inputs, output_dir):
        with open(os.path.join(output_dir, TRANSFORM_FILE), "w") as file:
            json.dump({"features": features_to_config(FEATURES), "defaults": {"item_price": 25.0}}, file)


def tuner_params(**tuning):
    return {
        "name": "small",
        "tasks": TASKS,
        "model": {
            "name": "mmoe",
            "params": {"n_expert": 2, "expert_params": {"dims": [8]}, "tower_params_list": [{"dims": [4]}, {"dims": [4]}]},
        },
        "training": {"batch_size": 256, "weighting": {"method": "uwl"}, "loss_masks": {"cvr": "ctr"}},
        "tuning": {"algorithm": "random", "max_trials": 2, "epochs": 1, "samples": 512, "space": SPACE, **tuning},
        "verbose": 0,
    }


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, small_frame):
    """The ExampleGen and hand-written Transform steps, and their artifacts."""
    root = tmp_path_factory.mktemp("upstream")
    frame = small_frame[["impression_id", *[f.name for f in FEATURES], "click", "conversion"]]
    steps = [ExampleGen(Source(frame=frame), key="impression_id"), HandTransform()]
    results = run_pipeline(steps, root, log=lambda _: None)
    return steps, {"examples": results[0].artifact, "transform": results[1].artifact}


def run_tuner(upstream, work_dir, output_dir, **tuning):
    """Runs the Tuner step's ``run`` directly, with a chosen ``work_dir``."""
    steps, artifacts = upstream
    step = Tuner(tuner_params(**tuning), examples=steps[0], transform=steps[1])
    step.work_dir = str(work_dir)
    os.makedirs(output_dir)
    figures = step.run(artifacts, str(output_dir))
    with open(os.path.join(output_dir, TRIALS_FILE)) as file:
        return figures, json.load(file)


def test_space_forms_become_keras_tuner_hyperparameters():
    hp = search_space({
        "model.params.n_expert": [2, 4, 8],
        "model.params.expert_params.dims": [[64], [128, 64]],
        "training.optimizer.lr": {"min": 0.0001, "max": 0.01, "sampling": "log"},
        "model.params.n_level": {"min": 1, "max": 3, "step": 2},
        "training.weighting.method": ["uwl", "fixed"],
        "training.optimizer.weight_decay": [0, 0.5],
    })
    spaces = {s.name: s for s in hp.space}
    assert type(spaces["model.params.n_expert"]).__name__ == "Choice" and spaces["model.params.n_expert"].values == [2, 4, 8]
    assert spaces["model.params.expert_params.dims"].values == ["[64]", "[128, 64]"]
    lr = spaces["training.optimizer.lr"]
    assert (type(lr).__name__, lr.min_value, lr.max_value, lr.sampling) == ("Float", 0.0001, 0.01, "log")
    level = spaces["model.params.n_level"]
    assert (type(level).__name__, level.min_value, level.max_value, level.step) == ("Int", 1, 3, 2)
    assert spaces["training.weighting.method"].values == ["uwl", "fixed"]
    # Integers mixed with floats become floats (a Choice holds one type).
    assert spaces["training.optimizer.weight_decay"].values == [0.0, 0.5]
    # Applied, a JSON choice is a list again.
    config = apply_hyperparameters({"model": {"params": {}}}, hyperparameter_values({"model.params.expert_params.dims": "[128, 64]"}))
    assert config["model"]["params"]["expert_params"]["dims"] == [128, 64]


@pytest.mark.parametrize(
    "space, message",
    [
        ({}, "tuning.space: expected a non-empty mapping"),
        ({"fusion.method": ["sum"]}, "tuning.space.fusion.method: expected a dotted key under model or training"),
        ({"model..n_expert": [2]}, "tuning.space.model..n_expert: expected a dotted key"),
        ({"model.params.n_expert": 4}, "tuning.space.model.params.n_expert: expected a list of choices or a mapping"),
        ({"model.params.n_expert": []}, "tuning.space.model.params.n_expert: expected a non-empty list of choices. Received: []"),
        ({"model.params.n_expert": [2, "4"]}, "tuning.space.model.params.n_expert: expected choices that are all numbers"),
        ({"model.params.n_expert": [2, [4]]}, "tuning.space.model.params.n_expert: expected choices that are all numbers"),
        ({"training.optimizer.lr": {"min": 0.1}}, "tuning.space.training.optimizer.lr.max: required key is missing."),
        ({"training.optimizer.lr": {"min": 0.1, "max": "1"}}, "tuning.space.training.optimizer.lr.max: expected a number. Received: '1'"),
        ({"training.optimizer.lr": {"min": 0.1, "max": 0.01}}, "tuning.space.training.optimizer.lr: expected min <= max. Received: min=0.1, max=0.01"),
        ({"training.optimizer.lr": {"min": 0.0, "max": 0.1, "sampling": "log"}}, "tuning.space.training.optimizer.lr.min: log sampling needs min > 0. Received: 0.0"),
        ({"training.optimizer.lr": {"min": 0.01, "max": 0.1, "sampling": "exp"}}, "tuning.space.training.optimizer.lr.sampling: expected one of ['linear', 'log', 'reverse_log']. Received: 'exp'"),
        ({"training.optimizer.lr": {"min": 0.01, "max": 0.1, "step": -1}}, "tuning.space.training.optimizer.lr.step: expected a positive number. Received: -1"),
        ({"training.optimizer.lr": {"min": 0.01, "max": 0.1, "sampling_": "log"}}, "tuning.space.training.optimizer.lr.sampling_: unknown key; did you mean 'sampling'?"),
    ],
)
def test_space_errors_name_the_key_path(space, message):
    with pytest.raises(ConfigError) as error:
        search_space(space)
    assert str(error.value).startswith(message)


def test_random_search_writes_best_values_the_trainer_can_apply(upstream, tmp_path):
    steps, _ = upstream
    step = Tuner(tuner_params(), examples=steps[0], transform=steps[1])
    result = run_pipeline([*steps, step], tmp_path / "root", log=lambda _: None)[-1]
    with open(result.artifact.file(BEST_FILE)) as file:
        best = json.load(file)
    with open(result.artifact.file(TRIALS_FILE)) as file:
        trials = json.load(file)
    assert [t["status"] for t in trials] == ["COMPLETED", "COMPLETED"]
    # The best objective (mean AUC of the tasks) is the best trial's, whose values were written.
    top = max(trials, key=lambda t: t["objective"])
    figures = result.artifact.figures
    assert 0.3 < figures["best_objective"] == top["objective"] < 1
    values = hyperparameter_values(best)
    assert values == top["values"] == figures["best_values"] and set(values) == set(SPACE)
    assert best["values"]["model.params.expert_params.dims"] == json.dumps(values["model.params.expert_params.dims"])
    assert {s["config"]["name"] for s in best["space"]} == set(SPACE)
    # run_fn's way of reading them sets each key, and the model builds with them.
    config = apply_hyperparameters(tuner_params(), hyperparameter_values(best))
    assert config["model"]["params"]["n_expert"] == values["model.params.n_expert"]
    assert config["training"]["optimizer"]["lr"] == values["training.optimizer.lr"]
    model = build(config, FEATURES)
    expert_kernels = [w for w in model.trainable_weights if "expert" in w.path and "kernel" in w.path]
    assert expert_kernels[-1].shape[-1] == values["model.params.expert_params.dims"][-1]
    assert result.summary.startswith(f"best val_objective {top['objective']:.4f} (") and result.summary.endswith("; 2 trials")


def test_bayesian_search_runs_a_trial(upstream, tmp_path):
    figures, trials = run_tuner(upstream, tmp_path / "work", tmp_path / "out", algorithm="bayesian", max_trials=1)
    assert [t["status"] for t in trials] == ["COMPLETED"]
    assert figures["trials"] == 1 and 0.3 < figures["best_objective"] == trials[0]["objective"] < 1


def test_hyperband_continues_the_best_trial_from_its_checkpoint(upstream, tmp_path):
    # max_epochs 3, factor 3: three 1-epoch trials, then the best of them trained on to epoch 3.
    figures, trials = run_tuner(upstream, tmp_path / "work", tmp_path / "out", algorithm="hyperband", epochs=3, max_trials=4)
    assert [t["status"] for t in trials] == ["COMPLETED"] * 4 and figures["trials"] == 4
    with open(tmp_path / "work" / tuner_lib.SEARCH_FOLDER / f"trial_{trials[3]['trial_id']}" / "trial.json") as file:
        continued = json.load(file)["hyperparameters"]["values"]
    assert continued["tuner/trial_id"] == max(trials[:3], key=lambda t: t["objective"])["trial_id"]
    assert (continued["tuner/initial_epoch"], continued["tuner/epochs"]) == (1, 3)
    assert figures["best_objective"] == max(t["objective"] for t in trials)


def test_a_rerun_in_the_same_work_dir_resumes(upstream, tmp_path, monkeypatch):
    fitted = []
    fit = tuner_lib.MTLHyperModel.fit

    def counting_fit(self, hp, *args, **kwargs):
        fitted.append(dict(hp.values))
        return fit(self, hp, *args, **kwargs)

    monkeypatch.setattr(tuner_lib.MTLHyperModel, "fit", counting_fit)
    _, first = run_tuner(upstream, tmp_path / "work", tmp_path / "out1", max_trials=1)
    assert len(fitted) == 1
    # As after an interruption with one trial done: only the missing trial runs.
    _, second = run_tuner(upstream, tmp_path / "work", tmp_path / "out2", max_trials=2)
    assert len(fitted) == 2 and second[0] == first[0] and len(second) == 2
    _, third = run_tuner(upstream, tmp_path / "work", tmp_path / "out3", max_trials=2)
    assert len(fitted) == 2 and third == second


def test_unknown_algorithm_is_named():
    with pytest.raises(ConfigError, match=r"tuning.algorithm: expected one of \['random', 'bayesian', 'hyperband'\]. Received: 'grid'"):
        tuner_lib.make_tuner(None, search_space(SPACE), {"algorithm": "grid"}, "unused")
