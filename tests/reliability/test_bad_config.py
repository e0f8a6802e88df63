"""Bad configs and specs in Python, JSON and YAML, and code hidden in configs and model files.

Every malformed spec or config is refused with an error that names its key path
(``features[2].vocab_size``, ``model.params.expert_params.dims[1]``, ``training.epochs``);
YAML ``!!python`` tags and Keras ``Lambda`` layers with code are refused and never run; the
library's sources hold no unsafe reader.
"""

import collections
import copy
import dataclasses
import functools
import json
import math
import os
import pathlib
import re
import tokenize
import zipfile
from typing import Callable

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import pipelines
import tf_mtl
from pipelines.checks import ConfigError
from pipelines.config import check_config, load_config
from tf_mtl.compat import keras
from tf_mtl.features import (
    DenseFeature,
    SequenceFeature,
    SparseFeature,
    features_from_config,
    features_from_json,
    features_from_yaml,
    features_to_config,
    validate_features,
)
from tf_mtl.features.spec import FieldError, join_path
from tf_mtl.models import MMOE, build_model, load_model
from tf_mtl.tasks import make_tasks
from tf_mtl.training import MTLTrainer

pytestmark = pytest.mark.reliability

AREA = "Bad input: configs and specs"
C = "classification"
FEATURES = (
    SparseFeature("user", 100, 8),
    SequenceFeature("history", 100, 8, "mean", 5, shared_embed_name="user"),
    DenseFeature("price", mean=10.0, std=4.0),
)
MODEL_ARGS = {"n_expert": 2, "expert_params": {"dims": [8]}, "tower_params_list": [{"dims": [4]}, {"dims": [4]}]}
PIPELINE = {
    "name": "demo",
    "data": {"path": "impressions.csv", "key": "impression_id"},
    "features": [
        {"name": "user_id", "kind": "sparse", "embed_dim": 8},
        {"name": "clicked", "kind": "sequence", "embed_dim": 8, "max_len": 5},
        {"name": "price", "kind": "dense"},
    ],
    "tasks": [{"name": "ctr", "type": C, "label": "click"}, {"name": "cvr", "type": C, "label": "conversion"}],
    "model": {"name": "mmoe", "params": {"n_expert": 2, "expert_params": {"dims": [16]}}},
    "training": {"epochs": 1, "batch_size": 256, "optimizer": {"lr": 0.001}},
    "evaluation": {"thresholds": {"ctr/auc": 0.6}},
}
DELETE = object()


def at(config, path):
    """The value at ``path``, a tuple of keys and list indices."""
    for key in path:
        config = config[key]
    return config


def changed(config, path, value):
    """A deep copy of ``config`` with the value at ``path`` set, or deleted (``DELETE``)."""
    config = copy.deepcopy(config)
    if value is DELETE:
        del at(config, path[:-1])[path[-1]]
    else:
        at(config, path[:-1])[path[-1]] = value
    return config


def mmoe(features=FEATURES, task_names=("ctr", "cvr"), **changes):
    return MMOE(features, [C] * len(task_names), **{**MODEL_ARGS, **changes}, task_names=list(task_names))


def spec(*changes):
    """``FEATURES`` as configs with ``(index, field, value)`` changes."""
    configs = features_to_config(FEATURES)
    for index, field, value in changes:
        configs[index][field] = value
    return configs


def tampered(model_file, target, change):
    """A copy of a ``.keras`` file whose model config (``config.json``) ``change`` edits."""
    with zipfile.ZipFile(model_file) as source, zipfile.ZipFile(target, "w") as copy_:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                change(config["config"])
                data = json.dumps(config).encode()
            copy_.writestr(item, data)
    return target


def set_in(path, value):
    """An edit of a model config: the value at ``path`` (a key, or a tuple of keys and indices) set."""
    path = (path,) if isinstance(path, str) else path

    def change(config):
        at(config, path[:-1])[path[-1]] = value

    return change


