import types

import pytest

from tf_mtl.training import MTLTrainer

from ._data import C, click_data, labels, loaders, tiny_model


@pytest.fixture(scope="session")
def click():
    """``(features, x, y)`` of 6,000 generated impressions (see ``_data.click_data``)."""
    return click_data()


@pytest.fixture
def click_loaders(click):
    """``(train, val, test)`` with labels ``ctr`` and ``cvr``: 4,200 / 900 / 900 rows, batches of 128."""
    _, x, y = click
    return loaders(x, labels(y, ["ctr", "cvr"]))


@pytest.fixture(scope="session")
def reference_run(click, tmp_path_factory):
    """One run of the reference API: MMoE with dropout, uncertainty weighting, GAUC per user,
    3 epochs. Shared by the API tests and the tests of what a run writes."""
    features, x, y = click
    train, val, test = loaders(x, labels(y, ["ctr", "cvr"]))
    path = tmp_path_factory.mktemp("reference_run")
    trainer = MTLTrainer(
        tiny_model(features, "mmoe", dropout=0.1),
        [C, C],
        optimizer_params={"lr": 1e-2, "weight_decay": 1e-5},
        adaptive_params={"method": "uwl"},
        n_epoch=3,
        earlystop_patience=3,
        device="cpu",
        model_path=str(path),
        group_by="user_id",
        verbose=0,
    )
    history = trainer.fit(train, val)
    return types.SimpleNamespace(trainer=trainer, history=history, train=train, val=val, test=test, path=path)
