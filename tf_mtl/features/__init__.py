"""Feature spec and everything derived from it: inputs, parse spec, serving specs, embeddings."""

from tf_mtl.features.embedding import FeatureEmbedding, row_ids
from tf_mtl.features.inputs import keras_inputs, parse_examples, parse_spec, tensor_specs
from tf_mtl.features.spec import (
    DenseFeature,
    SequenceFeature,
    SparseFeature,
    feature_from_config,
    feature_to_config,
    features_from_config,
    features_from_json,
    features_from_yaml,
    features_to_config,
    features_to_json,
    features_to_yaml,
    validate_features,
)

__all__ = [
    "DenseFeature",
    "FeatureEmbedding",
    "SequenceFeature",
    "SparseFeature",
    "feature_from_config",
    "feature_to_config",
    "features_from_config",
    "features_from_json",
    "features_from_yaml",
    "features_to_config",
    "features_to_json",
    "features_to_yaml",
    "keras_inputs",
    "parse_examples",
    "parse_spec",
    "row_ids",
    "tensor_specs",
    "validate_features",
]