@dataclasses.dataclass
class Case:
    form: str  # Python, JSON or YAML
    kind: str
    via: str
    run: Callable
    path: str  # what the error must name: the key path (followed by ':') or, for Python's own TypeError, the argument


def cases(tmp_path):
    """Every malformed spec and config: the same kinds of mistake in each form."""
    model_file = str(tmp_path / "model.keras")
    mmoe().save(model_file)

    def model_file_with(name, path, value):
        return lambda: load_model(tampered(model_file, str(tmp_path / f"{name}.keras"), set_in(path, value)))

    def pipeline_file(name, text):
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    def pipeline_json(name, path, value):
        return lambda: load_config(pipeline_file(f"{name}.json", json.dumps(changed(PIPELINE, path, value))))

    def pipeline_yaml(name, path, value):
        return lambda: load_config(pipeline_file(f"{name}.yaml", yaml.safe_dump(changed(PIPELINE, path, value))))

    def pipeline_set(override):
        return lambda: load_config(pipeline_file("valid.yaml", yaml.safe_dump(PIPELINE)), [override])

    def spec_json(*changes):
        return lambda: features_from_json(json.dumps(spec(*changes)))

    def spec_yaml(*changes):
        return lambda: features_from_yaml(yaml.safe_dump(spec(*changes)))

    def trainer(**kwargs):
        return lambda: MTLTrainer(mmoe(), model_path=str(tmp_path / "trainer"), verbose=0, **kwargs)

    def checked(path, value):
        return lambda: check_config(changed(PIPELINE, path, value))

    unknown, wrong, dup_feature, dup_task, size, twice = (
        "unknown keys", "wrong types", "duplicate feature names", "duplicate task names", "zero or negative sizes",
        "keys given twice")
    features_2 = [FEATURES[0], DenseFeature("user")]
    keras_file = "load_model (.keras config.json)"
    twice_json = '[{"class_name": "DenseFeature", "name": "a", "name": "b"}]'
    twice_yaml = yaml.safe_dump(PIPELINE) + "training: {epochs: 20}\n"
    yield from [
        Case("Python", unknown, "SparseFeature", lambda: SparseFeature("user", 100, 8, vocab=["a"]), "'vocab'"),
        Case("Python", unknown, "build_model", lambda: build_model("mmoe", FEATURES, [C, C], n_experts=4), "n_experts:"),
        Case("Python", unknown, "MMOE", lambda: mmoe(expert_params={"dim": [8]}), "expert_params.dim:"),
        Case("Python", unknown, "check_config", checked(["training", "epocs"], 2), "training.epocs:"),
        Case("Python", wrong, "SparseFeature", lambda: SparseFeature("user", "100", 8), "vocab_size:"),
        Case("Python", wrong, "DenseFeature", lambda: DenseFeature("price", mean="10", std=4.0), "mean:"),
        Case("Python", wrong, "MMOE", lambda: mmoe(expert_params={"dims": [8], "dropout": "0.1"}), "expert_params.dropout:"),
        Case("Python", wrong, "make_tasks", lambda: make_tasks([C, C], "ab"), "task_names:"),
        Case("Python", dup_feature, "validate_features", lambda: validate_features(features_2), "features[1].name:"),
        Case("Python", dup_feature, "MMOE", lambda: mmoe(features=features_2), "features[1].name:"),
        Case("Python", dup_task, "make_tasks", lambda: make_tasks([C, C], ["ctr", "ctr"]), "task_names[1]:"),
        Case("Python", dup_task, "MMOE", lambda: mmoe(task_names=("ctr", "cvr", "ctr")), "task_names[2]:"),
        Case("Python", size, "SparseFeature", lambda: SparseFeature("user", 0, 8), "vocab_size:"),
        Case("Python", size, "SparseFeature", lambda: SparseFeature("user", 100, -8), "embed_dim:"),
        Case("Python", size, "SequenceFeature", lambda: SequenceFeature("history", 100, 8, "mean", 0), "max_len:"),
        Case("Python", size, "MMOE", lambda: mmoe(n_expert=0), "n_expert:"),
        Case("Python", size, "MMOE", lambda: mmoe(expert_params={"dims": [8, -4]}), "expert_params.dims[1]:"),
        Case("Python", size, "MTLTrainer", trainer(n_epoch=0), "n_epoch"),
        Case("Python", size, "check_config", checked(["training", "batch_size"], 0), "training.batch_size:"),
        Case("JSON", unknown, "features_from_json", spec_json((0, "vocab_sise", 9)), "features[0].vocab_sise:"),
        Case("JSON", unknown, "load_config", pipeline_json("epocs", ["training", "epocs"], 2), "training.epocs:"),
        Case("JSON", unknown, keras_file, model_file_with("n_experts", "n_experts", 4), "n_experts:"),
        Case("JSON", wrong, "features_from_json", spec_json((0, "embed_dim", "8")), "features[0].embed_dim:"),
        Case("JSON", wrong, "load_config", pipeline_json("big", ["training", "batch_size"], "big"), "training.batch_size:"),
        Case("JSON", wrong, keras_file, model_file_with("dims", ("expert_params", "dims"), "64"), "expert_params.dims:"),
        Case("JSON", dup_feature, "features_from_json", spec_json((2, "name", "user")), "features[2].name:"),
        Case("JSON", dup_feature, keras_file, model_file_with("features", ("features", 2, "name"), "user"), "features[2].name:"),
        Case("JSON", dup_feature, "load_config", pipeline_json("features", ["features", 2, "name"], "user_id"), "features[2].name:"),
        Case("JSON", dup_task, "load_config", pipeline_json("tasks", ["tasks", 1, "name"], "ctr"), "tasks[1].name:"),
        Case("JSON", dup_task, keras_file, model_file_with("tasks", "task_names", ["ctr", "ctr"]), "task_names[1]:"),
        Case("JSON", size, "features_from_json", spec_json((0, "vocab_size", 0)), "features[0].vocab_size:"),
        Case("JSON", size, "load_config", pipeline_json("epochs", ["training", "epochs"], -1), "training.epochs:"),
        Case("JSON", size, keras_file, model_file_with("n_expert", "n_expert", 0), "n_expert:"),
        Case("JSON", size, "load_config", pipeline_json("dims", ["model", "params", "expert_params", "dims"], [64, -1]),
             "model.params.expert_params.dims[1]:"),
        Case("JSON", twice, "features_from_json", lambda: features_from_json(twice_json), "key 'name' is given twice"),
        Case("YAML", unknown, "features_from_yaml", spec_yaml((1, "max_lenn", 5)), "features[1].max_lenn:"),
        Case("YAML", unknown, "load_config", pipeline_yaml("dim", ["model", "params", "expert_params", "dim"], [8]),
             "model.params.expert_params.dim:"),
        Case("YAML", unknown, "load_config", pipeline_yaml("learning_rate", ["learning_rate"], 0.1), "config.learning_rate:"),
        Case("YAML", wrong, "features_from_yaml", spec_yaml((0, "trainable", "maybe")), "features[0].trainable:"),
        Case("YAML", wrong, "load_config", pipeline_yaml("lr", ["training", "optimizer", "lr"], "fast"), "training.optimizer.lr:"),
        Case("YAML", wrong, "load_config", pipeline_yaml("embed_dim", ["features", 0, "embed_dim"], "eight"), "features[0].embed_dim:"),
        Case("YAML", dup_feature, "features_from_yaml", spec_yaml((2, "name", "history")), "features[2].name:"),
        Case("YAML", dup_feature, "load_config", pipeline_yaml("features", ["features", 1, "name"], "user_id"), "features[1].name:"),
        Case("YAML", dup_task, "load_config", pipeline_yaml("tasks", ["tasks", 0, "name"], "cvr"), "tasks[1].name:"),
        Case("YAML", size, "load_config", pipeline_yaml("vocab_size", ["features", 0, "vocab_size"], 0), "features[0].vocab_size:"),
        Case("YAML", size, "load_config", pipeline_yaml("epochs", ["training", "epochs"], 0), "training.epochs:"),
        Case("YAML", size, "load_config --set", pipeline_set("training.batch_size=-512"), "training.batch_size:"),
        Case("YAML", size, "load_config --set", pipeline_set("model.params.n_expert=0"), "model.params.n_expert:"),
        Case("YAML", size, "load_config", pipeline_yaml("tuning", ["tuning"], {"space": {"model.params.n_expert": [2, 0]}}),
             "tuning.space.model.params.n_expert:"),
        Case("YAML", twice, "load_config", lambda: load_config(pipeline_file("twice.yaml", twice_yaml)),
             "found the key 'training' a second time"),
    ]


