import os

import pytest

import pipelines.config
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
features: [{name: user_id, kind: sparse, embed_dim: 4}]
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
        ({"model": {"name": "mmoe", "params": {"n_experts": 4}}}, "model.params.n_experts: MMOE: unknown argument; did you mean 'n_expert'?"),
        ({"model": {"name": "esmm"}, "tasks": [{"name": "t", "type": "regression", "label": "y"}]},
         "tasks: ESMM: ESMM models two tasks, click then conversion. Received: ['regression']"),
        ({"model": {"name": "aitm"}, "tasks": [{"name": "a", "type": "classification", "label": "x"}, {"name": "b", "type": "regression", "label": "y"}]},
         "tasks[1].type: AITM: expected 'classification'. Received: 'regression'"),
        ({"model": {"name": "mmoe", "params": {"expert_params": {"dims": [16, 0]}}}},
         "model.params.expert_params.dims[1]: MMOE: expected a positive integer. Received: 0"),
        ({"model": {"name": "mmoe", "params": {"tower_params_list": [{"dims": [8]}, {"dropout": "high"}]}}},
         "model.params.tower_params_list[1].dropout: MMOE: expected a number in [0, 1). Received: 'high'"),
        ({"model": {"name": "mmoe", "params": {"n_expert": -2}}}, "model.params.n_expert: MMOE: expected a positive integer. Received: -2"),
        ({"features": [{"name": "u", "kind": "sparse", "embed_dim": 0}]}, "features[0].embed_dim: SparseFeature 'u': expected a positive integer. Received: 0"),
        ({"features": [{"name": "u", "kind": "sparse", "embed_dim": 4, "vocab_size": -5}]},
         "features[0].vocab_size: SparseFeature 'u': expected a positive integer. Received: -5"),
        ({"features": [{"name": "u", "kind": "sparse"}]}, "features[0].embed_dim: required SparseFeature field is missing."),
        ({"features": [{"name": "h", "kind": "sequence", "embed_dim": 4}]}, "features[0].max_len: SequenceFeature 'h': required: the padded sequence length."),
        ({"features": [{"name": "h", "kind": "sequence", "embed_dim": 4, "max_len": 5, "pooling": "median"}]},
         "features[0].pooling: SequenceFeature 'h': expected one of ['mean', 'sum', 'max']. Received: 'median'"),
        ({"features": [{"name": "u", "kind": "sparse", "embed_dim": 4}, {"name": "u", "kind": "dense"}]},
         "features[1].name: 'u' is used more than once (also features[0])."),
        ({"features": [{"name": "a", "kind": "sparse", "embed_dim": 4, "shared_embed_name": "t"},
                       {"name": "b", "kind": "sequence", "embed_dim": 8, "max_len": 3, "shared_embed_name": "t"}]},
         "features[1].embed_dim: 'b' shares the embedding table 't' with 'a' (features[0]), so they must agree on it."),
        ({"tasks": [{"name": "c t r", "type": "classification", "label": "click"}]}, "tasks[0].name: expected a name that starts with a letter"),
        ({"name": "../elsewhere"}, "name: expected a name that starts with a letter"),
        ({"push": {"model_name": "a/b"}}, "push.model_name: expected a name that starts with a letter"),
        ({"training": {"epochs": 0}}, "training.epochs: expected an integer >= 1. Received: 0"),
        ({"training": {"optimizer": {"name": "adamm"}}}, "training.optimizer.name: expected a Keras optimizer name such as 'adam'. Received: 'adamm'"),
        ({"tuning": {"space": {"model.params.n_expert": [2, 0]}}},
         "tuning.space.model.params.n_expert: the choice 0 does not fit: model.params.n_expert: MMOE: expected a positive integer. Received: 0"),
        ({"tuning": {"space": {"model.params.expert_params.dims": [[16], [16, -1]]}}},
         "tuning.space.model.params.expert_params.dims: the choice '[16, -1]' does not fit: model.params.expert_params.dims[1]: MMOE: "
         "expected a positive integer. Received: -1"),
        ({"tuning": {"space": {"training.batch_size": {"min": 0, "max": 512}}}},
         "tuning.space.training.batch_size: the choice 0 does not fit: training.batch_size: expected an integer >= 1. Received: 0"),
        ({"fusion": {"search": {"metric": "auc:ctr", "grid_step": 0}}}, "fusion.search.grid_step: expected a number in (0, 1]. Received: 0"),
        ({"fusion": {"search": {"metric": "auc:ctr", "method": "random"}}}, "fusion.search.n_samples: expected an integer >= 1. Received: None"),
        ({"fusion": {"search": {"metric": "auc:ctr", "method": "bayes"}}}, "fusion.search.method: expected one of ['grid', 'random']"),
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


def test_a_key_given_twice_is_refused(tmp_path):
    path = _write(tmp_path, "name: demo\ntraining: {epochs: 2}\ntraining: {epochs: 20}\n")
    with pytest.raises(ConfigError, match=r"pipeline.yaml: not valid YAML: [\s\S]*found the key 'training' a second time[\s\S]*line 3"):
        load_config(path)


def test_the_shipped_configs_pass_their_checks():
    for name in ("quickstart", "census_income"):
        config = load_config(os.path.join(os.path.dirname(pipelines.config.__file__), "configs", f"{name}.yaml"))
        assert config["name"] == name


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
    config = {"name": "demo", "data": {"path": "a.csv"}, "features": [{"name": "u", "kind": "sparse", "embed_dim": 2}],
              "tasks": [{"name": "t", "type": "regression", "label": "y"}], "model": {"name": "mmoe"}}
    checked = check_config(config, str(tmp_path))
    assert "training" not in config and checked["training"]["epochs"] == 2
