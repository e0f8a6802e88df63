"""Tests of the feature spec: round trips, derived properties and every validation error."""

import dataclasses
import json
import re

import pytest
import yaml

from tf_mtl.features.spec import (
    DenseFeature,
    SequenceFeature,
    SparseFeature,
    feature_from_config,
    feature_to_config,
    features_from_config,
    features_from_json,
    features_from_yaml,
    features_to_config,
    features_to_json,
    features_to_yaml,
    FieldError,
    join_path,
    load_yaml,
    validate_features,
)

# Every kind and option: vocabularies of both types (with strings YAML would misread unquoted),
# OOV buckets, hashing, a table shared by a sparse and a sequence feature, custom padding,
# pretrained and frozen tables, both normalizations and a vector dense feature.
FEATURES = (
    SparseFeature("user_id", 1000, 16, pretrained_path="emb/user.npy", trainable=False),
    SparseFeature("city", None, 8, vocabulary=["paris", "rome", "yes", "null", "1", "a: b"], num_oov_buckets=3),
    SparseFeature("category", None, 4, vocabulary=[30, 10, -20]),
    SparseFeature("query", 64, 4, dtype="string"),
    SparseFeature("item_id", 500, 16, shared_embed_name="item"),
    SequenceFeature("clicked_items", 500, 16, "sum", 20, shared_embed_name="item"),
    SequenceFeature("tags", 50, 4, "max", 5, dtype="string"),
    SequenceFeature("genres", None, 4, "mean", 3, vocabulary=["drama", "comedy"], padding_value="<pad>"),
    SequenceFeature("levels", 10, 2, "mean", 4, padding_value=-1),
    DenseFeature("price", mean=10.0, std=4.0),
    DenseFeature("age", min_value=0, max_value=100),
    DenseFeature("vec", 3),
)


def test_json_round_trip_equals_original():
    restored = features_from_json(features_to_json(FEATURES))
    assert restored == FEATURES
    assert [type(f) for f in restored] == [type(f) for f in FEATURES]


def test_yaml_round_trip_equals_original():
    text = features_to_yaml(FEATURES)
    restored = features_from_yaml(text)
    assert restored == FEATURES
    # Strings that look like YAML booleans, nulls or numbers stay strings.
    assert restored[1].vocabulary == ("paris", "rome", "yes", "null", "1", "a: b")
    assert restored[2].vocabulary == (30, 10, -20)


def test_config_round_trip_of_each_feature():
    for feature in FEATURES:
        assert feature_from_config(feature_to_config(feature)) == feature


def test_config_holds_exactly_the_fields():
    assert feature_to_config(DenseFeature("price", mean=10, std=4)) == {
        "class_name": "DenseFeature",
        "name": "price",
        "embed_dim": 1,
        "mean": 10.0,
        "std": 4.0,
        "min_value": None,
        "max_value": None,
    }
    assert feature_to_config(SequenceFeature("genres", None, 4, "mean", 3, vocabulary=["drama", "comedy"])) == {
        "class_name": "SequenceFeature",
        "name": "genres",
        "vocab_size": 2,
        "embed_dim": 4,
        "vocabulary": ["drama", "comedy"],
        "num_oov_buckets": 1,
        "dtype": "string",
        "shared_embed_name": None,
        "pretrained_path": None,
        "trainable": True,
        "pooling": "mean",
        "max_len": 3,
        "padding_value": "",
    }


def test_json_is_plain_json():
    configs = json.loads(features_to_json(FEATURES))
    assert configs == features_to_config(FEATURES)
    assert configs[5]["shared_embed_name"] == "item"


# Python tags (!!python/object/apply:os.system ...) are tried in tests/reliability/test_bad_config.py.
def test_load_yaml_refuses_repeated_keys_and_keeps_merges():
    with pytest.raises(yaml.constructor.ConstructorError, match=r"found the key 'epochs' a second time[\s\S]*line 3, column 3"):
        load_yaml("training:\n  epochs: 2\n  epochs: 20\n")
    # A merge key (<<) may be overridden: that is YAML's own way to change an inherited value.
    assert load_yaml("base: &b {dims: [8], dropout: 0.1}\ntower: {<<: *b, dims: [4]}\n")["tower"] == {"dims": [4], "dropout": 0.1}


