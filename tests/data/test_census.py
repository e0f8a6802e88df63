"""Census-Income: the real file when it is beside the checkout, small made-up files otherwise."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from tf_mtl.data import load_census_income
from tf_mtl.data.census import COLUMNS, NON_FEATURE_COLUMNS, NUMERIC_COLUMNS
from tf_mtl.features import DenseFeature, SparseFeature

# The data sits beside the checkout (../shared/data), never inside it; see its README.
CENSUS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "census_income" / "census-income.test.gz"

TEMPLATE = (
    "38, Private, 6, 36, 1st 2nd 3rd or 4th grade, 0, Not in universe, Married-civilian spouse present, "
    "Manufacturing-durable goods, Machine operators assmblrs & inspctrs, White, Mexican (Mexicano), Female, "
    "Not in universe, Not in universe, Full-time schedules, 0, 0, 0, Joint one under 65 & one 65+, "
    "Not in universe, Not in universe, Spouse of householder, Spouse of householder, 1032.38, ?, ?, ?, "
    "Not in universe under 1 year old, ?, 4, Not in universe, Mexico, Mexico, Mexico, "
    "Foreign born- Not a citizen of U S , 0, Not in universe, 2, 12, 95, - 50000."
)


def _row(age, marital, income, race="White"):
    fields = TEMPLATE.split(", ")
    values = {"age": str(age), "marital_stat": marital, "income_50k": income, "race": race}
    return ", ".join(values.get(name, field) for name, field in zip(COLUMNS, fields))


def _write(path, lines, gzipped):
    text = "\n".join(lines) + "\n"
    if gzipped:
        with gzip.open(path, "wt") as file:
            file.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def small_file(tmp_path):
    lines = [
        _row(20 + i, "Never married" if i % 2 else "Divorced", "50000+." if i < 3 else "- 50000.", race=f"R{i}")
        for i in range(10)
    ]
    return _write(tmp_path / "small.gz", lines, gzipped=True)


def test_small_file_splits_labels_and_spec(small_file):
    train, val, test = load_census_income(small_file, seed=1)
    assert [d.num_examples for d in (train, val, test)] == [6, 2, 2]
    ages = np.concatenate([d.x["age"] for d in (train, val, test)])
    assert sorted(ages.tolist()) == list(range(20, 30))
    for part in (train, val, test):
        # Labels agree with the row they came from: ages 20-22 earn 50000+, odd ages never married.
        np.testing.assert_array_equal(part.y["income"], (part.x["age"] < 23).astype(np.float32))
        np.testing.assert_array_equal(part.y["marital"], (part.x["age"] % 2 == 1).astype(np.float32))
    age = next(f for f in train.features if f.name == "age")
    assert age.mean == pytest.approx(train.x["age"].mean()) and age.std == pytest.approx(train.x["age"].std())
    wage = next(f for f in train.features if f.name == "wage_per_hour")
    # wage_per_hour is 0 on every row: it is only centred.
    assert (wage.mean, wage.std) == (0.0, 1.0)
    race = next(f for f in train.features if f.name == "race")
    # The vocabulary comes from the training split only; 'Foreign born- ... U S ' is stripped.
    assert race.vocabulary == tuple(sorted(train.x["race"]))
    assert "Foreign born- Not a citizen of U S" in next(f for f in train.features if f.name == "citizenship").vocabulary
    assert train.x["race"].dtype == object and train.x["age"].dtype == np.float32


def test_small_file_split_is_seeded(small_file, tmp_path):
    first, second, other = (load_census_income(small_file, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(first.train.x["age"], second.train.x["age"])
    assert not np.array_equal(first.train.x["age"], other.train.x["age"])
    plain = _write(tmp_path / "plain.txt", [_row(20 + i, "Divorced", "- 50000.") for i in range(10)], gzipped=False)
    assert load_census_income(plain, seed=3).train.num_examples == 6


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.gz: no such Census-Income file"):
        load_census_income(tmp_path / "absent.gz")


def test_wrong_field_count_names_file_and_line(tmp_path):
    lines = [_row(30, "Divorced", "- 50000."), _row(31, "Divorced", "- 50000.") + ", extra"]
    path = _write(tmp_path / "extra.gz", lines, gzipped=True)
    with pytest.raises(ValueError, match=r"extra\.gz, line 2: 43 fields; expected 42"):
        load_census_income(path)


def test_bad_values_name_the_file(tmp_path):
    path = _write(tmp_path / "label.gz", [_row(30, "Divorced", "50000+")], gzipped=True)
    with pytest.raises(ValueError, match=r"label\.gz: column 'income_50k' holds '50000\+'"):
        load_census_income(path)
    path = _write(tmp_path / "age.gz", [_row("old", "Divorced", "- 50000.")], gzipped=True)
    with pytest.raises(ValueError, match=r"age\.gz: column 'age' must hold numbers"):
        load_census_income(path)


@pytest.mark.parametrize("split", [(0.6, 0.2), (0.6, 0.3, 0.3), (0.8, 0.2, 0.0)])
def test_bad_split_is_rejected(small_file, split):
    with pytest.raises(ValueError, match=r"split must be \(train, val, test\) fractions"):
        load_census_income(small_file, split=split)


@pytest.fixture(scope="module")
def census():
    if not CENSUS.is_file():
        pytest.skip(f"Census-Income data not found at {CENSUS} (it lives beside the checkout, not in it)")
    return load_census_income(CENSUS, seed=0)


def test_census_rows_and_split_sizes(census):
    assert [d.num_examples for d in census] == [59_857, 19_952, 19_953]
    assert sum(d.num_examples for d in census) == 99_762


def test_census_positive_rates(census):
    for task, rate in (("income", 0.0620), ("marital", 0.4325)):
        overall = np.concatenate([d.y[task] for d in census]).mean()
        assert abs(overall - rate) < 0.005, task
        for part in census:
            assert abs(part.y[task].mean() - rate) < 0.015, task


def test_census_features_exclude_labels_and_weight(census):
    train = census.train
    names = [f.name for f in train.features]
    assert not set(NON_FEATURE_COLUMNS) & set(names)
    assert len(names) == 39 and train.task_names == ("income", "marital")
    dense = [f.name for f in train.features if isinstance(f, DenseFeature)]
    assert dense == list(NUMERIC_COLUMNS)
    assert all(isinstance(f, SparseFeature) and f.dtype == "string" and f.embed_dim == 4
               for f in train.features if f.name not in dense)
    assert all(part.features == train.features for part in census)


def test_census_statistics_come_from_the_training_split(census):
    train = census.train
    by_name = {f.name: f for f in train.features}
    assert by_name["age"].mean == pytest.approx(train.x["age"].astype(np.float64).mean())
    assert by_name["age"].std == pytest.approx(train.x["age"].astype(np.float64).std())
    assert by_name["education"].vocabulary == tuple(sorted(set(train.x["education"])))
    assert "?" in by_name["country_self"].vocabulary
