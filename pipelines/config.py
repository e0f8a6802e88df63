"""The pipeline's YAML config: read with a safe loader, checked key by key, defaults filled in.

Every mistake is reported with its key path (``training.batch_size: expected an integer >= 1.
Received: 'big'``). Nothing in a config is executed: model, weighting and tuner names are
looked up in fixed tables.

    name: quickstart                 # the pushed model's name: saved_models/quickstart/<version>
    pipeline_root: pipeline_runs/quickstart
    data: {path: impressions.csv, key: impression_id, splits: {train: 0.8, eval: 0.2}}
    features: [{name: user_id, kind: sparse, embed_dim: 8}, {name: item_price, kind: dense}]
    tasks: [{name: ctr, type: classification, label: click}]
    model: {name: mmoe, params: {n_expert: 4}}
    training: {epochs: 2, batch_size: 512, optimizer: {lr: 0.001}, weighting: {method: uwl}}
    tuning: {algorithm: random, max_trials: 4, space: {model.params.n_expert: [2, 4, 8]}}
    fusion: {method: product, search: {metric: {"auc:ctr": 0.5, "auc:cvr": 0.5}}}
    evaluation: {slice_by: user_city, thresholds: {ctr/auc: 0.6}, tolerance: 0.01}
    push: {destination: saved_models}

Relative paths are relative to the config file's folder.
"""

import copy
import json
import numbers
import os

import yaml

from tf_mtl.errors import did_you_mean
from tf_mtl.models import PRESETS
from tf_mtl.tasks import TASK_TYPES

TUNERS = ("random", "bayesian", "hyperband")
# Paths set with --set are relative to the working folder, not to the config's.
PATH_KEYS = ("data.path", "schema", "pipeline_root", "push.destination")
EXECUTIONS = ("auto", "beam", "pandas")


class ConfigError(ValueError):
    """A config mistake; the message starts with the key path."""


def _fail(where, expected, value):
    raise ConfigError(f"{where}: expected {expected}. Received: {value!r}")


def _mapping(where, value, known, required=()):
    if not isinstance(value, dict):
        _fail(where, "a mapping", value)
    for key in value:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key" + did_you_mean(key, sorted(known), "Known keys"))
    for key in required:
        if key not in value:
            raise ConfigError(f"{where}.{key}: required key is missing.")
    return value


