"""Small generated data and tiny models for the trainer tests; the scripts run in subprocesses
import it too.

The data is ``click_conversion`` without its two string features (ONNX exports integer ids
only) and with a regression label ``dwell`` next to ``ctr`` and ``cvr``.
"""

import numpy as np

from tf_mtl.compat import keras
from tf_mtl.data import DataGenerator, click_conversion
from tf_mtl.models import build_model

C, R = "classification", "regression"
TOWERS = {"dims": [4]}
MODELS = {
    "mmoe": {"n_expert": 2, "expert_params": {"dims": [8]}},
    "shared_bottom": {"bottom_params": {"dims": [8]}},
    "esmm": {"bottom_params": None},
}


def click_data(n=6000, seed=0):
    """``(features, x, y)``: integer and dense features, labels ``ctr``, ``cvr`` and ``dwell``."""
    data = click_conversion(n, seed=seed, embed_dim=4)
    features = tuple(f for f in data.features if getattr(f, "dtype", None) != "string")
    x = {f.name: data.x[f.name] for f in features}
    rng = np.random.default_rng(seed)
    dwell = data.y["ctr"] * 2.0 + x["position"] / 20.0 + rng.normal(0.0, 0.1, n)
    return features, x, {**data.y, "dwell": dwell.astype(np.float32)}


def loaders(x, y, batch_size=128, split_ratio=(0.7, 0.15), seed=0, shuffle=True):
    """``(train, val, test)`` from ``DataGenerator``. The global seed is fixed first: shuffling
    depends on it, so every run gets the same order whatever seed built its model."""
    keras.utils.set_random_seed(seed)
    return DataGenerator(x, y).generate_dataloader(
        split_ratio=list(split_ratio), batch_size=batch_size, seed=seed, shuffle=shuffle
    )


def tiny_model(features, name="mmoe", task_names=("ctr", "cvr"), task_types=(C, C), dropout=0.0, seed=0, **overrides):
    """A model with widths of 4 to 8, built after seeding every generator with ``seed``."""
    keras.utils.set_random_seed(seed)
    params = {key: dict(value) if isinstance(value, dict) else value for key, value in MODELS[name].items()}
    for key in ("expert_params", "bottom_params"):
        if params.get(key) is not None and dropout:
            params[key]["dropout"] = dropout
    params.update(overrides)
    return build_model(
        name, features, list(task_types), list(task_names), tower_params_list=[dict(TOWERS) for _ in task_types], **params
    )


def labels(y, names):
    """The label dict restricted to ``names`` (a model's tasks and any mask columns)."""
    return {name: y[name] for name in names}
