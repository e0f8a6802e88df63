"""Transform: the complete ``tf_mtl`` feature spec, built from the train statistics.

The spec carries what the model needs to take raw values (vocabularies, normalization
constants), so the lookups and the normalization run in the model's graph and an exported
model serves raw examples. Rules per feature entry (keys in ``pipelines.schema.FEATURE_KEYS``):

- ``sparse`` / ``sequence`` with ``vocab_size``: ids are used as they are (int columns) or
  hashed into ``vocab_size`` buckets (string columns, ``dtype: string``).
- ``sparse`` / ``sequence`` without it: a ``vocabulary`` of the train values, most frequent
  first (ties by value), without values seen fewer than ``min_count`` times (default 1), values
  outside the schema's ``domain`` or a sequence's padding value, and cut to ``max_vocab``
  (default no cap). Features with one ``shared_embed_name`` get one vocabulary from the counts
  of all their columns.
- ``embed_dim``, ``num_oov_buckets``, ``pooling``, ``max_len``, ``padding_value``,
  ``shared_embed_name`` and ``trainable`` pass through.
- ``dense``: ``normalize`` is ``standard`` (default: train mean and std, a std of 0 taken as 1),
  ``minmax`` (train min and max; a constant column gets max = min + 1) or ``none``.

``defaults`` fill missing values when examples are parsed: a dense feature's train mean, -1 for
int ids and ``""`` for string ids (both out of the vocabulary, so they read an OOV row; a hashed
``""`` reads its hash bucket). Sequences need none: a missing list is all padding.
"""

import collections
import json
import os

from pipelines.component import Component
from pipelines.schema import SCHEMA_FILE, check_features, load_schema
from pipelines.statistics import ranked, read_statistics, read_value_counts
from tf_mtl.features.spec import (feature_from_config, features_from_config, features_to_config, features_to_yaml,
                                  validate_features)

TRANSFORM_FILE = "transform.json"
FEATURES_FILE = "features.yaml"
PASS_THROUGH = ("embed_dim", "num_oov_buckets", "pooling", "max_len", "padding_value", "shared_embed_name", "trainable")
VOCABULARY_KEYS = ("vocab_size", "max_vocab", "min_count")
CLASS_NAMES = {"sparse": "SparseFeature", "sequence": "SequenceFeature", "dense": "DenseFeature"}


def build_vocabulary(counts, max_vocab=None, min_count=1, exclude=()):
    """Values seen at least ``min_count`` times, most frequent first (ties by value), at most
    ``max_vocab`` of them, leaving out ``exclude``.

    Args:
        counts: ``{value: count}``.
    """
    kept = {value: count for value, count in counts.items() if count >= min_count and value not in exclude}
    return [value for value, _ in ranked(kept)[:max_vocab]]


def _padding(entry, kind_of_values):
    return entry.get("padding_value", "" if kind_of_values == "string" else 0)


def _vocabularies(entries, columns, value_counts, schema_columns):
    """``{table: vocabulary}`` for the categorical features without ``vocab_size``."""
    groups = collections.defaultdict(list)
    for i, entry in enumerate(entries):
        if entry["kind"] != "dense":
            groups[entry.get("shared_embed_name", entry["name"])].append((i, entry))
    vocabularies = {}
    for table, members in groups.items():
        first_index, first = members[0]
        for i, entry in members[1:]:
            for key in VOCABULARY_KEYS:
                if entry.get(key) != first.get(key):
                    raise ValueError(
                        f"features[{i}].{key}: {entry['name']!r} shares the table {table!r} with {first['name']!r} "
                        f"(features[{first_index}]), so they must agree on it. Received: {entry.get(key)!r} and "
                        f"{first.get(key)!r}")
        if "vocab_size" in first:
            continue
        counts, exclude = collections.Counter(), set()
        for _, entry in members:
            name, kind_of_values = entry["name"], columns[entry["name"]]["type"]
            domain = schema_columns.get(name, {}).get("domain")
            known = None if domain is None else set(domain)
            counts.update({v: c for v, c in value_counts(name) if known is None or v in known})
            if entry["kind"] == "sequence":
                exclude.add(_padding(entry, kind_of_values))
        vocabulary = build_vocabulary(counts, first.get("max_vocab"), first.get("min_count", 1), exclude)
        if not vocabulary:
            raise ValueError(f"features[{first_index}]: no train value of {first['name']!r} is kept for the "
                             f"vocabulary (min_count={first.get('min_count', 1)}).")
        vocabularies[table] = vocabulary
    return vocabularies


def _dense(entry, stats, where):
    """``(normalization fields, derived description)`` of a dense feature."""
    mode = entry.get("normalize", "standard")
    if mode == "none":
        return {}, "no normalization"
    if stats["mean"] is None:
        raise ValueError(f"{where}.normalize: {entry['name']!r} has no finite train value to normalize with. "
                         f"Received: normalize={mode!r}")
    if mode == "standard":
        std = stats["std"] or 1.0
        return {"mean": stats["mean"], "std": std}, f"mean {stats['mean']:.6g}, std {std:.6g}"
    high = stats["max"] if stats["max"] > stats["min"] else stats["min"] + 1.0
    return {"min_value": stats["min"], "max_value": high}, f"min {stats['min']:.6g}, max {high:.6g}"


