"""Device strings: what they parse to, the CPU fallback, and the errors."""

import pytest
import tensorflow as tf

from tf_mtl.training import MTLTrainer, device_name, resolve_strategy

from ._data import tiny_model


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine with two visible GPUs, as far as ``device_name`` can tell."""
    gpus = [tf.config.LogicalDevice(f"/device:GPU:{i}", "GPU") for i in range(2)]
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: gpus if kind == "GPU" else [])


@pytest.mark.parametrize("device", ["cpu", "CPU", "/CPU:0", "cpu:0", "/device:CPU:0", " cpu "])
def test_cpu_spellings(device):
    assert device_name(device) == "/CPU:0"


@pytest.mark.parametrize(
    "device, expected",
    [
        ("cuda", "/GPU:0"),
        ("cuda:0", "/GPU:0"),
        ("cuda:1", "/GPU:1"),
        ("/GPU:0", "/GPU:0"),
        ("gpu:1", "/GPU:1"),
        ("GPU:1", "/GPU:1"),
        ("/device:GPU:1", "/GPU:1"),
    ],
)
def test_gpu_spellings(two_gpus, device, expected):
    assert device_name(device) == expected


@pytest.mark.parametrize("device", ["cuda:2", "/GPU:7"])
def test_a_gpu_that_is_not_there_falls_back_to_the_cpu(two_gpus, device):
    with pytest.warns(UserWarning, match=rf"device={device!r}: 2 GPU\(s\) visible; training on the CPU instead"):
        assert device_name(device) == "/CPU:0"


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "gpu:-1", "", "cuda:0:1", "/GPU 0", None])
def test_bad_device_strings_name_the_received_value(device):
    with pytest.raises(ValueError, match=rf"device must look like 'cpu', 'cuda:0' or '/GPU:0'\. Received: device={device!r}"):
        device_name(device)


def test_resolve_strategy_without_a_strategy_places_one_device(two_gpus):
    strategy, device = resolve_strategy("cuda:1")
    assert strategy is tf.distribute.get_strategy() and device == "/GPU:1"
    # Missing GPUs are dropped, not replaced by the CPU: one GPU left, no MirroredStrategy.
    with pytest.warns(UserWarning, match="gpu:5"):
        strategy, device = resolve_strategy(gpus=[1, 5])
    assert strategy is tf.distribute.get_strategy() and device == "/GPU:1"
    with pytest.warns(UserWarning, match="gpu:4"):
        strategy, device = resolve_strategy(gpus=[4])
    assert strategy is tf.distribute.get_strategy() and device == "/CPU:0"
    given = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert resolve_strategy("cuda:1", gpus=[0, 1], strategy=given) == (given, None)


def test_trainer_on_a_missing_gpu_warns_and_trains_on_the_cpu(click, click_loaders, tmp_path):
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this machine has a GPU: cuda:0 is not missing")
    train, _, _ = click_loaders
    with pytest.warns(UserWarning, match=r"device='cuda:0': 0 GPU\(s\) visible; training on the CPU instead"):
        trainer = MTLTrainer(tiny_model(click[0]), device="cuda:0", n_epoch=1, model_path=str(tmp_path), verbose=0)
    assert trainer.device == "/CPU:0"
    history = trainer.fit(train.take(2))
    assert len(history) == 1 and history[0]["train"]["loss"] > 0
    # Keras 3 variables wrap the tf.Variable; Keras 2's are one.
    placed = [(v if isinstance(v, tf.Variable) else v.value).device for v in trainer.model.trainable_variables]
    assert all("CPU" in device for device in placed)
