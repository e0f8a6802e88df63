"""Exports of trained models: SavedModels for TF Serving, ONNX files (``export_onnx`` needs
the ``[onnx]`` extra and is imported on first use)."""

from tf_mtl.export.saved_model import (
    ServingModule,
    export_saved_model,
    next_version,
    save_servable,
    to_examples,
    versions,
    warmup_inputs,
)


def __getattr__(name):
    if name == "export_onnx":
        from tf_mtl.export.onnx import export_onnx

        return export_onnx
    raise AttributeError(f"module 'tf_mtl.export' has no attribute {name!r}")


__all__ = ["ServingModule", "export_onnx", "export_saved_model", "next_version", "save_servable", "to_examples", "versions", "warmup_inputs"]
