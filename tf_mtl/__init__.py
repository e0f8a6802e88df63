"""tf_mtl: multi-task ranking models for recommender systems on TensorFlow/Keras."""

__version__ = "0.1.0"
