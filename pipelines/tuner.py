"""Tuner: a KerasTuner search over dotted config keys; the best values go to the Trainer.

Each trial sets its values in the config (``apply_hyperparameters``), builds and compiles the
tf_mtl model as the Trainer does (optimizer, weighting, loss masks, label weights) and trains
it with Keras ``fit``. After every epoch a callback scores the eval split with
``Monitor(tuning.objective or training.monitor)`` (default: the mean AUC of the tasks) and
writes the score into the epoch's logs as ``val_objective``, which KerasTuner maximises. The
search lives in the step's ``work_dir``, so an interrupted search resumes where it stopped:
finished trials are not run again.

The search space, ``tuning.space``, maps dotted config keys under ``model`` or ``training``
to one entry each::

    space:
      model.params.n_expert: [2, 4, 8]                                # Choice
      training.weighting.method: [uwl, fixed]                         # Choice
      model.params.expert_params.dims: [[64], [128, 64]]              # Choice of "[64]", "[128, 64]"
      training.optimizer.lr: {min: 0.0001, max: 0.01, sampling: log}  # Float
      model.params.n_level: {min: 1, max: 2}                          # Int

- a non-empty list of scalars, all of one type (numbers, strings or booleans): ``Choice``;
- a non-empty list of lists or mappings: ``Choice`` over their JSON strings
  (``"[128, 64]"``), which ``hyperparameter_values`` decodes when the values are applied;
- a mapping ``{min, max, step, sampling}`` (``step`` and ``sampling`` optional), with
  ``min <= max``: ``Int`` when ``min``, ``max`` (and ``step``) are integers, else ``Float``;
  ``sampling`` is ``linear`` (default), ``log`` or ``reverse_log`` (these two need ``min > 0``).

``tuning.algorithm`` picks ``kt.RandomSearch``, ``kt.BayesianOptimization`` or ``kt.Hyperband``
(with ``max_epochs = tuning.epochs``; ``max_trials`` caps its number of trials too).
``tuning.samples`` caps the training rows each trial sees (whole batches), to keep a search
fast; ``tuning.seed`` (default ``training.seed``) fixes the order of the trials.

Output: ``best_hyperparameters.json``, KerasTuner's ``HyperParameters.get_config()`` of the best
trial (the form TFX's Tuner writes and ``run_fn`` reads: ``{"space": [...], "values":
{dotted key: value}}``), and ``trials.json``, every trial's values, objective and status.
"""

import json
import numbers
import os

import keras_tuner as kt

from pipelines.component import Component
from pipelines.checks import ConfigError, choice
from pipelines.hyperparameters import apply_hyperparameters, hyperparameter_values
from pipelines.example_gen import split_files
from pipelines.trainer import build, make_dataset, mask_columns
from pipelines.transform import read_transform
from tf_mtl.compat import keras
from tf_mtl.errors import did_you_mean
from tf_mtl.metrics import evaluate, flat_figures
from tf_mtl.training.monitor import Monitor
from tf_mtl.training import make_optimizer

OBJECTIVE = "val_objective"
BEST_FILE = "best_hyperparameters.json"
TRIALS_FILE = "trials.json"
SEARCH_FOLDER = "search"
SECTIONS = ("model", "training")
# The training keys a trial reads; a pipeline gives the Tuner only these, so a change of the
# others (epochs, strategy) does not rerun the search.
TRAINING_KEYS = ("batch_size", "seed", "optimizer", "weighting", "loss_masks", "label_weights", "monitor", "eval_steps")
SAMPLINGS = ("linear", "log", "reverse_log")
RANGE_KEYS = ("min", "max", "step", "sampling")


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _choice(hp, name, values, where):
    if not values:
        raise ConfigError(f"{where}: expected a non-empty list of choices. Received: {values!r}")
    if all(isinstance(v, (list, dict)) for v in values):
        hp.Choice(name, [json.dumps(v) for v in values])
        return
    kinds = {bool if isinstance(v, bool) else str if isinstance(v, str) else float if _is_number(v) else None for v in values}
    if None in kinds or len(kinds) > 1:
        raise ConfigError(
            f"{where}: expected choices that are all numbers, all strings, all booleans, or all lists "
            f"or mappings. Received: {values!r}"
        )
    if kinds == {float} and not all(_is_int(v) for v in values):
        values = [float(v) for v in values]
    hp.Choice(name, values)


