"""The UCI Census-Income (KDD) dataset as the two-task problem of the MMoE paper.

Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD 2018, section 6.3: predict ``income > 50K`` and ``never married``
from the other 39 census attributes. The data (UCI Machine Learning Repository, CC BY 4.0)
is not shipped with tf_mtl; pass the path of ``census-income.data.gz`` or
``census-income.test.gz`` (gzip or plain text, no header, 42 ``", "``-separated fields,
``?`` for missing values, which is kept as a category of its own).
"""

import gzip
import io
import os

import numpy as np
import pandas as pd

from tf_mtl.data.dataset import MultiTaskData, Splits, split_indices
from tf_mtl.features.spec import DenseFeature, SparseFeature

COLUMNS = (
    "age", "class_worker", "det_ind_code", "det_occ_code", "education", "wage_per_hour", "hs_college",
    "marital_stat", "major_ind_code", "major_occ_code", "race", "hisp_origin", "sex", "union_member",
    "unemp_reason", "full_or_part_emp", "capital_gains", "capital_losses", "stock_dividends", "tax_filer_stat",
    "region_prev_res", "state_prev_res", "det_hh_fam_stat", "det_hh_summ", "instance_weight", "mig_chg_msa",
    "mig_chg_reg", "mig_move_reg", "mig_same", "mig_prev_sunbelt", "num_emp", "fam_under_18", "country_father",
    "country_mother", "country_self", "citizenship", "own_or_self", "vet_question", "vet_benefits",
    "weeks_worked", "year", "income_50k",
)
NUMERIC_COLUMNS = (
    "age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends", "num_emp", "weeks_worked",
)
# The labels' source columns and the survey weight are never inputs.
NON_FEATURE_COLUMNS = ("income_50k", "marital_stat", "instance_weight")
INCOME_VALUES = ("- 50000.", "50000+.")


def _read_text(path):
    with open(path, "rb") as file:
        gzipped = file.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rt") if gzipped else open(path)) as file:
            return file.read()
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot be read as Census-Income text: {err}") from err


def read_census_frame(path):
    """The raw file as a DataFrame of stripped strings with the 42 named columns."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path}: no such Census-Income file. Download census-income.test.gz (or .data.gz) of "
            "Census-Income (KDD) from the UCI Machine Learning Repository and pass its path."
        )
    text = _read_text(path)
    lines = text.splitlines()
    bad = next((i for i, line in enumerate(lines) if line and line.count(",") != len(COLUMNS) - 1), None)
    if bad is not None:
        raise ValueError(
            f"{path}, line {bad + 1}: {lines[bad].count(',') + 1} fields; expected {len(COLUMNS)} "
            f"comma-separated fields. Received: {lines[bad][:120]!r}"
        )
    frame = pd.read_csv(io.StringIO(text), header=None, names=COLUMNS, dtype=str, na_filter=False)
    if frame.empty:
        raise ValueError(f"{path}: the file holds no rows.")
    return frame.apply(lambda column: column.str.strip())


def _numeric(frame, path):
    numbers = {}
    for name in NUMERIC_COLUMNS:
        try:
            numbers[name] = pd.to_numeric(frame[name]).to_numpy(np.float64)
        except ValueError as err:
            raise ValueError(f"{path}: column {name!r} must hold numbers. {err}") from err
    return numbers


def load_census_income(path, seed=0, split=(0.6, 0.2, 0.2), embed_dim=4):
    """Census-Income as train/validation/test ``MultiTaskData`` for tasks income and marital.

    Tasks (both ``"classification"``): ``"income"`` is ``income_50k == '50000+.'`` and
    ``"marital"`` is ``marital_stat == 'Never married'``. ``income_50k``, ``marital_stat``
    and ``instance_weight`` are not features. The seven numeric columns (``NUMERIC_COLUMNS``)
    become ``DenseFeature``s standardized with the training split's mean and (population)
    std (a column constant there keeps ``std=1``); the other 32 columns, codes included,
    become string ``SparseFeature``s whose ``vocabulary`` is the sorted distinct values of
    the training split (values first seen in validation or test go to the OOV row).

    On ``census-income.test.gz`` (99,762 rows) the positive rates are 6.20% (income) and
    43.25% (marital). Results on a split of that file are not comparable with papers that
    train on the 199,523-row training file; say so when reporting them.

    Args:
        path: the Census-Income file, gzip or plain text.
        seed: seeds the shuffle before the split.
        split: ``(train, val, test)`` fractions, each in (0, 1), summing to 1; the parts get
            ``floor(N * train)`` and ``floor(N * val)`` rows, test the rest.
        embed_dim: the embedding width of every sparse feature.

    Returns:
        ``Splits(train, val, test)``, three ``MultiTaskData`` sharing one feature spec.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file, for a line without 42 fields, a non-numeric value in a
            numeric column or an unknown ``income_50k`` value.

    Example:

    >>> train, val, test = load_census_income("census-income.test.gz")
    >>> train.task_names, len(train.features)
    (('income', 'marital'), 39)
    """
    numbers_ok = all(not isinstance(v, bool) and isinstance(v, (int, float)) and 0 < v < 1 for v in split)
    if not isinstance(split, (list, tuple)) or len(split) != 3 or not numbers_ok or abs(sum(split) - 1) > 1e-6:
        raise ValueError(
            f"split must be (train, val, test) fractions in (0, 1) summing to 1. Received: split={split!r}"
        )
    path = os.fspath(path)
    frame = read_census_frame(path)
    unknown = sorted(set(frame["income_50k"]) - set(INCOME_VALUES))
    if unknown:
        raise ValueError(f"{path}: column 'income_50k' holds {unknown[0]!r}; expected one of {INCOME_VALUES}.")
    numbers = _numeric(frame, path)
    train_rows, val_rows, test_rows = split_indices(len(frame), split[0], split[1], seed)

    features = []
    for name in COLUMNS:
        if name in NON_FEATURE_COLUMNS:
            continue
        if name in NUMERIC_COLUMNS:
            mean, std = numbers[name][train_rows].mean(), numbers[name][train_rows].std()
            # A column constant on the training split is only centred (std must be positive).
            features.append(DenseFeature(name, mean=float(mean), std=float(std) if std > 0 else 1.0))
        else:
            vocabulary = sorted(set(frame[name].to_numpy()[train_rows].tolist()))
            features.append(SparseFeature(name, None, embed_dim, vocabulary=vocabulary))
    x = {
        f.name: numbers[f.name].astype(np.float32)
        if isinstance(f, DenseFeature)
        else frame[f.name].to_numpy(dtype=object)
        for f in features
    }
    data = MultiTaskData(
        features=tuple(features),
        task_types=("classification", "classification"),
        task_names=("income", "marital"),
        x=x,
        y={
            "income": (frame["income_50k"] == "50000+.").to_numpy(np.float32),
            "marital": (frame["marital_stat"] == "Never married").to_numpy(np.float32),
        },
    )
    return Splits(data.subset(train_rows), data.subset(val_rows), data.subset(test_rows))
