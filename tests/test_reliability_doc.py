"""docs/RELIABILITY.md's table has a row for every reliability test, and only for those."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _tests():
    found = set()
    for path in sorted((ROOT / "tests" / "reliability").glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found.add(f"{path.relative_to(ROOT).as_posix()}::{node.name}")
    return found


def test_every_reliability_test_has_a_row_in_the_document():
    text = (ROOT / "docs" / "RELIABILITY.md").read_text()
    rows = set(re.findall(r"`python -m pytest -m reliability (tests/reliability/[\w/]+\.py::\w+)", text))
    tests = _tests()
    assert tests, "no reliability tests found"
    assert not tests - rows, f"tests without a row in docs/RELIABILITY.md (rerun --reliability-report): {sorted(tests - rows)}"
    assert not rows - tests, f"rows of docs/RELIABILITY.md for tests that no longer exist: {sorted(rows - tests)}"
