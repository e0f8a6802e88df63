"""The fixed benchmark workload: seeded click -> conversion data and the two model shapes.

200,000 training and 50,000 test rows; 20 categorical features with vocabularies cycling
10, 100, 1,000, 10,000, 100,000 (embedding dimension 16) and 5 dense features; two binary tasks
from a hidden logistic model: click (about 10 % positive) and conversion (about 1 % of rows,
only where click = 1). Ids are skewed toward small values, as real ids are (a few are frequent,
most are rare). MMoE: 4 experts MLP [256, 128] relu, towers [64]. PLE: 1 level, 2 specific
experts per task and 2 shared, same sizes. Batch 1024, Adam lr 1e-3, one epoch.
"""

import dataclasses

import numpy as np

from tf_mtl.features import DenseFeature, SparseFeature

VOCAB_SIZES = (10, 100, 1_000, 10_000, 100_000)
N_SPARSE, N_DENSE, EMBED_DIM = 20, 5, 16
TRAIN_ROWS, TEST_ROWS = 200_000, 50_000
BATCH_SIZE, LEARNING_RATE = 1024, 1e-3
EXPERT_DIMS, TOWER_DIMS = [256, 128], [64]
TASKS = ("click", "conversion")
MODELS = {
    "mmoe": {"n_expert": 4, "expert_params": {"dims": EXPERT_DIMS, "activation": "relu"}},
    "ple": {"n_level": 1, "n_expert_specific": 2, "n_expert_shared": 2, "expert_params": {"dims": EXPERT_DIMS, "activation": "relu"}},
}


@dataclasses.dataclass(frozen=True)
class Workload:
    """The feature spec and the seeded train/test arrays (``x``: name -> array, ``y``: task -> float32)."""

    features: tuple
    train_x: dict
    train_y: dict
    test_x: dict
    test_y: dict

    @property
    def vocab_sizes(self):
        return {f.name: f.vocab_size for f in self.features if isinstance(f, SparseFeature)}


def _intercept(logits, rate, mask=None):
    """The shift that makes ``mean(sigmoid(logits + shift)) == rate`` (over ``mask``), by bisection."""
    values = logits if mask is None else logits[mask]
    low, high = -30.0, 30.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if np.mean(1 / (1 + np.exp(-(values + middle)))) < rate else (low, middle)
    return (low + high) / 2


def make_workload(seed=0, train_rows=TRAIN_ROWS, test_rows=TEST_ROWS):
    """The workload's data, identical for a given ``seed`` on every machine."""
    rng = np.random.default_rng(seed)
    rows = train_rows + test_rows
    features, x = [], {}
    click_logit, buy_logit = np.zeros(rows), np.zeros(rows)
    for i in range(N_SPARSE):
        vocab = VOCAB_SIZES[i % len(VOCAB_SIZES)]
        name = f"c{i:02d}"
        features.append(SparseFeature(name, vocab, EMBED_DIM))
        ids = np.minimum((vocab * rng.random(rows) ** 2).astype(np.int64), vocab - 1)
        click_effect = rng.normal(0, 0.35, vocab)
        buy_effect = 0.6 * click_effect + rng.normal(0, 0.28, vocab)
        click_logit += click_effect[ids]
        buy_logit += buy_effect[ids]
        x[name] = ids
    for i in range(N_DENSE):
        name = f"d{i}"
        features.append(DenseFeature(name))
        values = rng.normal(0, 1, rows).astype(np.float32)
        click_logit += rng.normal(0, 0.3) * values
        buy_logit += rng.normal(0, 0.3) * values
        x[name] = values
    click_logit += _intercept(click_logit, 0.10)
    click = rng.random(rows) < 1 / (1 + np.exp(-click_logit))
    buy_logit += _intercept(buy_logit, 0.10, click)
    conversion = click & (rng.random(rows) < 1 / (1 + np.exp(-buy_logit)))
    y = {"click": click.astype(np.float32), "conversion": conversion.astype(np.float32)}
    split = lambda arrays, part: {k: (v[:train_rows] if part == 0 else v[train_rows:]) for k, v in arrays.items()}  # noqa: E731
    return Workload(tuple(features), split(x, 0), split(y, 0), split(x, 1), split(y, 1))
