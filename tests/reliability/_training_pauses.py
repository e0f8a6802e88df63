"""Stops a training process at a chosen point, so that a test can SIGKILL it exactly there.

The training scripts of the fault tests (``_training_run.py``, ``tests/distribute/train_worker.py``)
call ``pause_at(point)`` before training and pass the callbacks it returns to ``MTLTrainer``. At
``point`` the process prints ``paused at POINT`` and sleeps until it is killed. Points:

- ``step:N``: after training step N, counted over the run (a resumed run continues the count).
- ``save:E:STAGE``: while the checkpoint of epoch E is being written under ``checkpoints/``, at
  one of ``STAGES``, in the order ``tf.train.CheckpointManager.save`` reaches them.

The stages are found by wrapping the TensorFlow functions each one ends with (TensorFlow 2.21;
a point never reached shows as a run that ends without pausing, which the tests refuse).
"""

import os
import time

from tensorflow.python.checkpoint import functional_saver
from tensorflow.python.lib.io import file_io

from tf_mtl.compat import keras

STAGES = {
    "shards": "tensors written to ckpt-{epoch}_temp/, not yet merged",
    "merged": "ckpt-{epoch}.index and .data in place, not yet named in the state file",
    "state": "the new state file written beside the old one, not yet renamed over it",
}
MARKER = "paused at "


def _pause(point):
    print(f"{MARKER}{point}", flush=True)
    while True:
        time.sleep(60)


class _PauseAtStep(keras.callbacks.Callback):
    def __init__(self, point, step):
        super().__init__()
        self.point, self.step = point, step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            _pause(self.point)


def _text(value):
    return value.numpy().decode() if hasattr(value, "numpy") else os.fspath(value)


def _hook(stage, epoch):
    """``(owner, name, before, reached)``: the TensorFlow function whose call ends ``stage`` (or,
    ``before``, whose call starts what follows it), and a test of whether a call is epoch ``epoch``'s."""
    prefix = os.path.join("checkpoints", f"ckpt-{epoch}")
    if stage == "shards":

        def reached(shard, *_, **__):
            return os.path.dirname(_text(shard)).endswith(prefix + "_temp")

        return functional_saver.io_ops, "save_v2", False, reached
    if stage == "merged":

        def reached(_, merged, *__, **___):
            return _text(merged).endswith(prefix)

        return functional_saver.gen_io_ops, "merge_v2_checkpoints", False, reached

    def reached(old, new, *_, **__):  # the state file's atomic write: its temporary file renamed
        named = f'model_checkpoint_path: "ckpt-{epoch}"'
        return _text(new).endswith(os.path.join("checkpoints", "checkpoint")) and named in file_io.read_file_to_string(old)

    return file_io, "rename", True, reached


def pause_at(point):
    """Installs the pause at ``point`` (nothing for ``None``); returns the callbacks to give the trainer."""
    if point is None:
        return []
    kind, *where = point.split(":")
    if kind == "step" and len(where) == 1:
        return [_PauseAtStep(point, int(where[0]))]
    if kind != "save" or len(where) != 2 or where[1] not in STAGES:
        raise ValueError(f"pause point {point!r}: expected 'step:N' or 'save:EPOCH:STAGE' with STAGE in {list(STAGES)}")
    owner, name, before, reached = _hook(where[1], int(where[0]))
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        if before and reached(*args, **kwargs):
            _pause(point)
        result = original(*args, **kwargs)
        if not before and reached(*args, **kwargs):
            _pause(point)
        return result

    setattr(owner, name, wrapper)
    return []
