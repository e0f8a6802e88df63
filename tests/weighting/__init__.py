"""Tests of tf_mtl.weighting."""
