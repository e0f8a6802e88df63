"""Trains MMoE with MTLTrainer for the distribution tests; writes the final state to an .npz
(``w0``, ... the model's weights, ``o0``, ... the optimizer's variables, ``task_weights``).

    python train_worker.py single OUT_DIR METHOD [--epochs N]
    python train_worker.py mirrored OUT_DIR METHOD          # two logical CPU devices
    python train_worker.py worker OUT_DIR METHOD [--pause POINT]  # TF_CONFIG names the cluster and task

``--pause`` stops the run at a point until it is killed (see ``tests/reliability/_training_pauses.py``).
"""

import argparse
import os

import numpy as np
import tensorflow as tf


def main(mode, out_dir, method, epochs, pause):
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif mode == "worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = None

    from tests.reliability._training_pauses import pause_at
    from tf_mtl.compat import keras
    from tf_mtl.data import DataGenerator, click_conversion
    from tf_mtl.models import build_model
    from tf_mtl.trainers import MTLTrainer

    keras.utils.set_random_seed(0)
    data = click_conversion(3000, seed=0)
    train, val, _ = DataGenerator(data.x, data.y).generate_dataloader(split_ratio=[0.8, 0.1], batch_size=240, seed=1)
    with strategy.scope() if strategy else tf.distribute.get_strategy().scope():
        model = build_model(
            "mmoe", data.features, data.task_types, data.task_names, expert_params={"dims": [16]}
        )
    trainer = MTLTrainer(
        model, adaptive_params={"method": method}, n_epoch=epochs, earlystop_patience=epochs, model_path=out_dir,
        verbose=2, strategy=strategy, callbacks=pause_at(pause),
    )
    trainer.fit(train, val)
    state = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    state.update({f"o{i}": np.asarray(v) for i, v in enumerate(trainer.optimizer.variables)})
    state["task_weights"] = trainer.weighting.current_weights().numpy()
    np.savez(os.path.join(trainer.model_path, "final.npz"), **state)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["single", "mirrored", "worker"])
    parser.add_argument("out_dir")
    parser.add_argument("method")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--pause")
    main(**vars(parser.parse_args()))