def _range(hp, name, entry, where):
    for key in entry:
        if key not in RANGE_KEYS:
            raise ConfigError(f"{where}.{key}: unknown key" + did_you_mean(key, RANGE_KEYS, "Known keys"))
    for key in ("min", "max"):
        if key not in entry:
            raise ConfigError(f"{where}.{key}: required key is missing.")
        if not _is_number(entry[key]):
            raise ConfigError(f"{where}.{key}: expected a number. Received: {entry[key]!r}")
    low, high, step = entry["min"], entry["max"], entry.get("step")
    sampling = entry.get("sampling", "linear")
    if low > high:
        raise ConfigError(f"{where}: expected min <= max. Received: min={low!r}, max={high!r}")
    if step is not None and not (_is_number(step) and step > 0):
        raise ConfigError(f"{where}.step: expected a positive number. Received: {step!r}")
    if sampling not in SAMPLINGS:
        raise ConfigError(f"{where}.sampling: expected one of {list(SAMPLINGS)}. Received: {sampling!r}")
    if sampling != "linear" and low <= 0:
        raise ConfigError(f"{where}.min: {sampling} sampling needs min > 0. Received: {low!r}")
    if _is_int(low) and _is_int(high) and (step is None or _is_int(step)):
        hp.Int(name, int(low), int(high), step=None if step is None else int(step), sampling=sampling)
    else:
        hp.Float(name, float(low), float(high), step=step, sampling=sampling)


def search_space(space, where="tuning.space"):
    """The ``kt.HyperParameters`` of a ``tuning.space`` mapping (see the module docstring).

    Args:
        space: ``{dotted config key: entry}``; each key starts with ``model.`` or ``training.``.
        where: the key path errors name.

    Returns:
        ``kt.HyperParameters`` with one hyperparameter per key, named by the key.

    Raises:
        ConfigError: an entry or key that does not fit, named by its path
            (``tuning.space.training.optimizer.lr.sampling: ...``).
    """
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{where}: expected a non-empty mapping of dotted config keys. Received: {space!r}")
    hp = kt.HyperParameters()
    for name, entry in space.items():
        at = f"{where}.{name}"
        if not isinstance(name, str) or name.split(".")[0] not in SECTIONS or "" in name.split("."):
            raise ConfigError(f"{at}: expected a dotted key under {' or '.join(SECTIONS)} (model.params.n_expert). Received: {name!r}")
        if isinstance(entry, list):
            _choice(hp, name, entry, at)
        elif isinstance(entry, dict):
            _range(hp, name, entry, at)
        else:
            raise ConfigError(f"{at}: expected a list of choices or a mapping {{min, max, step, sampling}}. Received: {entry!r}")
    return hp


class ObjectiveCallback(keras.callbacks.Callback):
    """Writes the monitor's score of the eval data into each epoch's logs as ``val_objective``.

    It must come before KerasTuner's callbacks, which read the objective from the same logs.

    Args:
        eval_data: ``(x, y)`` batches.
        spec: a ``Monitor`` spec (``"cvr/auc"``, ``{"ctr/auc": 0.5, "cvr/auc": 0.5}``); ``None``
            is the mean AUC of the tasks.
    """

    def __init__(self, eval_data, spec=None):
        super().__init__()
        self.eval_data = eval_data
        self.spec = spec

    def on_epoch_end(self, epoch, logs=None):
        score = Monitor(self.spec, self.model).score(flat_figures(evaluate(self.model, self.eval_data)))
        if logs is not None:
            logs[OBJECTIVE] = score


class MTLHyperModel(kt.HyperModel):
    """Builds and trains the configured tf_mtl model with a trial's values applied.

    Args:
        config: the pipeline config's ``tasks``, ``model``, ``training`` and ``tuning``.
        features: the feature spec (tf_mtl feature objects).
        names: the dotted keys being tuned (other hyperparameters, e.g. Hyperband's
            ``tuner/epochs``, are not config keys).
    """

    def __init__(self, config, features, names):
        super().__init__(name="tf_mtl")
        self.config = config
        self.features = features
        self.names = list(names)

    def trial_config(self, hp):
        """The config with the trial's values set."""
        return apply_hyperparameters(self.config, hyperparameter_values({n: hp.get(n) for n in self.names}))

    def build(self, hp):
        config = self.trial_config(hp)
        training = config.get("training") or {}
        keras.utils.set_random_seed(training.get("seed", 0))
        model = build(config, self.features)
        optimizer = dict(training.get("optimizer") or {})
        model.compile(
            make_optimizer(optimizer.pop("name", None), optimizer or None),
            weighting=training.get("weighting"),
            loss_masks=training.get("loss_masks"),
            label_weights=training.get("label_weights"),
        )
        return model

    def fit(self, hp, model, x, eval_data=None, callbacks=None, **kwargs):
        """Keras ``fit`` on ``x``, scoring ``eval_data`` after each epoch (see ``ObjectiveCallback``)."""
        tuning = self.config.get("tuning") or {}
        spec = tuning.get("objective") or (self.config.get("training") or {}).get("monitor")
        kwargs.setdefault("shuffle", False)  # the dataset reshuffles itself each epoch
        return model.fit(x, callbacks=[ObjectiveCallback(eval_data, spec), *(callbacks or [])], **kwargs)


class _WithoutTensorBoard:
    """KerasTuner (TensorFlow backend) imports the ``tensorboard`` package before every trial,
    only to point TensorBoard callbacks at the trial's folder. TensorFlow 2.21 no longer
    installs that package and this search passes no such callback, so the step is skipped."""

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        return None


ALGORITHMS = {
    name: type(tuner.__name__, (_WithoutTensorBoard, tuner), {})
    for name, tuner in (("random", kt.RandomSearch), ("bayesian", kt.BayesianOptimization), ("hyperband", kt.Hyperband))
}


