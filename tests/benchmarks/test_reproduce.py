"""The ``benchmarks/reproduce_*.py`` scripts run end to end at tiny sizes and write finite results.

The figures themselves (``benchmarks/RESULTS.md``) come from the scripts' default sizes; here
each script's ``main`` runs a few hundred steps at most, so only the plumbing is checked: the
table's numbers are finite and in range, and the PNG and the markdown fragment are written.
"""

import importlib.util
import math
import pathlib

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
CENSUS = BENCHMARKS.parent.parent / "shared" / "data" / "census_income" / "census-income.test.gz"


def _script(name):
    """Imports ``benchmarks/<name>.py`` by its path (``benchmarks`` is not an installed package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_outputs(folder, name, title):
    assert (folder / f"{name}.png").stat().st_size > 1000
    fragment = (folder / f"{name}.md").read_text()
    assert fragment.startswith(f"### {title}")
    assert f"benchmarks/{name.replace('results', 'reproduce')}.py" in fragment
    assert "TensorFlow 2." in fragment and "Keras 3." in fragment
    assert "![" in fragment and f"({name}.png)" in fragment


def test_mmoe_synthetic(tmp_path):
    script = _script("reproduce_mmoe_synthetic")
    args = ["--seeds", "1", "--correlations", "0.5", "--train-rows", "128", "--test-rows", "64", "--epochs", "1",
            "--batch-size", "64", "--window", "1", "--out", str(tmp_path)]
    results = script.main(args)
    assert sorted(results) == sorted((m, 0.5) for m in script.MODELS)
    for figures in results.values():
        assert len(figures["test"]) == 1
        assert all(math.isfinite(v) and v > 0 for v in figures["train"] + figures["test"])
    assert results["shared_bottom", 0.5]["params"] == [13_255]
    _check_outputs(tmp_path, "results_mmoe_synthetic", "MMoE synthetic data")
    assert "MMoE's gain over Shared-Bottom" in (tmp_path / "results_mmoe_synthetic.md").read_text()


@pytest.mark.parametrize(
    "mmoe_at_low, expected",
    [
        ([0.5, 0.6], "0.5000 ± 0.0000 at 0.5, 0.1000 ± 0.0000 at 1. It grows as the correlation falls, the paper's pattern."),
        ([0.9, 0.9], "0.1500 ± 0.0707 at 0.5, 0.1000 ± 0.0000 at 1. It grows as the correlation falls, the paper's "
                     "pattern, but by less than the spread over seeds."),
        ([1.0, 1.0], "It does not grow steadily as the correlation falls"),
    ],
)
def test_mmoe_verdict_compares_the_gains_with_their_spread(mmoe_at_low, expected):
    """Shared-Bottom's test loss is 1.0 everywhere; MMoE's is 0.9 at correlation 1 (a gain of 0.1)."""
    script = _script("reproduce_mmoe_synthetic")
    results = {
        ("shared_bottom", 0.5): {"test": [1.0, 1.1]},
        ("mmoe", 0.5): {"test": mmoe_at_low},
        ("shared_bottom", 1.0): {"test": [1.0, 1.0]},
        ("mmoe", 1.0): {"test": [0.9, 0.9]},
    }
    assert expected in script.verdict(results, [1.0, 0.5])


def test_esmm(tmp_path):
    script = _script("reproduce_esmm")
    values = script.main(["--seeds", "1", "--rows", "4000", "--epochs", "1", "--batch-size", "256", "--out", str(tmp_path)])
    assert sorted(values) == sorted((m, k) for m in script.LABELS for k in script.METRICS)
    assert all(0 <= v[0] <= 1 for v in values.values())
    # The generator's own probabilities rank its labels well.
    assert values["oracle", "entire_cvr"][0] > 0.8 and values["oracle", "ctcvr"][0] > 0.85
    _check_outputs(tmp_path, "results_esmm", "ESMM, entire-space CVR")


def test_census_without_the_file_exits_with_its_path(tmp_path):
    missing = tmp_path / "census-income.test.gz"
    with pytest.raises(SystemExit, match=f"no Census-Income file at {missing}"):
        _script("reproduce_census").main(["--data", str(missing), "--out", str(tmp_path)])


@pytest.mark.skipif(not CENSUS.exists(), reason=f"UCI Census-Income not found at {CENSUS}")
def test_census(tmp_path):
    script = _script("reproduce_census")
    values = script.main(["--data", str(CENSUS), "--seeds", "1", "--epochs", "1", "--rows", "1000", "--models", "aitm",
                          "--out", str(tmp_path)])
    assert sorted(values) == [("aitm", "income"), ("aitm", "marital")]
    assert all(0 <= v[0] <= 1 for v in values.values())
    _check_outputs(tmp_path, "results_census", "Census-Income")
