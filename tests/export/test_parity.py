"""One model, the same rows, six ways to score them: the Keras model in memory, the reloaded
SavedModel, TensorFlow's C API (TF Serving's loader), tf_mtl's gRPC and REST servers, and
ONNX Runtime. Every path gives the same scores."""

import json
import urllib.request

import numpy as np
import onnxruntime
import pytest

from tf_mtl.compat import keras
from tf_mtl.data import click_conversion
from tf_mtl.export import export_onnx, export_saved_model
from tf_mtl.models import build_model
from tf_mtl.serving import Client, ModelServer

from tests.reliability._training_processes import free_port

from .test_capi import run_signature_in_c, run_signature_in_python


@pytest.mark.parametrize("name", ["mmoe", "esmm"])
def test_every_serving_path_gives_the_same_scores(tmp_path, name):
    generated = click_conversion(300, seed=0)
    # Integer ids only: ONNX has no operator for string hashing.
    features = tuple(f for f in generated.features if getattr(f, "dtype", None) != "string")
    x = {f.name: generated.x[f.name][:6] for f in features}
    x["user_id"] = x["user_id"].copy()
    x["user_id"][0] = 10**9  # an unseen id takes an OOV row everywhere
    keras.utils.set_random_seed(0)
    model = build_model(name, features, generated.task_types, generated.task_names)
    expected = {k: np.asarray(v).reshape(-1) for k, v in model(x, training=False).items()}

    path = export_saved_model(model, tmp_path / "ranker", fusion={"method": "product", "weights": {"ctr": 1.0, "cvr": 0.5}})
    fused = expected["ctr"] * np.clip(expected["cvr"], 1e-7, 1.0) ** 0.5
    scored = {
        "SavedModel": run_signature_in_python(path, "serving_default", x),
        "C API": run_signature_in_c(path, "serving_default", x, tmp_path),
    }
    port, rest_port = free_port(), free_port()
    with ModelServer("ranker", tmp_path / "ranker", port=port, rest_api_port=rest_port), Client(
        "127.0.0.1", port, "ranker"
    ) as client:
        scored["gRPC"] = client.predict(x)
        body = json.dumps({"instances": [{k: v[i].item() for k, v in x.items()} for i in range(6)]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{rest_port}/v1/models/ranker:predict", data=body, method="POST")
        predictions = json.load(urllib.request.urlopen(request, timeout=30))["predictions"]
        scored["REST"] = {k: np.array([row[k] for row in predictions]) for k in predictions[0]}
    onnx_path = export_onnx(model, str(tmp_path / "model.onnx"))
    session = onnxruntime.InferenceSession(onnx_path)
    onnx_outputs = session.run(None, {i.name: x[i.name] for i in session.get_inputs()})
    scored["ONNX"] = {o.name: v.reshape(-1) for o, v in zip(session.get_outputs(), onnx_outputs)}

    for way, outputs in scored.items():
        for key, value in expected.items():
            np.testing.assert_allclose(np.asarray(outputs[key]).reshape(-1), value, atol=1e-5, err_msg=f"{way}: {key}")
        if way != "ONNX":  # the fused score is the SavedModel's
            np.testing.assert_allclose(np.asarray(outputs["score"]).reshape(-1), fused, rtol=1e-5, err_msg=f"{way}: score")
