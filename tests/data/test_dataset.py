"""MultiTaskData: the arrays agree with the spec and the tasks; labels fit their task types."""

import numpy as np
import pytest

from tf_mtl.data import MultiTaskData
from tf_mtl.features import DenseFeature

FEATURES = (DenseFeature("price"),)


def _data(**y):
    n = len(next(iter(y.values())))
    return MultiTaskData(FEATURES, ("classification", "regression"), ("ctr", "gmv"), {"price": np.zeros(n, np.float32)}, y)


def test_labels_that_fit_their_tasks_are_kept():
    data = _data(ctr=np.array([0, 1, 1], np.float32), gmv=np.array([-2.5, 0, 9], np.float32))
    assert data.num_examples == 3 and data.subset(np.array([2, 0])).y["gmv"].tolist() == [9.0, -2.5]


@pytest.mark.parametrize(
    "y, message",
    [
        ({"ctr": [0, 1, 2, 2], "gmv": [0, 0, 0, 0]},
         r"MultiTaskData: y\['ctr'\]: 2 row\(s\) hold labels other than 0 and 1, the first 2.0 at row 2; expected 0 or 1"),
        ({"ctr": [0, 1, 0, 1], "gmv": [0, np.inf, 0, np.nan]},
         r"MultiTaskData: y\['gmv'\]: 2 row\(s\) hold NaN, Inf or beyond-float32 labels, the first inf at row 1"),
        ({"ctr": [0, 1], "gmv": [0, 1, 2]}, r"MultiTaskData: y\['gmv'\] has 3 rows; expected 2"),
        ({"ctr": [0, 1]}, r"MultiTaskData: y must be a dict keyed by \['ctr', 'gmv'\]. Received: \['ctr'\]"),
    ],
)
def test_bad_labels_name_the_task_count_and_first_row(y, message):
    with pytest.raises(ValueError, match=message):
        _data(**{k: np.asarray(v) for k, v in y.items()})
