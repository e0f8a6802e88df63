"""Data: in-memory datasets, file readers, ``tf.data`` pipelines, synthetic and census data."""

from tf_mtl.data.census import load_census_income, read_census_frame
from tf_mtl.data.dataset import MultiTaskData, Splits, check_split_ratio, split_indices
from tf_mtl.data.generator import DataGenerator, to_feature_arrays
from tf_mtl.data.readers import read_csv, read_parquet
from tf_mtl.data.synthetic import click_conversion, mmoe_synthetic, mmoe_task_weights

__all__ = [
    "DataGenerator",
    "MultiTaskData",
    "Splits",
    "check_split_ratio",
    "click_conversion",
    "load_census_income",
    "mmoe_synthetic",
    "mmoe_task_weights",
    "read_census_frame",
    "read_csv",
    "read_parquet",
    "split_indices",
    "to_feature_arrays",
]
