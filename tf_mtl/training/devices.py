"""Where training runs: a device string or a ``tf.distribute`` strategy."""

import os
import re
import warnings

import tensorflow as tf

_DEVICE = re.compile(r"^/?(?:device:)?(cpu|gpu|cuda)(?::(\d+))?$", re.IGNORECASE)
_TASK = re.compile(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)")


def device_name(device):
    """``"/CPU:0"`` or ``"/GPU:<i>"`` from ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"/GPU:0"``, ``"gpu:0"``.

    A GPU that is not there falls back to the CPU with a warning.
    """
    match = _DEVICE.match(str(device).strip())
    if not match:
        raise ValueError(f"device must look like 'cpu', 'cuda:0' or '/GPU:0'. Received: device={device!r}")
    kind, index = match.group(1).lower(), int(match.group(2) or 0)
    if kind == "cpu":
        return "/CPU:0"
    gpus = tf.config.list_logical_devices("GPU")
    if index >= len(gpus):
        warnings.warn(f"device={device!r}: {len(gpus)} GPU(s) visible; training on the CPU instead.", stacklevel=3)
        return "/CPU:0"
    return f"/GPU:{index}"


def resolve_strategy(device="cpu", gpus=None, strategy=None):
    """``(strategy, device)``: the strategy to train under, and the device to place one-device
    training on (``None`` under a given or multi-GPU strategy, which place their replicas).

    Args:
        device: one device (see ``device_name``), used when neither ``gpus`` nor ``strategy``.
        gpus: GPU indices for a ``MirroredStrategy`` over several GPUs (those missing are dropped
            with a warning; none left: the CPU).
        strategy: a ``tf.distribute.Strategy`` to use as it is (``MirroredStrategy``,
            ``MultiWorkerMirroredStrategy``, ...). The model must be built under its scope.
    """
    if strategy is not None:
        return strategy, None
    if gpus:
        # A missing GPU comes back as the CPU: dropped, not mirrored with the GPUs that are there.
        devices = sorted({device_name(f"gpu:{i}") for i in gpus} - {"/CPU:0"})
        if len(devices) > 1:
            return tf.distribute.MirroredStrategy(devices), None
        return tf.distribute.get_strategy(), devices[0] if devices else "/CPU:0"
    return tf.distribute.get_strategy(), device_name(device)


def check_built_in_scope(model, strategy):
    """Variables must belong to the strategy that trains them."""
    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        return
    variables = model.trainable_variables
    if not variables:
        return
    variable = variables[0]
    if not isinstance(variable, tf.Variable):
        # A Keras 3 variable wraps the tf.Variable the strategy created; Keras 2's is one (and
        # its ``value`` is a method).
        variable = variable.value
    if not strategy.extended.variable_created_in_scope(variable):
        raise ValueError(
            f"Model {model.name!r} was built outside the scope of {type(strategy).__name__}: build it inside "
            "`with strategy.scope():` and pass the same strategy to MTLTrainer."
        )


def _cluster(strategy):
    """The ``tf.distribute.cluster_resolver.ClusterResolver`` of a multi-worker strategy, else ``None``."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return None
    return resolver


def task_name(strategy):
    """This process's task in the cluster of a multi-worker strategy, e.g. ``"/job:worker/task:1"``;
    ``None`` for strategies of one process."""
    resolver = _cluster(strategy)
    return None if resolver is None else f"/job:{resolver.task_type}/task:{resolver.task_id}"


def other_tasks_named(strategy, text):
    """The tasks of the cluster other than this one that ``text`` (a TensorFlow error message)
    names, e.g. ``["/job:worker/task:1"]`` for ``"... /job:worker/replica:0/task:1 ..."``."""
    named = {f"/job:{job}/task:{task}" for job, task in _TASK.findall(text)}
    return sorted(named - {task_name(strategy)})


def smallest_over_workers(strategy, number):
    """The smallest of every worker's ``number`` (a collective all-gather: every worker must call it)."""
    values = strategy.experimental_distribute_values_from_function(lambda _: tf.constant([number], tf.int64))
    return int(tf.reduce_min(strategy.gather(values, axis=0)).numpy())


def worker_path(strategy, path):
    """Where this worker writes: ``path`` on the chief (or without a cluster), else
    ``path/worker_<index>``. Every worker of a ``MultiWorkerMirroredStrategy`` saves its own
    checkpoints (variables are in sync; data iterators are not), and they must not share files."""
    resolver = _cluster(strategy)
    if resolver is None:
        return path
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    if task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0):
        return path
    return os.path.join(path, f"{task_type}_{task_id}")
