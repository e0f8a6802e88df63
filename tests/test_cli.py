import numpy as np

from tf_mtl.cli import main, quickstart
from tf_mtl.compat import keras


def test_quickstart_trains_evaluates_and_saves(tmp_path):
    metrics, path = quickstart("ple", samples=6_000, epochs=1, batch_size=256, output_dir=str(tmp_path))
    assert sorted(metrics) == ["ctr", "cvr"]
    assert all(0.0 <= m["auc"] <= 1.0 for m in metrics.values())
    assert [p.name for p in tmp_path.iterdir()] == ["quickstart_ple.keras"]
    model = keras.models.load_model(path)
    assert model.task_names == ["ctr", "cvr"]


def test_main_prints_a_metrics_table(tmp_path, capsys):
    assert main(["quickstart", "--samples", "4000", "--epochs", "1", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Test metrics of mmoe" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("ctr ", "cvr "))]
    assert len(rows) == 2 and all(np.isfinite(float(v)) for row in rows for v in row[1:])


def test_unknown_model_is_refused(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["quickstart", "--model", "mmeo"])
    assert "unknown model 'mmeo'" in capsys.readouterr().err