def test_malformed_specs_and_configs_name_their_key_path(reliability, tmp_path):
    refused, kinds, forms, vias = collections.Counter(), collections.Counter(), collections.Counter(), set()
    examples, tried = {}, collections.defaultdict(set)
    for case in cases(tmp_path):
        with pytest.raises((ValueError, TypeError)) as info:
            case.run()
        message = str(info.value)
        assert case.path in message, f"{case.form} {case.kind} via {case.via}: the error does not name {case.path!r}: {message}"
        # The CLI reports a ConfigError as one line and exits with 2; anything else would be a traceback.
        assert isinstance(info.value, ConfigError) or not case.via.startswith(("load_config", "check_config")), message
        refused["ValueError" if isinstance(info.value, ValueError) else "TypeError"] += 1
        kinds[case.kind] += 1
        forms[case.form] += 1
        vias.add(case.via)
        tried[case.form].add(case.kind)
        examples.setdefault(case.path, message.splitlines()[0].replace(f"{tmp_path}{os.sep}", ""))
    total = sum(forms.values())
    # Each form tries each kind of mistake the issue names.
    required = {"unknown keys", "wrong types", "duplicate feature names", "duplicate task names", "zero or negative sizes"}
    assert all(required <= tried[form] for form in ("Python", "JSON", "YAML"))
    example = examples["model.params.expert_params.dims[1]:"]
    reliability.record(
        AREA,
        f"{total} malformed specs and configs (Python {forms['Python']}, JSON {forms['JSON']}, YAML {forms['YAML']}): "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        + f"; through {len(vias)} entry points ({', '.join(sorted(vias))})",
        f"{total} of {total} refused ({refused['ValueError']} ValueError, {refused['TypeError']} TypeError) and every error "
        f"names its key path, e.g. `{example}`",
    )


