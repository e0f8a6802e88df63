"""ExampleValidator: checks every split's statistics against the schema and lists the anomalies.

Each anomaly is ``{"split", "column", "kind", "severity": "error" | "warning", "detail"}``. A
check on a column the model uses (``required_column``) finds an error; on any other column, a
warning. The kinds:

- ``missing_column``: a schema column is not in the data.
- ``new_column`` (warning): a data column is not in the schema.
- ``type_change`` (error): the column's type or list-ness differs from the schema's.
- ``missing_values``: more rows lack a value than ``max_missing_rate`` (an error also for
  ``required`` columns).
- ``non_finite``: NaN or Inf values.
- ``unseen_values``: the share of values outside ``domain`` exceeds ``max_unseen_rate`` (for a
  scalar column, the share of rows).
- ``out_of_range``: the share of values outside ``[min, max]`` exceeds ``max_out_of_range_rate``
  (read from the statistics' histogram, whose buckets span 1 %: values in a bucket that straddles
  a bound count as inside).
- ``label_domain`` (error): a classification label has a value outside its domain.

Warnings never stop the pipeline; ``stop_reason`` names every error.
"""

import json
import os

from pipelines.component import Component
from pipelines.schema import SCHEMA_FILE, load_schema
from pipelines.statistics import read_statistics, read_value_counts

ANOMALIES_FILE = "anomalies.json"
REPORT_FILE = "anomalies.md"
EXAMPLE_VALUES = 5


def _share_outside_range(histogram, low, high):
    total = sum(count for _, _, count in histogram)
    outside = sum(count for lower, upper, count in histogram if lower > high or upper < low)
    return outside / total if total else 0.0


def _domain_checks(rule, value_counts):
    """``(kind, detail)`` of a domain anomaly, or ``None``."""
    domain = set(rule["domain"])
    outside = [(value, count) for value, count in value_counts if value not in domain]
    total = sum(count for _, count in value_counts)
    share = sum(count for _, count in outside) / total if total else 0.0
    examples = [value for value, _ in outside[:EXAMPLE_VALUES]]
    if rule["role"] == "label":
        if outside:
            return "label_domain", f"{share:.2%} of labels are outside the domain {rule['domain']}, e.g. {examples}"
        return None
    if share > rule["max_unseen_rate"]:
        return "unseen_values", (f"{share:.2%} of values are outside the domain (at most {rule['max_unseen_rate']:.2%} "
                                 f"allowed), e.g. {examples}")
    return None


def check_column(rule, stats, value_counts):
    """The anomalies ``[(kind, severity, detail)]`` of one present column.

    Args:
        rule: the column's schema entry (as ``load_schema`` returns it).
        stats: the column's statistics in one split.
        value_counts: a function returning the column's ``[(value, count)]`` in that split.
    """
    severity = "error" if rule["required_column"] else "warning"
    if (stats["type"], stats["list"]) != (rule["type"], rule["list"]):
        return [("type_change", "error", f"the schema has type {rule['type']} (list: {rule['list']}); the data has "
                                         f"{stats['type']} (list: {stats['list']})")]
    found = []
    if stats["missing_rate"] > rule["max_missing_rate"]:
        level = "error" if rule["required"] else severity
        found.append(("missing_values", level,
                      f"{stats['missing_rate']:.2%} of rows have no value (at most {rule['max_missing_rate']:.2%} allowed)"))
    if stats.get("non_finite"):
        found.append(("non_finite", severity, f"{stats['non_finite']} NaN or Inf values"))
    if "domain" in rule and stats["count"]:
        domain_anomaly = _domain_checks(rule, value_counts())
        if domain_anomaly is not None:
            kind, detail = domain_anomaly
            found.append((kind, "error" if kind == "label_domain" else severity, detail))
    if "min" in rule and stats.get("histogram"):
        share = _share_outside_range(stats["histogram"], rule["min"], rule["max"])
        if share > rule["max_out_of_range_rate"]:
            found.append(("out_of_range", severity,
                          f"{share:.2%} of values are outside [{rule['min']}, {rule['max']}] (at most "
                          f"{rule['max_out_of_range_rate']:.2%} allowed); the data spans [{stats['min']}, {stats['max']}]"))
    return found


