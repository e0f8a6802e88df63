"""Shared-Bottom, OMoE and MMoE on the MMoE paper's synthetic data at task correlations 0.5, 0.9, 1.0.

Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD 2018, sections 4.2-4.3 and Figure 4. The paper's finding: the
lower the correlation of the two regression tasks, the harder they are for a Shared-Bottom
model, while MMoE, whose gates let each task weigh the shared experts its own way, loses
little; at correlation 1.0 the models are close.

Data: ``tf_mtl.data.synthetic.mmoe_synthetic`` (the paper's construction: input dimension
100, 10 sine terms, label noise of variance 0.01 per task, so the best reachable loss, the sum
of the two tasks' mean squared errors, is 0.02). Each seed draws new task weights, sine
parameters and samples; the first ``--train-rows`` rows train, the next ``--test-rows`` test.

Models, sized as the paper's section 4.3 describes: MMoE and OMoE have 8 experts, each a
single ReLU layer of 16 units; Shared-Bottom has one shared layer of 113 units, so its
parameter count (13,255) is close to the MoE models' (OMoE 14,026, MMoE 14,834); every task
tower is one layer of 8 units. Training: Adam, equal task weights, ``--epochs`` epochs of
batch ``--batch-size``, no early stopping. The paper averages 200 runs and does not state its
data size, optimizer settings or number of steps here; those are this script's choices, and
so are the number of runs (``--seeds``).

Outputs: a table of the training and test loss (sum of the two tasks' MSE, after training,
over the whole training / test set; mean ± std over seeds), ``results_mmoe_synthetic.png``
(the training loss per step, averaged over seeds and over windows of ``--window`` steps, one
panel per correlation, as the paper's Figure 4) and ``results_mmoe_synthetic.md``.

Usage (from the repository root)::

    python benchmarks/reproduce_mmoe_synthetic.py [--seeds 3] [--correlations 0.5 0.9 1.0]
"""

import pathlib
import sys
import time

import numpy as np

# `python benchmarks/reproduce_mmoe_synthetic.py` puts benchmarks/, not the repository root, on the path.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import _papers  # noqa: E402

NAME = "results_mmoe_synthetic"
LABELS = {"shared_bottom": "Shared-Bottom", "omoe": "OMoE", "mmoe": "MMoE"}
MODELS = {
    "shared_bottom": {"bottom_params": {"dims": [113]}},
    "omoe": {"n_expert": 8, "expert_params": {"dims": [16]}},
    "mmoe": {"n_expert": 8, "expert_params": {"dims": [16]}},
}
TOWER = {"dims": [8]}


def _arguments(argv):
    parser = _papers.parser(__doc__.splitlines()[0])
    parser.add_argument("--correlations", type=float, nargs="+", default=[0.5, 0.9, 1.0])
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--test-rows", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--window", type=int, default=100, help="steps averaged into one point of the curves")
    return _papers.parse(parser, argv)


def _step_losses():
    """A Keras callback keeping the training loss of every step."""
    from tf_mtl.compat import keras

    class StepLosses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses = []

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(logs["loss"])

    return StepLosses()


def run(name, correlation, seed, args):
    """Trains one model on one seed's data; returns its step losses and final losses."""
    from tf_mtl.data import mmoe_synthetic
    from tf_mtl.models import build_model

    data = mmoe_synthetic(args.train_rows + args.test_rows, correlation, seed=seed)
    train_data, test_data = data.subset(np.arange(args.train_rows)), data.subset(np.arange(args.train_rows, data.num_examples))
    train, _, test = _papers.loaders(train_data, None, test_data, args.batch_size, seed)
    _papers.seed_everything(seed)
    model = build_model(name, data.features, data.task_types, data.task_names, tower_params_list=[TOWER, TOWER], **MODELS[name])
    steps = _step_losses()
    trainer, _ = _papers.train(model, train, None, args.lr, args.epochs, args.epochs, callbacks=[steps])
    # evaluate() gives each task's RMSE; the loss is the sum of the tasks' MSE.
    return {
        "steps": np.array(steps.losses),
        "train": float(np.sum(np.square(trainer.evaluate(model, train)))),
        "test": float(np.sum(np.square(trainer.evaluate(model, test)))),
        "params": model.count_params(),
    }


