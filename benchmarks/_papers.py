"""What the ``reproduce_*.py`` scripts share: arguments, training, the run's machine, tables.

Each script trains tf_mtl models with ``MTLTrainer``, prints a table of mean ± std over seeds
and writes a markdown fragment (the table, the command that reproduces it, the machine and
the versions) for ``benchmarks/RESULTS.md``.
"""

import argparse
import datetime
import os
import pathlib
import platform
import shlex
import statistics
import sys
import tempfile
import textwrap
import time

import matplotlib
import numpy as np

matplotlib.use("Agg")

BENCHMARKS = pathlib.Path(__file__).resolve().parent
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def parser(description, seeds=3):
    """An argument parser with the options every script takes: ``--seeds`` and ``--out``."""
    parsed = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parsed.add_argument("--seeds", type=int, default=seeds, help="runs per configuration, seeds 0 .. N-1")
    parsed.add_argument("--out", default=str(BENCHMARKS), help="folder of the PNG plots and the markdown fragment")
    return parsed


def parse(parsed, argv):
    """Parses ``argv`` (``None``: the command line); checks the counts are positive."""
    args = parsed.parse_args(argv)
    for name, value in vars(args).items():
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            parsed.error(f"--{name.replace('_', '-')} must be at least 1. Received: {value}")
    os.makedirs(args.out, exist_ok=True)
    return args


def loaders(train_data, val_data, test_data, batch_size, seed):
    """``(train, val, test)`` ``tf.data`` pipelines of three ``MultiTaskData`` parts (``val_data``
    may be ``None``); the training set is reshuffled every epoch with ``seed``."""
    from tf_mtl.data import DataGenerator

    val = {} if val_data is None else {"x_val": val_data.x, "y_val": val_data.y}
    return DataGenerator(train_data.x, train_data.y).generate_dataloader(
        **val, x_test=test_data.x, y_test=test_data.y, batch_size=batch_size, seed=seed
    )


def train(model, train_data, val_data, lr, epochs, patience, monitor=None, loss_masks=None, callbacks=()):
    """Trains ``model`` with ``MTLTrainer`` (Adam, equal task weights) in a throw-away folder.

    Without ``val_data`` the trainer watches the training loss; with it, ``monitor`` (default
    the mean validation AUC) and the best epoch's weights are restored.

    Returns:
        ``(trainer, history)``; ``history`` holds one dict per epoch (see ``MTLTrainer.fit``).
    """
    from tf_mtl.training import MTLTrainer

    with tempfile.TemporaryDirectory() as folder:
        trainer = MTLTrainer(
            model,
            optimizer_params={"lr": lr},
            n_epoch=epochs,
            earlystop_patience=patience,
            model_path=folder,
            monitor=monitor,
            loss_masks=loss_masks,
            verbose=0,
            callbacks=callbacks,
        )
        history = trainer.fit(train_data, val_data)
    return trainer, history


def seed_everything(seed):
    """Seeds Python, numpy and TensorFlow (initializers, dropout) for one run."""
    from tf_mtl.compat import keras

    keras.utils.set_random_seed(seed)


def spread(values):
    """The sample standard deviation; 0 for a single value."""
    values = [float(v) for v in values]
    return statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std(values, digits=4):
    """``"0.8123 ± 0.0042"``: the mean and the sample standard deviation (0 for one value)."""
    values = [float(v) for v in values]
    return f"{statistics.fmean(values):.{digits}f} ± {spread(values):.{digits}f}"


def table(header, rows):
    """A markdown table; columns after the first are right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine():
    """The CPU, its vector extensions, the core count and the memory, read from ``/proc``."""
    cpu, flags, memory = platform.processor() or platform.machine(), set(), ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not flags:
                    cpu = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    if os.path.exists("/proc/meminfo"):
        with open("/proc/meminfo") as file:
            kib = next(int(line.split()[1]) for line in file if line.startswith("MemTotal"))
        memory = f", {kib / 2**20:.1f} GiB"
    extensions = [name for name, flag in (("AVX-512", "avx512f"), ("AMX", "amx_tile")) if flag in flags]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpu} ({platform.machine()}{', ' + '/'.join(extensions) if extensions else ''}), "
        f"{os.cpu_count()} cores of which {cores} usable by this run{memory}"
    )


def versions():
    import keras
    import tensorflow as tf

    return f"Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}"


def command(script, argv):
    """The command line that reproduces this run, from the repository root, with the CPU
    pinning and the TensorFlow thread counts it ran under."""
    argv = sys.argv[1:] if argv is None else list(argv)
    prefix = []
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cores and len(cores) < os.cpu_count():
        prefix += ["taskset", "-c", ",".join(map(str, cores))]
    threads = [f"{name}={os.environ[name]}" for name in THREAD_VARIABLES if name in os.environ]
    if threads:
        prefix += ["env", *threads]
    return " ".join([*prefix, "python", f"benchmarks/{pathlib.Path(script).name}", *map(shlex.quote, argv)])


def report(out, name, title, script, argv, seconds, setup, body, image):
    """Prints ``body`` and writes ``<out>/<name>.md`` for ``RESULTS.md``.

    The fragment holds ``### title``, the command that reproduces the run, the machine, the
    versions, the wall time (``seconds``) and this process's CPU time (the two differ when the
    core is shared), then ``setup`` (what was run), ``body`` (the table and what
    it shows) and the plot ``<name>.png`` captioned ``image``. Returns the path written.
    """
    print(body, flush=True)
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            f"### {title}",
            "",
            "```bash",
            command(script, argv),
            "```",
            "",
            f"Run {today} on {machine()}; {versions()}; wall time {seconds / 60:.1f} min, CPU time "
            f"{time.process_time() / 60:.1f} min.",
            "",
            setup.strip(),
            "",
            body.strip(),
            "",
            f"![{image}]({name}.png)",
            "",
        ]
    )
    path = pathlib.Path(out) / f"{name}.md"
    path.write_text(text)
    return path


def bar_plot(path, metrics, labels, values, ylabel):
    """Bars of mean ± std over seeds: one group per metric, one bar per model.

    Args:
        path: the PNG to write.
        metrics: ``{metric key: axis label}``, the groups.
        labels: ``{model key: legend label}``, the bars of each group.
        values: ``{(model key, metric key): [one value per seed]}``.
        ylabel: the y axis label.
    """
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(2.6 + 0.4 * len(labels) * len(metrics), 3.6))
    width = 0.8 / len(labels)
    for i, (model, label) in enumerate(labels.items()):
        runs = [values[model, metric] for metric in metrics]
        axis.bar(np.arange(len(metrics)) + (i - (len(labels) - 1) / 2) * width, [np.mean(r) for r in runs], width,
                 yerr=[spread(r) for r in runs], capsize=3, label=label)
    axis.set_xticks(np.arange(len(metrics)), [textwrap.fill(name, 16) for name in metrics.values()])
    low, high = min(min(v) for v in values.values()), max(max(v) for v in values.values())
    axis.set(ylabel=ylabel, ylim=(max(0.0, low - 0.05), min(1.0, high + 0.02)))
    axis.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
