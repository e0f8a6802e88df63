"""The fused ranking score: task outputs combined with weights ("output weight").

    sum:      score = sum_i w_i p_i
    product:  score = prod_i p_i^w_i = exp(sum_i w_i log p_i), p_i clipped to [1e-7, 1]

The exported SavedModel computes it in the graph with the weights in a variable, and
``search_weights`` scores the same formulas offline.
"""

import math

import tensorflow as tf

from tf_mtl.errors import did_you_mean

METHODS = ("sum", "product")
# Outputs are clipped away from 0 before the logarithm of a product.
EPSILON = 1e-7


def check_fusion(fusion, output_names):
    """``(method, names, weights)`` from a fusion spec.

    Args:
        fusion: ``None`` (the sum of the outputs named in ``output_names``, equal weights
            summing to 1), or ``{"method": "sum" | "product", "weights": {output: weight}}``
            (outputs left out weigh 0), e.g. what ``search_weights(...).as_fusion()`` returns.
        output_names: the outputs that may be fused.
    """
    output_names = list(output_names)
    if fusion is None:
        return "sum", output_names, [1.0 / len(output_names)] * len(output_names)
    if not isinstance(fusion, dict):
        raise ValueError(f"fusion must be a dict {{'method': ..., 'weights': {{output: weight}}}}. Received: {fusion!r}")
    unknown = sorted(set(fusion) - {"method", "weights"})
    if unknown:
        raise ValueError(f"fusion: unknown keys {unknown}; expected 'method' and 'weights'.")
    method = fusion.get("method", "sum")
    if method not in METHODS:
        raise ValueError(f"fusion.method must be one of {METHODS}. Received: {method!r}")
    weights = fusion.get("weights")
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"fusion.weights must be a non-empty dict {{output: weight}}. Received: {weights!r}")
    for name, weight in weights.items():
        if name not in output_names:
            raise ValueError(f"fusion.weights: {name!r} is not an output of the model" + did_you_mean(name, output_names, "Outputs"))
        if not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ValueError(f"fusion.weights[{name!r}] must be a finite number. Received: {weight!r}")
    return method, output_names, [float(weights.get(name, 0.0)) for name in output_names]


def fuse(outputs, names, weights, method):
    """The fused score ``(batch,)`` of ``outputs`` (a dict of ``(batch,)`` tensors)."""
    stacked = tf.stack([tf.cast(outputs[name], tf.float32) for name in names], axis=-1)
    weights = tf.cast(weights, tf.float32)
    if method == "sum":
        return tf.linalg.matvec(stacked, weights)
    return tf.exp(tf.linalg.matvec(tf.math.log(tf.clip_by_value(stacked, EPSILON, 1.0)), weights))
