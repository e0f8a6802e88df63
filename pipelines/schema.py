"""SchemaGen: the data contract, inferred from the train statistics or pinned by the user.

``schema.yaml`` holds one entry per column::

    version: 1
    columns:
      item_category:
        type: string              # int | float | string
        list: false               # several values per row
        role: feature             # feature | label | unused
        required_column: true     # the column must exist (it is used as a feature or label)
        required: true            # every row must have a value (none was missing in train)
        max_missing_rate: 0.0     # the largest share of rows without a value
        domain: [cat_01, cat_02]  # int and string columns: the known values
        max_unseen_rate: 0.05     # the largest share of values outside the domain
      item_price:
        type: float
        ...
        min: 1.2                  # numeric columns: the expected range
        max: 98.1
        max_out_of_range_rate: 0.01  # the largest share of values outside [min, max]

Only ``type`` and ``list`` are required: ``role`` defaults to ``unused``, ``required`` and
``required_column`` to false, ``max_missing_rate`` to 0 for required columns and 1 otherwise,
the other rates to ``DEFAULT_MAX_UNSEEN_RATE`` and ``DEFAULT_MAX_OUT_OF_RANGE_RATE``; a column
without ``domain`` or ``min``/``max`` is not checked for them. To edit the schema, copy the
inferred ``schema.yaml`` next to the pipeline's config, change it, and pass its path as
``pinned``: SchemaGen then uses that file (validated) and reruns whenever it changes.
"""

import os
import shutil

import yaml

from pipelines.component import Component, file_digest
from pipelines.statistics import read_statistics, read_value_counts
from pipelines.checks import choice, integer, mapping, number, string
from tf_mtl.errors import did_you_mean
from tf_mtl.features.spec import check_name, load_yaml
from tf_mtl.tasks import TASK_TYPES

SCHEMA_FILE = "schema.yaml"
SCHEMA_VERSION = 1
TYPES = ("int", "float", "string")
ROLES = ("feature", "label", "unused")
FEATURE_KINDS = ("sparse", "sequence", "dense")
TASK_KEYS = ("name", "type", "label", "positive")
_CATEGORICAL_KEYS = ("name", "kind", "vocab_size", "max_vocab", "min_count", "embed_dim", "num_oov_buckets",
                     "shared_embed_name", "trainable")
FEATURE_KEYS = {
    "sparse": _CATEGORICAL_KEYS,
    "sequence": _CATEGORICAL_KEYS + ("pooling", "max_len", "padding_value"),
    "dense": ("name", "kind", "embed_dim", "normalize"),
}
NORMALIZATIONS = ("standard", "minmax", "none")
COLUMN_KEYS = ("type", "list", "role", "required_column", "required", "max_missing_rate", "domain",
               "max_unseen_rate", "min", "max", "max_out_of_range_rate")
RATE_KEYS = ("max_missing_rate", "max_unseen_rate", "max_out_of_range_rate")
DEFAULT_MAX_UNSEEN_RATE = 0.05
DEFAULT_MAX_OUT_OF_RANGE_RATE = 0.01
MISSING_RATE_MARGIN = 0.05
_HEADER = (
    "# Data schema (see pipelines/schema.py for every key). Edit it and pass its path as\n"
    "# SchemaGen(pinned=...) to make it the contract that ExampleValidator checks.\n"
)


def _column(name, columns, where):
    if columns is not None and name not in columns:
        raise ValueError(f"{where}: no column {name!r} in the data" + did_you_mean(name, sorted(columns), "Columns"))


def _check_feature_column(entry, spec, where):
    kind, kind_of_values = entry["kind"], spec["type"]
    if kind == "dense" and kind_of_values == "string":
        raise ValueError(f"{where}.kind: 'dense' needs a numeric column; {entry['name']!r} holds strings.")
    if kind != "dense" and kind_of_values == "float":
        raise ValueError(f"{where}.kind: {kind!r} needs int or string ids; {entry['name']!r} holds floats (use 'dense').")
    if kind != "dense" and spec["list"] != (kind == "sequence"):
        shape = "lists" if spec["list"] else "one value per row"
        raise ValueError(f"{where}.kind: {kind!r} does not fit {entry['name']!r}, which holds {shape}. "
                         f"Received: kind={kind!r}")


