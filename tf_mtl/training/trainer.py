"""``MTLTrainer``: the reference API for training a multi-task model, on tf_mtl's one step.

    trainer = MTLTrainer(model, task_types, optimizer_params={"lr": 1e-3, "weight_decay": 1e-5},
                         adaptive_params={"method": "uwl"}, n_epoch=10, earlystop_patience=3,
                         device="cpu", model_path="runs/mmoe")
    trainer.fit(train_dl, val_dl)
    auc_per_task = trainer.evaluate(trainer.model, test_dl)
    scores = trainer.predict(trainer.model, test_dl)      # (N, n_tasks)
    trainer.export_onnx("runs/mmoe/model.onnx")

Every epoch ends with a checkpoint under ``model_path/checkpoints`` (model, optimizer,
weighting state, dropout generators, early-stopping state, batches trained); ``fit`` on the
same ``model_path`` resumes from the last one and ends as an uninterrupted run would, also
after a kill while a checkpoint was being written (TensorFlow writes it beside the others and
names it in the ``checkpoint`` state file last, by a rename). Under
``MultiWorkerMirroredStrategy`` a worker that dies stops the others with ``WorkerLostError``
(TensorFlow's coordination service misses its heartbeats, about 10 s, and aborts the
collectives), and the restarted workers resume together from the last checkpoint all of them
hold.
"""

import contextlib
import json
import math
import os
import time

import numpy as np
import tensorflow as tf

from tf_mtl.compat import keras, random_states
from tf_mtl.files import write_bytes
from tf_mtl.metrics.evaluation import flat_figures, for_any_batch_size, inference_function, predict_with_labels, score
from tf_mtl.training import report
from tf_mtl.training.devices import (
    check_built_in_scope,
    other_tasks_named,
    resolve_strategy,
    smallest_over_workers,
    task_name,
    worker_path,
)
from tf_mtl.training.monitor import Monitor, figure_names
from tf_mtl.training.optimizers import make_optimizer
from tf_mtl.weighting import step as step_lib

class NonFiniteLossError(FloatingPointError):
    """A loss term or a variable became NaN or Inf; training stopped before the next checkpoint."""


class WorkerLostError(RuntimeError):
    """Another worker of a ``MultiWorkerMirroredStrategy`` cluster died or stopped answering;
    training stopped. Restarting every worker resumes from the last checkpoint they all hold."""


