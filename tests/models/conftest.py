import numpy as np
import pytest

from tf_mtl.features import DenseFeature, SequenceFeature, SparseFeature

C, R = "classification", "regression"


@pytest.fixture
def features():
    return (
        SparseFeature("user", 50, 4),
        SparseFeature("city", None, 3, vocabulary=["paris", "rome", "oslo"]),
        SequenceFeature("history", 50, 4, "mean", 5, shared_embed_name="user"),
        DenseFeature("price", mean=10.0, std=5.0),
    )


@pytest.fixture
def inputs():
    """A batch of raw inputs for ``features``, with unknown ids and unseen strings in it."""
    rng = np.random.default_rng(0)
    n = 64
    return {
        "user": rng.integers(-5, 60, n),
        "city": rng.choice(["paris", "rome", "oslo", "lima"], n),
        "history": rng.integers(0, 60, (n, 5)),
        "price": rng.normal(10, 5, n).astype("float32"),
    }
