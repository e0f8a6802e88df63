"""MTLTrainer under a MirroredStrategy of two replicas trains as on one device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

METHODS = ["fixed", "uwl", "gradnorm", "pareto"]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    # Logical devices must be configured before TensorFlow initializes, which it already has in
    # this process: the runs go to a fresh interpreter (with the same Keras switch).
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parents[1])] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    workdir = tmp_path_factory.mktemp("mirrored")
    run = subprocess.run(
        [sys.executable, str(HERE / "_mirrored_run.py"), str(workdir), *METHODS],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert run.returncode == 0, f"_mirrored_run.py failed:\n{run.stderr[-4000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", METHODS)
def test_two_replicas_train_as_one_device(results, method):
    result = results[method]
    assert result["epochs"] == [2, 2]
    assert result["moved"] > 1e-2, "training must change the variables for the comparison to mean anything"
    # The variables after each epoch, the weighting's state and the training figures.
    assert result["variables"] < 1e-5
    assert result["state"] < 1e-5
    assert result["train"] < 1e-5


def test_adaptive_weights_moved(results):
    assert results["fixed"]["weights"] == [[2.0, 0.5], [2.0, 0.5]]
    for method in ("uwl", "gradnorm", "pareto"):
        assert results[method]["weights"][-1] != pytest.approx([1.0, 1.0], abs=1e-3), method


def test_a_model_built_outside_the_scope_is_refused(results):
    assert results["outside"] is not None
    assert "was built outside the scope of MirroredStrategy: build it inside `with strategy.scope():`" in results["outside"]