def plot(curves, correlations, window, path):
    """One panel per correlation: each model's step loss, mean over seeds and windows."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(correlations), figsize=(4.2 * len(correlations), 3.6), squeeze=False)
    for axis, correlation in zip(axes[0], correlations):
        for name, label in LABELS.items():
            mean = np.mean(curves[name, correlation], axis=0)
            window = min(window, len(mean))
            n = len(mean) // window * window
            smooth = mean[:n].reshape(-1, window).mean(axis=1)
            axis.plot((np.arange(len(smooth)) + 1) * window, smooth, label=label)
        axis.set(title=f"correlation {correlation:g}", xlabel="training step", yscale="log")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"training loss (mean of {window} steps)")
    axes[0][0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def verdict(results, correlations):
    """Whether MMoE's gain over Shared-Bottom grows as the correlation falls.

    The gain is Shared-Bottom's test loss minus MMoE's, paired by seed (both see the same
    data). It "grows" when its mean falls steadily with the correlation; it grows beyond the
    seed noise when, in addition, the gains at the lowest and highest correlation differ by
    more than the sum of their standard deviations.
    """
    ordered = sorted(correlations)
    gains = {c: np.subtract(results["shared_bottom", c]["test"], results["mmoe", c]["test"]) for c in ordered}
    means = [float(np.mean(gains[c])) for c in ordered]
    noise = _papers.spread(gains[ordered[0]]) + _papers.spread(gains[ordered[-1]])
    figures = ", ".join(f"{_papers.mean_std(gains[c])} at {c:g}" for c in ordered)
    if all(low > high for low, high in zip(means, means[1:])):
        pattern = "It grows as the correlation falls, the paper's pattern"
        pattern += "." if means[0] - means[-1] > noise else ", but by less than the spread over seeds."
    else:
        pattern = "It does not grow steadily as the correlation falls: the paper's pattern does not hold here."
    return f"MMoE's gain over Shared-Bottom (Shared-Bottom's test loss minus MMoE's, paired by seed): {figures}. {pattern}"


def main(argv=None):
    """Runs every model x correlation x seed; prints and writes the table and the plot."""
    args = _arguments(argv)
    start = time.perf_counter()
    results, curves = {}, {}
    for correlation in args.correlations:
        for name in MODELS:
            runs = [run(name, correlation, seed, args) for seed in range(args.seeds)]
            results[name, correlation] = {key: [r[key] for r in runs] for key in ("train", "test", "params")}
            curves[name, correlation] = np.stack([r["steps"] for r in runs])
            print(f"correlation {correlation:g} {name}: test loss {_papers.mean_std(results[name, correlation]['test'])}", flush=True)
    rows = [
        [LABELS[name], f"{correlation:g}", f"{results[name, correlation]['params'][0]:,}",
         _papers.mean_std(results[name, correlation]["train"]), _papers.mean_std(results[name, correlation]["test"])]
        for correlation in args.correlations
        for name in MODELS
    ]
    body = _papers.table(["model", "correlation", "parameters", "training loss", "test loss"], rows)
    plot(curves, args.correlations, args.window, pathlib.Path(args.out) / f"{NAME}.png")
    steps = curves["mmoe", args.correlations[0]].shape[1]
    setup = (
        f"{args.train_rows:,} training and {args.test_rows:,} test rows per seed, {args.epochs} epochs of batch "
        f"{args.batch_size} ({steps:,} steps), Adam {args.lr:g}, seeds 0-{args.seeds - 1}. Loss: the sum of the two "
        "tasks' mean squared errors over the whole set after training (label noise alone gives 0.02); mean ± std over seeds."
    )
    _papers.report(args.out, NAME, "MMoE synthetic data (Ma et al., KDD 2018, Figure 4)", __file__, argv,
                   time.perf_counter() - start, setup, f"{body}\n\n{verdict(results, args.correlations)}",
                   "training loss per step")
    return results


if __name__ == "__main__":
    main()
