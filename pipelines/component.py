"""Components, the artifacts they write, and the keys that let an unchanged step be skipped.

A component declares its inputs (other components), JSON parameters and, where it reads
anything outside the pipeline (a data file, a push destination), a ``fingerprint`` of it. Its
cache key is a hash of all of these and of its inputs' keys, so a step reruns exactly when
something it depends on changed. Its output is a folder: the files it wrote and
``artifact.json``, a small metadata record written last.
"""

import dataclasses
import hashlib
import json
import os

import tf_mtl

ARTIFACT_FILE = "artifact.json"


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A finished step's output folder and its metadata record (``key``, ``figures`` ...)."""

    path: str
    metadata: dict

    def file(self, *parts):
        return os.path.join(self.path, *parts)

    @property
    def figures(self):
        return self.metadata.get("figures", {})

    @classmethod
    def read(cls, path):
        """The artifact in ``path``, or ``None`` when the folder holds no finished artifact."""
        try:
            with open(os.path.join(path, ARTIFACT_FILE)) as file:
                return cls(path, json.load(file))
        except FileNotFoundError:
            return None


def file_digest(path, chunk=1 << 20):
    """sha256 of a file's bytes, or of a folder's files (names and bytes, in sorted order)."""
    digest = hashlib.sha256()
    paths = [path]
    if os.path.isdir(path):
        paths = sorted(os.path.join(d, f) for d, _, files in os.walk(path) for f in files)
    for name in paths:
        digest.update(os.path.relpath(name, path).encode() + b"\0")
        with open(name, "rb") as file:
            while block := file.read(chunk):
                digest.update(block)
    return digest.hexdigest()


class Component:
    """A pipeline step. Subclasses set ``INPUTS`` (the input names, ``?`` marking optional ones)
    and implement ``run``.

    Args:
        name: the step's name in the pipeline (default the class name).
        params: JSON-serialisable parameters; part of the cache key.
        **inputs: upstream components by input name.
    """

    INPUTS = ()
    # Set by the runner before ``run``: a folder that survives an interrupted run of the same key.
    work_dir = None

    def __init__(self, params=None, name=None, **inputs):
        self.name = name or type(self).__name__
        self.params = dict(params or {})
        json.dumps(self.params)  # fails here, naming nothing hidden, if a parameter is not JSON
        declared = {i.rstrip("?") for i in self.INPUTS}
        required = {i for i in self.INPUTS if not i.endswith("?")}
        unknown = sorted(set(inputs) - declared)
        missing = sorted(required - {k for k, v in inputs.items() if v is not None})
        if unknown or missing:
            raise ValueError(
                f"{self.name}: inputs {sorted(declared)} expected (optional: "
                f"{sorted(declared - required)}); unknown {unknown}, missing {missing}."
            )
        self.inputs = {k: v for k, v in inputs.items() if v is not None}

    def fingerprint(self):
        """What the step reads from outside the pipeline, as JSON (default nothing)."""
        return None

    def cache_key(self, input_keys):
        record = {
            "component": type(self).__name__,
            "library": tf_mtl.__version__,
            "params": self.params,
            "inputs": input_keys,
            "fingerprint": self.fingerprint(),
        }
        return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()

    def still_valid(self, artifact):
        """Whether a cached artifact can be reused (a pusher checks its pushed copy exists)."""
        return True

    def run(self, inputs, output_dir):
        """Does the work: reads ``inputs`` (name -> ``Artifact``), writes into ``output_dir``,
        returns the key figures (JSON) for the metadata record and the run summary."""
        raise NotImplementedError

    def stop_reason(self, artifact):
        """A message when the pipeline must stop after this step (e.g. serious anomalies)."""
        return None

    def describe(self, artifact):
        """One line of key figures for the summary table."""
        return ", ".join(f"{k}={v}" for k, v in artifact.figures.items() if isinstance(v, (int, float, str)))
