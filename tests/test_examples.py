"""The shipped examples run as written and their outputs agree with each other."""

import importlib.util
import pathlib

import numpy as np
import onnxruntime

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mmoe_quickstart_trains_evaluates_exports_and_predicts(tmp_path, capsys):
    example = _load("mmoe_quickstart")
    auc, predictions = example.main(rows=6000, epochs=2, batch_size=512, output_dir=str(tmp_path))
    out = capsys.readouterr().out
    assert "test auc (cvr, ctr)" in out and "epoch 2/2" in out
    assert len(auc) == 2 and all(0.0 <= a <= 1.0 for a in auc)
    assert predictions.shape == (600, 2) and np.all((predictions > 0) & (predictions < 1))
    assert (tmp_path / "checkpoints" / "checkpoint").exists() and (tmp_path / "training_curves.png").exists()

    # The ONNX file scores the test rows as the Keras model did.
    data, dense_cols = example.ali_ccp_like(6000, 2022)
    test = data.iloc[5400:]
    session = onnxruntime.InferenceSession(str(tmp_path / "mmoe.onnx"))
    feeds = {
        i.name: test[i.name].to_numpy().astype(np.float32 if i.name in dense_cols else np.int64)
        for i in session.get_inputs()
    }
    names = [o.name for o in session.get_outputs()]
    scores = dict(zip(names, session.run(None, feeds)))
    np.testing.assert_allclose(np.stack([scores["task1"].ravel(), scores["task2"].ravel()], axis=1), predictions, atol=1e-5)
