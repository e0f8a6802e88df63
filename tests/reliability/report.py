"""The table of docs/RELIABILITY.md, written from the rows the reliability tests record."""

import dataclasses
import datetime
import platform
import re

AREAS = ("Bad input: data", "Bad input: configs and specs", "Bad input: serving requests", "Faults", "Load", "Security defaults")
START, END = "<!-- reliability table: start -->", "<!-- reliability table: end -->"


@dataclasses.dataclass(frozen=True)
class Row:
    area: str
    tried: str
    result: str
    nodeid: str


def _cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def table(rows, failed=False):
    import tensorflow as tf

    from tf_mtl.compat import keras

    lines = [
        f"Written by `python -m pytest -m reliability tests/reliability --reliability-report docs/RELIABILITY.md` on "
        f"{datetime.date.today().isoformat()}: Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, {platform.machine()}."
        + (" **Some tests failed in that run.**" if failed else ""),
        "",
    ]
    for area in AREAS:
        chosen = sorted((row for row in rows if row.area == area), key=lambda row: row.nodeid)
        if not chosen:
            continue
        lines += [f"### {area}", "", "| tried | result | reproduce |", "| --- | --- | --- |"]
        lines += [f"| {_cell(r.tried)} | {_cell(r.result)} | `python -m pytest -m reliability {r.nodeid}` |" for r in chosen]
        lines.append("")
    return "\n".join(lines)


def write_report(path, rows, failed=False):
    """Replaces the text between the table markers of ``path`` (or appends them)."""
    text = path.read_text() if path.exists() else ""
    block = f"{START}\n{table(rows, failed)}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text + ("\n" if text else "") + block + "\n"
    path.write_text(text)
