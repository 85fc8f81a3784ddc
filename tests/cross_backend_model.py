"""Builds, saves and predicts with a model holding every form of SugarReLU.

Run as a script under each backend (`KERAS_BACKEND=... python -m
tests.cross_backend_model DIR`) so another backend can load what it saved.
`tests/data/saved_models` holds what it saved on TensorFlow, JAX and
PyTorch, for the backends that cannot run those (numpy, OpenVINO).
"""

import os
import sys

import keras
import numpy as np

from keras_sugar import SugarReLU
from keras_sugar import strip_sugar
from keras_sugar import layers

ACTIVATIONS = [
    SugarReLU(),
    SugarReLU("nelu", alpha=0.1),
    SugarReLU("elu", alpha=0.5, negative_only=True),
    SugarReLU("gelu", approximate=True, implementation="straight_through"),
    SugarReLU("leaky_relu", negative_slope=0.2),
    SugarReLU("selu"), SugarReLU("silu"), SugarReLU("mish"),
]


def build_model():
    """Every form: inline in Dense/Conv, Activation layer, layer class."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, activation=ACTIVATIONS[0])(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8, activation=ACTIVATIONS[1])(x)
    for activation in ACTIVATIONS[2:]:
        x = keras.layers.Dense(8)(x)
        x = keras.layers.Activation(activation)(x)
    x = layers.SugarReLU("nelu", alpha=0.01, name="sugar_layer")(x)
    outputs = keras.layers.Dense(3)(x)
    return keras.Model(inputs, outputs)


def sample_input():
    return np.random.default_rng(0).normal(size=(5, 6, 6, 2)).astype(
        "float32")


def sugar_configs(model):
    """Every SugarReLU config in the model, in layer order."""
    configs = []
    for layer in model.layers:
        activation = getattr(layer, "activation", None)
        if isinstance(activation, SugarReLU):
            configs.append(activation.get_config())
    return configs


def save(directory):
    """Saves the model, its `strip_sugar` result (`-stripped`) and the
    predictions of both on `sample_input()` (`.npy`), named after the
    backend."""
    backend = keras.backend.backend()
    model = build_model()
    for suffix, saved in (("", model), ("-stripped", strip_sugar(model))):
        saved.save(os.path.join(directory, f"{backend}{suffix}.keras"))
        np.save(os.path.join(directory, f"{backend}{suffix}.npy"),
                keras.ops.convert_to_numpy(saved(sample_input())))


if __name__ == "__main__":
    save(sys.argv[1])
