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
from pipelines.tuner import Tuner
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
    schema = SchemaGen({"features": config["features"], "tasks": config["tasks"], "pinned": config.get("schema")}, statistics=statistics)
    validator = ExampleValidator({}, statistics=statistics, schema=schema)
    transform = Transform({"features": config["features"]}, statistics=statistics, schema=schema)
    train_config = {key: config.get(key) for key in ("name", "tasks", "model", "training", "fusion")}
    tuner = None
    if config.get("tuning"):
        tuner = Tuner({**train_config, "tuning": config["tuning"]}, examples=examples, transform=transform)
    trainer = Trainer(train_config, examples=examples, transform=transform, tuner=tuner)
    push = config["push"]
    evaluator = Evaluator(
        {
            "tasks": config["tasks"],
            "training": config["training"],
            "baseline_dir": os.path.join(push["destination"], push["model_name"]),
            **config["evaluation"],
        },
        examples=examples, model=trainer, transform=transform,
    )
    pusher = Pusher(push, model=trainer, evaluation=evaluator)
    steps = [examples, statistics, schema, validator, transform, tuner, trainer, evaluator, pusher]
    return [step for step in steps if step is not None]
