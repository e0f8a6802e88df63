"""The reference documentation's multi-task example, run with tf_mtl.

Define features -> DataGenerator -> MMOE -> MTLTrainer with uncertainty weighting -> fit ->
evaluate -> export_onnx -> predict, on generated impressions shaped like the Ali-CCP sample:
integer-coded sparse columns, min-max scaled dense columns and the labels
``[cvr_label, ctr_label]`` (conversions are observed only after a click).

    python examples/mmoe_quickstart.py --rows 40000 --epochs 5 --output-dir runs/mmoe_quickstart
"""

import argparse
import os

import pandas as pd

from tf_mtl.data import DataGenerator, click_conversion
from tf_mtl.features import DenseFeature, SparseFeature
from tf_mtl.models import MMOE
from tf_mtl.trainers import MTLTrainer


def ali_ccp_like(rows, seed):
    """A DataFrame like the Ali-CCP sample: ids coded 0..n-1, dense columns scaled to [0, 1]."""
    generated = click_conversion(rows, seed=seed)
    data = pd.DataFrame({name: values for name, values in generated.x.items() if values.ndim == 1})
    dense_cols = [f.name for f in generated.features if isinstance(f, DenseFeature)]
    for col in data.columns:
        if col in dense_cols:
            low, high = data[col].min(), data[col].max()
            data[col] = (data[col] - low) / (high - low)
        else:
            data[col] = pd.factorize(data[col], sort=True)[0]
    data["ctr_label"], data["cvr_label"] = generated.y["ctr"], generated.y["cvr"]
    return data, dense_cols


def main(rows=40_000, epochs=5, batch_size=1024, output_dir="runs/mmoe_quickstart", seed=2022):
    data, dense_cols = ali_ccp_like(rows, seed)
    label_cols = ["cvr_label", "ctr_label"]
    sparse_cols = [col for col in data.columns if col not in dense_cols + label_cols]
    used_cols = sparse_cols + dense_cols

    # Define features: every task shares the same inputs.
    features = [SparseFeature(col, int(data[col].max()) + 1, embed_dim=4) for col in sparse_cols] + [
        DenseFeature(col) for col in dense_cols
    ]

    # Train / validation / test loaders; y is a label matrix, one column per task.
    train_idx, val_idx = int(rows * 0.8), int(rows * 0.9)
    x_train = {name: data[name].values[:train_idx] for name in used_cols}
    y_train = data[label_cols].values[:train_idx]
    x_val = {name: data[name].values[train_idx:val_idx] for name in used_cols}
    y_val = data[label_cols].values[train_idx:val_idx]
    x_test = {name: data[name].values[val_idx:] for name in used_cols}
    y_test = data[label_cols].values[val_idx:]
    dg = DataGenerator(x_train, y_train)
    train_dataloader, val_dataloader, test_dataloader = dg.generate_dataloader(
        x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test, batch_size=batch_size
    )

    task_types = ["classification", "classification"]
    model = MMOE(
        features=features,
        task_types=task_types,
        n_expert=3,
        expert_params={"dims": [16], "dropout": 0.2, "activation": "relu"},
        tower_params_list=[{"dims": [8]}, {"dims": [8]}],
    )
    mtl_trainer = MTLTrainer(
        model,
        task_types=task_types,
        optimizer_params={"lr": 1e-3, "weight_decay": 1e-4},
        adaptive_params={"method": "uwl"},
        n_epoch=epochs,
        earlystop_patience=30,
        device="cpu",
        model_path=output_dir,
    )
    mtl_trainer.fit(train_dataloader, val_dataloader)
    auc = mtl_trainer.evaluate(mtl_trainer.model, test_dataloader)
    print(f"test auc (cvr, ctr): {auc[0]:.4f}, {auc[1]:.4f}")

    onnx_path = mtl_trainer.export_onnx(os.path.join(output_dir, "mmoe.onnx"))
    print(f"ONNX model: {onnx_path}")
    predictions = mtl_trainer.predict(mtl_trainer.model, test_dataloader)
    print(f"predictions: {predictions.shape[0]} rows x {predictions.shape[1]} tasks; first row", *(f"{p:.4f}" for p in predictions[0]))
    return auc, predictions


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--output-dir", default="runs/mmoe_quickstart")
    args = parser.parse_args()
    main(args.rows, args.epochs, args.batch_size, args.output_dir)
