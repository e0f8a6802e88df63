"""Loss weighting for multi-task training: one small class per method, one contract (``base``).

``get(spec)`` turns what users write into a method: ``None`` (equal weights), a name
(``"uwl"``), a dict (``{"method": "gradnorm", "alpha": 1.5}``) or an instance.
"""

from tf_mtl.errors import did_you_mean
from tf_mtl.weighting.base import LossWeighting, Weighted
from tf_mtl.weighting.dwa import DynamicWeightAverage
from tf_mtl.weighting.fixed import FixedWeighting
from tf_mtl.weighting.gradnorm import GradNorm
from tf_mtl.weighting.metabalance import MetaBalance
from tf_mtl.weighting.mgda import MGDA, min_norm_weights
from tf_mtl.weighting.pcgrad import PCGrad
from tf_mtl.weighting.uncertainty import UncertaintyWeighting

METHODS = {
    "fixed": FixedWeighting,
    "uwl": UncertaintyWeighting,
    "gradnorm": GradNorm,
    "dwa": DynamicWeightAverage,
    "pareto": MGDA,
    "pcgrad": PCGrad,
    "metabalance": MetaBalance,
}
ALIASES = {"equal": "fixed", "uncertainty": "uwl", "mgda": "pareto"}


def get(spec=None):
    """A ``LossWeighting`` from ``None``, a method name, a dict with ``"method"`` or an instance."""
    if isinstance(spec, LossWeighting):
        return spec
    if spec is None:
        return FixedWeighting()
    if isinstance(spec, str):
        spec = {"method": spec}
    if not isinstance(spec, dict) or "method" not in spec:
        raise ValueError(f"adaptive_params must be a method name or a dict with a 'method' key. Received: {spec!r}")
    params = dict(spec)
    method = ALIASES.get(params.pop("method"), spec["method"])
    if method not in METHODS:
        raise ValueError(f"Unknown weighting method {spec['method']!r}" + did_you_mean(spec["method"], list(METHODS) + list(ALIASES), "Methods"))
    try:
        return METHODS[method](**params)
    except TypeError as error:
        raise ValueError(f"Weighting method {spec['method']!r}: bad parameters {sorted(params)}: {error}") from None


def serialize(weighting):
    """The dict ``get`` turns back into an equal (unbuilt) method."""
    method = next(name for name, cls in METHODS.items() if type(weighting) is cls)
    return {"method": method, **weighting.get_config()}


__all__ = [
    "DynamicWeightAverage",
    "FixedWeighting",
    "GradNorm",
    "LossWeighting",
    "METHODS",
    "MGDA",
    "MetaBalance",
    "PCGrad",
    "UncertaintyWeighting",
    "Weighted",
    "get",
    "min_norm_weights",
    "serialize",
]
