import numpy as np
import pytest

from tf_mtl.data import click_conversion


def impressions(rows, seed=0):
    """Generated click -> conversion impressions as raw columns (as ``tf-mtl quickstart`` writes)."""
    frame = click_conversion(rows, seed=seed).to_frame().rename(columns={"ctr": "click", "cvr": "conversion"})
    frame[["click", "conversion"]] = frame[["click", "conversion"]].astype(int)
    frame.insert(0, "impression_id", np.arange(rows))
    return frame


@pytest.fixture(scope="session")
def small_frame():
    frame = impressions(4_000)
    frame.loc[::40, "item_price"] = np.nan
    return frame


FEATURES = [
    {"name": "user_id", "kind": "sparse", "embed_dim": 4},
    {"name": "item_category", "kind": "sparse", "embed_dim": 4, "shared_embed_name": "category"},
    {"name": "clicked_categories", "kind": "sequence", "embed_dim": 4, "max_len": 10, "shared_embed_name": "category"},
    {"name": "item_price", "kind": "dense"},
    {"name": "position", "kind": "dense"},
]
TASKS = [
    {"name": "ctr", "type": "classification", "label": "click"},
    {"name": "cvr", "type": "classification", "label": "conversion"},
]


def small_config(tmp_path, **sections):
    """A checked pipeline config for ``small_frame`` with tiny model sizes."""
    from pipelines.config import check_config

    config = {
        "name": "small",
        "pipeline_root": str(tmp_path / "root"),
        "data": {"path": str(tmp_path / "unused.csv"), "key": "impression_id"},
        "features": FEATURES,
        "tasks": TASKS,
        "model": {"name": "mmoe", "params": {"n_expert": 2, "expert_params": {"dims": [16]}, "tower_params_list": [{"dims": [8]}, {"dims": [8]}]}},
        "training": {"epochs": 1, "batch_size": 256},
        "push": {"destination": str(tmp_path / "saved_models")},
        **sections,
    }
    return check_config(config)
