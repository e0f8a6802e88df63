"""Default arguments of each model, as plain dicts, and a builder that takes a model by name.

Pipelines and the CLI name models in configs (``"mmoe"``); the arguments of a preset are
overridden key by key.
"""


from tf_mtl.errors import did_you_mean
from tf_mtl.models.aitm import AITM
from tf_mtl.models.esmm import ESMM
from tf_mtl.models.mmoe import MMOE, OMoE
from tf_mtl.models.ple import PLE
from tf_mtl.models.shared_bottom import SharedBottom
from tf_mtl.models.single_task import SingleTask

_TOWER = {"dims": [64]}
PRESETS = {
    "shared_bottom": (SharedBottom, {"bottom_params": {"dims": [256, 128]}}),
    "esmm": (ESMM, {"bottom_params": None}),
    "mmoe": (MMOE, {"n_expert": 4, "expert_params": {"dims": [256, 128]}}),
    "omoe": (OMoE, {"n_expert": 4, "expert_params": {"dims": [256, 128]}}),
    "ple": (PLE, {"n_level": 1, "n_expert_specific": 2, "n_expert_shared": 2, "expert_params": {"dims": [256, 128]}}),
    "aitm": (AITM, {"bottom_params": {"dims": [128, 64]}}),
    "single_task": (SingleTask, {"bottom_params": {"dims": [256, 128]}}),
}


def build_model(name, features, task_types, task_names=None, **overrides):
    """Builds the model called ``name`` (a key of ``PRESETS``) with its preset arguments,
    a ``[64]`` tower per task unless ``tower_params_list`` is given, and ``overrides``."""
    if name not in PRESETS:
        raise ValueError(f"Unknown model {name!r}" + did_you_mean(name, sorted(PRESETS), "Known models"))
    cls, params = PRESETS[name]
    params = {"tower_params_list": [dict(_TOWER) for _ in task_types], **params, **overrides}
    return cls(features, task_types, task_names=task_names, **params)
