"""Runs a list of components in order on one machine, reusing every step whose key is cached.

Each step's artifact is built in a hidden folder and renamed to
``root/<step>/<key prefix>/`` only once complete, so an interrupted run leaves no half
artifact and running again resumes after the last finished step.
"""

import dataclasses
import datetime
import json
import os
import shutil
import time

from pipelines.component import ARTIFACT_FILE, Artifact
from tf_mtl.files import atomic_path

KEY_CHARS = 16


class PipelineStopped(RuntimeError):
    """A step decided the pipeline must not go on (serious anomalies, a model not blessed)."""

    def __init__(self, step, reason, artifact, results):
        super().__init__(f"{step}: {reason} (report: {artifact.path})")
        self.step, self.reason, self.artifact, self.results = step, reason, artifact, results


@dataclasses.dataclass
class StepResult:
    name: str
    status: str  # "run" or "cached"
    seconds: float
    artifact: Artifact
    summary: str


def _check_order(components):
    seen = set()
    for component in components:
        if component.name in seen:
            raise ValueError(f"Two steps are named {component.name!r}; give one a name=.")
        for input_name, upstream in component.inputs.items():
            if upstream.name not in seen:
                raise ValueError(
                    f"{component.name}: input {input_name!r} comes from {upstream.name!r}, which is not an "
                    "earlier step of the pipeline."
                )
        seen.add(component.name)


def run_pipeline(components, root, force=(), log=print):
    """Runs ``components`` (each after the steps it reads) with artifacts under ``root``.

    Args:
        components: the steps, in an order where inputs come first.
        root: the folder of all artifacts (the pipeline root).
        force: names of steps to run even when cached.
        log: where progress lines go.

    Returns:
        A list of ``StepResult``, one per step.

    Raises:
        PipelineStopped: a step's result forbids going on; its artifact is kept for inspection.
    """
    components = list(components)
    _check_order(components)
    unknown = sorted(set(force) - {c.name for c in components})
    if unknown:
        raise ValueError(f"force: unknown steps {unknown}; the steps are {[c.name for c in components]}.")
    artifacts, results = {}, []
    for index, component in enumerate(components, 1):
        inputs = {name: artifacts[upstream.name] for name, upstream in component.inputs.items()}
        key = component.cache_key({name: a.metadata["key"] for name, a in inputs.items()})
        path = os.path.join(os.fspath(root), component.name, key[:KEY_CHARS])
        prefix = f"[{index}/{len(components)}] {component.name}"
        artifact = Artifact.read(path)
        started = time.perf_counter()
        if artifact is not None and component.name not in force and component.still_valid(artifact):
            status = "cached"
            log(f"{prefix}: cached ({path})")
        else:
            status = "run"
            log(f"{prefix}: running")
            old = _set_aside(path) if artifact is not None else None
            # A stable scratch folder: a step killed midway (a long training) finds its own
            # partial work there when the pipeline runs again.
            component.work_dir = os.path.join(os.fspath(root), component.name, f".work-{key[:KEY_CHARS]}")
            os.makedirs(component.work_dir, exist_ok=True)
            try:
                artifact = _run(component, inputs, key, path)
            except BaseException:
                if old:  # the rerun failed: the artifact it was to replace comes back
                    os.replace(old, path)
                raise
            shutil.rmtree(component.work_dir, ignore_errors=True)
            if old:
                shutil.rmtree(old, ignore_errors=True)
        seconds = time.perf_counter() - started
        artifacts[component.name] = artifact
        summary = component.describe(artifact)
        if status == "run":
            log(f"{prefix}: done in {seconds:.1f} s. {summary}")
        results.append(StepResult(component.name, status, seconds, artifact, summary))
        reason = component.stop_reason(artifact)
        if reason:
            raise PipelineStopped(component.name, reason, artifact, results)
    return results


def _set_aside(path):
    """A forced or invalid artifact is moved to a hidden name first (removed once the new one
    is in place), so no reader sees a folder change under it."""
    parent, name = os.path.split(path)
    old = os.path.join(parent, f".{name}.replaced-{time.time_ns()}")
    os.replace(path, old)
    return old


def _run(component, inputs, key, path):
    started = time.perf_counter()
    with atomic_path(path) as partial:
        os.makedirs(partial)
        figures = component.run(inputs, partial)
        metadata = {
            "step": component.name,
            "component": type(component).__name__,
            "key": key,
            "params": component.params,
            "inputs": {name: a.path for name, a in inputs.items()},
            "figures": figures or {},
            "seconds": round(time.perf_counter() - started, 3),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        with open(os.path.join(partial, ARTIFACT_FILE), "w") as file:
            json.dump(metadata, file, indent=1, default=str)
    return Artifact(path, metadata)


def format_summary(results):
    """The run's table: one row per step (cached or run, seconds, key figures)."""
    width = max([len(r.name) for r in results] + [4])
    lines = [f"{'step':<{width}}  {'status':<6}  {'time':>8}  key figures"]
    for r in results:
        lines.append(f"{r.name:<{width}}  {r.status:<6}  {r.seconds:>7.1f}s  {r.summary}")
    return "\n".join(lines)