class MTLTrainer:
    """Trains a tf_mtl model with a loss weighting, early stopping and checkpoints.

    Args:
        model: a tf_mtl model (built under ``strategy.scope()`` when a strategy is given).
        task_types: the tasks' types, checked against the model's (the reference API passes them).
        optimizer_fn: a Keras optimizer class or name; default ``LazyAdam`` (Adam whose updates
            of embedding tables touch only the rows a batch uses); ``"adam"`` for Keras' Adam.
        optimizer_params: its arguments, e.g. ``{"lr": 1e-3, "weight_decay": 1e-5}``.
        adaptive_params: the loss weighting (see ``tf_mtl.weighting.get``), e.g.
            ``{"method": "uwl"}``, ``{"method": "gradnorm", "alpha": 1.5}``; default equal weights.
        n_epoch: epochs to train.
        earlystop_patience: epochs without improvement of ``monitor`` before stopping; the
            best epoch's weights are restored at the end.
        device: ``"cpu"``, ``"cuda:0"``, ``"/GPU:0"``... (a missing GPU falls back to the CPU
            with a warning).
        gpus: GPU indices to train on with ``MirroredStrategy``.
        model_path: the run's folder: checkpoints, best weights, ``history.json``, TensorBoard
            logs (``logs/``) and ``training_curves.png``. Under ``MultiWorkerMirroredStrategy``
            workers other than the chief write to ``model_path/worker_<index>``.
        strategy: a ``tf.distribute`` strategy (``MirroredStrategy``,
            ``MultiWorkerMirroredStrategy``); overrides ``device`` and ``gpus``. Each global
            batch is split over the replicas; under ``MultiWorkerMirroredStrategy`` every
            worker reads the whole dataset and takes its slice, so every worker's dataset
            must yield the same batches in the same order (a seeded shuffle).
        monitor: what early stopping watches (see ``Monitor``): ``"cvr/auc"``, ``"loss"``,
            ``{"ctr/auc": 0.3, "cvr/auc": 0.7}``; default the mean AUC of the tasks.
        label_weights, loss_masks: as in ``MultiTaskModel.compile``.

    Mixed precision: build the model inside ``tf_mtl.compat.mixed_precision("mixed_bfloat16")``
    (CPUs with AMX or AVX-512 BF16) or ``"mixed_float16"`` (GPUs); a float16 model trains with
    dynamic loss scaling.
        steps_per_epoch: for datasets of unknown length.
        group_by: a feature name; adds GAUC per user (or any group) to the validation metrics.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.
        max_to_keep: checkpoints kept under ``model_path/checkpoints``; at least 2 under
            ``MultiWorkerMirroredStrategy`` (a worker killed while saving leaves the others one
            checkpoint ahead, and all resume from the one before).
        callbacks: Keras callbacks; each gets ``on_train_batch_end(batch, logs)`` after every step
            (the step's losses; the step has finished) and ``on_epoch_end(epoch, logs)`` with the
            epoch's validation figures.
    """

    def __init__(
        self,
        model,
        task_types=None,
        optimizer_fn=None,
        optimizer_params=None,
        adaptive_params=None,
        n_epoch=10,
        earlystop_patience=10,
        device="cpu",
        gpus=None,
        model_path="./",
        *,
        strategy=None,
        monitor=None,
        label_weights=None,
        loss_masks=None,
        steps_per_epoch=None,
        group_by=None,
        verbose=1,
        max_to_keep=2,
        callbacks=(),
    ):
        if task_types is not None and list(task_types) != list(model.task_types):
            raise ValueError(
                f"task_types {list(task_types)} differ from the model's tasks "
                f"{dict(zip(model.task_names, model.task_types))}."
            )
        for name, value in (("n_epoch", n_epoch), ("earlystop_patience", earlystop_patience)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value!r}")
        self.model = model
        self.n_epoch, self.patience = n_epoch, earlystop_patience
        self.strategy, self.device = resolve_strategy(device, gpus, strategy)
        self.model_path = worker_path(self.strategy, os.fspath(model_path))
        self.steps_per_epoch, self.group_by, self.verbose, self.max_to_keep = steps_per_epoch, group_by, verbose, max_to_keep
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model)
        check_built_in_scope(model, self.strategy)
        with self.strategy.scope():
            self.optimizer = make_optimizer(optimizer_fn, optimizer_params)
            if model.compute_dtype == "float16":
                # float16 gradients underflow without it (bfloat16 has float32's range).
                self.optimizer = keras.mixed_precision.LossScaleOptimizer(self.optimizer)
            model.compile(optimizer=self.optimizer, weighting=adaptive_params, label_weights=label_weights, loss_masks=loss_masks)
            self.optimizer.build(model.trainable_variables)
            self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self._best = tf.Variable(-math.inf, dtype=tf.float64, trainable=False, name="best_score")
            self._wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_without_improvement")
            self._batches = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches_trained")
        self.weighting = model.weighting
        self.monitor = Monitor(monitor, model)
        self.history = []
        self._train_function = None

    # ---- training ---------------------------------------------------------------------------

    def fit(self, train_dataloader, val_dataloader=None, resume=True):
        """Trains for ``n_epoch`` epochs (fewer if early stopping triggers); returns the history.

        Args:
            train_dataloader: a ``tf.data.Dataset`` of ``(x, y)`` or ``(x, y, sample_weight)``
                batches, reshuffled each epoch if it shuffles.
            val_dataloader: ``(x, y)`` batches scored after each epoch; without it, early
                stopping watches the training loss.
            resume: continue from the last checkpoint under ``model_path`` if there is one
                (a run that already ended returns its history); ``False`` starts over.

        Returns:
            A list with one dict per epoch: ``train`` losses, ``val`` figures, ``weights``,
            ``gates`` (mean expert weight per gate), ``seconds``.
        """
        steps = self._steps(train_dataloader)
        monitor = self.monitor if val_dataloader is not None else Monitor("loss", self.model)
        monitor.check(self._figure_names(val_dataloader is not None))
        # Keras 3 layers keep variables and sublayers in lists tf.train.Checkpoint does not follow
        # (an MLP's batch-norm statistics are saved nowhere else): the model's variables by position.
        model_variables = list(self.model.variables)
        checkpoint = tf.train.Checkpoint(
            model=self.model,
            variables=model_variables,
            optimizer=self.optimizer,
            weighting=self.weighting,
            batches=self._batches,
            random=random_states(self.model),
            epoch=self._epoch,
            best=self._best,
            wait=self._wait,
        )
        manager = tf.train.CheckpointManager(checkpoint, os.path.join(self.model_path, "checkpoints"), self.max_to_keep)
        best_model = tf.train.Checkpoint(model=self.model, variables=model_variables)
        best = tf.train.CheckpointManager(best_model, os.path.join(self.model_path, "best"), 1)
        self.history = []
        if not resume:
            # A new run: the loop starts over (its checkpoints replace the old ones).
            for variable, start in ((self._epoch, 0), (self._best, -math.inf), (self._wait, 0), (self._batches, 0)):
                variable.assign(start)
        latest = self._checkpoint_to_resume(manager) if resume else None
        if latest:
            checkpoint.restore(latest).assert_consumed()
            self.history = [r for r in self._read_history() if r["epoch"] <= int(self._epoch.numpy())]
            self._say(f"Resumed from {latest} (epoch {int(self._epoch.numpy())}).")
        # The data resumes where it stopped by skipping the batches already trained on: a seeded
        # reshuffle then repeats every epoch's order (a checkpointed iterator need not, when its
        # prefetch thread has begun the next epoch).
        iterator = iter(train_dataloader.repeat().skip(int(self._batches.numpy())))
        writer = tf.summary.create_file_writer(os.path.join(self.model_path, "logs"))
        train_function = self._make_train_function()
        while int(self._epoch.numpy()) < self.n_epoch and int(self._wait.numpy()) < self.patience:
            epoch = int(self._epoch.numpy()) + 1
            start = time.perf_counter()
            train = self._train_epoch(train_function, iterator, steps, epoch)
            self._batches.assign_add(steps)
            self._check_finite(epoch)
            self.weighting.end_epoch()
            val = self._validate(val_dataloader)
            figures = val if val_dataloader is not None else {"loss": train["loss"]}
            value = monitor.score(figures)
            improved = value > float(self._best.numpy())
            if improved:
                self._best.assign(value)
                self._wait.assign(0)
                best.save(checkpoint_number=epoch)
            else:
                self._wait.assign_add(1)
            record = {
                "epoch": epoch,
                "train": train,
                "val": val,
                "weights": dict(zip(self.model.loss_term_names, map(float, self.weighting.current_weights().numpy()))),
                "gates": report.gate_utilisation(self.model, val_dataloader),
                "monitor": {"name": monitor.name, "score": value, "improved": improved},
                "seconds": time.perf_counter() - start,
            }
            self.history.append(record)
            for callback in self.callbacks:
                callback.on_epoch_end(epoch - 1, {**record["train"], **{f"val_{k}": v for k, v in (val or {}).items()}})
            self._epoch.assign(epoch)
            # The history first: a run killed between the two writes resumes from the older
            # checkpoint and drops the newer history entry.
            write_bytes(os.path.join(self.model_path, "history.json"), json.dumps(self.history, indent=1).encode())
            manager.save(checkpoint_number=epoch)
            report.write_scalars(writer, record)
            if self.verbose:
                self._say(report.epoch_line(record, self.n_epoch, improved))
        if int(self._wait.numpy()) >= self.patience:
            self._say(f"Early stopping: {monitor.name} did not improve for {self.patience} epochs.")
        if best.latest_checkpoint:
            best_model.restore(best.latest_checkpoint).assert_existing_objects_matched()
        if self.history:
            report.plot_curves(self.history, os.path.join(self.model_path, "training_curves.png"))
        return self.history

    def _checkpoint_to_resume(self, manager):
        """The latest checkpoint; under ``MultiWorkerMirroredStrategy`` the latest one every worker
        holds (a worker killed while saving epoch n leaves the others' checkpoint of epoch n), so
        all resume from the same epoch. ``None``: start from the beginning."""
        latest = manager.latest_checkpoint
        if task_name(self.strategy) is None:
            return latest
        number = int(latest.rsplit("-", 1)[1]) if latest else 0
        agreed = smallest_over_workers(self.strategy, number)
        if agreed == number:
            return latest
        if agreed == 0:
            # Another worker has no checkpoint yet: every worker starts from the beginning.
            return None
        kept = [path for path in manager.checkpoints if path.endswith(f"-{agreed}")]
        if not kept:
            raise RuntimeError(
                f"The workers' last checkpoints differ: epoch {agreed} is the latest all of them hold, and "
                f"{task_name(self.strategy)} no longer has it under {manager.directory} (it keeps "
                f"{[os.path.basename(path) for path in manager.checkpoints]}). Under MultiWorkerMirroredStrategy "
                f"keep max_to_keep >= 2 (received max_to_keep={self.max_to_keep}), or start over with fit(..., resume=False)."
            )
        return kept[0]

    def _figure_names(self, validating):
        """The names of the figures an epoch reports to the monitor (see ``_validate``)."""
        return figure_names(self.model, self.group_by) if validating else ["loss"]

    def _steps(self, dataset):
        if not isinstance(dataset, tf.data.Dataset):
            raise TypeError(
                "fit: train_dataloader must be a tf.data.Dataset of (x, y) batches, e.g. from "
                f"DataGenerator(x, y).generate_dataloader(). Received: {type(dataset).__name__}"
            )
        if self.steps_per_epoch is not None:
            return int(self.steps_per_epoch)
        steps = int(tf.data.experimental.cardinality(dataset).numpy())
        if steps == 0:
            raise ValueError("fit: the training dataset is empty.")
        if steps < 0:
            raise ValueError(
                "fit: the training dataset's length is unknown or infinite; pass steps_per_epoch to MTLTrainer."
            )
        return steps

    def _make_train_function(self):
        model, weighting, optimizer, strategy = self.model, self.weighting, self.optimizer, self.strategy

        def replica_step(x, y, sample_weight):
            _, logs = step_lib.train_step(model, weighting, optimizer, x, y, sample_weight)
            return {"terms": logs["terms"], "loss": logs["loss"], "auxiliary": logs["auxiliary"]}

        @tf.function(reduce_retracing=True)
        def train_function(x, y, sample_weight):
            logs = strategy.run(replica_step, args=(x, y, sample_weight))
            # Every replica returns the same global figures.
            return tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], logs)

        return for_any_batch_size(train_function) if strategy.num_replicas_in_sync == 1 else train_function

    def _distribute(self, batch):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(tuple(batch) if isinstance(batch, list) else batch)
        if y is None:
            raise ValueError("fit: the training dataset must yield (features, labels) or (features, labels, sample_weight).")
        replicas = self.strategy.num_replicas_in_sync
        if replicas == 1:
            return x, y, sample_weight
        parts = (x, y) if sample_weight is None else (x, y, sample_weight)

        def shard(context):
            i = context.replica_id_in_sync_group

            def part(t):
                n = tf.shape(t)[0]
                return t[i * n // replicas : (i + 1) * n // replicas]

            return tf.nest.map_structure(part, parts)

        sharded = self.strategy.experimental_distribute_values_from_function(shard)
        return sharded if sample_weight is not None else (*sharded, None)

    def _train_epoch(self, train_function, iterator, steps, epoch):
        names = self.model.loss_term_names
        progress = keras.utils.Progbar(steps, verbose=1 if self.verbose == 1 else 0)
        sums = None
        for step in range(1, steps + 1):
            batch = self._distribute(next(iterator))
            try:
                with contextlib.nullcontext() if self.device is None else tf.device(self.device):
                    logs = train_function(*batch)
            except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
                if task_name(self.strategy) is None:
                    raise
                raise self._worker_lost(error, epoch, step) from error
            terms = logs["terms"].numpy()
            if not np.all(np.isfinite(terms)):
                bad = [f"{n} = {v}" for n, v in zip(names, terms) if not np.isfinite(v)]
                raise NonFiniteLossError(
                    f"Loss of {', '.join(bad)} at epoch {epoch}, step {step}. Training stopped; the checkpoints "
                    f"under {os.path.join(self.model_path, 'checkpoints')} hold the last good state."
                )
            values = {"loss": float(logs["loss"]), **{f"{n}_loss": float(v) for n, v in zip(names, terms)}}
            values.update({f"{n}_loss": float(v) for n, v in logs["auxiliary"].items()})
            sums = values if sums is None else {k: sums[k] + v for k, v in values.items()}
            progress.update(step, [(k, v) for k, v in values.items()], finalize=step == steps)
            for callback in self.callbacks:
                callback.on_train_batch_end(step - 1, values)
        return {k: v / steps for k, v in sums.items()}

    def _worker_lost(self, error, epoch, step):
        """The error to raise when a step's collectives fail: another worker died (TensorFlow's
        coordination service misses its heartbeats and aborts them) or timed out."""
        lost = other_tasks_named(self.strategy, error.message) or ["another worker (the error names none)"]
        reason = next((line.strip() for line in error.message.splitlines() if "aborted by" in line), type(error).__name__)
        return WorkerLostError(
            f"Lost {', '.join(lost)} of the MultiWorkerMirroredStrategy cluster at epoch {epoch}, step {step} "
            f"({reason}). Training stopped on {task_name(self.strategy)}; restart every worker with the same "
            f"TF_CONFIG and model_path to resume from the last checkpoint all of them hold (this one's: "
            f"{tf.train.latest_checkpoint(os.path.join(self.model_path, 'checkpoints'))})."
        )

    def _check_finite(self, epoch):
        """Finite losses can still come with a NaN gradient (an Inf input times a zero slope);
        the variables it reached must not go into the checkpoint."""
        variables = list(self.model.variables) + list(self.weighting.variables)
        bad = [
            getattr(v, "path", v.name)
            for v in variables
            if tf.as_dtype(v.dtype).is_floating and not bool(tf.reduce_all(tf.math.is_finite(v)))
        ]
        if bad:
            raise NonFiniteLossError(
                f"NaN or Inf in {bad} at the end of epoch {epoch}, whose losses were finite (a non-finite gradient, "
                f"e.g. from an Inf feature value). Training stopped; the checkpoints under "
                f"{os.path.join(self.model_path, 'checkpoints')} hold the last good state."
            )

    def _validate(self, dataset):
        if dataset is None:
            return {}
        outputs, labels, values = predict_with_labels(self.model, dataset, () if self.group_by is None else (self.group_by,))
        figures = flat_figures(score(self.model, outputs, labels, values.get(self.group_by)))
        losses = self.model.compute_task_losses(labels, outputs)
        figures["loss"] = float(self.model.total_loss(losses, self.model.auxiliary_losses({k: tf.constant(v) for k, v in outputs.items()})))
        figures.update({f"{name}_loss": float(value) for name, value in losses.items()})
        return figures

    def _read_history(self):
        path = os.path.join(self.model_path, "history.json")
        if not os.path.exists(path):
            return []
        with open(path) as file:
            return json.load(file)

    def _say(self, message):
        if self.verbose:
            print(message, flush=True)

    # ---- evaluation, prediction, export -----------------------------------------------------

    def evaluate(self, model, data_loader, detailed=False, group_by=None):
        """Scores ``model`` on ``data_loader``.

        Returns:
            One score per task, in task order: AUC for classification, RMSE for regression
            (ESMM's CVR on clicked rows). With ``detailed=True``, every figure per output:
            ``{output: {"auc": ..., "log_loss": ..., "gauc": ...}}`` (GAUC with ``group_by``).
        """
        outputs, labels, values = predict_with_labels(model, data_loader, () if group_by is None else (group_by,))
        results = score(model, outputs, labels, values.get(group_by))
        if detailed:
            return results
        return [results[t.name]["auc" if t.task_type == "classification" else "rmse"] for t in model.tasks]

    def predict(self, model, data_loader):
        """Scores of every task, ``(N, n_tasks)`` in task order, for batches of ``x`` or ``(x, y)``."""
        forward = inference_function(model)
        rows = []
        for batch in data_loader:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            outputs = forward(x)
            rows.append(np.stack([np.asarray(outputs[name]).reshape(-1) for name in model.task_names], axis=1))
        if not rows:
            return np.zeros((0, len(model.tasks)), np.float32)
        return np.concatenate(rows)

    def export_onnx(self, output_path, opset_version=None):
        """Writes the model to ONNX (dynamic batch; see ``tf_mtl.export.export_onnx``)."""
        from tf_mtl.export import export_onnx

        return export_onnx(self.model, output_path, opset=opset_version)


__all__ = ["MTLTrainer", "NonFiniteLossError", "WorkerLostError"]