def test_json_and_yaml_refuse_a_key_given_twice():
    text = '[{"class_name": "DenseFeature", "name": "price", "name": "cost"}]'
    with pytest.raises(ValueError, match=re.escape("features: not valid JSON: key 'name' is given twice in one object")):
        features_from_json(text)
    with pytest.raises(ValueError, match=r"features: not valid YAML: [\s\S]*found the key 'name' a second time"):
        features_from_yaml("- {class_name: DenseFeature, name: price, name: cost}\n")
    with pytest.raises(ValueError, match="features: not valid JSON: Expecting property name"):
        features_from_json("[{]")


def test_features_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FEATURES[0].embed_dim = 3


@pytest.mark.parametrize(
    "feature, vocab_size, dtype, num_rows, hashed, table_name",
    [
        (SparseFeature("u", 10, 4), 10, "int64", 11, False, "u"),
        (SparseFeature("u", 10, 4, num_oov_buckets=3), 10, "int64", 13, False, "u"),
        (SparseFeature("q", 10, 4, dtype="string"), 10, "string", 10, True, "q"),
        (SparseFeature("c", None, 4, vocabulary=["a", "b", "c"]), 3, "string", 4, False, "c"),
        (SparseFeature("c", 3, 4, vocabulary=[7, 1, 3], num_oov_buckets=2), 3, "int64", 5, False, "c"),
        (SequenceFeature("h", 20, 4, "sum", 5, shared_embed_name="item"), 20, "int64", 21, False, "item"),
    ],
)
def test_derived_properties(feature, vocab_size, dtype, num_rows, hashed, table_name):
    assert (feature.vocab_size, feature.dtype, feature.num_rows, feature.hashed, feature.table_name) == (
        vocab_size,
        dtype,
        num_rows,
        hashed,
        table_name,
    )


def test_defaults():
    assert SequenceFeature("h", 20, 4, "sum", 5).padding_value == 0
    assert SequenceFeature("t", 20, 4, "sum", 5, dtype="string").padding_value == ""
    assert SequenceFeature("h", 20, 4, max_len=5).pooling == "mean"
    assert isinstance(SparseFeature("c", None, 2, vocabulary=["a"]).vocabulary, tuple)
    assert DenseFeature("age", min_value=0, max_value=100).min_value == 0.0
    assert isinstance(DenseFeature("age", min_value=0, max_value=100).min_value, float)


def test_validate_features_returns_a_tuple():
    features = [SparseFeature("a", 10, 4), DenseFeature("b")]
    assert validate_features(features) == tuple(features)
    assert validate_features(iter(features)) == tuple(features)


