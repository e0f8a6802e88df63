"""Training: ``MTLTrainer`` (the custom loop under ``tf.distribute``), devices, early stopping."""

from tf_mtl.training.devices import device_name, resolve_strategy
from tf_mtl.training.monitor import Monitor
from tf_mtl.training.optimizers import LazyAdam, make_optimizer
from tf_mtl.training.trainer import MTLTrainer, NonFiniteLossError, WorkerLostError

__all__ = ["LazyAdam", "MTLTrainer", "Monitor", "NonFiniteLossError", "WorkerLostError", "device_name", "make_optimizer", "resolve_strategy"]
