"""Trains MMoE with MTLTrainer for the distribution tests; writes the final weights to an .npz.

    python train_worker.py single OUT_DIR METHOD
    python train_worker.py mirrored OUT_DIR METHOD          # two logical CPU devices
    python train_worker.py worker OUT_DIR METHOD            # TF_CONFIG names the cluster and task
"""

import os
import sys

import numpy as np
import tensorflow as tf


def main(mode, out_dir, method):
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif mode == "worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = None

    from tf_mtl.compat import keras
    from tf_mtl.data import DataGenerator, click_conversion
    from tf_mtl.models import build_model
    from tf_mtl.trainers import MTLTrainer

    keras.utils.set_random_seed(0)
    data = click_conversion(3000, seed=0)
    train, val, _ = DataGenerator(data.x, data.y).generate_dataloader(split_ratio=[0.8, 0.1], batch_size=256, seed=1)
    with strategy.scope() if strategy else tf.distribute.get_strategy().scope():
        model = build_model(
            "mmoe", data.features, data.task_types, data.task_names, expert_params={"dims": [16]}
        )
    trainer = MTLTrainer(
        model, adaptive_params={"method": method}, n_epoch=2, model_path=out_dir, verbose=0, strategy=strategy
    )
    trainer.fit(train, val)
    state = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    state["task_weights"] = trainer.weighting.current_weights().numpy()
    np.savez(os.path.join(trainer.model_path, "final.npz"), **state)


if __name__ == "__main__":
    main(*sys.argv[1:4])
