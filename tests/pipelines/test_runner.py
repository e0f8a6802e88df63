import json
import os

import pytest

from pipelines.component import Artifact, Component
from pipelines.runner import PipelineStopped, format_summary, run_pipeline


class Count(Component):
    """Writes the number in its params plus its input's number; counts how often it ran."""

    INPUTS = ("upstream?",)
    runs = []

    def run(self, inputs, output_dir):
        Count.runs.append(self.name)
        total = self.params["n"] + (inputs["upstream"].figures["total"] if "upstream" in inputs else 0)
        with open(os.path.join(output_dir, "total.txt"), "w") as file:
            file.write(str(total))
        if self.params.get("fail"):
            raise RuntimeError("boom")
        return {"total": total}

    def stop_reason(self, artifact):
        return "too big" if artifact.figures["total"] > 100 else None


def _steps(a=1, b=2, fail=False):
    first = Count({"n": a}, name="first")
    second = Count({"n": b, "fail": fail}, name="second", upstream=first)
    return [first, second]


@pytest.fixture(autouse=True)
def _reset():
    Count.runs = []


def test_an_unchanged_step_is_cached_and_a_changed_one_reruns_with_its_dependents(tmp_path):
    results = run_pipeline(_steps(), tmp_path, log=lambda _: None)
    assert [r.status for r in results] == ["run", "run"] and results[1].artifact.figures == {"total": 3}
    results = run_pipeline(_steps(), tmp_path, log=lambda _: None)
    assert [r.status for r in results] == ["cached", "cached"] and Count.runs == ["first", "second"]
    results = run_pipeline(_steps(a=5), tmp_path, log=lambda _: None)
    assert [r.status for r in results] == ["run", "run"] and results[1].artifact.figures == {"total": 7}
    results = run_pipeline(_steps(a=5, b=3), tmp_path, log=lambda _: None)
    assert [r.status for r in results] == ["cached", "run"]
    results = run_pipeline(_steps(a=5, b=3), tmp_path, force=["first"], log=lambda _: None)
    assert [r.status for r in results] == ["run", "cached"]
    assert "first" in format_summary(results) and "cached" in format_summary(results)


def test_an_artifact_has_its_files_and_metadata(tmp_path):
    results = run_pipeline(_steps(), tmp_path, log=lambda _: None)
    artifact = Artifact.read(results[1].artifact.path)
    assert open(artifact.file("total.txt")).read() == "3"
    assert artifact.metadata["inputs"] == {"upstream": results[0].artifact.path}
    assert artifact.metadata["params"] == {"n": 2, "fail": False}
    assert json.load(open(artifact.file("artifact.json")))["key"] == artifact.metadata["key"]


def test_a_failed_step_leaves_no_artifact_and_the_rerun_resumes_after_the_finished_ones(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        run_pipeline(_steps(fail=True), tmp_path, log=lambda _: None)
    assert os.listdir(tmp_path / "second") == [name for name in os.listdir(tmp_path / "second") if name.startswith(".work")]
    Count.runs = []
    results = run_pipeline(_steps(), tmp_path, log=lambda _: None)
    # The params changed (fail=False), so "second" runs; "first" was finished and is reused.
    assert [r.status for r in results] == ["cached", "run"] and Count.runs == ["second"]


def test_a_step_can_stop_the_pipeline_and_its_report_is_kept(tmp_path):
    with pytest.raises(PipelineStopped) as err:
        run_pipeline(_steps(a=200), tmp_path, log=lambda _: None)
    assert err.value.step == "first" and err.value.reason == "too big"
    assert os.path.exists(os.path.join(err.value.artifact.path, "total.txt"))
    assert [r.name for r in err.value.results] == ["first"]


def test_wiring_mistakes_are_reported(tmp_path):
    first, second = _steps()
    with pytest.raises(ValueError, match="'first', which is not an earlier step"):
        run_pipeline([second, first], tmp_path)
    with pytest.raises(ValueError, match="Two steps are named 'first'"):
        run_pipeline([first, Count({"n": 1}, name="first")], tmp_path)
    with pytest.raises(ValueError, match="force: unknown steps"):
        run_pipeline([first], tmp_path, force=["Trainer"])
    with pytest.raises(ValueError, match="unknown \\['upstrem'\\]"):
        Count({"n": 1}, upstrem=first)


def test_a_forced_rerun_that_fails_keeps_the_artifact_it_was_to_replace(tmp_path):
    results = run_pipeline(_steps(), tmp_path, log=lambda _: None)
    path = results[1].artifact.path
    failing = _steps(fail=True)
    failing[1].params["fail"] = False
    failing[1].run = lambda inputs, output_dir: (_ for _ in ()).throw(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        run_pipeline(failing, tmp_path, force=["second"], log=lambda _: None)
    assert Artifact.read(path).figures == {"total": 3}
    assert not [p for p in os.listdir(tmp_path / "second") if ".replaced" in p]