# (factory, the whole message): the feature, the field's key path and the received value.
ERRORS = {
    "vocab_size_zero": (lambda: SparseFeature("user", 0, 4), "SparseFeature 'user': vocab_size: expected a positive integer. Received: 0"),
    "vocab_size_negative": (
        lambda: SequenceFeature("hist", -3, 4, "mean", 5),
        "SequenceFeature 'hist': vocab_size: expected a positive integer. Received: -3",
    ),
    "vocab_size_float": (lambda: SparseFeature("user", 2.5, 4), "SparseFeature 'user': vocab_size: expected a positive integer. Received: 2.5"),
    "vocab_size_bool": (lambda: SparseFeature("user", True, 4), "SparseFeature 'user': vocab_size: expected a positive integer. Received: True"),
    "vocab_size_string": (lambda: SparseFeature("user", "10", 4), "SparseFeature 'user': vocab_size: expected a positive integer. Received: '10'"),
    "vocab_size_missing": (lambda: SparseFeature("user", None, 4), "SparseFeature 'user': vocab_size: required when no vocabulary is given."),
    "vocab_size_disagrees": (
        lambda: SparseFeature("city", 3, 4, vocabulary=["a", "b"]),
        "SparseFeature 'city': vocab_size: the vocabulary has 2 entries; give one or make them agree. Received: 3",
    ),
    "embed_dim_zero": (lambda: SparseFeature("user", 10, 0), "SparseFeature 'user': embed_dim: expected a positive integer. Received: 0"),
    "dense_embed_dim_zero": (lambda: DenseFeature("price", 0), "DenseFeature 'price': embed_dim: expected a positive integer. Received: 0"),
    "num_oov_buckets_zero": (
        lambda: SparseFeature("user", 10, 4, num_oov_buckets=0),
        "SparseFeature 'user': num_oov_buckets: expected a positive integer. Received: 0",
    ),
    "duplicate_names": (
        lambda: validate_features([SparseFeature("user", 10, 4), DenseFeature("user")]),
        "features[1].name: 'user' is used more than once (also features[0]).",
    ),
    "duplicate_vocabulary_entry": (
        lambda: SparseFeature("city", None, 4, vocabulary=["paris", "rome", "paris"]),
        "SparseFeature 'city': vocabulary[2]: 'paris' is also vocabulary[0].",
    ),
    "mixed_vocabulary_types": (
        lambda: SparseFeature("city", None, 4, vocabulary=["paris", 1]),
        "SparseFeature 'city': vocabulary: expected only strings or only integers. Received types: ['int', 'str']",
    ),
    "empty_vocabulary": (
        lambda: SparseFeature("city", None, 4, vocabulary=[]),
        "SparseFeature 'city': vocabulary: expected at least one value. Received: []",
    ),
    # A string is a list of characters to Python, and a set has no order for the rows.
    "vocabulary_a_string": (
        lambda: SparseFeature("city", None, 4, vocabulary="paris"),
        "SparseFeature 'city': vocabulary: expected a list of strings or of integers. Received: 'paris'",
    ),
    "vocabulary_a_set": (
        lambda: SparseFeature("city", None, 4, vocabulary={"paris"}),
        "SparseFeature 'city': vocabulary: expected a list of strings or of integers. Received: {'paris'}",
    ),
    "vocabulary_a_number": (
        lambda: SparseFeature("city", None, 4, vocabulary=5),
        "SparseFeature 'city': vocabulary: expected a list of strings or of integers. Received: 5",
    ),
    "dtype_disagrees_with_vocabulary": (
        lambda: SparseFeature("city", None, 4, vocabulary=["a"], dtype="int64"),
        "SparseFeature 'city': dtype: the vocabulary holds string values. Received: 'int64'",
    ),
    "bad_dtype": (lambda: SparseFeature("user", 10, 4, dtype="float32"), "SparseFeature 'user': dtype: expected 'int64' or 'string'. Received: 'float32'"),
    "bad_name": (
        lambda: SparseFeature("user id", 10, 4),
        "SparseFeature: name: expected a name that starts with a letter or '_' and holds only letters, digits, '_', '.' "
        "or '-'. Received: 'user id'",
    ),
    "bad_shared_embed_name": (
        lambda: SparseFeature("user", 10, 4, shared_embed_name=3),
        "SparseFeature 'user': shared_embed_name: expected a name that starts with a letter or '_' and holds only "
        "letters, digits, '_', '.' or '-'. Received: 3",
    ),
    "bad_pretrained_path": (
        lambda: SparseFeature("user", 10, 4, pretrained_path=3),
        "SparseFeature 'user': pretrained_path: expected the path of a .npy file. Received: 3",
    ),
    "bad_trainable": (lambda: SparseFeature("user", 10, 4, trainable="no"), "SparseFeature 'user': trainable: expected True or False. Received: 'no'"),
    "shared_table_disagreement_names_features": (
        lambda: validate_features(
            [SparseFeature("item", 10, 4, shared_embed_name="t"), SequenceFeature("hist", 10, 8, "mean", 5, shared_embed_name="t")]
        ),
        "features[1].embed_dim: 'hist' shares the embedding table 't' with 'item' (features[0]), so they must agree on it. "
        "Received: 8; 'item' has 4.",
    ),
    "missing_max_len": (lambda: SequenceFeature("hist", 10, 4, "mean"), "SequenceFeature 'hist': max_len: required: the padded sequence length."),
    "max_len_zero": (lambda: SequenceFeature("hist", 10, 4, "mean", 0), "SequenceFeature 'hist': max_len: expected a positive integer. Received: 0"),
    "bad_pooling": (
        lambda: SequenceFeature("hist", 10, 4, "median", 5),
        "SequenceFeature 'hist': pooling: expected one of ['mean', 'sum', 'max']. Received: 'median'",
    ),
    "padding_value_type": (
        lambda: SequenceFeature("hist", 10, 4, "mean", 5, padding_value="0"),
        "SequenceFeature 'hist': padding_value: expected an integer like the ids. Received: '0'",
    ),
    "padding_value_in_vocabulary": (
        lambda: SequenceFeature("tags", None, 4, "mean", 5, vocabulary=["a", "<pad>"], padding_value="<pad>"),
        "SequenceFeature 'tags': padding_value: '<pad>' is also in the vocabulary.",
    ),
    "std_zero": (lambda: DenseFeature("price", mean=1.0, std=0.0), "DenseFeature 'price': std: expected a positive number. Received: 0.0"),
    "std_negative": (lambda: DenseFeature("price", mean=1.0, std=-2), "DenseFeature 'price': std: expected a positive number. Received: -2.0"),
    "std_infinite": (lambda: DenseFeature("price", mean=1.0, std=float("inf")), "DenseFeature 'price': std: expected a finite number. Received: inf"),
    "mean_nan": (lambda: DenseFeature("price", mean=float("nan"), std=1.0), "DenseFeature 'price': mean: expected a finite number. Received: nan"),
    "mean_without_std_names_fields": (
        lambda: DenseFeature("price", mean=1.0),
        "DenseFeature 'price': std: give both mean and std, or neither. Received: mean=1.0, std=None",
    ),
    "std_without_mean": (
        lambda: DenseFeature("price", std=1.0),
        "DenseFeature 'price': mean: give both mean and std, or neither. Received: mean=None, std=1.0",
    ),
    "min_without_max": (
        lambda: DenseFeature("price", min_value=1.0),
        "DenseFeature 'price': max_value: give both min_value and max_value, or neither. Received: min_value=1.0, max_value=None",
    ),
    "max_not_above_min": (
        lambda: DenseFeature("price", min_value=1.0, max_value=1.0),
        "DenseFeature 'price': max_value: expected a number above min_value=1.0. Received: 1.0",
    ),
    "both_normalizations": (
        lambda: DenseFeature("price", mean=0.0, std=1.0, min_value=0.0, max_value=1.0),
        "DenseFeature 'price': min_value: give mean/std or min_value/max_value, not both.",
    ),
    "mean_not_a_number": (lambda: DenseFeature("price", mean="1", std=1.0), "DenseFeature 'price': mean: expected a finite number. Received: '1'"),
}


