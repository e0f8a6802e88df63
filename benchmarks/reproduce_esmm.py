"""ESMM against a CVR model trained on clicked impressions only, scored over the entire space.

Ma et al., "Entire Space Multi-Task Model: An Effective Approach for Estimating
Post-Click Conversion Rate", SIGIR 2018. A CVR model trained on clicked impressions only
(the paper's BASE) learns from a sample that is not the space it is used on: it ranks every
impression at serving time. ESMM trains pCTR and pCTCVR = pCTR * pCVR over all impressions,
so pCVR is learned for the entire space; the paper reports a higher CVR AUC (and CTCVR AUC)
than BASE on its public and industrial data sets.

Data: ``tf_mtl.data.synthetic.click_conversion`` (impressions -> click -> conversion, a
conversion observed only after a click), ``--rows`` impressions per seed, split 80/10/10 by
``split_indices`` with the seed; each seed also draws a new hidden model.

Models (same CVR network in both: the features' embeddings, then ReLU layers of 128 and 64
units, then a sigmoid):

- ``ESMM``: the ``esmm`` preset (pCTR and pCVR towers sharing the embeddings, no shared
  hidden layer), towers ``[128, 64]``; losses: CTR and CTCVR log loss over all impressions.
- ``BASE``: the ``single_task`` preset (each task its own embeddings and network), bottom
  ``[128]`` and tower ``[64]``; the CTR network is trained on all impressions, the CVR
  network only on clicked ones (``loss_masks={"cvr": "ctr"}``). Its pCTCVR is pCTR * pCVR.

Both train with Adam, equal task weights, early stopping on the validation loss.

Size matters: with 200,000 impressions (20,000 clicks for 1,000 users and 500 items) the two
models are level within the spread over seeds; the default of 1,000,000 impressions is where
BASE stops improving over the entire space while ESMM keeps going (``benchmarks/RESULTS.md``
has both).

The label of "CVR over the entire space". An impression that was not clicked has no
conversion label, and "converted" (click and conversion) is CTCVR's label, not CVR's. The
generator knows each impression's conversion-if-clicked propensity, ``q = oracle["cvr"] /
oracle["ctr"]`` (``P(click and conversion) / P(click)``). The entire-space CVR AUC is the AUC
of pCVR against the would-convert-if-clicked label ``Bernoulli(q)`` over ALL test impressions,
in expectation: every impression counts as a positive with weight ``q`` and as a negative with
weight ``1 - q`` (``tf_mtl.metrics.auc`` with weights), which removes the noise of drawing
the labels. ``q`` itself scores the best reachable AUC on that label (the "oracle" row).

Also reported: CVR AUC on the clicked test impressions against their observed conversions
(what the paper's metric measures), and CTCVR AUC over all test impressions against click
and conversion. Mean ± std over seeds.

Usage (from the repository root)::

    python benchmarks/reproduce_esmm.py [--seeds 3] [--rows 1000000]
"""

import pathlib
import sys
import time

import numpy as np

# `python benchmarks/reproduce_esmm.py` puts benchmarks/, not the repository root, on the path.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import _papers  # noqa: E402

NAME = "results_esmm"
LABELS = {"base": "BASE (CVR on clicks)", "esmm": "ESMM", "oracle": "oracle"}
METRICS = {
    "entire_cvr": "CVR AUC, all impressions",
    "clicked_cvr": "CVR AUC, clicked",
    "ctcvr": "CTCVR AUC, all impressions",
}
MODELS = {
    "base": ("single_task", {"bottom_params": {"dims": [128]}, "tower_params_list": [{"dims": [64]}] * 2}),
    "esmm": ("esmm", {"tower_params_list": [{"dims": [128, 64]}] * 2}),
}
LOSS_MASKS = {"base": {"cvr": "ctr"}, "esmm": None}


