"""The README's second pipeline command: Census-Income from raw file to a pushed model."""

import json
import os

import pytest

from tests.data.test_census import CENSUS
from tf_mtl.cli import main

CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "pipelines", "configs", "census_income.yaml")


@pytest.mark.large
def test_census_income_pipeline_blesses_and_pushes(tmp_path, monkeypatch, capsys):
    if not CENSUS.exists():
        pytest.skip(f"Census-Income is not at {CENSUS} (see ../shared/data/README)")
    monkeypatch.chdir(tmp_path)
    assert main(["pipeline", "run", CONFIG, "--data", str(CENSUS)]) == 0
    out = capsys.readouterr().out
    assert "Blessed model pushed to saved_models/census_income/1" in out
    evaluation = next((tmp_path / "pipeline_runs" / "census_income" / "Evaluator").glob("*/evaluation.json"))
    metrics = json.loads(evaluation.read_text())["metrics"]
    # The MMoE paper's tasks on a hash split of the test file (not comparable with the paper's).
    assert metrics["income/auc"] > 0.93 and metrics["marital/auc"] > 0.99
    assert set(json.loads(evaluation.read_text())["slices"]) >= {"all", "Female", "Male"}