def check_features(entries, columns=None, where="features"):
    """Checks the pipeline's feature list; returns it as a list of dicts.

    Args:
        entries: ``[{"name": column, "kind": "sparse" | "sequence" | "dense", ...}]``; the keys
            of each kind are ``FEATURE_KEYS``.
        columns: ``{column: {"type", "list"}}`` to check the columns against, or ``None``.
        where: the key path that errors start with.
    """
    if not isinstance(entries, (list, tuple)) or not entries:
        raise ValueError(f"{where}: expected a non-empty list of features. Received: {entries!r}")
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        mapping(entry, at)
        if not isinstance(entry.get("name"), str):
            raise ValueError(f"{at}.name: expected the column's name. Received: {entry.get('name')!r}")
        kind = choice(entry.get("kind"), FEATURE_KINDS, f"{at}.kind")
        mapping(entry, at, FEATURE_KEYS[kind], what=f"{kind} feature key")
        for key in ("max_vocab", "min_count"):
            if key in entry:
                integer(entry[key], f"{at}.{key}")
        if "normalize" in entry:
            choice(entry["normalize"], NORMALIZATIONS, f"{at}.normalize")
        _column(entry["name"], columns, f"{at}.name")
        if columns is not None:
            _check_feature_column(entry, columns[entry["name"]], at)
    return [dict(entry) for entry in entries]


def check_tasks(tasks, columns=None, where="tasks"):
    """Checks the task list ``[{"name", "type", "label", "positive"?}]``; returns it as dicts.

    A classification label must be an int or string column; a string label needs ``positive``.
    """
    if not isinstance(tasks, (list, tuple)) or not tasks:
        raise ValueError(f"{where}: expected a non-empty list of tasks. Received: {tasks!r}")
    names = set()
    for i, task in enumerate(tasks):
        at = f"{where}[{i}]"
        mapping(task, at, TASK_KEYS, ("name", "type", "label"), what="task key")
        check_name(task["name"], f"{at}.name")
        if task["name"] in names:
            raise ValueError(f"{at}.name: {task['name']!r} is used more than once.")
        names.add(task["name"])
        choice(task["type"], TASK_TYPES, f"{at}.type")
        _column(string(task["label"], f"{at}.label"), columns, f"{at}.label")
        if columns is None or task["type"] != "classification":
            continue
        kind = columns[task["label"]]["type"]
        if kind == "float":
            raise ValueError(f"{at}.label: a classification label must be an int or string column; "
                             f"{task['label']!r} holds floats.")
        positive = task.get("positive")
        if kind == "string" and not isinstance(positive, str):
            raise ValueError(f"{at}.positive: the label {task['label']!r} holds strings; name the positive one. "
                             f"Received: {positive!r}")
        if kind == "int" and positive is not None and (isinstance(positive, bool) or not isinstance(positive, int)):
            raise ValueError(f"{at}.positive: the label {task['label']!r} holds ints. Received: {positive!r}")
    return [dict(task) for task in tasks]


def infer_schema(statistics, value_counts, features, tasks):
    """The schema of one split's statistics (the train split's).

    Args:
        statistics: ``{"rows", "columns"}`` of one split (``statistics.json``).
        value_counts: ``{column: [(value, count), ...]}`` for the sparse and sequence feature
            columns and the classification label columns.
        features: checked feature entries (``check_features``).
        tasks: checked tasks (``check_tasks``).
    """
    kinds = {entry["name"]: entry["kind"] for entry in features}
    labels = {task["label"]: task for task in tasks}
    columns = {}
    for name, stats in statistics["columns"].items():
        role = "label" if name in labels else "feature" if name in kinds else "unused"
        # Every row needs its labels: training cannot read a row without them.
        required = stats["missing"] == 0 or role == "label"
        column = {
            "type": stats["type"],
            "list": stats["list"],
            "role": role,
            "required_column": role != "unused",
            "required": required,
            "max_missing_rate": 0.0 if required else min(1.0, round(stats["missing_rate"] + MISSING_RATE_MARGIN, 4)),
        }
        task = labels.get(name)
        if task is not None and task["type"] == "classification":
            seen = {value for value, _ in value_counts[name]}
            column["domain"] = sorted(seen | {task["positive"]}) if "positive" in task else [0, 1]
        elif kinds.get(name) in ("sparse", "sequence"):
            column["domain"] = sorted(value for value, _ in value_counts[name])
            column["max_unseen_rate"] = DEFAULT_MAX_UNSEEN_RATE
        if stats["type"] != "string" and stats["min"] is not None:
            column.update(min=stats["min"], max=stats["max"], max_out_of_range_rate=DEFAULT_MAX_OUT_OF_RANGE_RATE)
        columns[name] = column
    return {"version": SCHEMA_VERSION, "columns": columns}


class _Dumper(yaml.SafeDumper):
    """Block mappings (one key a line) with lists on a line, so a long domain stays compact."""


_Dumper.add_representer(list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))


