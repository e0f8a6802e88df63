"""Exports of trained models for serving outside Keras."""

from tf_mtl.export.onnx import export_onnx

__all__ = ["export_onnx"]
