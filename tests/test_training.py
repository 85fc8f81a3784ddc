"""SUGAR models train with `fit`, in full and mixed precision, and symbolic
calls build a saveable graph that keeps the surrogate gradient."""

import keras
import numpy as np
import pytest

from keras_sugar import SugarReLU
from keras_sugar import layers
from keras_sugar import sugar_relu
from tests.testing import save_and_load


def small_model(activation):
    return keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation=activation),
        keras.layers.Dense(16),
        keras.layers.Activation(activation),
        layers.SugarReLU("elu"),
        keras.layers.Dense(1),
    ])


def regression_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, :1] - 0.5 * x[:, 1:2] ** 2).astype("float32")
    return x, y


@pytest.mark.parametrize("policy", ["float32", "mixed_float16",
                                    "mixed_bfloat16"])
@pytest.mark.parametrize("surrogate", ["bsilu", "nelu"])
def test_fit_decreases_loss(policy, surrogate):
    keras.config.set_dtype_policy(policy)
    model = small_model(SugarReLU(surrogate))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    x, y = regression_data()
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert np.isfinite(after) and after < before, (before, after)


def test_jit_compiled_fit_decreases_loss():
    model = small_model(SugarReLU())
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse",
                  jit_compile=True)
    x, y = regression_data()
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


def dead_unit_gradient(activation):
    """Gradient reaching a Dense kernel whose every pre-activation is < 0."""
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(3, activation=activation,
                           bias_initializer=keras.initializers.Constant(-8.)),
        keras.layers.Dense(1, use_bias=False),
    ])
    x, _ = regression_data()
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    kernel_before = keras.ops.convert_to_numpy(model.layers[0].kernel)
    model.train_on_batch(x[:, :4], np.ones((64, 1), "float32"))
    kernel_after = keras.ops.convert_to_numpy(model.layers[0].kernel)
    return np.abs(kernel_after - kernel_before).max()


def test_dead_relu_units_stay_dead_but_sugar_units_get_a_gradient():
    assert dead_unit_gradient("relu") == 0.0
    assert dead_unit_gradient(SugarReLU("elu")) > 0.0


def test_symbolic_call_adds_a_saveable_activation_layer(tmp_path):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4)(inputs)
    a = SugarReLU("nelu", alpha=0.1)(hidden)
    b = sugar_relu(hidden, "elu")
    model = keras.Model(inputs, [a, b])
    activations = [layer.activation for layer in model.layers
                   if isinstance(layer, keras.layers.Activation)]
    assert activations == [SugarReLU("nelu", alpha=0.1), SugarReLU("elu")]
    x, _ = regression_data()
    restored = save_and_load(model, tmp_path)
    for got, want in zip(restored(x[:, :4]), model(x[:, :4])):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got),
                                      keras.ops.convert_to_numpy(want))


def test_activation_can_be_assigned_to_an_existing_layer():
    layer = keras.layers.Dense(3, bias_initializer="ones")
    layer.build((None, 2))
    layer.activation = SugarReLU("silu")
    x = -10 * np.ones((1, 2), "float32")
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_array_equal(y, np.maximum(
        x @ keras.ops.convert_to_numpy(layer.kernel) + 1, 0))
