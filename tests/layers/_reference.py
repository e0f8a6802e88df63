"""NumPy references the layer tests compare against (float64, from the layers' own weights)."""

import numpy as np


def relu(x):
    return np.maximum(x, 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def value(variable):
    return np.asarray(variable.numpy(), np.float64)


def mlp(x, kernels, biases, activation=relu):
    """One MLP: ``x`` (batch, d), kernels (d_i, d_{i+1}), biases (d_{i+1},)."""
    x = np.asarray(x, np.float64)
    for kernel, bias in zip(kernels, biases):
        x = activation(x @ kernel + bias)
    return x


def member(layer, m):
    """Kernels and biases of member ``m`` of an ``MLP(num_parallel=k)``."""
    return [value(k)[m] for k in layer.kernels], [value(b)[m] for b in layer.biases]


def random_weights(layer, seed=0, scale=1.0):
    """Assigns reproducible values in [-scale, scale] to every weight of ``layer``."""
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.uniform(-scale, scale, tuple(weight.shape)).astype(np.float32))
