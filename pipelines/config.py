"""The pipeline's YAML config: read with a safe loader, checked key by key, defaults filled in.

Every mistake is reported with its key path (``training.batch_size: expected an integer >= 1.
Received: 'big'``, ``features[2].embed_dim: ...``, ``model.params.expert_params.dims[1]: ...``):
the feature entries are turned into the spec they will become and the model is built on it,
and every choice of the tuning space is checked as if it were the config's value. Nothing in a
config is executed: the file is read with a safe loader that also refuses a key given twice,
and model, optimizer, weighting and tuner names are looked up in fixed tables.

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

Relative paths in the file are relative to its folder; ``pipeline_root`` (default
``pipeline_runs/<name>``) and ``push.destination`` (default ``saved_models``) default to folders
of the working folder.
"""

import copy
import os
import re

import yaml

from pipelines.checks import ConfigError, choice, fail, integer, mapping, number, string
from pipelines.example_gen import EXECUTIONS, FORMATS, check_splits
from pipelines.hyperparameters import apply_hyperparameters, hyperparameter_values, set_path
from pipelines.schema import check_features, check_tasks
from pipelines.trainer import STRATEGIES
from pipelines.transform import CLASS_NAMES, PASS_THROUGH
from pipelines.tuner import ALGORITHMS, search_space
from tf_mtl import weighting
from tf_mtl.features import DenseFeature, SparseFeature
from tf_mtl.features.spec import FieldError, check_name, feature_from_config, load_yaml, validate_features
from tf_mtl.fusion.search import SEARCH_METHODS
from tf_mtl.models import PRESETS, build_model
from tf_mtl.training import make_optimizer
from tf_mtl.training.monitor import Monitor, figure_names

# Paths set with --set are relative to the working folder, not to the config's.
PATH_KEYS = ("data.path", "schema", "pipeline_root", "push.destination")


SECTIONS = ("name", "pipeline_root", "data", "schema", "features", "tasks", "model", "training", "tuning", "fusion", "evaluation", "push")