@pytest.mark.parametrize("factory, message", list(ERRORS.values()), ids=list(ERRORS))
def test_validation_error_names_feature_field_and_value(factory, message):
    with pytest.raises(FieldError) as info:
        factory()
    assert str(info.value) == message


def test_field_error_at_moves_the_path_under_a_prefix():
    with pytest.raises(FieldError) as info:
        SparseFeature("user", 0, 4)
    assert (info.value.path, info.value.owner) == ("vocab_size", "SparseFeature 'user'")
    moved = info.value.at("features[2]")
    assert (moved.path, str(moved)) == (
        "features[2].vocab_size",
        "features[2].vocab_size: SparseFeature 'user': expected a positive integer. Received: 0",
    )
    assert join_path("features", 2) == "features[2]" and join_path("", "dims") == "dims"
    assert join_path("model.params", "[0]") == "model.params[0]"


def test_pretrained_path_may_be_a_path_object(tmp_path):
    assert SparseFeature("user", 10, 4, pretrained_path=tmp_path / "user.npy").pretrained_path == str(tmp_path / "user.npy")


@pytest.mark.parametrize(
    "second",
    [
        SequenceFeature("hist", 10, 4, "mean", 5, shared_embed_name="item", trainable=False),
        SequenceFeature("hist", 10, 4, "mean", 5, shared_embed_name="item", pretrained_path="item.npy"),
    ],
    ids=["trainable", "pretrained_path"],
)
def test_shared_table_disagreeing_on_trainable_or_pretrained_is_refused(second):
    with pytest.raises(ValueError, match="'hist'"):
        validate_features([SparseFeature("item", 10, 4), second])


def test_shared_tables_that_agree_are_accepted():
    features = [SparseFeature("item", 10, 4), SequenceFeature("hist", 10, 4, "max", 5, shared_embed_name="item")]
    assert validate_features(features) == tuple(features)


def test_validate_features_refuses_empty_list_and_non_features():
    with pytest.raises(FieldError, match=re.escape("features: expected at least one feature")):
        validate_features([])
    with pytest.raises(TypeError, match=re.escape("features[1]: expected one of ['DenseFeature', 'SequenceFeature', 'SparseFeature']. Received: {'name': 'user'}")):
        validate_features([SparseFeature("a", 10, 4), {"name": "user"}])
    with pytest.raises(TypeError, match=re.escape("features: expected a list of ['DenseFeature', 'SequenceFeature', 'SparseFeature'] objects. Received: 'user'")):
        validate_features("user")


