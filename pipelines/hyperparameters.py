"""Hyperparameters as dotted config keys (``model.params.n_expert``), as the Tuner writes them
and ``run_fn`` applies them."""

import copy
import json

from pipelines.checks import ConfigError


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