def build_features(entries, statistics, value_counts, schema_columns):
    """The feature spec, the parsing defaults and a description of what was derived.

    Args:
        entries: the pipeline's feature list (see ``pipelines.schema.check_features``).
        statistics: the train split's ``{"rows", "columns"}`` (``statistics.json``).
        value_counts: ``value_counts(column)`` -> the ranked ``[(value, count)]`` in train.
        schema_columns: the schema's columns (vocabularies keep only a column's ``domain``).

    Returns:
        ``(features, defaults, derived)``: a tuple of tf_mtl features, ``{column: value}`` and
        ``{column: description}``.
    """
    columns = statistics["columns"]
    entries = check_features(entries, columns)
    vocabularies = _vocabularies(entries, columns, value_counts, schema_columns)
    features, defaults, derived = [], {}, {}
    for i, entry in enumerate(entries):
        name, kind = entry["name"], entry["kind"]
        stats = columns[name]
        config = {"class_name": CLASS_NAMES[kind], "name": name}
        config.update((key, entry[key]) for key in PASS_THROUGH if key in entry)
        if kind == "dense":
            fields, derived[name] = _dense(entry, stats, f"features[{i}]")
            config.update(fields)
            defaults[name] = stats["mean"] if stats["mean"] is not None else 0.0
        else:
            table = entry.get("shared_embed_name", name)
            strings = stats["type"] == "string"
            if "vocab_size" in entry:
                config.update(vocab_size=entry["vocab_size"], dtype="string" if strings else "int64")
                derived[name] = (f"hashed into {entry['vocab_size']} buckets" if strings
                                 else f"ids used as they are (vocab_size {entry['vocab_size']})")
            else:
                config.update(vocab_size=None, vocabulary=vocabularies[table])
                shared = f" shared as {table!r}" if table != name else ""
                derived[name] = f"vocabulary of {len(vocabularies[table])} values{shared}"
            if kind == "sparse":
                defaults[name] = "" if strings else -1
        features.append(feature_from_config(config, f"features[{i}]"))
    return validate_features(features), defaults, derived


def read_transform(path):
    """``(features, defaults)`` of a Transform output folder: the tf_mtl feature spec (a tuple)
    and ``{column: value for missing values}``."""
    path = os.path.join(path, TRANSFORM_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path}: no such file. A tf_mtl Transform output holds it (a TF Transform output does not: "
            "give the feature spec as custom_config['features'] instead)."
        )
    with open(path) as file:
        record = json.load(file)
    return features_from_config(record["features"], f"{path}: features"), record["defaults"]


class Transform(Component):
    """Builds the feature spec from the train statistics and the schema.

    Args:
        params: ``features``: the pipeline's features, ``[{"name": column, "kind": "sparse" |
            "sequence" | "dense", ...}]`` (rules in this module's docstring).
        name: the step's name.
        statistics: the StatisticsGen step.
        schema: the SchemaGen step.

    Example:

    >>> Transform({"features": [
    ...     {"name": "item_category", "kind": "sparse", "embed_dim": 8},
    ...     {"name": "user_id", "kind": "sparse", "vocab_size": 1000, "embed_dim": 16},
    ...     {"name": "item_price", "kind": "dense"}]}, statistics=stats, schema=schema)
    """

    INPUTS = ("statistics", "schema")

    def __init__(self, params=None, name=None, **inputs):
        params = dict(params or {})
        if set(params) != {"features"}:
            raise ValueError(f"Transform params: expected only 'features'. Received: {sorted(params)}")
        super().__init__({"features": check_features(params["features"])}, name=name, **inputs)

    def run(self, inputs, output_dir):
        artifact = inputs["statistics"]
        train = read_statistics(artifact)["splits"]["train"]
        schema = load_schema(inputs["schema"].file(SCHEMA_FILE))

        def value_counts(column):
            return read_value_counts(artifact, "train", column, train["columns"][column]["type"])

        features, defaults, derived = build_features(self.params["features"], train, value_counts, schema["columns"])
        with open(os.path.join(output_dir, FEATURES_FILE), "w") as file:
            file.write(features_to_yaml(features))
        with open(os.path.join(output_dir, TRANSFORM_FILE), "w") as file:
            json.dump({"features": features_to_config(features), "defaults": defaults, "derived": derived}, file, indent=1)
        return {"features": len(features),
                "vocabularies": sum(getattr(f, "vocabulary", None) is not None for f in features)}

    def describe(self, artifact):
        return f"{artifact.figures['features']} features, {artifact.figures['vocabularies']} with a vocabulary"
