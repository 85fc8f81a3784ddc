"""SUGAR models train with `fit`, in full and mixed precision, SugarReLU
of a layer's own weights included; symbolic calls build a saveable graph
that keeps the surrogate gradient; inference-only backends refuse `fit` as
Keras does."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_sugar import SugarReLU
from keras_sugar import backend_selection
from keras_sugar import layers
from keras_sugar import sugar_relu
from tests import reference
from tests.testing import BACKEND
from tests.testing import save_and_load
from tests.testing import to_numpy
from tests.testing import weight_gradients


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


class RectifiedScale(keras.layers.Layer):
    """`x * activation(w)`: a weight kept non-negative by a rectifier,
    whose entries below zero still learn with SUGAR."""

    def __init__(self, activation, initial, **kwargs):
        super().__init__(**kwargs)
        self.activation = activation
        self.w = self.add_weight(shape=initial.shape, initializer=(
            keras.initializers.Constant(initial)))

    def call(self, x):
        return x * self.activation(self.w)


WEIGHT = np.array([-2.0, -0.5, 0.3, 1.5], "float32")


@pytest.mark.parametrize("case", [("bsilu", {}), ("nelu", {"alpha": 0.1})],
                         ids=reference.case_id)
def test_sugar_of_a_weight_has_the_surrogate_gradient(case):
    """`SugarReLU()(self.w)` in a layer's call: the weight's gradient is
    the surrogate's derivative, eagerly and in a compiled `fit` step."""
    layer = RectifiedScale(SugarReLU(case[0], **case[1]), WEIGHT)
    model = keras.Sequential([keras.Input((4,)), layer])
    x = np.ones((8, 4), "float32")
    derivative = reference.derivative(*case, WEIGHT.astype("float64"))
    (gradient,) = weight_gradients(model, x)
    np.testing.assert_allclose(gradient, 8 * derivative, rtol=1e-6,
                               atol=1e-6)
    # One SGD step (lr 1) on mean(y): w - f'(w) / 4 per entry.
    model.compile(optimizer=keras.optimizers.SGD(1.0),
                  loss=lambda y_true, y_pred: ops.mean(y_pred))
    model.fit(x, np.zeros((8, 4), "float32"), batch_size=8, epochs=1,
              verbose=0)
    np.testing.assert_allclose(to_numpy(layer.w), WEIGHT - derivative / 4,
                               rtol=1e-6, atol=1e-6)


def test_sugar_of_a_backend_variable_has_the_surrogate_gradient():
    """The backend's own variables and parameters too: a `tf.Variable`
    under a `GradientTape`, a `torch.nn.Parameter`, a JAX array."""
    derivative = reference.derivative("bsilu", {}, WEIGHT.astype("float64"))
    if BACKEND == "tensorflow":
        import tensorflow as tf

        variable = tf.Variable(WEIGHT)
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(SugarReLU()(variable))
        gradient = tape.gradient(total, variable)
    elif BACKEND == "jax":
        import jax

        gradient = jax.grad(lambda w: SugarReLU()(w).sum())(WEIGHT)
    else:
        import torch

        parameter = torch.nn.Parameter(torch.as_tensor(WEIGHT))
        SugarReLU()(parameter).sum().backward()
        gradient = parameter.grad
    np.testing.assert_allclose(to_numpy(gradient), derivative, rtol=1e-6,
                               atol=1e-6)


@pytest.mark.inference
def test_fit_needs_autodiff_and_says_so_as_keras_does():
    """Where the backend differentiates, a SUGAR model trains; on
    inference-only backends (numpy, OpenVINO) `fit` fails with Keras' own
    one-line message, as for any model."""
    model = small_model(SugarReLU())
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x, y = regression_data()
    if BACKEND in backend_selection.INFERENCE_ONLY:
        with pytest.raises(NotImplementedError,
                           match="fit.* not (implemented|supported)"):
            model.fit(x, y, verbose=0)
    else:
        history = model.fit(x, y, epochs=2, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