def _int(where, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        _fail(where, f"an integer >= {minimum}", value)
    return int(value)


def _number(where, value, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(where, "a number", value)
    if (low is not None and value < low) or (high is not None and value > high):
        _fail(where, f"a number in [{low}, {high}]", value)
    return float(value)


def _choice(where, value, choices):
    if value not in choices:
        raise ConfigError(f"{where}: expected one of {list(choices)}. Received: {value!r}")
    return value


def _str(where, value):
    if not isinstance(value, str) or not value:
        _fail(where, "a non-empty string", value)
    return value


SECTIONS = ("name", "pipeline_root", "data", "schema", "features", "tasks", "model", "training", "tuning", "fusion", "evaluation", "push")


def check_config(config, base_dir="."):
    """Checks a config dict and returns a copy with defaults and absolute paths."""
    config = copy.deepcopy(_mapping("config", config, SECTIONS, ("name", "data", "features", "tasks", "model")))
    name = _str("name", config["name"])
    resolve = lambda path: os.path.normpath(os.path.join(base_dir, path))  # noqa: E731
    config["pipeline_root"] = resolve(config.get("pipeline_root") or os.path.join("pipeline_runs", name))

    data = _mapping("data", config["data"], ("path", "format", "key", "splits", "read_options", "execution", "beam_options"), ("path",))
    data["path"] = resolve(_str("data.path", data["path"]))
    data.setdefault("splits", {"train": 0.8, "eval": 0.2})
    splits = _mapping("data.splits", data["splits"], data["splits"], ("train", "eval"))
    for split, fraction in splits.items():
        _number(f"data.splits.{split}", fraction, 0, 1)
    if abs(sum(splits.values()) - 1) > 1e-6:
        _fail("data.splits", "fractions summing to 1", splits)
    data["execution"] = _choice("data.execution", data.get("execution", "auto"), EXECUTIONS)
    if config.get("schema") is not None:
        config["schema"] = resolve(_str("schema", config["schema"]))

    features = config["features"]
    if not isinstance(features, list) or not features:
        _fail("features", "a non-empty list", features)
    for i, feature in enumerate(features):
        _mapping(f"features[{i}]", feature, feature, ("name", "kind"))
        _choice(f"features[{i}].kind", feature["kind"], ("sparse", "sequence", "dense"))

    tasks = config["tasks"]
    if not isinstance(tasks, list) or not tasks:
        _fail("tasks", "a non-empty list", tasks)
    seen = set()
    for i, task in enumerate(tasks):
        _mapping(f"tasks[{i}]", task, ("name", "type", "label", "positive"), ("name", "type", "label"))
        _str(f"tasks[{i}].name", task["name"])
        if task["name"] in seen:
            raise ConfigError(f"tasks[{i}].name: {task['name']!r} is used more than once.")
        seen.add(task["name"])
        _choice(f"tasks[{i}].type", task["type"], TASK_TYPES)
        _str(f"tasks[{i}].label", task["label"])

    model = _mapping("model", config["model"], ("name", "params"), ("name",))
    _choice("model.name", model["name"], sorted(PRESETS))
    model["params"] = _mapping("model.params", model.get("params") or {}, model.get("params") or {})

    training = config.setdefault("training", {})
    _mapping("training", training, (
        "epochs", "batch_size", "optimizer", "weighting", "loss_masks", "label_weights", "monitor",
        "earlystop_patience", "seed", "strategy", "train_steps", "eval_steps",
    ))
    for key, default in (("epochs", 2), ("batch_size", 512), ("seed", 0)):
        training[key] = _int(f"training.{key}", training.get(key, default), 0 if key == "seed" else 1)
    for key in ("earlystop_patience", "train_steps", "eval_steps"):
        if training.get(key) is not None:
            _int(f"training.{key}", training[key])
    training["optimizer"] = _mapping("training.optimizer", training.get("optimizer") or {"lr": 1e-3}, ("name", "lr", "weight_decay", "learning_rate"))
    _choice("training.strategy", training.get("strategy", "default"), ("default", "mirrored", "multi_worker"))

    if config.get("tuning"):
        tuning = _mapping("tuning", config["tuning"], ("algorithm", "max_trials", "epochs", "objective", "space", "seed", "samples"), ("space",))
        tuning["algorithm"] = _choice("tuning.algorithm", tuning.get("algorithm", "random"), TUNERS)
        tuning["max_trials"] = _int("tuning.max_trials", tuning.get("max_trials", 4))
        tuning["epochs"] = _int("tuning.epochs", tuning.get("epochs", 1))
        _mapping("tuning.space", tuning["space"], tuning["space"])
        if not tuning["space"]:
            _fail("tuning.space", "at least one parameter to tune", tuning["space"])

    if config.get("fusion"):
        fusion = _mapping("fusion", config["fusion"], ("method", "weights", "search"))
        _choice("fusion.method", fusion.get("method", "sum"), ("sum", "product"))
        if ("weights" in fusion) == ("search" in fusion):
            raise ConfigError("fusion: give either weights or search.")
        if "search" in fusion:
            _mapping("fusion.search", fusion["search"], ("metric", "grid_step", "method", "n_samples", "seed"), ("metric",))

    evaluation = config.setdefault("evaluation", {})
    _mapping("evaluation", evaluation, ("slice_by", "thresholds", "tolerance", "batch_size"))
    for metric, threshold in (evaluation.get("thresholds") or {}).items():
        _number(f"evaluation.thresholds.{metric}", threshold)
    evaluation["tolerance"] = _number("evaluation.tolerance", evaluation.get("tolerance", 0.01), 0)

    push = config.setdefault("push", {})
    _mapping("push", push, ("destination", "model_name"))
    push["destination"] = resolve(push.get("destination", "saved_models"))
    push["model_name"] = _str("push.model_name", push.get("model_name", name))
    return config


def load_config(path, overrides=()):
    """Reads a YAML config (safe loader), applies ``key.path=value`` overrides (values read as
    YAML) and checks it."""
    try:
        with open(path) as file:
            config = yaml.safe_load(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"No such pipeline config: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of sections {list(SECTIONS)}. Received: {type(config).__name__}")
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {override!r}: expected key.path=value.")
        value = os.path.abspath(value) if key in PATH_KEYS else yaml.safe_load(value)
        set_path(config, key, value)
    try:
        return check_config(config, os.path.dirname(os.path.abspath(path)))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def set_path(config, dotted, value):
    """Sets ``config["a"]["b"]`` for ``"a.b"`` (creating mappings on the way)."""
    node = config
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {part!r} is not a mapping.")
    node[parts[-1]] = value


def hyperparameter_values(hyperparameters):
    """``{dotted key: value}`` from a Tuner's output: KerasTuner's ``HyperParameters.get_config()``
    (as TFX passes it), its ``values``, or a plain dict. JSON strings (lists) are decoded."""
    if not hyperparameters:
        return {}
    values = hyperparameters.get("values", hyperparameters) if isinstance(hyperparameters, dict) else hyperparameters.values
    return {k: json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v for k, v in values.items()}


def apply_hyperparameters(config, values):
    """A copy of ``config`` with each dotted key (``model.params.n_expert``) set to its value."""
    config = copy.deepcopy(config)
    for key, value in values.items():
        set_path(config, key, value)
    return config