def _arguments(argv):
    parser = _papers.parser(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="impressions per seed (80/10/10 split)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=2, help="early stopping on the validation loss")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=3e-3)
    return _papers.parse(parser, argv)


def scores(p_ctr, p_cvr, test):
    """The three AUCs of pCTR and pCVR on the ``test`` part (see the module docstring)."""
    from tf_mtl.metrics import auc

    propensity = test.oracle["cvr"] / test.oracle["ctr"]
    clicked = test.y["ctr"] == 1
    n = len(p_cvr)
    return {
        "entire_cvr": auc(np.repeat([1.0, 0.0], n), np.tile(p_cvr, 2), np.concatenate([propensity, 1 - propensity])),
        "clicked_cvr": auc(test.y["cvr"][clicked], p_cvr[clicked]),
        "ctcvr": auc(test.y["cvr"], p_ctr * p_cvr),
    }


def run(seed, args):
    """Trains both models on one seed's data; returns ``{model: {metric: AUC}}`` with the oracle's."""
    from tf_mtl.data import click_conversion, split_indices
    from tf_mtl.models import build_model

    data = click_conversion(args.rows, seed=seed)
    train_data, val_data, test_data = (data.subset(i) for i in split_indices(data.num_examples, 0.8, 0.1, seed))
    train, val, test = _papers.loaders(train_data, val_data, test_data, args.batch_size, seed)
    results = {"oracle": scores(test_data.oracle["ctr"], test_data.oracle["cvr"] / test_data.oracle["ctr"], test_data)}
    for key, (preset, params) in MODELS.items():
        _papers.seed_everything(seed)
        model = build_model(preset, data.features, data.task_types, data.task_names, **params)
        trainer, history = _papers.train(
            model, train, val, args.lr, args.epochs, args.patience, monitor="loss", loss_masks=LOSS_MASKS[key]
        )
        p_ctr, p_cvr = trainer.predict(model, test).T
        results[key] = {**scores(p_ctr, p_cvr, test_data), "epochs": len(history)}
    return results


def main(argv=None):
    """Runs both models on every seed; prints and writes the table and the plot."""
    args = _arguments(argv)
    start = time.perf_counter()
    runs = []
    for seed in range(args.seeds):
        runs.append(run(seed, args))
        print(f"seed {seed}: " + "; ".join(f"{k} " + ", ".join(f"{m} {v[m]:.4f}" for m in METRICS) for k, v in runs[-1].items()),
              flush=True)
    values = {(model, metric): [r[model][metric] for r in runs] for model in LABELS for metric in METRICS}
    rows = [
        [LABELS[model], *(_papers.mean_std(values[model, metric]) for metric in METRICS),
         "" if model == "oracle" else _papers.mean_std([r[model]["epochs"] for r in runs], 1)]
        for model in LABELS
    ]
    body = _papers.table(["model", *METRICS.values(), "epochs trained"], rows)
    _papers.bar_plot(pathlib.Path(args.out) / f"{NAME}.png", METRICS, LABELS, values, "test AUC")
    gain = np.subtract(values["esmm", "entire_cvr"], values["base", "entire_cvr"])
    clicked_gain = np.subtract(values["esmm", "clicked_cvr"], values["base", "clicked_cvr"])
    conclusion = (
        f"ESMM minus BASE, paired by seed: entire-space CVR AUC {_papers.mean_std(gain)}, CVR AUC on clicked "
        f"impressions {_papers.mean_std(clicked_gain)}. "
        + ("ESMM ranks conversions over the entire space better than BASE, as the paper reports."
           if gain.mean() > _papers.spread(gain) else
           "ESMM does not beat BASE over the entire space by more than the spread over seeds here.")
    )
    setup = (
        f"{args.rows:,} impressions per seed (80/10/10), seeds 0-{args.seeds - 1}, batch {args.batch_size}, "
        f"Adam {args.lr:g}, at most {args.epochs} epochs with early stopping (patience {args.patience}) on the "
        "validation loss. Test AUC, mean ± std over seeds; \"oracle\" scores the generator's own probabilities."
    )
    _papers.report(args.out, NAME, "ESMM, entire-space CVR (Ma et al., SIGIR 2018)", __file__, argv,
                   time.perf_counter() - start, setup, f"{body}\n\n{conclusion}", "test AUC per model")
    return values


if __name__ == "__main__":
    main()