def check_config(config, base_dir="."):
    """Checks a config dict and returns a copy with defaults and absolute paths."""
    config = copy.deepcopy(mapping(config, "config", SECTIONS, ("name", "data", "features", "tasks", "model")))
    name = _name(config["name"], "name")
    resolve = lambda path: os.path.normpath(os.path.join(base_dir, path))  # noqa: E731
    # Paths written in the file are relative to its folder; the defaults to the working folder.
    config["pipeline_root"] = resolve(config["pipeline_root"]) if config.get("pipeline_root") else os.path.abspath(
        os.path.join("pipeline_runs", name))

    data = mapping(config["data"], "data", ("path", "format", "key", "splits", "read_options", "execution", "beam_options"), ("path",))
    data["path"] = resolve(string(data["path"], "data.path"))
    check_splits(data.setdefault("splits", {"train": 0.8, "eval": 0.2}))
    if data.get("format") is not None:
        choice(data["format"], FORMATS, "data.format")
    if data.get("key") is not None:
        string(data["key"], "data.key")
    data["execution"] = choice(data.get("execution", "auto"), EXECUTIONS, "data.execution")
    if config.get("schema") is not None:
        config["schema"] = resolve(string(config["schema"], "schema"))
    try:
        check_features(config["features"])
        check_tasks(config["tasks"])
        features = _spec_of(config["features"])
    except ValueError as err:
        raise ConfigError(str(err)) from None

    model = mapping(config["model"], "model", ("name", "params"), ("name",))
    choice(model["name"], sorted(PRESETS), "model.name")
    model["params"] = mapping(_or(model.get("params"), {}), "model.params")
    figures = _check_model(config, features)

    training = mapping(config.setdefault("training", {}), "training", (
        "epochs", "batch_size", "optimizer", "weighting", "loss_masks", "label_weights", "monitor",
        "earlystop_patience", "seed", "strategy", "devices", "train_steps", "eval_steps",
    ))
    for key, default in (("epochs", 2), ("batch_size", 512), ("seed", 0)):
        training[key] = integer(training.get(key, default), f"training.{key}", 0 if key == "seed" else 1)
    for key in ("earlystop_patience", "train_steps", "eval_steps"):
        if training.get(key) is not None:
            integer(training[key], f"training.{key}")
    training["optimizer"] = mapping(_or(training.get("optimizer"), {"lr": 1e-3}), "training.optimizer", ("name", "lr", "weight_decay", "learning_rate"))
    for key in ("lr", "learning_rate", "weight_decay"):
        if key in training["optimizer"]:
            number(training["optimizer"][key], f"training.optimizer.{key}", 0)
    _check_optimizer(training["optimizer"])
    choice(training.get("strategy", "default"), STRATEGIES, "training.strategy")
    try:
        weighting.get(training.get("weighting"))
    except ValueError as err:
        raise ConfigError(f"training.weighting: {err}") from None
    tasks = [t["name"] for t in config["tasks"]]
    for key in ("loss_masks", "label_weights"):
        for task, value in mapping(_or(training.get(key), {}), f"training.{key}", tasks, what="task").items():
            (string if key == "loss_masks" else number)(value, f"training.{key}.{task}")
    _check_figures(training.get("monitor"), figures, "training.monitor")
    if training.get("devices") is not None and not (
            isinstance(training["devices"], list) and all(isinstance(d, str) for d in training["devices"])):
        fail("training.devices", "a list of device names such as '/gpu:0'", training["devices"])

    if config.get("tuning") not in (None, {}):
        tuning = mapping(config["tuning"], "tuning", ("algorithm", "max_trials", "epochs", "objective", "space", "seed", "samples"), ("space",))
        tuning["algorithm"] = choice(tuning.get("algorithm", "random"), list(ALGORITHMS), "tuning.algorithm")
        tuning["max_trials"] = integer(tuning.get("max_trials", 4), "tuning.max_trials")
        tuning["epochs"] = integer(tuning.get("epochs", 1), "tuning.epochs")
        for key in ("seed", "samples"):
            if tuning.get(key) is not None:
                integer(tuning[key], f"tuning.{key}", 0 if key == "seed" else 1)
        _check_search_space(config, search_space(tuning["space"]), base_dir)
        # The search scores the eval split's metrics; losses are not among them.
        _check_figures(tuning.get("objective"), [f for f in figures if "/" in f], "tuning.objective")

    if config.get("fusion") not in (None, {}):
        fusion = mapping(config["fusion"], "fusion", ("method", "weights", "search"))
        choice(fusion.get("method", "sum"), ("sum", "product"), "fusion.method")
        if ("weights" in fusion) == ("search" in fusion):
            raise ConfigError("fusion: give either weights or search.")
        outputs = sorted({f.split("/")[0] for f in figures if "/" in f})
        for output, weight in mapping(fusion.get("weights", {}), "fusion.weights", outputs, what="output").items():
            number(weight, f"fusion.weights.{output}", 0)
        if "search" in fusion:
            search = mapping(fusion["search"], "fusion.search", ("metric", "grid_step", "method", "n_samples", "seed"), ("metric",))
            method = choice(search.get("method", "grid"), SEARCH_METHODS, "fusion.search.method")
            if "grid_step" in search and not number(search["grid_step"], "fusion.search.grid_step", 0, 1):
                fail("fusion.search.grid_step", "a number in (0, 1]", search["grid_step"])
            if method == "random" or "n_samples" in search:
                integer(search.get("n_samples"), "fusion.search.n_samples")
            integer(search.get("seed", 0), "fusion.search.seed", 0)

    evaluation = mapping(config.setdefault("evaluation", {}), "evaluation",
                         ("slice_by", "thresholds", "tolerance", "batch_size", "compare_to_pushed"))
    if not isinstance(evaluation.get("compare_to_pushed", True), bool):
        fail("evaluation.compare_to_pushed", "true or false", evaluation["compare_to_pushed"])
    scores = [f for f in figures if "/" in f] + ["score/auc"]
    for metric, threshold in mapping(_or(evaluation.get("thresholds"), {}), "evaluation.thresholds", scores, what="metric").items():
        number(threshold, f"evaluation.thresholds.{metric}")
    if evaluation.get("slice_by") is not None:
        string(evaluation["slice_by"], "evaluation.slice_by")
    if evaluation.get("batch_size") is not None:
        integer(evaluation["batch_size"], "evaluation.batch_size")
    evaluation["tolerance"] = number(evaluation.get("tolerance", 0.01), "evaluation.tolerance", 0)

    push = mapping(config.setdefault("push", {}), "push", ("destination", "model_name"))
    push["destination"] = resolve(push["destination"]) if "destination" in push else os.path.abspath("saved_models")
    push["model_name"] = _name(push.get("model_name", name), "push.model_name")
    return config


def _or(value, default):
    """``default`` for a section or key left empty (``None``); any other value is checked as
    given, so a wrong type such as ``thresholds: 0`` is reported rather than taken as absent."""
    return default if value is None else value


