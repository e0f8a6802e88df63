"""The README's main job: generated impressions -> the standard pipeline -> a pushed model."""

import os

from pipelines.config import load_config
from pipelines.pipeline import create_pipeline
from pipelines.runner import run_pipeline
from tf_mtl.data import click_conversion
from tf_mtl.files import atomic_path

CONFIG = os.path.join(os.path.dirname(__file__), "configs", "quickstart.yaml")


def write_impressions(path, samples, seed=0):
    """Writes ``samples`` generated click -> conversion impressions (``click_conversion``) as a
    CSV of raw values: an ``impression_id``, the features, and ``click`` / ``conversion``.
    An existing file is kept (the data is a function of ``samples`` and ``seed``); a new one is
    written atomically, so an interrupted write is never read as data."""
    if os.path.exists(path):
        return path
    frame = click_conversion(samples, seed=seed).to_frame().rename(columns={"ctr": "click", "cvr": "conversion"})
    frame[["click", "conversion"]] = frame[["click", "conversion"]].astype(int)
    frame.insert(0, "impression_id", range(len(frame)))
    with atomic_path(path, suffix=".csv") as partial:
        frame.to_csv(partial, index=False)
    return path


def quickstart(model="mmoe", samples=60_000, workdir="pipeline_runs/quickstart", output_dir="saved_models",
               tune=True, seed=0, log=print):
    """Runs the quickstart pipeline and returns its step results.

    Args:
        model: the model of the ``model`` section (any of ``tf_mtl.models.PRESETS``).
        samples: generated impressions (written once to ``workdir/impressions_<samples>_<seed>.csv``).
        workdir: the pipeline root (artifacts, cache).
        output_dir: where blessed models are pushed: ``output_dir/quickstart/<version>``.
        tune: run the Tuner step (a small random search).
    """
    data = write_impressions(os.path.join(workdir, "data", f"impressions_{samples}_{seed}.csv"), samples, seed)
    overrides = [f"data.path={data}", f"pipeline_root={workdir}", f"push.destination={output_dir}", f"model.name={model}",
                 f"training.seed={seed}"]
    if model != "mmoe":
        # The preset's own architecture; the search then tunes the learning rate only.
        overrides += ["model.params={}", "tuning.space={training.optimizer.lr: [0.001, 0.002, 0.004]}"]
    if not tune:
        overrides.append("tuning=null")
    config = load_config(CONFIG, overrides)
    return config, run_pipeline(create_pipeline(config), config["pipeline_root"], log=log)
