"""The multi-task models. Each is a functional ``keras.Model`` returning a dict keyed by task name."""

from tf_mtl.models.aitm import AITM
from tf_mtl.models.base import MultiTaskModel, load_model
from tf_mtl.models.esmm import ESMM
from tf_mtl.models.mmoe import MMOE, OMoE
from tf_mtl.models.ple import PLE
from tf_mtl.models.presets import PRESETS, build_model
from tf_mtl.models.shared_bottom import SharedBottom
from tf_mtl.models.single_task import SingleTask

__all__ = ["AITM", "ESMM", "MMOE", "PRESETS", "MultiTaskModel", "OMoE", "PLE", "SharedBottom", "SingleTask", "build_model", "load_model"]