def find_anomalies(statistics, schema, value_counts):
    """Every anomaly of every split.

    Args:
        statistics: ``statistics.json`` (``{"splits": {split: {"rows", "columns"}}}``).
        schema: a checked schema (``load_schema``).
        value_counts: ``value_counts(split, column)`` -> ``[(value, count)]`` of an int or string
            column.

    Returns:
        A list of ``{"split", "column", "kind", "severity", "detail"}``, by split then column.
    """
    anomalies = []
    for split, split_stats in statistics["splits"].items():
        present = split_stats["columns"]
        for column, rule in schema["columns"].items():
            if column not in present:
                found = [("missing_column", "error" if rule["required_column"] else "warning",
                          "the column is not in the data")]
            else:
                found = check_column(rule, present[column], lambda: value_counts(split, column))
            anomalies += [{"split": split, "column": column, "kind": kind, "severity": severity, "detail": detail}
                          for kind, severity, detail in found]
        anomalies += [{"split": split, "column": column, "kind": "new_column", "severity": "warning",
                       "detail": "the column is not in the schema"}
                      for column in present if column not in schema["columns"]]
    return anomalies


def format_report(anomalies):
    """``anomalies.md``: counts, then a table of the anomalies."""
    errors = sum(a["severity"] == "error" for a in anomalies)
    lines = ["# Anomalies", "", f"{errors} errors, {len(anomalies) - errors} warnings.", ""]
    if anomalies:
        lines += ["| severity | split | column | kind | detail |", "| --- | --- | --- | --- | --- |"]
        ordered = sorted(anomalies, key=lambda a: a["severity"] != "error")
        lines += [f"| {a['severity']} | {a['split']} | {a['column']} | {a['kind']} | {a['detail']} |".replace("\n", " ")
                  for a in ordered]
    return "\n".join(lines) + "\n"


def read_anomalies(artifact):
    with open(artifact.file(ANOMALIES_FILE)) as file:
        return json.load(file)["anomalies"]


class ExampleValidator(Component):
    """Compares the statistics of every split with the schema; stops the pipeline on errors.

    Args:
        statistics: the StatisticsGen step.
        schema: the SchemaGen step.
        name: the step's name.
    """

    INPUTS = ("statistics", "schema")

    def run(self, inputs, output_dir):
        artifact = inputs["statistics"]
        statistics = read_statistics(artifact)
        schema = load_schema(inputs["schema"].file(SCHEMA_FILE))

        def value_counts(split, column):
            return read_value_counts(artifact, split, column, schema["columns"][column]["type"])

        anomalies = find_anomalies(statistics, schema, value_counts)
        with open(os.path.join(output_dir, ANOMALIES_FILE), "w") as file:
            json.dump({"anomalies": anomalies}, file, indent=1)
        with open(os.path.join(output_dir, REPORT_FILE), "w") as file:
            file.write(format_report(anomalies))
        errors = sum(a["severity"] == "error" for a in anomalies)
        return {"errors": errors, "warnings": len(anomalies) - errors}

    def stop_reason(self, artifact):
        errors = [a for a in read_anomalies(artifact) if a["severity"] == "error"]
        if not errors:
            return None
        listed = "; ".join(f"{a['column']}: {a['kind']} ({a['split']})" for a in errors)
        return f"{len(errors)} error anomalies: {listed}. Fix the data, or edit and pin the schema ({REPORT_FILE})."

    def describe(self, artifact):
        return f"{artifact.figures['errors']} errors, {artifact.figures['warnings']} warnings"