def _name(value, where):
    """A model name: it becomes a folder (``pipeline_runs/<name>``, ``saved_models/<name>``) and
    the name requests use, so it follows the naming rule of features and tasks (no ``/``)."""
    try:
        return check_name(value, where)
    except FieldError as err:
        raise ConfigError(str(err)) from None


def _spec_of(entries):
    """The feature spec the entries will become, with placeholders for what Transform derives
    from the train data (vocabularies, normalization constants, the dtype of the ids), so that
    a wrong size, pooling, name or shared table is reported now with its key path.

    Placeholder ids are integers, or strings for a table whose entries give a string
    ``padding_value``; ``vocab_size`` is 2 unless an entry gives one.
    """
    strings = {e.get("shared_embed_name", e["name"]) for e in entries if isinstance(e.get("padding_value"), str)}
    features = []
    for i, entry in enumerate(entries):
        spec = {"class_name": CLASS_NAMES[entry["kind"]], "name": entry["name"]}
        spec.update((key, entry[key]) for key in PASS_THROUGH if key in entry)
        if entry["kind"] != "dense":
            table = entry.get("shared_embed_name", entry["name"])
            spec.update(vocab_size=entry.get("vocab_size", 2), dtype="string" if table in strings else "int64")
        features.append(feature_from_config(spec, f"features[{i}]"))
    return validate_features(features, "features")


def _model_error_path(path):
    """Where a model argument sits in the config: task types and names come from ``tasks``,
    the other arguments from ``model.params``."""
    match = re.match(r"task_(types|names)(\[\d+\])?(.*)$", path)
    if match is None:
        return f"model.params.{path}"
    field, index, rest = match.groups()
    return f"tasks{index}.{field[:-1]}{rest}" if index else f"tasks{rest}"


def _check_model(config, features):
    """Builds the model, so that a wrong model parameter is reported now; returns the names of
    its validation figures. Built on the features' names and kinds only, with tiny tables: the
    spec's sizes are checked already, and full-size tables would all be allocated."""
    features = [DenseFeature(f.name) if isinstance(f, DenseFeature) else SparseFeature(f.name, 2, 2) for f in features]
    tasks = config["tasks"]
    try:
        model = build_model(config["model"]["name"], features, [t["type"] for t in tasks], [t["name"] for t in tasks],
                            **copy.deepcopy(config["model"]["params"]))
    except FieldError as err:
        raise ConfigError(f"{_model_error_path(err.path)}: {err.at('').message}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model: {err}") from None
    return figure_names(model, group_by=None)


def _check_optimizer(optimizer):
    """Builds the optimizer ``training.optimizer`` names with its parameters, as training will."""
    name = optimizer.get("name")
    if name is not None:
        try:
            make_optimizer(string(name, "training.optimizer.name"))
        except ValueError:
            raise ConfigError(f"training.optimizer.name: expected a Keras optimizer name such as 'adam'. Received: {name!r}") from None
    try:
        make_optimizer(name, {k: v for k, v in optimizer.items() if k != "name"})
    except ValueError as err:
        raise ConfigError(f"training.optimizer: {err}") from None


def _check_search_space(config, space, base_dir):
    """Checks the config with each value the search can set (every choice, both ends of a
    range) in place, so that a wrong choice is reported now and not when its trial runs."""
    untuned = {section: value for section, value in config.items() if section != "tuning"}
    for parameter in space.space:
        values = parameter.values if hasattr(parameter, "values") else [parameter.min_value, parameter.max_value]
        for value in values:
            try:
                check_config(apply_hyperparameters(untuned, hyperparameter_values({parameter.name: value})), base_dir)
            except ConfigError as err:
                raise ConfigError(f"tuning.space.{parameter.name}: the choice {value!r} does not fit: {err}") from None


def _check_figures(spec, figures, where):
    """A monitor spec (a figure name or ``{name: weight}``) names figures an epoch reports."""
    if spec is None:
        return
    try:
        Monitor(spec, None).check(figures)
    except (KeyError, ValueError) as err:
        raise ConfigError(f"{where}: {err.args[0].removeprefix('monitor: ')}") from None


def load_config(path, overrides=()):
    """Reads a YAML config (safe loader), applies ``key.path=value`` overrides (values read as
    YAML) and checks it."""
    try:
        with open(path) as file:
            config = load_yaml(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"No such pipeline config: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of sections {list(SECTIONS)}. Received: {type(config).__name__}")
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {override!r}: expected key.path=value.")
        try:
            value = os.path.abspath(value) if key in PATH_KEYS else load_yaml(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {override!r}: the value is not valid YAML: {err}") from None
        set_path(config, key, value)
    try:
        return check_config(config, os.path.dirname(os.path.abspath(path)))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
