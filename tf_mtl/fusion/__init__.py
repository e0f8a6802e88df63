"""Fusing task outputs into one ranking score, and searching the fusion weights offline.

``score``: the fused score (weighted sum or weighted product) the exported model computes;
``search``: ``search_weights``, the offline search of the fusion weights.
"""

from tf_mtl.fusion.score import EPSILON, METHODS, check_fusion, fuse
from tf_mtl.fusion.search import search_weights

__all__ = ["EPSILON", "METHODS", "check_fusion", "fuse", "search_weights"]
