"""Tests of tf_mtl.fusion."""
