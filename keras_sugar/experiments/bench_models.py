"""What `keras-sugar bench` measures: the variants and the models.

Shared by `benchmark` (timing, and memory on JAX and torch) and
`xla_memory` (memory on TensorFlow, in a child process).
"""

import keras
import numpy as np

from keras_sugar import implementations
from keras_sugar.activations import SugarReLU
from keras_sugar.experiments import architectures
from keras_sugar.experiments.bench_command import DEFAULTS

# Every concrete implementation ("auto" is one of them, shown as such).
SUGAR_IMPLEMENTATIONS = tuple(implementations.FUNCTIONS)


def variants(surrogate=DEFAULTS["surrogate"]):
    """Returns `{label: activation}` for every measured variant."""
    found = {"relu": keras.activations.relu, "gelu": keras.activations.gelu}
    for name in SUGAR_IMPLEMENTATIONS:
        found[f"sugar/{name}"] = SugarReLU(surrogate, implementation=name)
    return found


MODELS = ("vgg", "mlp")


def build_model(kind, activation, quick):
    """The benchmarked models: a no-BN VGG-style CNN (32x32x3 inputs,
    32-32-M-64-64-M-128-128-M, Dense 128) and a 4x512 MLP."""
    if kind == "vgg":
        layout = ([32, 32, "M", 64, 64, "M", 128, 128, "M"] if not quick
                  else [4, "M", 8])
        return architectures.vgg((32, 32, 3), 10, activation, layout=layout,
                                 width=1.0, dense_units=128)
    return architectures.mlp((784,), 10, activation, depth=4,
                             units=512 if not quick else 16)


def batch(model, batch_size):
    """A fixed random batch `(x, y)` for `model` (10 classes)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch_size,) + model.input_shape[1:]).astype(
        "float32")
    y = rng.integers(0, 10, size=(batch_size,)).astype("int32")
    return x, y
