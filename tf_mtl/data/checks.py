"""Checks of in-memory data that every entry point shares: how bad rows are reported, which
feature values are finite, and what a label must hold.

Example:

>>> check_label("y['ctr']", "classification", np.array([0.0, 1.0, 2.0]))
Traceback (most recent call last):
ValueError: y['ctr']: 1 row(s) hold labels other than 0 and 1, the first 2.0 at row 2; expected 0 or 1 ...
"""

import numpy as np

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _shown(value):
    """A numpy value as the Python value it holds (``2.0``, not ``np.float32(2.0)``)."""
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value


def bad_rows_error(owner, bad, values, what, expected):
    """A ``ValueError`` naming ``owner``, how many rows ``bad`` (a boolean per row) marks, and
    the first of them with its value: ``"owner: 3 row(s) hold what, the first nan at row 17;
    expected."``."""
    rows = np.flatnonzero(bad)
    first = int(rows[0])
    return ValueError(
        f"{owner}: {len(rows)} row(s) hold {what}, the first {_shown(values[first])!r} at row {first}; {expected}."
    )


def rows_with(flags):
    """``(N, ...)`` flags -> ``(N,)``: whether each row holds one."""
    return flags.any(axis=tuple(range(1, flags.ndim)))


def check_finite(owner, array, expected):
    """Refuses NaN and Inf in a float feature column ``(N, ...)``."""
    bad = rows_with(~np.isfinite(array))
    if bad.any():
        raise bad_rows_error(owner, bad, array, "NaN (missing) or Inf values", expected)


def check_label(owner, task_type, values):
    """Labels of one column, checked before they become float32: 0 or 1 when ``task_type`` is
    ``"classification"``, else finite numbers within float32's range (``None``: a column that
    is no task, e.g. a loss mask).

    Raises:
        ValueError: naming ``owner``, the number of bad rows and the first of them.
    """
    values = np.asarray(values, dtype=np.float64)
    if task_type == "classification":
        bad = rows_with((values != 0) & (values != 1))
        if bad.any():
            raise bad_rows_error(
                owner, bad, values, "labels other than 0 and 1", "expected 0 or 1 for a classification task"
            )
    bad = rows_with(~(np.abs(values) <= _FLOAT32_MAX))
    if bad.any():
        raise bad_rows_error(
            owner, bad, values, "NaN, Inf or beyond-float32 labels", "expected a finite float32 label on every row"
        )
