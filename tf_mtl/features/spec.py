"""The feature spec: frozen, typed, serialisable descriptions of a model's inputs.

The spec is the single source of the Keras ``Input``s, the ``tf.io`` parse spec for
``tf.Example`` and the serving ``TensorSpec``s (see ``tf_mtl.features.inputs``), and of the
embedding tables (``tf_mtl.features.embedding``).

A wrong value raises a ``FieldError`` naming its key path (``features[2].vocab_size``); its
checks (``positive_int``, ``finite_number``, ``check_rate``, ``check_name``, ``mapping``) serve
the task list, the layers and the models as well. Specs are read from JSON or YAML (``load_yaml``: a safe
loader that also refuses a key given twice), never unpickled or executed.

Example:

>>> features = [SparseFeature("user_id", 1000, 16),
...             SparseFeature("city", None, 8, vocabulary=["paris", "rome"]),
...             SequenceFeature("clicked_items", 5000, 16, "mean", 20),
...             DenseFeature("price", mean=10.0, std=4.0)]
>>> features == features_from_json(features_to_json(features))
True
"""

import dataclasses
import json
import math
import numbers
import os
import re
from collections.abc import Hashable, Iterable
from typing import Optional, Sequence, Tuple, Union

import yaml

from tf_mtl.errors import did_you_mean

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
POOLINGS = ("mean", "sum", "max")


# ---- checks of specs and arguments: every error names its key path --------------------------


class FieldError(ValueError):
    """A wrong value in a spec, a task list or a model's arguments, named by its key path.

    Args:
        path: the value's key path inside the object checked: ``"vocab_size"``,
            ``"task_names[1]"``, ``"expert_params.dims[1]"``.
        message: what was expected and what was received.
        owner: the object checked, e.g. ``"SparseFeature 'user'"`` or ``"MMOE"``, or ``None``.

    ``str(error)`` is ``"SparseFeature 'user': vocab_size: expected a positive integer.
    Received: 0"``. Readers of configs and files put where the object sat in front with
    ``at``: ``error.at("features[2]")`` reads ``"features[2].vocab_size: SparseFeature
    'user': expected a positive integer. Received: 0"``.
    """

    def __init__(self, path, message, owner=None):
        self.path, self.message, self.owner = path, message, owner
        super().__init__(f"{owner}: {path}: {message}" if owner else f"{path}: {message}")

    def at(self, prefix):
        """The same error with its path under ``prefix`` (and the owner in the message)."""
        message = f"{self.owner}: {self.message}" if self.owner else self.message
        return FieldError(join_path(prefix, self.path), message)


def join_path(prefix, key):
    """``"features"`` and ``2`` -> ``"features[2]"``; ``"model.params"`` and ``"n_expert"`` ->
    ``"model.params.n_expert"``; an empty prefix leaves the key alone."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if not prefix:
        return key
    return prefix + key if key.startswith("[") else f"{prefix}.{key}"


def check_name(name, path="name", owner=None):
    """Names become Keras input and TensorFlow op names, so they follow TF's naming rule."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise FieldError(
            path,
            "expected a name that starts with a letter or '_' and holds only letters, digits, '_', '.' "
            f"or '-'. Received: {name!r}",
            owner,
        )
    return name


def positive_int(value, path, owner=None):
    """``value`` as a Python int (numpy integers accepted; booleans and floats are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise FieldError(path, f"expected a positive integer. Received: {value!r}", owner)
    return int(value)


def finite_number(value, path, owner=None):
    """``value`` as a float: a real number, not a boolean, NaN or infinity."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise FieldError(path, f"expected a finite number. Received: {value!r}", owner)
    return float(value)


