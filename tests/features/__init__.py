"""Tests of tf_mtl.features."""
