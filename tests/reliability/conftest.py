"""The ``reliability`` fixture: every reliability test records what it tried and what held, and
``--reliability-report docs/RELIABILITY.md`` writes those rows as the document's table."""

import pathlib

import pytest
from hypothesis import settings

from .report import AREAS, Row, write_report

_ROWS = pytest.StashKey[list]()


def pytest_configure(config):
    config.stash[_ROWS] = []


class Recorder:
    """``reliability.record(area, tried, result)``: one row of the table for the test running."""

    def __init__(self, request):
        self._request = request

    def record(self, area, tried, result):
        if area not in AREAS:
            raise ValueError(f"Unknown reliability area {area!r}; expected one of {AREAS}")
        node = self._request.node
        self._request.config.stash[_ROWS].append(Row(area, tried, result, node.nodeid))


@pytest.fixture
def reliability(request):
    return Recorder(request)


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--reliability-report")
    rows = session.config.stash.get(_ROWS, [])
    if path and rows:
        write_report(pathlib.Path(path), rows, failed=exitstatus != 0)


# Property-based tests draw the same examples on every run (CI is reproducible) and have no
# per-example deadline (a loaded machine is slow, not wrong).
settings.register_profile("reliability", derandomize=True, deadline=None, database=None, print_blob=True)
settings.load_profile("reliability")