def test_unknown_field_in_config_gives_key_path_and_hint():
    configs = features_to_config([DenseFeature("price"), SparseFeature("user", 10, 4)])
    configs[1]["vocab_sise"] = configs[1].pop("vocab_size")
    with pytest.raises(ValueError) as info:
        features_from_config(configs)
    assert str(info.value) == "features[1].vocab_sise: unknown SparseFeature field; did you mean 'vocab_size'?"


def test_unknown_field_without_close_match_lists_known_fields():
    with pytest.raises(ValueError) as info:
        features_from_config([{"class_name": "DenseFeature", "name": "price", "zzz": 1}])
    assert str(info.value) == (
        "features[0].zzz: unknown DenseFeature field. Known fields: "
        "['embed_dim', 'max_value', 'mean', 'min_value', 'name', 'std']"
    )


def test_unknown_field_in_yaml_gives_key_path():
    text = (
        "- {class_name: DenseFeature, name: price}\n"
        "- {class_name: SequenceFeature, name: h, vocab_size: 9, embed_dim: 2, max_lenn: 3}\n"
    )
    with pytest.raises(ValueError) as info:
        features_from_yaml(text)
    assert str(info.value) == "features[1].max_lenn: unknown SequenceFeature field; did you mean 'max_len'?"


def test_config_errors_carry_the_key_path():
    with pytest.raises(ValueError) as info:
        features_from_config(
            [{"class_name": "DenseFeature", "name": "p"}, {"class_name": "SequenceFeature", "name": "h", "vocab_size": 3, "embed_dim": 2}]
        )
    assert str(info.value) == "features[1].max_len: SequenceFeature 'h': required: the padded sequence length."
    with pytest.raises(ValueError, match=re.escape("features[0].class_name: expected one of")) as info:
        features_from_config([{"class_name": "SparseFeatur", "name": "u"}])
    assert "Received: 'SparseFeatur'" in str(info.value)
    with pytest.raises(ValueError, match=re.escape("features[0]: expected a mapping. Received: 'price'")):
        features_from_config(["price"])
    with pytest.raises(ValueError, match="features: expected a list of features. Received: dict"):
        features_from_config({"name": "price"})


@pytest.mark.parametrize(
    "config, message",
    [
        ({"name": "u", "vocab_size": 0, "embed_dim": 4}, "features[0].vocab_size: SparseFeature 'u': expected a positive integer. Received: 0"),
        ({"name": "u", "vocab_size": 10, "embed_dim": "8"}, "features[0].embed_dim: SparseFeature 'u': expected a positive integer. Received: '8'"),
        ({"name": "u", "vocab_size": 10}, "features[0].embed_dim: required SparseFeature field is missing."),
        ({"name": "u", "vocab_size": 10, "embed_dim": 4, "trainable": "yes"}, "features[0].trainable: SparseFeature 'u': expected True or False. Received: 'yes'"),
        ({"name": "u", "vocab_size": None, "embed_dim": 4, "vocabulary": ["a", "a"]}, "features[0].vocabulary[1]: SparseFeature 'u': 'a' is also vocabulary[0]."),
        ({"class_name": ["SparseFeature"], "name": "u"}, "features[0].class_name: expected one of ['DenseFeature', 'SequenceFeature', 'SparseFeature']. Received: ['SparseFeature']"),
    ],
)
def test_every_field_error_in_a_config_names_the_key_path(config, message):
    with pytest.raises(FieldError) as info:
        features_from_config([{"class_name": "SparseFeature", **config}])
    assert str(info.value) == message


def test_config_errors_wrap_validate_features_errors():
    configs = features_to_config([SparseFeature("a", 10, 4)]) * 2
    with pytest.raises(ValueError, match=re.escape("features[1].name: 'a' is used more than once (also features[0]).")):
        features_from_json(json.dumps(configs))
    configs = [feature_to_config(SparseFeature(name, size, 4, shared_embed_name="t")) for name, size in (("a", 10), ("b", 12))]
    with pytest.raises(ValueError, match=re.escape("features[1].vocab_size: 'b' shares the embedding table 't' with 'a' (features[0])")):
        features_from_yaml(yaml.safe_dump(configs))
