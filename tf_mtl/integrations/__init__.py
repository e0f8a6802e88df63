"""Bridges from tf_mtl models to other TensorFlow libraries.

Each bridge lives in its own module and is imported by name, so importing this package
pulls in none of the libraries it bridges to:

- ``tf_mtl.integrations.tfrs``: a tf_mtl model as a TensorFlow Recommenders
  ``tfrs.models.Model`` (one ``tfrs.tasks.Ranking`` per loss term). TensorFlow Recommenders
  runs on Keras 2 only: set ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported;
  importing the module without it raises ``ImportError``.
"""