# ---- random mistakes: a valid config with one value changed, one key added or one removed ----


def key_paths(node, prefix=()):
    """Every key path of a config, as tuples of keys and list indices."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from key_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from key_paths(value, prefix + (i,))
    if prefix:
        yield prefix


def dotted(path):
    """``("features", 2, "vocab_size")`` -> ``"features[2].vocab_size"``, as errors write it."""
    return functools.reduce(join_path, path, "")


def named_path(err):
    """The key path an error names: a ``FieldError``'s path, else the text before the first
    ``": "`` (a ``ConfigError``), without a file name or the root ``config.``."""
    while err.__cause__ is not None and not isinstance(err, FieldError):
        err = err.__cause__
    if isinstance(err, FieldError):
        return err.path
    message = re.sub(r"^\S+\.(json|yaml|keras): ", "", str(err))
    return message.split(": ", 1)[0].removeprefix("config.")


def _read_spec(config, form, tmp_path):
    if form == "Python":
        return features_from_config(config)
    return features_from_json(json.dumps(config)) if form == "JSON" else features_from_yaml(yaml.safe_dump(config))


def _read_model_config(config, form, tmp_path):
    if form == "Python":
        return MMOE.from_config(config)
    model_file = tmp_path / "model.keras"
    if not model_file.exists():
        mmoe().save(str(model_file))
    return load_model(tampered(str(model_file), str(tmp_path / "tampered.keras"), lambda c: (c.clear(), c.update(config))))


def _read_pipeline(config, form, tmp_path):
    if form == "Python":
        return check_config(config, str(tmp_path))
    path = tmp_path / f"pipeline.{form.lower()}"
    path.write_text(json.dumps(config) if form == "JSON" else yaml.safe_dump(config))
    return load_config(str(path))


READERS = {
    # target: (a valid config, its forms, the reader, the key path of its root in errors)
    "feature spec": (features_to_config(FEATURES), ("Python", "JSON", "YAML"), _read_spec, ("features",)),
    "model config (.keras config.json)": (mmoe().get_config(), ("Python", "JSON"), _read_model_config, ()),
    "pipeline config": (PIPELINE, ("Python", "JSON", "YAML"), _read_pipeline, ()),
}
BAD_VALUES = [0, -1, -7, 1.5, math.nan, math.inf, "", "x", "../up", None, True, [], [0], [-1, 2], {}, {"zzz": 1}]


@st.composite
def mistakes(draw):
    """``(target, form, operation, key path, value)``: one change to one valid config."""
    target = draw(st.sampled_from(sorted(READERS)))
    config, forms, _, _ = READERS[target]
    paths = sorted(key_paths(config), key=dotted)
    operation = draw(st.sampled_from(["set", "set", "add", "delete"]))
    if operation == "add":
        mapping_paths = [p for p in [(), *paths] if isinstance(at(config, p), dict)]
        path = draw(st.sampled_from(mapping_paths)) + ("zzz_unknown",)
    else:
        path = draw(st.sampled_from(paths))
    value = draw(st.sampled_from(BAD_VALUES)) if operation != "delete" else DELETE
    return target, draw(st.sampled_from(forms)), operation, path, value


def test_random_config_mistakes_are_refused_with_a_key_path_never_a_crash(reliability, tmp_path):
    outcomes, tried, accepted = collections.Counter(), collections.Counter(), collections.defaultdict(list)

    @settings(max_examples=600)
    @given(mistake=mistakes())
    def check(mistake):
        target, form, operation, path, value = mistake
        config, _, read, root = READERS[target]
        config = changed(config, path, value)
        tried[target] += 1
        tried[form] += 1
        try:
            read(config, form, tmp_path)
        except (ValueError, TypeError) as err:
            assert isinstance(err, ConfigError) or target != "pipeline config", f"{mistake}: {err!r}"
            named = named_path(err)
            known = {dotted(root + p) for c in (config, READERS[target][0]) for p in key_paths(c)} | {dotted(root)}
            if named in known:
                outcomes["named a key path"] += 1
                outcomes["at the changed key or its parent"] += dotted(root + path).startswith(named)
            else:
                # A model file whose edited config is valid but no longer fits the saved weights.
                assert form == "JSON" and target.startswith("model") and str(err).startswith(str(tmp_path)), f"{mistake}: {err}"
                MMOE.from_config(config)
                outcomes["named the file"] += 1
        else:
            outcomes["accepted"] += 1
            accepted[operation].append(f"{target} {dotted(root + path)}" + ("" if operation == "delete" else f"={value!r}"))

    check()
    total = sum(tried[target] for target in READERS)
    refused = outcomes["named a key path"] + outcomes["named the file"]
    assert refused + outcomes["accepted"] == total
    # Most errors name the very key changed (or the mapping it was added to or removed from).
    assert outcomes["at the changed key or its parent"] >= 0.9 * outcomes["named a key path"], outcomes
    reliability.record(
        AREA,
        f"{total} random one-change mistakes in a valid config ("
        + ", ".join(f"{target} {tried[target]}" for target in sorted(READERS))
        + f"; as Python {tried['Python']}, JSON {tried['JSON']}, YAML {tried['YAML']}): a value set to 0, -1, 1.5, NaN, "
        "inf, '', None, true, [], {} ...; an unknown key added; a key removed (hypothesis, derandomized)",
        f"{refused} refused with ValueError: {outcomes['named a key path']} naming a key path of the config "
        f"({outcomes['at the changed key or its parent']} the changed key or its parent, the rest what the change broke, "
        f"e.g. the threshold of a renamed task), {outcomes['named the file']} naming the model file whose edited but "
        f"valid config no longer fits its saved weights; {outcomes['accepted']} accepted ({len(accepted['delete'])} "
        f"removals of an optional key or a list entry, e.g. {min(accepted['delete'])}; {len(accepted['set'])} values "
        f"the key allows, e.g. {min(accepted['set'])}); 0 other exceptions",
    )


# ---- code in a config or a model file is refused and never run ------------------------------


def test_yaml_python_tags_are_refused_and_nothing_runs(reliability, tmp_path):
    marker = tmp_path / "ran"
    payloads = {
        "os.system": f'!!python/object/apply:os.system ["touch {marker}"]',
        "subprocess.check_call": f'!!python/object/apply:subprocess.check_call [["touch", "{marker}"]]',
        "builtins.exec": f"!!python/object/apply:builtins.exec [\"open('{marker}', 'w').close()\"]",
        "python/name": "!!python/name:os.system",
        "python/module": "!!python/module:os",
    }
    valid = tmp_path / "valid.yaml"
    valid.write_text(yaml.safe_dump(PIPELINE))
    attempts = collections.Counter()
    for i, payload in enumerate(payloads.values()):
        config = tmp_path / f"payload{i}.yaml"
        config.write_text(f"name: {payload}\n" + yaml.safe_dump({k: v for k, v in PIPELINE.items() if k != "name"}))
        readers = {
            "load_config (file)": lambda: load_config(str(config)),
            "load_config --set": lambda: load_config(str(valid), [f"name={payload}"]),
            "features_from_yaml": lambda: features_from_yaml(f"- {{class_name: DenseFeature, name: {payload}}}\n"),
        }
        for reader, read in readers.items():
            with pytest.raises(ValueError, match="not valid YAML"):
                read()
            attempts[reader] += 1
    assert not marker.exists()
    # The payloads are live: PyYAML's unsafe loader runs the first one.
    yaml.unsafe_load(f"name: {payloads['os.system']}\n")
    assert marker.exists()
    total = sum(attempts.values())
    reliability.record(
        AREA,
        f"{total} YAML documents carrying Python tags ({len(payloads)} payloads: {', '.join(payloads)}) read by "
        + ", ".join(f"{reader} {n}" for reader, n in sorted(attempts.items())),
        f"{total} of {total} refused as not valid YAML; the marker file the payloads would write was never written "
        "(yaml.unsafe_load of the os.system one writes it)",
    )


def _lambda_model(marker):
    """A Keras model whose Lambda layer, when the file is loaded, creates ``marker``."""
    code = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")  # the payload under test
    inputs = keras.Input((2,))
    return keras.Model(inputs, keras.layers.Lambda(code)(inputs))


def test_model_files_carrying_code_are_refused_and_nothing_runs(reliability, tmp_path):
    marker = tmp_path / "ran"
    lambda_file = str(tmp_path / "lambda.keras")
    _lambda_model(marker).save(lambda_file)
    marker.unlink()  # saving traced the layer once
    with zipfile.ZipFile(lambda_file) as archive:
        lambda_layer = next(layer for layer in json.loads(archive.read("config.json"))["config"]["layers"] if layer["class_name"] == "Lambda")
    model_file = str(tmp_path / "model.keras")
    mmoe().save(model_file)
    legacy_file = str(tmp_path / "lambda.h5")
    _lambda_model(marker).save(legacy_file)
    marker.unlink()
    files = {
        "a Keras model with a Lambda layer": lambda_file,
        "an MMOE whose expert activation is a serialized lambda": tampered(
            model_file, str(tmp_path / "activation.keras"),
            set_in(("expert_params", "activation"), lambda_layer["config"]["function"])),
        "an MMOE whose tower activation is a whole Lambda layer": tampered(
            model_file, str(tmp_path / "layer.keras"), set_in(("tower_params_list", 0, "activation"), lambda_layer)),
        "the Keras model with a Lambda layer as a legacy .h5 file": legacy_file,
    }
    for path in files.values():
        with pytest.raises(ValueError, match=re.escape(path)):
            load_model(path)
    assert not marker.exists()
    # The payload is live: Keras with safe mode off runs it.
    keras.models.load_model(lambda_file, safe_mode=False)
    assert marker.exists()
    reliability.record(
        AREA,
        f"{len(files)} model files carrying Python code loaded with tf_mtl.models.load_model: " + "; ".join(files),
        f"{len(files)} of {len(files)} refused (Keras safe mode on; .keras files only), the marker file the code creates "
        "was never written (keras load_model with safe_mode=False writes it)",
    )


# ---- the sources: no unsafe reader anywhere -----------------------------------------------


ROOTS = (pathlib.Path(tf_mtl.__file__).parent, pathlib.Path(pipelines.__file__).parent)


def _names(path):
    """``(owner, name, what follows)`` for every name in a source file: ``owner`` is the name
    before a dot (``yaml`` in ``yaml.load``) or ``None``. Strings and comments hold no names,
    so a docstring that says "never pickle" does not count."""
    with open(path, "rb") as file:
        tokens = [t for t in tokenize.tokenize(file.readline) if t.type in (tokenize.NAME, tokenize.OP)]
    for i, token in enumerate(tokens):
        if token.type == tokenize.NAME:
            owner = tokens[i - 2].string if i > 1 and tokens[i - 1].string == "." else None
            yield owner, token.string, " ".join(t.string for t in tokens[i + 1 : i + 12])


UNSAFE_NAMES = ("pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "joblib", "unsafe_load", "full_load",
                "unsafe_load_all", "full_load_all", "enable_unsafe_deserialization")
SAFE_KEYWORDS = {"allow_pickle": "False", "safe_mode": "True"}


def test_the_sources_read_configs_and_models_safely(reliability):
    files = {str(p.relative_to(root.parent)): p for root in ROOTS for p in root.rglob("*.py")}
    unsafe, yaml_reads, npy_reads, model_loads = [], collections.Counter(), collections.Counter(), collections.Counter()
    for where, path in sorted(files.items()):
        for owner, name, after in _names(path):
            call = after.startswith("(")
            if name in UNSAFE_NAMES or (name in ("eval", "exec") and owner is None and call):
                unsafe.append(f"{where}: {name}")
            elif name in SAFE_KEYWORDS and after.startswith("=") and after.split()[1] != SAFE_KEYWORDS[name]:
                unsafe.append(f"{where}: {name}={after.split()[1]}")
            elif owner == "yaml" and call and name in ("load", "load_all", "safe_load", "safe_load_all"):
                yaml_reads[where] += 1
                if name.startswith("load") and "Loader = _SafeLoader" not in after:
                    unsafe.append(f"{where}: yaml.{name} without the safe loader")
            elif owner in ("np", "numpy") and call and name == "load":
                npy_reads[where] += 1
                if "allow_pickle = False" not in after:
                    unsafe.append(f"{where}: np.load without allow_pickle=False")
            elif name == "load_yaml" and call:
                yaml_reads[where] += 1
            elif owner is not None and call and name == "load_model":
                model_loads[where] += 1
    assert unsafe == []
    assert sum(npy_reads.values()) >= 1 and sum(yaml_reads.values()) >= 4
    assert "tf_mtl/models/base.py" in model_loads, model_loads
    reliability.record(
        AREA,
        f"static audit of the {len(files)} Python files of tf_mtl/ and pipelines/ (their tokens: comments and strings "
        "do not count)",
        f"0 pickle/marshal/dill/joblib, eval(, exec(, yaml.unsafe_load/full_load, allow_pickle=True or safe_mode=False; "
        f"{sum(yaml_reads.values())} YAML reads, each yaml.safe_load or tf_mtl's SafeLoader that also refuses repeated "
        f"keys ({', '.join(sorted(yaml_reads))}); {sum(npy_reads.values())} np.load, with allow_pickle=False "
        f"({', '.join(sorted(npy_reads))}); {sum(model_loads.values())} Keras load_model calls, safe mode on "
        f"({', '.join(sorted(model_loads))})",
    )
