"""Quick start: train a small MLP with SugarReLU on scikit-learn's digits.

Run: python examples/quickstart.py   (any KERAS_BACKEND)
"""

import keras
import numpy as np
from sklearn.datasets import load_digits

from keras_sugar import SugarReLU


def main():
    keras.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(128, activation=SugarReLU()),  # B-SiLU surrogate
        keras.layers.Dense(128, activation=SugarReLU("nelu", alpha=0.1)),
        keras.layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x[:1400], y[:1400], epochs=5, batch_size=32,
                        validation_data=(x[1400:], y[1400:]), verbose=2)
    loss = history.history["loss"]
    print(f"backend={keras.backend.backend()} train loss "
          f"{loss[0]:.3f} -> {loss[-1]:.3f}, test accuracy "
          f"{history.history['val_accuracy'][-1]:.3f}")
    assert np.isfinite(loss[-1])


if __name__ == "__main__":
    main()
