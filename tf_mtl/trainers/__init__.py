"""The reference API's import path: ``from tf_mtl.trainers import MTLTrainer``."""

from tf_mtl.training import MTLTrainer

__all__ = ["MTLTrainer"]