def make_tuner(hypermodel, hyperparameters, tuning, directory, seed=0):
    """The KerasTuner tuner ``tuning.algorithm`` names, keeping its state under ``directory``
    (an existing search there is resumed). The first failing trial stops the search."""
    algorithm = tuning.get("algorithm", "random")
    common = dict(
        hypermodel=hypermodel,
        objective=kt.Objective(OBJECTIVE, "max"),
        # KerasTuner reads a seed of 0 as "none" and draws one at random: shifted, every seed is kept.
        seed=tuning.get("seed", seed) + 1,
        hyperparameters=hyperparameters,
        tune_new_entries=False,
        max_consecutive_failed_trials=1,
        directory=directory,
        project_name=SEARCH_FOLDER,
        overwrite=False,
    )
    choice(algorithm, list(ALGORITHMS), "tuning.algorithm")
    max_trials = tuning.get("max_trials", 4)
    if algorithm != "hyperband":
        return ALGORITHMS[algorithm](max_trials=max_trials, **common)
    tuner = ALGORITHMS[algorithm](max_epochs=tuning.get("epochs", 1), **common)
    # Hyperband's count of trials follows from max_epochs; its oracle also honours this cap.
    tuner.oracle.max_trials = max_trials
    return tuner


def tune(config, features, defaults, train_files, eval_files, directory, verbose=2):
    """Runs (or resumes) the search ``config["tuning"]`` describes; returns the tuner.

    Args:
        config: the ``tasks``, ``model``, ``training`` and ``tuning`` sections.
        features: the feature spec; ``defaults``: missing-value defaults (the Transform's).
        train_files, eval_files: example files of the two splits.
        directory: where the search keeps its trials.
    """
    if not config.get("tuning"):
        raise ConfigError("tuning: required section is missing.")
    tuning, training = config["tuning"], config.get("training") or {}
    hyperparameters = search_space(tuning.get("space"))
    batch_size, seed = training.get("batch_size", 512), training.get("seed", 0)
    extra = mask_columns(config)
    train_data = make_dataset(train_files, features, config["tasks"], defaults, batch_size, True, seed, extra)
    if tuning.get("samples"):
        train_data = train_data.take(-(-int(tuning["samples"]) // batch_size))
    eval_data = make_dataset(eval_files, features, config["tasks"], defaults, batch_size, extra_labels=extra)
    if training.get("eval_steps"):
        eval_data = eval_data.take(int(training["eval_steps"]))
    hypermodel = MTLHyperModel(config, features, hyperparameters.values)
    tuner = make_tuner(hypermodel, hyperparameters, tuning, directory, seed)
    tuner.search(train_data, eval_data=eval_data, epochs=tuning.get("epochs", 1), verbose=verbose)
    return tuner


def best_hyperparameters(tuner, names):
    """The best trial's ``HyperParameters.get_config()``, restricted to the tuned keys
    ``names`` (Hyperband adds its own ``tuner/...`` entries, which are not config keys)."""
    config = tuner.get_best_hyperparameters(1)[0].get_config()
    config["space"] = [s for s in config["space"] if s["config"]["name"] in names]
    config["values"] = {k: v for k, v in config["values"].items() if k in names}
    return config


def trial_records(tuner, names):
    """Every trial, in order: ``{"trial_id", "values" (decoded), "objective", "status"}``."""
    return [
        {
            "trial_id": trial.trial_id,
            "values": hyperparameter_values({n: trial.hyperparameters.get(n) for n in names}),
            "objective": trial.score,
            "status": trial.status,
        }
        for trial in sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    ]


class Tuner(Component):
    """Searches the ``tuning.space`` of the config on the examples with the Transform's features.

    Params: the pipeline config's ``name``, ``tasks``, ``model``, ``training`` and ``tuning``.
    Output: ``best_hyperparameters.json`` (read by the Trainer) and ``trials.json``.
    """

    INPUTS = ("examples", "transform")

    def run(self, inputs, output_dir):
        features, defaults = read_transform(inputs["transform"].path)
        examples = inputs["examples"].path
        tuner = tune(
            self.params, features, defaults, split_files(examples, "train"), split_files(examples, "eval"),
            self.work_dir, self.params.get("verbose", 2),
        )
        names = tuner.hypermodel.names
        best = best_hyperparameters(tuner, names)
        trials = trial_records(tuner, names)
        with open(os.path.join(output_dir, BEST_FILE), "w") as file:
            json.dump(best, file, indent=1)
        with open(os.path.join(output_dir, TRIALS_FILE), "w") as file:
            json.dump(trials, file, indent=1)
        return {
            "best_objective": float(tuner.oracle.get_best_trials(1)[0].score),
            "best_values": hyperparameter_values(best),
            "trials": len(trials),
        }

    def describe(self, artifact):
        figures = artifact.figures
        values = ", ".join(f"{k}={v}" for k, v in figures["best_values"].items())
        return f"best {OBJECTIVE} {figures['best_objective']:.4f} ({values}); {figures['trials']} trials"
