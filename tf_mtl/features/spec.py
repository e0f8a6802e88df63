"""The feature spec: frozen, typed, serialisable descriptions of a model's inputs.

The spec is the single source of the Keras ``Input``s, the ``tf.io`` parse spec for
``tf.Example`` and the serving ``TensorSpec``s (see ``tf_mtl.features.inputs``), and of the
embedding tables (``tf_mtl.features.embedding``).

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
import numbers
import re
from typing import Optional, Sequence, Tuple, Union

import yaml

from tf_mtl.errors import did_you_mean

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
POOLINGS = ("mean", "sum", "max")


def check_name(kind, name):
    """Names become Keras input and TensorFlow op names, so they follow TF's naming rule."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{kind} name must start with a letter or '_' and contain only letters, digits, "
            f"'_', '.' or '-'. Received: name={name!r}"
        )


def _positive_int(owner, field, value):
    """``value`` as a Python int (numpy integers accepted); errors name the owner and field."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {field} must be a positive integer. Received: {field}={value!r}")
    return int(value)


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
        check_name(type(self).__name__, self.name)
        for field in ("embed_dim", "num_oov_buckets"):
            object.__setattr__(self, field, _positive_int(owner, field, getattr(self, field)))
        if self.vocabulary is not None:
            vocab = tuple(self.vocabulary)
            object.__setattr__(self, "vocabulary", vocab)
            if not vocab:
                raise ValueError(f"{owner}: vocabulary is empty.")
            kinds = {type(v) for v in vocab}
            if not (kinds <= {str} or kinds <= {int}):
                raise ValueError(
                    f"{owner}: vocabulary must hold only strings or only integers. "
                    f"Received types: {sorted(k.__name__ for k in kinds)}"
                )
            if len(set(vocab)) != len(vocab):
                dup = next(v for i, v in enumerate(vocab) if v in vocab[:i])
                raise ValueError(f"{owner}: vocabulary holds {dup!r} more than once.")
            if self.vocab_size is None:
                object.__setattr__(self, "vocab_size", len(vocab))
            elif self.vocab_size != len(vocab):
                raise ValueError(
                    f"{owner}: vocab_size={self.vocab_size} but the vocabulary has {len(vocab)} "
                    "entries; give one or make them agree."
                )
            inferred = "string" if kinds <= {str} else "int64"
            if self.dtype not in (None, inferred):
                raise ValueError(f"{owner}: dtype={self.dtype!r} but the vocabulary holds {inferred} values.")
            object.__setattr__(self, "dtype", inferred)
        if self.vocab_size is None:
            raise ValueError(f"{owner}: vocab_size is required when no vocabulary is given.")
        object.__setattr__(self, "vocab_size", _positive_int(owner, "vocab_size", self.vocab_size))
        if self.dtype is None:
            object.__setattr__(self, "dtype", "int64")
        if self.dtype not in ("int64", "string"):
            raise ValueError(f"{owner}: dtype must be 'int64' or 'string'. Received: dtype={self.dtype!r}")
        if self.shared_embed_name is not None:
            check_name(f"{owner}: shared_embed_name", self.shared_embed_name)
        if not isinstance(self.trainable, bool):
            raise ValueError(f"{owner}: trainable must be True or False. Received: {self.trainable!r}")

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
            raise ValueError(f"{owner}: pooling must be one of {POOLINGS}. Received: pooling={self.pooling!r}")
        if self.max_len is None:
            raise ValueError(f"{owner}: max_len (the padded sequence length) is required.")
        object.__setattr__(self, "max_len", _positive_int(owner, "max_len", self.max_len))
        if self.padding_value is None:
            object.__setattr__(self, "padding_value", "" if self.dtype == "string" else 0)
        expected = str if self.dtype == "string" else int
        if type(self.padding_value) is not expected:
            raise ValueError(
                f"{owner}: padding_value must be a {expected.__name__} like the ids. "
                f"Received: padding_value={self.padding_value!r}"
            )
        if self.vocabulary is not None and self.padding_value in self.vocabulary:
            raise ValueError(f"{owner}: padding_value {self.padding_value!r} is also in the vocabulary.")


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
        check_name("DenseFeature", self.name)
        object.__setattr__(self, "embed_dim", _positive_int(owner, "embed_dim", self.embed_dim))
        for first, second in (("mean", "std"), ("min_value", "max_value")):
            a, b = getattr(self, first), getattr(self, second)
            if (a is None) != (b is None):
                raise ValueError(
                    f"{owner}: give both {first} and {second}, or neither. Received: {first}={a!r}, {second}={b!r}"
                )
        standard = (self.mean, self.std)
        minmax = (self.min_value, self.max_value)
        if standard[0] is not None and minmax[0] is not None:
            raise ValueError(f"{owner}: give mean/std or min_value/max_value, not both.")
        for field in ("mean", "std", "min_value", "max_value"):
            value = getattr(self, field)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{owner}: {field} must be a number. Received: {field}={value!r}")
                object.__setattr__(self, field, float(value))
        if self.std is not None and self.std <= 0:
            raise ValueError(f"{owner}: std must be positive. Received: std={self.std}")
        if self.min_value is not None and self.max_value <= self.min_value:
            raise ValueError(
                f"{owner}: max_value must exceed min_value. "
                f"Received: min_value={self.min_value}, max_value={self.max_value}"
            )


FEATURE_CLASSES = {cls.__name__: cls for cls in (SparseFeature, SequenceFeature, DenseFeature)}
Feature = Union[SparseFeature, SequenceFeature, DenseFeature]


def validate_features(features: Sequence[Feature]):
    """Checks a list of features as a whole; returns it as a tuple.

    Raises a ``ValueError`` naming the feature for an empty list, an object that is not a
    feature, a duplicated name, or features that share a table but disagree on it.
    """
    features = tuple(features)
    if not features:
        raise ValueError("features is empty: a model needs at least one feature.")
    seen, tables = set(), {}
    for feature in features:
        if not isinstance(feature, tuple(FEATURE_CLASSES.values())):
            raise TypeError(
                "features must be SparseFeature, SequenceFeature or DenseFeature objects. "
                f"Received: {feature!r}"
            )
        if feature.name in seen:
            raise ValueError(f"Feature name {feature.name!r} is used more than once.")
        seen.add(feature.name)
        if isinstance(feature, _CategoricalFeature):
            first = tables.setdefault(feature.table_name, feature)
            theirs, ours = first.table_signature(), feature.table_signature()
            for field in first.TABLE_FIELDS:
                if theirs[field] != ours[field]:
                    raise ValueError(
                        f"Features {first.name!r} and {feature.name!r} share the embedding table "
                        f"{feature.table_name!r} but differ: {first.name!r} has {field}={theirs[field]!r}, "
                        f"{feature.name!r} has {field}={ours[field]!r}."
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
    """Rebuilds a feature from ``feature_to_config``'s dict; errors name the key path."""
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a mapping. Received: {config!r}")
    config = dict(config)
    class_name = config.pop("class_name", None)
    cls = FEATURE_CLASSES.get(class_name)
    if cls is None:
        raise ValueError(f"{where}.class_name: expected one of {sorted(FEATURE_CLASSES)}. Received: {class_name!r}")
    known = {f.name for f in dataclasses.fields(cls)} - {"_"}
    for key in config:
        if key not in known:
            raise ValueError(f"{where}.{key}: unknown {class_name} field" + did_you_mean(key, sorted(known), "Known fields"))
    try:
        return cls(**config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from err


def features_to_config(features):
    return [feature_to_config(f) for f in validate_features(features)]


def features_from_config(configs, where="features"):
    if not isinstance(configs, (list, tuple)):
        raise ValueError(f"{where}: expected a list of features. Received: {type(configs).__name__}")
    return validate_features(feature_from_config(c, f"{where}[{i}]") for i, c in enumerate(configs))


def features_to_json(features):
    return json.dumps(features_to_config(features), indent=2)


def features_from_json(text):
    return features_from_config(json.loads(text))


def features_to_yaml(features):
    return yaml.safe_dump(features_to_config(features), sort_keys=False)


def features_from_yaml(text):
    return features_from_config(yaml.safe_load(text))
