"""A multi-task dataset held in memory, and the seeded train/validation/test split.

``MultiTaskData`` is what the synthetic generators and the Census-Income loader return: the
feature spec, the tasks, and the arrays a model takes, so that

>>> data = mmoe_synthetic(1000, correlation=0.5)
>>> train, val, test = DataGenerator(data.x, data.y).generate_dataloader(split_ratio=[0.8, 0.1])

is all the wiring an example needs.
"""

import dataclasses
import math
from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np
import pandas as pd

from tf_mtl.data.checks import check_label
from tf_mtl.features.spec import Feature, SequenceFeature, validate_features
from tf_mtl.tasks import TASK_TYPES


@dataclasses.dataclass(frozen=True, eq=False)
class MultiTaskData:
    """Features, tasks and their arrays, checked to agree with each other.

    Args:
        features: the feature spec (a tuple of ``SparseFeature``/``SequenceFeature``/
            ``DenseFeature``); ``x`` holds exactly these names.
        task_types: ``"classification"`` or ``"regression"`` per task.
        task_names: one name per task; ``y`` holds exactly these names.
        x: feature name -> numpy array with the shape and dtype the model's input takes.
        y: task name -> float32 array of shape ``(N,)``: finite, and 0 or 1 for a
            classification task.
        oracle: for generated data, task name -> the label's expectation given the features
            under the generating model (a probability for classification): the best score any
            model can reach. ``None`` for real data.
    """

    features: Tuple[Feature, ...]
    task_types: Tuple[str, ...]
    task_names: Tuple[str, ...]
    x: Dict[str, np.ndarray]
    y: Dict[str, np.ndarray]
    oracle: Optional[Dict[str, np.ndarray]] = None

    def __post_init__(self):
        object.__setattr__(self, "features", validate_features(self.features))
        object.__setattr__(self, "task_types", tuple(self.task_types))
        object.__setattr__(self, "task_names", tuple(self.task_names))
        if len(self.task_types) != len(self.task_names):
            raise ValueError(
                f"MultiTaskData: {len(self.task_types)} task_types for {len(self.task_names)} task_names "
                f"{list(self.task_names)}; expected one type per task."
            )
        for name, task_type in zip(self.task_names, self.task_types):
            if task_type not in TASK_TYPES:
                raise ValueError(f"MultiTaskData: task {name!r} has type {task_type!r}; expected one of {TASK_TYPES}.")
        _check_keys("x", self.x, [f.name for f in self.features])
        _check_keys("y", self.y, self.task_names)
        if self.oracle is not None:
            _check_keys("oracle", self.oracle, self.task_names)
        n_rows = len(self.y[self.task_names[0]])
        for part in ("x", "y", "oracle"):
            for name, values in (getattr(self, part) or {}).items():
                if len(values) != n_rows:
                    raise ValueError(
                        f"MultiTaskData: {part}[{name!r}] has {len(values)} rows; expected {n_rows} "
                        f"like y[{self.task_names[0]!r}]."
                    )
        for name, task_type in zip(self.task_names, self.task_types):
            check_label(f"MultiTaskData: y[{name!r}]", task_type, self.y[name])

    @property
    def num_examples(self):
        return len(self.y[self.task_names[0]])

    def subset(self, indices):
        """The rows at ``indices`` (an integer array), in that order, with the same spec."""
        def take(arrays):
            return None if arrays is None else {name: values[indices] for name, values in arrays.items()}

        return dataclasses.replace(self, x=take(self.x), y=take(self.y), oracle=take(self.oracle))

    def to_frame(self, sequence_sep="|"):
        """The rows as a DataFrame of raw columns, as a CSV or Parquet file would hold them: one
        column per feature (a sequence joined with ``sequence_sep``, its padding dropped; a dense
        feature with ``embed_dim > 1`` as ``name_0``, ``name_1``...) and one per task's label."""
        columns = {}
        for feature in self.features:
            values = self.x[feature.name]
            if isinstance(feature, SequenceFeature):
                columns[feature.name] = [
                    sequence_sep.join(str(v) for v in row if v != feature.padding_value) for row in values.tolist()
                ]
            elif values.ndim == 2:
                columns.update({f"{feature.name}_{i}": values[:, i] for i in range(values.shape[1])})
            else:
                columns[feature.name] = values
        columns.update(self.y)
        return pd.DataFrame(columns)


class Splits(NamedTuple):
    """Train, validation and test parts of one dataset; unpacks as a 3-tuple."""

    train: MultiTaskData
    val: MultiTaskData
    test: MultiTaskData


def _check_keys(part, arrays, expected):
    if not isinstance(arrays, dict) or sorted(arrays) != sorted(expected):
        got = sorted(arrays) if isinstance(arrays, dict) else type(arrays).__name__
        raise ValueError(f"MultiTaskData: {part} must be a dict keyed by {sorted(expected)}. Received: {got}")


def check_split_ratio(split_ratio):
    """Checks ``[train, val]`` fractions: each in (0, 1), summing to at most 1; returns floats."""
    if not isinstance(split_ratio, (list, tuple)) or len(split_ratio) != 2:
        raise ValueError(
            f"split_ratio must be [train_fraction, val_fraction] (the test set is the rest). "
            f"Received: split_ratio={split_ratio!r}"
        )
    ratios = []
    for value in split_ratio:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ValueError(f"split_ratio values must be numbers in (0, 1). Received: split_ratio={split_ratio!r}")
        ratios.append(float(value))
    # The tolerance lets fractions such as [0.7, 0.3], whose float sum is 1.0000000000000002, pass.
    if sum(ratios) > 1 + 1e-9:
        raise ValueError(f"split_ratio must sum to at most 1. Received: split_ratio={split_ratio!r}")
    return ratios


def split_indices(n_rows, train_ratio, val_ratio, seed):
    """Row indices of a seeded shuffle cut into train, validation and test parts.

    The train part has ``floor(n_rows * train_ratio)`` rows, the validation part
    ``floor(n_rows * val_ratio)``, the test part the rest (torch-rechub's convention).
    """
    # The epsilon keeps products like 1000 * 0.29 = 289.99999999999997 from losing a row.
    n_train = math.floor(n_rows * train_ratio + 1e-9)
    n_val = math.floor(n_rows * val_ratio + 1e-9)
    order = np.random.default_rng(seed).permutation(n_rows)
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