def write_schema(schema, path):
    with open(path, "w") as file:
        file.write(_HEADER)
        yaml.dump(schema, file, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _check_column(column, where):
    mapping(column, where, COLUMN_KEYS, what="column key")
    for key in ("type", "list"):
        if key not in column:
            raise ValueError(f"{where}.{key}: required. Received: {column!r}")
    kind = choice(column["type"], TYPES, f"{where}.type")
    choice(column.get("role", "unused"), ROLES, f"{where}.role")
    for key in ("list", "required", "required_column"):
        if not isinstance(column.get(key, False), bool):
            raise ValueError(f"{where}.{key}: expected true or false. Received: {column[key]!r}")
    for key in RATE_KEYS:
        value = column.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{where}.{key}: expected a number in [0, 1]. Received: {value!r}")
    if "domain" in column:
        domain, expected = column["domain"], {"int": int, "string": str}.get(kind)
        if expected is None:
            raise ValueError(f"{where}.domain: only int and string columns have a domain; this one is {kind!r}.")
        if not isinstance(domain, list) or not all(type(value) is expected for value in domain):
            raise ValueError(f"{where}.domain: expected a list of {expected.__name__} values. Received: {domain!r}")
    if ("min" in column) != ("max" in column):
        raise ValueError(f"{where}: give both min and max, or neither. Received: {column!r}")
    if "min" in column:
        if kind == "string":
            raise ValueError(f"{where}.min: only numeric columns have a range; this one holds strings.")
        number(column["min"], f"{where}.min")
        number(column["max"], f"{where}.max")
        if column["min"] > column["max"]:
            raise ValueError(f"{where}.max: must be at least min={column['min']}. Received: {column['max']!r}")
    required = column.get("required", False)
    defaults = {"role": "unused", "required_column": False, "required": False,
                "max_missing_rate": 0.0 if required else 1.0, "max_unseen_rate": DEFAULT_MAX_UNSEEN_RATE,
                "max_out_of_range_rate": DEFAULT_MAX_OUT_OF_RANGE_RATE}
    return {**defaults, **column}


def check_schema(schema, where="schema"):
    """A parsed schema, checked, with every optional column key filled in; errors give the key path."""
    mapping(schema, where, ("version", "columns"), what="schema key")
    if schema.get("version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ValueError(f"{where}: version: expected {SCHEMA_VERSION}. Received: {schema['version']!r}")
    columns = mapping(schema.get("columns"), f"{where}: columns")
    return {"version": SCHEMA_VERSION,
            "columns": {name: _check_column(column, f"{where}: columns.{name}") for name, column in columns.items()}}


def load_schema(path):
    """Reads and checks a schema YAML file (errors start with the path and the key path)."""
    with open(path) as file:
        try:
            schema = load_yaml(file)
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML: {err}") from err
    return check_schema(schema, os.fspath(path))


class SchemaGen(Component):
    """Infers the schema from the train statistics, or takes a pinned, user-edited one.

    Args:
        params: ``features``: the pipeline's features, ``[{"name": column, "kind": ..., ...}]``;
            ``tasks``: ``[{"name", "type": "classification" | "regression", "label": column,
            "positive"?}]``; ``pinned``: path of a schema YAML to use instead of inferring one
            (its digest is part of the cache key, so editing it reruns the step).
        name: the step's name.
        statistics: the StatisticsGen step.
    """

    INPUTS = ("statistics",)

    def __init__(self, params=None, name=None, **inputs):
        params = dict(params or {})
        mapping(params, "SchemaGen params", ("features", "tasks", "pinned"), what="SchemaGen key")
        super().__init__({"features": check_features(params.get("features")), "tasks": check_tasks(params.get("tasks") or []),
                          "pinned": params.get("pinned")}, name=name, **inputs)

    def fingerprint(self):
        pinned = self.params["pinned"]
        return None if pinned is None else file_digest(pinned)

    def run(self, inputs, output_dir):
        target = os.path.join(output_dir, SCHEMA_FILE)
        pinned = self.params["pinned"]
        if pinned is not None:
            schema = load_schema(pinned)
            check_features(self.params["features"], schema["columns"])
            check_tasks(self.params["tasks"], schema["columns"])
            shutil.copyfile(pinned, target)
            return {"columns": len(schema["columns"]), "pinned": pinned}
        artifact = inputs["statistics"]
        train = read_statistics(artifact)["splits"]["train"]
        features = check_features(self.params["features"], train["columns"])
        tasks = check_tasks(self.params["tasks"], train["columns"])
        counted = {e["name"] for e in features if e["kind"] != "dense"}
        counted |= {t["label"] for t in tasks if t["type"] == "classification"}
        value_counts = {name: read_value_counts(artifact, "train", name, train["columns"][name]["type"])
                        for name in counted}
        schema = infer_schema(train, value_counts, features, tasks)
        write_schema(schema, target)
        return {"columns": len(schema["columns"]), "pinned": None}

    def describe(self, artifact):
        pinned = artifact.figures["pinned"]
        return f"{artifact.figures['columns']} columns; " + (f"pinned {pinned}" if pinned else "inferred from train")
