import numpy as np
import pytest

from tf_mtl.metrics import mae, rmse


def test_rmse_and_mae():
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)
    assert rmse([1, 2, 3], [1, 2, 5], weights=[1, 1, 2]) == pytest.approx(np.sqrt(8 / 4))


@pytest.mark.parametrize("metric", [rmse, mae])
def test_mismatched_lengths_are_named_not_broadcast(metric):
    # Before the check, numpy broadcast a single prediction against every label.
    with pytest.raises(ValueError, match=rf"{metric.__name__}: .*Received lengths: labels=3, predictions=1\."):
        metric([1, 2, 3], [2])
