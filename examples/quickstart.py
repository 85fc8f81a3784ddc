"""Quick start: SugarReLU in a model, `sugarify` a ReLU model, dead units.

Needs only keras-sugar and one backend (`pip install ".[jax]"`, or
`[tensorflow]`, `[torch]`); the data is generated here, nothing is
downloaded. Run: python examples/quickstart.py   (any KERAS_BACKEND, or
none: keras_sugar picks an installed backend)
"""

# keras_sugar first: with KERAS_BACKEND unset it chooses an installed
# backend before Keras starts (Keras alone would default to TensorFlow).
import keras_sugar
from keras_sugar import SugarReLU, dead_unit_report, strip_sugar, sugarify

import keras
import numpy as np


def spirals(n=2000, seed=0):
    """Two interleaved spirals in 2-D, a task no linear model solves."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.5, 3.5 * np.pi, n)
    label = rng.integers(0, 2, n)
    sign = np.where(label == 1, 1.0, -1.0)
    x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], axis=1) / 10
    x += rng.normal(scale=0.05, size=x.shape)
    return x.astype("float32"), label.astype("int32")


def relu_mlp():
    return keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(64, activation="relu", name="hidden_1"),
        keras.layers.Dense(64, activation="relu", name="hidden_2"),
        keras.layers.Dense(2),
    ])


def train(model, x, y):
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x[:1600], y[:1600], epochs=20, batch_size=32,
                        validation_data=(x[1600:], y[1600:]), verbose=0)
    return history.history


def main():
    keras.utils.set_random_seed(0)
    x, y = spirals()

    # 1. SugarReLU wherever Keras takes an activation.
    model = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(64, activation=SugarReLU()),  # B-SiLU surrogate
        keras.layers.Dense(64, activation=SugarReLU("nelu", alpha=0.1)),
        keras.layers.Dense(2),
    ])
    history = train(model, x, y)
    loss = history["loss"]
    print(f"backend={keras.backend.backend()} train loss {loss[0]:.3f} -> "
          f"{loss[-1]:.3f}, test accuracy {history['val_accuracy'][-1]:.3f}")

    # 2. An existing ReLU model rewritten in one call: weights and
    # predictions kept, only the backward pass changes.
    relu_model = relu_mlp()
    sugar_model = sugarify(relu_model)
    same = np.array_equal(relu_model.predict(x, verbose=0),
                          sugar_model.predict(x, verbose=0))
    print(f"sugarify: {len(sugar_model.sugar_report)} site(s) replaced, "
          f"same predictions: {same}")

    # 3. Dead units: push the hidden biases far negative, so every unit is
    # dead, then train each model. ReLU units get no gradient and stay
    # dead; SUGAR's surrogate gradient brings them back.
    for name, m in (("relu", relu_model), ("sugar", sugar_model)):
        for layer in m.layers[:2]:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, bias - 1.5])
        before = dead_unit_report(m, x)[-1]["dead_fraction"]  # total
        train(m, x, y)
        after = dead_unit_report(m, x)[-1]["dead_fraction"]
        print(f"{name}: dead units {before:.0%} -> {after:.0%}")

    # 4. Ship it as a plain ReLU network (loads without keras_sugar).
    plain = strip_sugar(sugar_model)
    print(f"strip_sugar: same predictions: "
          f"{np.array_equal(plain.predict(x, verbose=0), sugar_model.predict(x, verbose=0))}")
    assert keras_sugar.__version__ and np.isfinite(loss[-1])


if __name__ == "__main__":
    main()
