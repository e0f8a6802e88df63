"""Tests of tf_mtl.export."""
