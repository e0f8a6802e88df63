"""Two replicas of a MirroredStrategy train exactly as one device does: nothing doubles."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

METHODS = ["fixed", "uwl", "gradnorm", "dwa", "pareto", "pcgrad", "metabalance"]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def results():
    # Logical devices must be configured before TensorFlow initializes, which it already has in
    # this process: the comparison runs in a fresh interpreter (with the same Keras switch).
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parents[1])] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    run = subprocess.run(
        [sys.executable, str(HERE / "_distributed.py"), *METHODS], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, f"_distributed.py failed:\n{run.stderr[-4000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", METHODS)
def test_two_replicas_update_the_variables_as_one_device(results, method):
    result = results[method]
    assert result["moved"] > 1e-2, "the steps must change the variables for the comparison to mean anything"
    assert result["variables"] < 1e-5
    # The logged loss and weights are the global batch's on every replica.
    assert result["logs"] < 1e-5


@pytest.mark.parametrize("method", METHODS)
def test_two_replicas_keep_the_weighting_state_of_one_device(results, method):
    result = results[method]
    for name, difference in result["state"].items():
        assert difference < 1e-5, f"{method}: {name} differs by {difference} from the one-device run"
    for name, spread in result["replicas"].items():
        assert spread == 0.0, f"{method}: the replicas' copies of {name} differ by {spread}"
    # Two steps ran once each (a replica count of 2 counts a step once).
    assert result["final_state"]["step:0"] == 2


def test_the_compared_state_has_moved(results):
    # Learned state changed from its start, so matching it is a real check.
    assert results["uwl"]["final_state"]["log_variance:0"] != pytest.approx([0.2, 0.2, 0.2])
    assert results["gradnorm"]["final_state"]["task_weights:0"] != pytest.approx([1.0, 1.0, 1.0])
    assert all(v > 0 for row in results["metabalance"]["final_state"]["norm_averages:0"] for v in row)
    assert results["dwa"]["final_state"]["epoch_steps:0"] == 2
