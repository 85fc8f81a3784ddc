"""Builds, saves and predicts with a model holding every form of SugarReLU.

Run as a script under each backend (`KERAS_BACKEND=... python -m
tests.cross_backend_model DIR`) so another backend can load what it saved.
"""

import os
import sys

import keras
import numpy as np

from keras_sugar import SugarReLU
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


if __name__ == "__main__":
    directory = sys.argv[1]
    backend = keras.backend.backend()
    model = build_model()
    model.save(os.path.join(directory, f"{backend}.keras"))
    np.save(os.path.join(directory, f"{backend}.npy"),
            keras.ops.convert_to_numpy(model(sample_input())))
