"""Six multi-task models on UCI Census-Income: income > 50K and never married, test AUC.

Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD 2018, section 6.3, compare Shared-Bottom, OMoE and MMoE on
Census-Income with the tasks "income > 50K" and "never married"
(``tf_mtl.data.census.load_census_income``).

Data: only the official test file (``census-income.test.gz``, 99,762 rows) is available
here, so every model trains on a 60/20/20 split of it: ``load_census_income(path, seed=0)``
(the same split for every seed), training on the 60 %, early stopping on the mean
validation AUC of the 20 %, and scoring the last 20 %. The paper trains on the 199,523-row
training file and tests on this one; its numbers are not directly comparable with these.
The data is read where it lies (``--data``) and never copied.

Models (the presets of ``tf_mtl.models.build_model``, a ``[64]`` tower per task):
Shared-Bottom (``[256, 128]``), OMoE and MMoE (4 experts ``[256, 128]``), PLE (one
extraction level, 2 task-specific and 2 shared experts ``[256, 128]``), AITM (a ``[128, 64]``
network per task, information passed from income to marital status) and single-task
(a ``[256, 128]`` network per task, nothing shared).

Two of the library's models are built for a conversion funnel, where the second event can
only follow the first. Never married does not follow income > 50K (43 % of people were
never married, 6 % earn more than 50K), so:

- ESMM would train on "income > 50K and never married" as its CTCVR label and score
  marital status only on the high-income rows; that is not the task, so the single-task
  baseline (the MMoE paper's other reference point) takes its place;
- AITM runs with its calibrator off (``calibration_weight=0``): the calibrator penalises a
  later task predicted more likely than the earlier one, which is false here; the attention
  transfer from income to marital status is kept.

Training: Adam, equal task weights, batch ``--batch-size``, at most ``--epochs`` epochs,
patience ``--patience``; the best validation epoch's weights are scored.

Usage (from the repository root)::

    python benchmarks/reproduce_census.py [--data PATH] [--seeds 3]
"""

import pathlib
import sys
import time

# `python benchmarks/reproduce_census.py` puts benchmarks/, not the repository root, on the path.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import _papers  # noqa: E402

NAME = "results_census"
DEFAULT_DATA = "../shared/data/census_income/census-income.test.gz"
LABELS = {
    "shared_bottom": "Shared-Bottom",
    "omoe": "OMoE",
    "mmoe": "MMoE",
    "ple": "PLE",
    "aitm": "AITM (no calibrator)",
    "single_task": "single-task",
}
OVERRIDES = {"aitm": {"calibration_weight": 0.0}}
METRICS = {"income": "income > 50K", "marital": "never married"}


def _arguments(argv):
    parser = _papers.parser(__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="census-income.test.gz; relative paths from the repository root")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=2, help="early stopping on the mean validation AUC")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--models", nargs="+", choices=sorted(LABELS), default=list(LABELS))
    parser.add_argument("--rows", type=int, default=None, help="keep the first N rows of each part (quick checks)")
    return _papers.parse(parser, argv)


def data_path(value):
    """``--data`` as a path; relative paths start at the repository root."""
    path = pathlib.Path(value)
    return path if path.is_absolute() else _papers.BENCHMARKS.parent / path


def load(path, rows):
    """The seeded 60/20/20 split of the file; with ``rows``, the first ``rows`` of each part."""
    import numpy as np

    from tf_mtl.data import Splits, load_census_income

    splits = load_census_income(path, seed=0)
    if rows is None:
        return splits
    return Splits(*(part.subset(np.arange(min(rows, part.num_examples))) for part in splits))


def main(argv=None):
    """Trains every model on every seed; prints and writes the table and the plot."""
    args = _arguments(argv)
    path = data_path(args.data)
    if not path.is_file():
        sys.exit(
            f"reproduce_census: no Census-Income file at {path} (--data {args.data}). Download census-income.test.gz "
            "of Census-Income (KDD) from the UCI Machine Learning Repository and pass its path with --data."
        )
    from tf_mtl.models import build_model

    start = time.perf_counter()
    splits = load(path, args.rows)
    train, val, test = _papers.loaders(splits.train, splits.val, splits.test, args.batch_size, 0)
    features, types, names = splits.train.features, splits.train.task_types, splits.train.task_names
    values, params, epochs = {}, {}, {}
    labels = {m: LABELS[m] for m in args.models}
    for model_name, label in labels.items():
        runs = []
        for seed in range(args.seeds):
            _papers.seed_everything(seed)
            model = build_model(model_name, features, types, names, **OVERRIDES.get(model_name, {}))
            trainer, history = _papers.train(model, train, val, args.lr, args.epochs, args.patience)
            runs.append({**{k: v["auc"] for k, v in trainer.evaluate(model, test, detailed=True).items()}, "epochs": len(history)})
        params[model_name], epochs[model_name] = model.count_params(), [r["epochs"] for r in runs]
        for metric in METRICS:
            values[model_name, metric] = [r[metric] for r in runs]
        print(f"{label}: " + ", ".join(f"{m} AUC {_papers.mean_std(values[model_name, m])}" for m in METRICS), flush=True)
    rows = [
        [label, f"{params[m]:,}", *(_papers.mean_std(values[m, metric]) for metric in METRICS), _papers.mean_std(epochs[m], 1)]
        for m, label in labels.items()
    ]
    body = _papers.table(["model", "parameters", *(f"{v} AUC" for v in METRICS.values()), "epochs trained"], rows)
    _papers.bar_plot(pathlib.Path(args.out) / f"{NAME}.png", METRICS, labels, values, "test AUC")
    setup = (
        f"`{path.name}`, {splits.train.num_examples:,} / {splits.val.num_examples:,} / {splits.test.num_examples:,} "
        f"rows (train / validation / test, `load_census_income(path, seed=0)`); seeds 0-{args.seeds - 1} "
        f"(`keras.utils.set_random_seed` before each model is built), the training set's shuffle seeded with 0; "
        f"batch {args.batch_size}, Adam {args.lr:g}, at most {args.epochs} epochs "
        f"with early stopping (patience {args.patience}) on the mean validation AUC. Test AUC, mean ± std over seeds. "
        "Not directly comparable with the MMoE paper, which trains on the official training file."
    )
    _papers.report(args.out, NAME, "Census-Income (MMoE paper, section 6.3)", __file__, argv,
                   time.perf_counter() - start, setup, body, "test AUC per model")
    return values


if __name__ == "__main__":
    main()
