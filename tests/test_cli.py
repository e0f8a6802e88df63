import os

import numpy as np
import pytest

from tf_mtl.cli import main
from tf_mtl.serving import Client, ModelServer


def test_quickstart_runs_the_pipeline_pushes_a_blessed_model_and_it_serves(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["quickstart", "--samples", "6000"]) == 0
    out = capsys.readouterr().out
    assert "Blessed model pushed to saved_models/quickstart/1" in out
    assert "tf-mtl serve --model_name quickstart --model_base_path saved_models/quickstart" in out
    steps = [line.split()[0] for line in out.splitlines() if line.split()[:2] and line.split()[1:2] in (["run"], ["cached"])]
    assert steps == ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Tuner", "Trainer", "Evaluator", "Pusher"]
    with ModelServer("quickstart", "saved_models/quickstart", port=0, rest_api_port=None) as server:
        scores = Client("127.0.0.1", server.port, "quickstart").predict({
            "user_id": np.array([3, 5]), "item_id": np.array([7, 9]), "user_city": np.array([1, 2]),
            "item_category": np.array([b"cat_01", b"unseen"]), "clicked_categories": np.array([[b"cat_01"] + [b""] * 9] * 2),
            "item_price": np.array([10.0, 30.0], np.float32), "user_age": np.array([30.0, 40.0], np.float32),
            "item_ctr_7d": np.array([0.1, 0.2], np.float32), "position": np.array([1.0, 5.0], np.float32),
        })
    assert set(scores) == {"ctr", "cvr", "score"} and all(((v > 0) & (v < 1)).all() for v in scores.values())
    # Run again: everything is reused; the same model is not pushed twice.
    assert main(["quickstart", "--samples", "6000"]) == 0
    out = capsys.readouterr().out
    assert "already pushed as" in out
    assert sorted(os.listdir("saved_models/quickstart")) == ["1"]
    statuses = [line.split()[1] for line in out.splitlines() if line.split()[:1] and line.split()[0] in steps]
    assert statuses == ["cached"] * 7 + ["run", "run"]


def test_pipeline_run_refuses_an_unknown_forced_step(tmp_path, capsys):
    config = tmp_path / "p.yaml"
    config.write_text("name: p\ndata: {path: d.csv}\nfeatures: [{name: a, kind: sparse, embed_dim: 4}]\n"
                      "tasks: [{name: t, type: classification, label: y}]\nmodel: {name: mmoe}\n")
    with pytest.raises(SystemExit):
        main(["pipeline", "run", str(config), "--force", "Trainr"])
    assert "--force: unknown steps ['Trainr']" in capsys.readouterr().err


def test_pipeline_run_reports_config_mistakes_with_their_key_path(tmp_path, capsys):
    config = tmp_path / "p.yaml"
    config.write_text("name: p\ndata: {path: d.csv}\nfeatures: [{name: a, kind: sparse, embed_dim: 4}]\n"
                      "tasks: [{name: t, type: classification, label: y}]\nmodel: {name: mmoe}\ntraining: {batch_size: big}\n")
    assert main(["pipeline", "run", str(config)]) == 2
    assert "training.batch_size: expected an integer >= 1. Received: 'big'" in capsys.readouterr().err


def test_pipeline_run_stops_on_serious_anomalies(tmp_path, capsys):
    from tests.pipelines.conftest import impressions

    frame = impressions(3000)
    frame.loc[frame.index % 5 == 0, "item_category"] = "garbage"
    frame.to_csv(tmp_path / "d.csv", index=False)
    config = tmp_path / "p.yaml"
    config.write_text(
        "name: p\ndata: {path: d.csv, key: impression_id}\n"
        "schema: schema.yaml\n"
        "features: [{name: item_category, kind: sparse, embed_dim: 4}, {name: item_price, kind: dense}]\n"
        "tasks: [{name: ctr, type: classification, label: click}]\nmodel: {name: mmoe}\n"
    )
    (tmp_path / "schema.yaml").write_text(
        "version: 1\ncolumns:\n"
        "  item_category: {type: string, list: false, role: feature, required_column: true, required: true,\n"
        "                  domain: [" + ", ".join(f"cat_{i:02d}" for i in range(20)) + "], max_unseen_rate: 0.05}\n"
        "  item_price: {type: float, list: false, role: feature, required_column: true}\n"
        "  click: {type: int, list: false, role: label, required_column: true, domain: [0, 1]}\n"
    )
    assert main(["pipeline", "run", str(config)]) == 1
    err = capsys.readouterr().err
    assert "The pipeline stopped at ExampleValidator" in err and "item_category" in err and "unseen_values" in err


def test_unknown_model_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["quickstart", "--model", "mmeo"])
    assert "unknown model 'mmeo'" in capsys.readouterr().err

