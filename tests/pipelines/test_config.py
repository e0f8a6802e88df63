import pytest

from pipelines.checks import ConfigError
from pipelines.config import check_config, load_config
from pipelines.hyperparameters import apply_hyperparameters, hyperparameter_values
from tests.pipelines.conftest import small_config


def _write(tmp_path, text):
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_and_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "..")
    path = _write(tmp_path, """
name: demo
data: {path: data/impressions.csv}
features: [{name: user_id, kind: sparse, embed_dim: 4}]
tasks: [{name: ctr, type: classification, label: click}]
model: {name: mmoe}
""")
    config = load_config(path)
    assert config["data"]["path"] == str(tmp_path / "data" / "impressions.csv")
    assert config["pipeline_root"] == str((tmp_path / ".." / "pipeline_runs" / "demo").resolve())
    assert config["push"] == {"destination": str((tmp_path / ".." / "saved_models").resolve()), "model_name": "demo"}
    assert config["training"]["epochs"] == 2 and config["training"]["batch_size"] == 512
    assert config["data"]["splits"] == {"train": 0.8, "eval": 0.2}
    assert config["evaluation"]["tolerance"] == 0.01


def test_overrides_are_yaml_and_paths_are_relative_to_the_working_folder(tmp_path, monkeypatch):
    path = _write(tmp_path, """
name: demo
data: {path: a.csv}
features: [{name: user_id, kind: sparse}]
tasks: [{name: ctr, type: classification, label: click}]
model: {name: mmoe}
""")
    monkeypatch.chdir(tmp_path / ".." )
    config = load_config(path, ["training.epochs=5", "data.path=b.csv", "model.params={n_expert: 3}"])
    assert config["training"]["epochs"] == 5
    assert config["data"]["path"] == str((tmp_path / ".." / "b.csv").resolve())
    assert config["model"]["params"] == {"n_expert": 3}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"training": {"batch_size": "big"}}, "training.batch_size: expected an integer >= 1. Received: 'big'"),
        ({"training": {"epocs": 2}}, "training.epocs: unknown key; did you mean 'epochs'?"),
        ({"model": {"name": "mmeo"}}, "model.name: expected one of"),
        ({"tasks": [{"name": "ctr", "type": "clasification", "label": "click"}]}, "tasks[0].type: expected one of"),
        ({"tasks": [{"name": "ctr", "type": "classification", "label": "a"}, {"name": "ctr", "type": "regression", "label": "b"}]},
         "tasks[1].name: 'ctr' is used more than once"),
        ({"features": [{"name": "x", "kind": "categorical"}]}, "features[0].kind: expected one of"),
        ({"data": {"path": "a.csv", "splits": {"train": 0.9, "eval": 0.2}}}, "data.splits: expected fractions summing to 1"),
        ({"fusion": {"method": "sum", "weights": {"ctr": 1}, "search": {"metric": "auc:ctr"}}}, "fusion: give either weights or search"),
        ({"evaluation": {"thresholds": {"ctr/auc": "high"}}}, "evaluation.thresholds.ctr/auc: expected a number"),
        ({"tuning": {"algorithm": "grid", "space": {"training.epochs": [1, 2]}}}, "tuning.algorithm: expected one of"),
        ({"tuning": {"space": {"foo.bar": [1, 2]}}}, "tuning.space.foo.bar"),
        ({"tuning": {"space": {"model.params.n_expert": [2, 4]}, "samples": "many"}}, "tuning.samples: expected an integer"),
        ({"tuning": {"space": {"model.params.n_expert": [2, 4]}, "objective": "ctr/acu"}}, "tuning.objective: 'ctr/acu' is not a validation figure; did you mean 'ctr/auc'?"),
        ({"model": {"name": "mmoe", "params": {"n_experts": 4}}}, "model: "),
        ({"model": {"name": "esmm"}, "tasks": [{"name": "t", "type": "regression", "label": "y"}]}, "model: ESMM models two tasks"),
        ({"training": {"optimizer": {"lr": "big"}}}, "training.optimizer.lr: expected a number"),
        ({"training": {"weighting": {"method": "uwll"}}}, "training.weighting: Unknown weighting method 'uwll'; did you mean 'uwl'?"),
        ({"training": {"monitor": "nope"}}, "training.monitor: 'nope' is not a validation figure"),
        ({"training": {"loss_masks": {"cvx": "ctr"}}}, "training.loss_masks.cvx: unknown task; did you mean 'cvr'?"),
        ({"fusion": {"weights": {"ctr": 1, "ctcvr": 1}}}, "fusion.weights.ctcvr: unknown output"),
        ({"data": {"path": "a.csv", "format": "xlsx"}}, "data.format: expected one of"),
        ({"data": {"path": "a.csv", "key": 3}}, "data.key: expected a non-empty string"),
        ({"data": {"path": "a.csv", "splits": {"train": 1.0, "eval": 0.0}}}, "data.splits.eval: expected a positive fraction"),
        ({"evaluation": {"thresholds": {"ctr/acu": 0.6}}}, "evaluation.thresholds.ctr/acu: unknown metric; did you mean 'ctr/auc'?"),
        ({"evaluation": {"batch_size": "q"}}, "evaluation.batch_size: expected an integer"),
    ],
)
def test_mistakes_name_their_key_path(tmp_path, change, message):
    with pytest.raises(ConfigError) as err:
        small_config(tmp_path, **change)
    assert message in str(err.value)


def test_a_file_error_names_the_file(tmp_path):
    path = _write(tmp_path, "name: demo\ndata: [1, 2\n")
    with pytest.raises(ConfigError, match="pipeline.yaml: not valid YAML"):
        load_config(path)
    path = _write(tmp_path, "- just a list\n")
    with pytest.raises(ConfigError, match="pipeline.yaml: expected a mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"pipeline.yaml: config.learning_rate: unknown key"):
        load_config(_write(tmp_path, "name: demo\nlearning_rate: 1\n"))


def test_yaml_is_read_safely(tmp_path):
    path = _write(tmp_path, "name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_hyperparameters_in_every_form_tfx_passes():
    tuner_config = {"space": [{"class_name": "Choice"}], "values": {"model.params.n_expert": 4, "model.params.expert_params.dims": "[32, 16]"}}
    assert hyperparameter_values(tuner_config) == {"model.params.n_expert": 4, "model.params.expert_params.dims": [32, 16]}
    assert hyperparameter_values({"training.optimizer.lr": 0.01}) == {"training.optimizer.lr": 0.01}
    assert hyperparameter_values(None) == {}
    config = {"model": {"name": "mmoe", "params": {"n_expert": 2}}}
    tuned = apply_hyperparameters(config, hyperparameter_values(tuner_config))
    assert tuned["model"]["params"] == {"n_expert": 4, "expert_params": {"dims": [32, 16]}}
    assert config["model"]["params"] == {"n_expert": 2}


def test_check_config_does_not_change_its_argument(tmp_path):
    config = {"name": "demo", "data": {"path": "a.csv"}, "features": [{"name": "u", "kind": "sparse"}],
              "tasks": [{"name": "t", "type": "regression", "label": "y"}], "model": {"name": "mmoe"}}
    checked = check_config(config, str(tmp_path))
    assert "training" not in config and checked["training"]["epochs"] == 2