def check_rate(value, path, owner=None):
    """A dropout probability: a number in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise FieldError(path, f"expected a number in [0, 1). Received: {value!r}", owner)
    return value


def mapping(value, path, known, owner=None):
    """``value`` as a dict whose keys are among ``known``; ``None`` is an empty dict."""
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise FieldError(path, f"expected a mapping with keys among {list(known)}. Received: {value!r}", owner)
    for key in value:
        if key not in known:
            raise FieldError(join_path(path, str(key)), "unknown key" + did_you_mean(key, known, "Known keys"), owner)
    return dict(value)


def _vocabulary(values, owner):
    """``values`` as a tuple of distinct strings or of distinct integers, in their order (the
    i-th value gets row i, so an unordered set is refused)."""
    if isinstance(values, (str, bytes, dict, set, frozenset)) or not isinstance(values, Iterable):
        raise FieldError("vocabulary", f"expected a list of strings or of integers. Received: {values!r}", owner)
    vocab = tuple(values)
    if not vocab:
        raise FieldError("vocabulary", "expected at least one value. Received: []", owner)
    kinds = {type(v) for v in vocab}
    if not (kinds <= {str} or kinds <= {int}):
        raise FieldError(
            "vocabulary",
            f"expected only strings or only integers. Received types: {sorted(k.__name__ for k in kinds)}",
            owner,
        )
    first = {}
    for i, value in enumerate(vocab):
        if value in first:
            raise FieldError(f"vocabulary[{i}]", f"{value!r} is also vocabulary[{first[value]}].", owner)
        first[value] = i
    return vocab


@dataclasses.dataclass(frozen=True)
class _CategoricalFeature:
    """Ids looked up in an embedding table: the fields sparse and sequence features share."""

    name: str
    vocab_size: Optional[int]
    embed_dim: int
    _: dataclasses.KW_ONLY
    vocabulary: Optional[Tuple[Union[str, int], ...]] = None
    num_oov_buckets: int = 1
    dtype: Optional[str] = None
    shared_embed_name: Optional[str] = None
    pretrained_path: Optional[str] = None
    trainable: bool = True

    def __post_init__(self):
        owner = f"{type(self).__name__} {self.name!r}"
        check_name(self.name, "name", type(self).__name__)
        for field in ("embed_dim", "num_oov_buckets"):
            object.__setattr__(self, field, positive_int(getattr(self, field), field, owner))
        if self.vocab_size is not None:
            object.__setattr__(self, "vocab_size", positive_int(self.vocab_size, "vocab_size", owner))
        if self.vocabulary is not None:
            vocab = _vocabulary(self.vocabulary, owner)
            object.__setattr__(self, "vocabulary", vocab)
            if self.vocab_size is None:
                object.__setattr__(self, "vocab_size", len(vocab))
            elif self.vocab_size != len(vocab):
                raise FieldError(
                    "vocab_size",
                    f"the vocabulary has {len(vocab)} entries; give one or make them agree. "
                    f"Received: {self.vocab_size}",
                    owner,
                )
            inferred = "string" if isinstance(vocab[0], str) else "int64"
            if self.dtype not in (None, inferred):
                raise FieldError("dtype", f"the vocabulary holds {inferred} values. Received: {self.dtype!r}", owner)
            object.__setattr__(self, "dtype", inferred)
        elif self.vocab_size is None:
            raise FieldError("vocab_size", "required when no vocabulary is given.", owner)
        if self.dtype is None:
            object.__setattr__(self, "dtype", "int64")
        if self.dtype not in ("int64", "string"):
            raise FieldError("dtype", f"expected 'int64' or 'string'. Received: {self.dtype!r}", owner)
        if self.shared_embed_name is not None:
            check_name(self.shared_embed_name, "shared_embed_name", owner)
        if self.pretrained_path is not None:
            path = self.pretrained_path
            path = os.fspath(path) if isinstance(path, os.PathLike) else path
            if not isinstance(path, str) or not path:
                raise FieldError("pretrained_path", f"expected the path of a .npy file. Received: {path!r}", owner)
            object.__setattr__(self, "pretrained_path", path)
        if not isinstance(self.trainable, bool):
            raise FieldError("trainable", f"expected True or False. Received: {self.trainable!r}", owner)

    @property
    def table_name(self):
        """The embedding table this feature reads: its own, or the one it shares."""
        return self.shared_embed_name or self.name

    @property
    def hashed(self):
        """String ids without a vocabulary are hashed into ``vocab_size`` buckets."""
        return self.dtype == "string" and self.vocabulary is None

    @property
    def num_rows(self):
        """Rows of the embedding table: the vocabulary, then the OOV buckets."""
        return self.vocab_size if self.hashed else self.vocab_size + self.num_oov_buckets

    TABLE_FIELDS = ("vocab_size", "embed_dim", "vocabulary", "num_oov_buckets", "dtype", "pretrained_path", "trainable")

    def table_signature(self):
        """What features sharing one table must agree on: ``{field: value}``."""
        return {field: getattr(self, field) for field in self.TABLE_FIELDS}


@dataclasses.dataclass(frozen=True)
class SparseFeature(_CategoricalFeature):
    """One categorical id per example, embedded into ``embed_dim`` values.

    Ids are integers in ``[0, vocab_size)``; ids outside that range go to one of
    ``num_oov_buckets`` out-of-vocabulary rows (by ``id mod num_oov_buckets``), never to a
    crash or to another id's row. With ``vocabulary`` (raw strings or integers) the raw values
    are looked up in the graph, and unseen ones go to the OOV rows. String ids without a
    vocabulary (``dtype="string"``) are hashed into ``vocab_size`` buckets.

    Args:
        name: input name.
        vocab_size: number of known ids; may be omitted when ``vocabulary`` is given.
        embed_dim: embedding width.
        vocabulary: optional raw values; the i-th value gets row i.
        num_oov_buckets: rows for unknown ids (default 1).
        dtype: ``"int64"`` or ``"string"``; inferred from ``vocabulary`` when given.
        shared_embed_name: features with the same name here read one table (they must agree on
            vocabulary, sizes and dtype), e.g. an item id and a clicked-items history.
        pretrained_path: a ``.npy`` file with the initial table, of shape
            ``(vocab_size, embed_dim)`` (OOV rows then start random) or ``(num_rows, embed_dim)``;
            read (never unpickled) whenever the model is built, including when a saved
            ``.keras`` model is loaded, whose saved weights then replace it.
        trainable: ``False`` freezes the table (e.g. pretrained embeddings kept fixed).
    """


@dataclasses.dataclass(frozen=True)
class SequenceFeature(_CategoricalFeature):
    """A padded list of ids per example (multi-hot values, behaviour sequences), pooled.

    Input shape ``(batch, max_len)``; positions equal to ``padding_value`` (default 0 for
    integer ids, ``""`` for strings) are masked out of the pooling. A row with no ids pools
    to zeros. The other arguments are those of ``SparseFeature``.

    Args:
        pooling: ``"mean"``, ``"sum"`` or ``"max"`` over the unmasked positions.
        max_len: the padded length.
        padding_value: the value that marks an empty position.
    """

    pooling: str = "mean"
    max_len: Optional[int] = None
    _: dataclasses.KW_ONLY
    padding_value: Optional[Union[str, int]] = None

    def __post_init__(self):
        super().__post_init__()
        owner = f"SequenceFeature {self.name!r}"
        if self.pooling not in POOLINGS:
            raise FieldError("pooling", f"expected one of {list(POOLINGS)}. Received: {self.pooling!r}", owner)
        if self.max_len is None:
            raise FieldError("max_len", "required: the padded sequence length.", owner)
        object.__setattr__(self, "max_len", positive_int(self.max_len, "max_len", owner))
        if self.padding_value is None:
            object.__setattr__(self, "padding_value", "" if self.dtype == "string" else 0)
        expected, kind = (str, "a string") if self.dtype == "string" else (int, "an integer")
        if type(self.padding_value) is not expected:
            raise FieldError("padding_value", f"expected {kind} like the ids. Received: {self.padding_value!r}", owner)
        if self.vocabulary is not None and self.padding_value in self.vocabulary:
            raise FieldError("padding_value", f"{self.padding_value!r} is also in the vocabulary.", owner)


@dataclasses.dataclass(frozen=True)
class DenseFeature:
    """A numeric value (``embed_dim`` values per example), optionally normalized in the graph.

    Give ``mean`` and ``std`` for ``(x - mean) / std`` or ``min_value`` and ``max_value`` for
    ``(x - min) / (max - min)``; raw values then go in, at training and at serving time.

    Args:
        name: input name.
        embed_dim: number of values per example (1: a scalar).
    """

    name: str
    embed_dim: int = 1
    _: dataclasses.KW_ONLY
    mean: Optional[float] = None
    std: Optional[float] = None
    min_value: Optional[float] = None
    max_value: Optional[float] = None

    def __post_init__(self):
        owner = f"DenseFeature {self.name!r}"
        check_name(self.name, "name", "DenseFeature")
        object.__setattr__(self, "embed_dim", positive_int(self.embed_dim, "embed_dim", owner))
        for field in ("mean", "std", "min_value", "max_value"):
            if getattr(self, field) is not None:
                object.__setattr__(self, field, finite_number(getattr(self, field), field, owner))
        for first, second in (("mean", "std"), ("min_value", "max_value")):
            a, b = getattr(self, first), getattr(self, second)
            if (a is None) != (b is None):
                raise FieldError(
                    second if b is None else first,
                    f"give both {first} and {second}, or neither. Received: {first}={a!r}, {second}={b!r}",
                    owner,
                )
        if self.mean is not None and self.min_value is not None:
            raise FieldError("min_value", "give mean/std or min_value/max_value, not both.", owner)
        if self.std is not None and self.std <= 0:
            raise FieldError("std", f"expected a positive number. Received: {self.std}", owner)
        if self.min_value is not None and self.max_value <= self.min_value:
            raise FieldError(
                "max_value", f"expected a number above min_value={self.min_value}. Received: {self.max_value}", owner
            )


FEATURE_CLASSES = {cls.__name__: cls for cls in (SparseFeature, SequenceFeature, DenseFeature)}
Feature = Union[SparseFeature, SequenceFeature, DenseFeature]


def validate_features(features: Sequence[Feature], where="features"):
    """Checks a list of features as a whole; returns it as a tuple.

    Raises a ``FieldError`` for an empty list, a duplicated name (at ``features[3].name``) or
    features that share a table but disagree on it (at the differing field, e.g.
    ``features[3].embed_dim``), and a ``TypeError`` for an object that is not a feature.
    ``where`` is the key path of the list.
    """
    if isinstance(features, (str, bytes, dict)) or not isinstance(features, Iterable):
        raise TypeError(f"{where}: expected a list of {sorted(FEATURE_CLASSES)} objects. Received: {features!r}")
    features = tuple(features)
    if not features:
        raise FieldError(where, "expected at least one feature: a model needs one. Received: []")
    names, tables = {}, {}
    for i, feature in enumerate(features):
        at = join_path(where, i)
        if not isinstance(feature, tuple(FEATURE_CLASSES.values())):
            raise TypeError(f"{at}: expected one of {sorted(FEATURE_CLASSES)}. Received: {feature!r}")
        if feature.name in names:
            raise FieldError(
                f"{at}.name", f"{feature.name!r} is used more than once (also {join_path(where, names[feature.name])})."
            )
        names[feature.name] = i
        if isinstance(feature, _CategoricalFeature):
            j = tables.setdefault(feature.table_name, i)
            first = features[j]
            theirs, ours = first.table_signature(), feature.table_signature()
            for field in first.TABLE_FIELDS:
                if theirs[field] != ours[field]:
                    raise FieldError(
                        f"{at}.{field}",
                        f"{feature.name!r} shares the embedding table {feature.table_name!r} with {first.name!r} "
                        f"({join_path(where, j)}), so they must agree on it. Received: {ours[field]!r}; "
                        f"{first.name!r} has {theirs[field]!r}.",
                    )
    return features


def feature_to_config(feature):
    config = {"class_name": type(feature).__name__}
    for field in dataclasses.fields(feature):
        if field.name == "_":
            continue
        value = getattr(feature, field.name)
        config[field.name] = list(value) if isinstance(value, tuple) else value
    return config


def feature_from_config(config, where="features"):
    """Rebuilds a feature from ``feature_to_config``'s dict; errors name the key path
    (``features[2].vocab_size``)."""
    if not isinstance(config, dict):
        raise FieldError(where, f"expected a mapping. Received: {config!r}")
    config = dict(config)
    class_name = config.pop("class_name", None)
    cls = FEATURE_CLASSES.get(class_name) if isinstance(class_name, str) else None
    if cls is None:
        raise FieldError(f"{where}.class_name", f"expected one of {sorted(FEATURE_CLASSES)}. Received: {class_name!r}")
    fields = [f for f in dataclasses.fields(cls) if f.name != "_"]
    known = sorted(f.name for f in fields)
    for key in config:
        if key not in known:
            raise FieldError(join_path(where, str(key)), f"unknown {class_name} field" + did_you_mean(key, known, "Known fields"))
    for field in fields:
        if field.name not in config and field.default is dataclasses.MISSING:
            raise FieldError(join_path(where, field.name), f"required {class_name} field is missing.")
    try:
        return cls(**config)
    except FieldError as err:
        raise err.at(where) from None


def features_to_config(features):
    return [feature_to_config(f) for f in validate_features(features)]


def features_from_config(configs, where="features"):
    if not isinstance(configs, (list, tuple)):
        raise FieldError(where, f"expected a list of features. Received: {type(configs).__name__}")
    return validate_features([feature_from_config(c, join_path(where, i)) for i, c in enumerate(configs)], where)


def _unique_keys(pairs):
    """A JSON object as a dict; a key given twice is an error (``json`` would keep the last)."""
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} is given twice in one object")
        result[key] = value
    return result


def features_to_json(features):
    return json.dumps(features_to_config(features), indent=2)


def features_from_json(text):
    """The features of ``features_to_json``'s text; errors name the key path."""
    try:
        configs = json.loads(text, object_pairs_hook=_unique_keys)
    except ValueError as err:
        raise ValueError(f"features: not valid JSON: {err}") from None
    return features_from_config(configs)


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, which builds plain data only (a ``!!python/...`` tag is an error,
    never run), that also refuses a key given twice in one mapping: PyYAML keeps the last."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, Hashable):
                    continue  # PyYAML's own construct_mapping reports it
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark, f"found the key {key!r} a second time", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(stream):
    """The data of YAML text or an open file, read safely: plain data only, no key twice in
    one mapping. The one YAML reader of tf_mtl and its pipelines.

    Raises:
        yaml.YAMLError: text that is not YAML, a ``!!python/...`` tag, a repeated key.
    """
    return yaml.load(stream, Loader=_SafeLoader)  # noqa: S506 - _SafeLoader is a yaml.SafeLoader


def features_to_yaml(features):
    return yaml.safe_dump(features_to_config(features), sort_keys=False)


def features_from_yaml(text):
    """The features of ``features_to_yaml``'s text (read with ``load_yaml``); errors name the key path."""
    try:
        configs = load_yaml(text)
    except yaml.YAMLError as err:
        raise ValueError(f"features: not valid YAML: {err}") from None
    return features_from_config(configs)
