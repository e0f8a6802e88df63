"""Tests of tf_mtl.layers."""
