"""The standard pipeline: a function from a checked config to its components.

    ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform
               -> [Tuner] -> Trainer -> Evaluator -> Pusher

A pipeline of one's own is another such function: ``run_pipeline(my_pipeline(config), root)``.
"""

import os

from pipelines.evaluator import Evaluator
from pipelines.example_gen import ExampleGen, Source
from pipelines.pusher import Pusher
from pipelines.schema import SchemaGen
from pipelines.statistics import StatisticsGen
from pipelines.trainer import Trainer
from pipelines.transform import Transform
from pipelines.tuner import TRAINING_KEYS, Tuner
from pipelines.validator import ExampleValidator


def list_columns(features):
    """``{column: separator}`` of the sequence features (their columns hold joined lists)."""
    return {f["name"]: f.get("separator", "|") for f in features if f["kind"] == "sequence"}


def create_pipeline(config, frame=None):
    """The components of the standard pipeline for a config from ``load_config`` /
    ``check_config``; ``frame`` (a pandas DataFrame) replaces ``data.path`` as the source."""
    data = config["data"]
    source = Source(frame=frame) if frame is not None else Source(data["path"], data.get("format"), data.get("read_options"))
    examples = ExampleGen(
        source, data["splits"], data.get("key"), list_columns(config["features"]),
        execution=data["execution"], beam_options=data.get("beam_options"),
    )
    statistics = StatisticsGen({"execution": data["execution"], "beam_options": data.get("beam_options")}, examples=examples)
    # The schema needs each feature's column and kind only: an embed_dim change does not rerun it.
    kinds = [{"name": f["name"], "kind": f["kind"]} for f in config["features"]]
    schema = SchemaGen({"features": kinds, "tasks": config["tasks"], "pinned": config.get("schema")}, statistics=statistics)
    validator = ExampleValidator({}, statistics=statistics, schema=schema)
    transform = Transform({"features": config["features"]}, statistics=statistics, schema=schema)
    train_config = {key: config.get(key) for key in ("name", "tasks", "model", "training", "fusion")}
    tuner = None
    if config.get("tuning"):
        # What a trial reads, and nothing else: a change of epochs or fusion does not rerun the search.
        training = {k: v for k, v in config["training"].items() if k in TRAINING_KEYS}
        tuner = Tuner({"tasks": config["tasks"], "model": config["model"], "training": training, "tuning": config["tuning"]},
                      examples=examples, transform=transform)
    trainer = Trainer(train_config, examples=examples, transform=transform, tuner=tuner)
    push = config["push"]
    evaluation = dict(config["evaluation"])
    compare = evaluation.pop("compare_to_pushed", True)
    evaluation["batch_size"] = evaluation.get("batch_size") or config["training"]["batch_size"]
    evaluator = Evaluator(
        {
            "tasks": config["tasks"],
            "baseline_dir": os.path.join(push["destination"], push["model_name"]) if compare else None,
            **evaluation,
        },
        examples=examples, model=trainer, transform=transform,
    )
    pusher = Pusher(push, model=trainer, evaluation=evaluator)
    steps = [examples, statistics, schema, validator, transform, tuner, trainer, evaluator, pusher]
    return [step for step in steps if step is not None]
