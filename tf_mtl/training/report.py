"""What a training run shows: a line per epoch, TensorBoard scalars and a PNG of its curves."""

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tf_mtl.files import atomic_path


def epoch_line(record, n_epoch, best):
    parts = [f"epoch {record['epoch']}/{n_epoch}", f"loss {record['train']['loss']:.4f}"]
    parts += [f"{k} {v:.4f}" for k, v in record["train"].items() if k != "loss"]
    parts += [f"val {k} {v:.4f}" for k, v in record["val"].items() if "/" in k or k == "loss"]
    parts += ["weights " + " ".join(f"{k} {v:.3f}" for k, v in record["weights"].items())]
    parts.append(f"{record['seconds']:.1f}s" + ("  *best*" if best else ""))
    return "  ".join(parts)


def gate_utilisation(model, dataset):
    """Mean weight of each expert in each gate on the first batch of ``dataset`` (``{}`` without gates)."""
    if dataset is None:
        return {}
    batch = next(iter(dataset))
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    return {
        f"{gate}/expert_{i}": float(v)
        for gate, weights in model.gate_weights(x).items()
        for i, v in enumerate(np.mean(weights, axis=0))
    }


# TensorBoard's scalar plugin reads summaries tagged with this metadata; writing them with
# ``tf.summary.write`` needs no ``tensorboard`` package, only viewing them does.
_SCALAR = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


def write_scalars(writer, record):
    """One epoch's figures as TensorBoard scalars: ``train/``, ``val/``, ``weights/``, ``gates/``."""
    with writer.as_default(step=record["epoch"]):
        for group in ("train", "val", "weights", "gates"):
            for name, value in record.get(group, {}).items():
                tf.summary.write(f"{group}/{name}", tf.constant(value, tf.float32), metadata=_SCALAR)
    writer.flush()


def plot_curves(history, path):
    """A PNG of the run: training and validation losses, validation metrics and task weights per epoch."""
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    figure = Figure(figsize=(15, 4), layout="constrained")
    panels = figure.subplots(1, 3)
    for key in history[-1]["train"]:
        panels[0].plot(epochs, [r["train"].get(key, np.nan) for r in history], marker="o", label=f"train {key}")
    for key in history[-1]["val"]:
        if key == "loss" or key.endswith("_loss"):
            panels[0].plot(epochs, [r["val"].get(key, np.nan) for r in history], marker="x", ls="--", label=f"val {key}")
        else:
            panels[1].plot(epochs, [r["val"].get(key, np.nan) for r in history], marker="o", label=key)
    for key in history[-1]["weights"]:
        panels[2].plot(epochs, [r["weights"].get(key, np.nan) for r in history], marker="o", label=key)
    for panel, title in zip(panels, ("losses", "validation metrics", "task weights")):
        panel.set_title(title)
        panel.set_xlabel("epoch")
        if panel.has_data():
            panel.legend(fontsize="small")
    with atomic_path(path, suffix=".png") as partial:
        figure.savefig(partial, format="png")
    return path
