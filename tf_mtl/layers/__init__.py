"""Building blocks shared by every model: MLP (and expert groups), gates, CGC levels, AIT, towers."""

from tf_mtl.layers.attention import InformationTransfer
from tf_mtl.layers.cgc import ExtractionLevel
from tf_mtl.layers.gate import GatedMixture
from tf_mtl.layers.mlp import MLP, check_mlp_params
from tf_mtl.layers.tower import Tower

__all__ = ["ExtractionLevel", "GatedMixture", "InformationTransfer", "MLP", "Tower", "check_mlp_params"]
