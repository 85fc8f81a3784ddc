"""Derivatives of every order and every mode a user can take: second
derivatives, forward mode and vectorization give what the surrogate says
(or are refused clearly), as `ops.relu` would let them."""

import numpy as np
import pytest
from keras import ops

from keras_sugar import SugarReLU
from keras_sugar import implementations
from keras_sugar.native import xla
from keras_sugar import surrogates
from tests import reference
from tests.testing import BACKEND
from tests.testing import COMPILED
from tests.testing import GRAPH_LARGE
from tests.testing import forward_mode_derivative
from tests.testing import of_unknown_rank
from tests.testing import on_feature_maps
from tests.testing import second_derivative
from tests.testing import to_numpy
from tests.testing import value_and_gradient

# Away from the kinks at 0, where NeLU, ELU and LeakyReLU jump.
X = np.array([-3.1, -1.2, -0.4, 0.35, 1.3, 2.7], "float32")
# Implementations that give derivatives of every order on this backend.
HIGHER_ORDER = ("auto", "straight_through", "custom_gradient")
IMPLEMENTATIONS = implementations.IMPLEMENTATIONS


def second_reference(case, x, h=1e-5):
    """f'' from central differences of the float64 reference f'."""
    x = x.astype("float64")
    return (reference.derivative(*case, x + h)
            - reference.derivative(*case, x - h)) / (2 * h)


@pytest.mark.parametrize("implementation", HIGHER_ORDER)
@pytest.mark.parametrize("case", reference.CASES, ids=reference.case_id)
def test_second_derivative_is_the_surrogates(case, implementation):
    activation = SugarReLU(case[0], implementation=implementation, **case[1])
    second = second_derivative(activation, X)
    expected = second_reference(case, X)
    if second is None:  # Autodiff sees a piecewise-linear surrogate.
        assert not expected.any(), case
    else:
        np.testing.assert_allclose(second, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("implementation", HIGHER_ORDER)
def test_compiled_second_derivative_is_the_surrogates(implementation,
                                                      compiled):
    """Compiled (on TensorFlow under XLA, where the first derivative uses
    the f'(x) kept from the forward pass), every surrogate in one
    function: a second derivative still differentiates f'."""
    activations = [form(SugarReLU(name, implementation=implementation,
                                  **params))
                   for form in (lambda f: f, on_feature_maps)
                   for name, params in reference.CASES]
    second = second_derivative(
        lambda t: sum(activation(t) for activation in activations), X,
        compiled=compiled)
    expected = 2 * sum(second_reference(case, X) for case in reference.CASES)
    np.testing.assert_allclose(second, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("feature_maps", [False, True])
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("implementation", HIGHER_ORDER)
def test_second_derivative_of_a_loss_of_the_value(implementation, compiled,
                                                  feature_maps):
    """d2/dx2 of relu(x)**2 / 2 under SUGAR is f'(x)**2 + relu(x) f''(x):
    the value's own derivative, where it appears again, is f' too."""
    case = ("bsilu", {})
    activation = SugarReLU(implementation=implementation)
    if feature_maps:
        activation = on_feature_maps(activation)
    second = second_derivative(lambda t: activation(t) ** 2 / 2, X,
                               compiled=compiled)
    first = reference.derivative(*case, X.astype("float64"))
    expected = first ** 2 + np.maximum(X, 0) * second_reference(case, X)
    np.testing.assert_allclose(second, expected, rtol=1e-3, atol=1e-4)


def test_a_tensor_of_unknown_rank():
    fn = of_unknown_rank(SugarReLU())
    for compiled in (False, True):
        y, grad = value_and_gradient(fn, X, compiled=compiled)
        np.testing.assert_array_equal(y, np.maximum(X, 0))
        np.testing.assert_allclose(grad, reference.derivative("bsilu", {}, X),
                                   rtol=1e-6, atol=1e-6)


def test_where_f_prime_is_computed(monkeypatch):
    """Under XLA (JAX; TensorFlow's compiled training step) f'(x) of a
    rank-4 tensor is computed in the forward pass, the value depending on
    it through `xla.exactly_zero`; anywhere else (rank below 4, eager
    TensorFlow, inference, PyTorch) it is not."""
    ranks = []
    exactly_zero = xla.exactly_zero
    monkeypatch.setattr(xla, "exactly_zero", lambda x, d: ranks.append(
        len(x.shape)) or exactly_zero(x, d))
    activation = SugarReLU()
    feature_maps = X.reshape(1, 1, -1, 1)
    value_and_gradient(activation, X, compiled=True)
    activation(ops.convert_to_tensor(feature_maps))
    if BACKEND == "tensorflow":  # Eager: no XLA.
        value_and_gradient(activation, feature_maps)
    assert ranks == []
    value_and_gradient(activation, feature_maps, compiled=True)
    if BACKEND == "torch":
        assert ranks == []
    else:
        assert ranks and set(ranks) == {4}


def test_multiplicative_refuses_a_second_derivative():
    activation = SugarReLU(implementation="multiplicative")
    if BACKEND == "jax":
        with pytest.raises(NotImplementedError, match="first derivatives"):
            second_derivative(activation, X)
    else:
        # TensorFlow's autodiff says "no gradient" with None; torch's first
        # gradient has no grad_fn, so asking for a second one raises.
        assert second_derivative(activation, X) is None


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", reference.CASES, ids=reference.case_id)
def test_forward_mode_gives_the_surrogate_derivative(case, implementation):
    activation = SugarReLU(case[0], implementation=implementation, **case[1])
    jvp = forward_mode_derivative(activation, X)
    np.testing.assert_allclose(jvp, reference.derivative(*case, X),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_vectorized_map_matches_the_plain_call(implementation):
    activation = SugarReLU("nelu", implementation=implementation)
    x = X.reshape(2, 3)
    mapped = ops.vectorized_map(activation, ops.convert_to_tensor(x))
    np.testing.assert_array_equal(to_numpy(mapped), np.maximum(x, 0))
    # And its gradient is the surrogate's, as for the plain call.
    _, grad = value_and_gradient(
        lambda t: ops.vectorized_map(activation, t), x)
    np.testing.assert_allclose(
        grad, reference.derivative("nelu", {}, x), rtol=1e-6, atol=1e-6)


def test_auto_supports_every_mode_on_this_backend():
    surrogate = surrogates.get("bsilu")
    assert implementations.resolve("auto", surrogate) in HIGHER_ORDER[1:]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_vectorized_map_of_a_compiled_function(implementation):
    """A function compiled inside the mapped body (on TensorFlow a
    `tf.function` traced in a graph of its own) keeps the surrogate's
    gradient too."""
    activation = SugarReLU("nelu", implementation=implementation)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(activation)
    elif BACKEND == "jax":
        import jax

        compiled = jax.jit(activation)
    else:
        compiled = activation
    x = X.reshape(2, 3)
    _, grad = value_and_gradient(
        lambda t: ops.vectorized_map(compiled, t), x)
    np.testing.assert_allclose(
        grad, reference.derivative("nelu", {}, x), rtol=1e-6, atol=1e-6)


def test_forward_mode_through_a_function_compiled_before():
    """On TensorFlow the default's value inside `tf.custom_gradient` is
    plain ReLU when traced outside forward mode; forward mode through that
    traced function transposes the custom gradient, so it is f' still."""
    activation = SugarReLU("nelu")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(activation)
    elif BACKEND == "jax":
        import jax

        compiled = jax.jit(activation)
    else:
        compiled = activation  # Eager: nothing is traced ahead.
    compiled(ops.convert_to_tensor(X))  # Traced here, outside forward mode.
    np.testing.assert_allclose(forward_mode_derivative(compiled, X),
                               reference.derivative("nelu", {}, X),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("compiled", COMPILED)
def test_compiled_gradient_of_a_small_and_a_large_tensor(compiled,
                                                         monkeypatch):
    """The surrogate's gradient below and from 2**16 elements, where
    TensorFlow's graph without XLA switches from its own ops to one
    XLA-compiled function for the backward pass (decided by the shape)."""
    compiled_sizes = []
    if BACKEND == "tensorflow":
        from keras_sugar.native import tensorflow as native_tensorflow

        xla_backward = native_tensorflow._xla_backward

        def spy(derivative):
            function = xla_backward(derivative)

            def backward(upstream, x):
                compiled_sizes.append(x.shape.num_elements())
                return function(upstream, x)

            return backward

        monkeypatch.setattr(native_tensorflow, "_xla_backward", spy)
    for size in (2 ** 16 - 1, 2 ** 16):
        x = np.linspace(-20.0, 20.0, size, dtype="float32")
        y, grad = value_and_gradient(SugarReLU(), x, compiled=compiled)
        np.testing.assert_array_equal(y, np.maximum(x, 0))
        np.testing.assert_allclose(
            grad, reference.derivative("bsilu", {}, x), rtol=1e-5, atol=1e-6)
    if compiled == "graph":
        assert compiled_sizes == [2 ** 16]
    elif compiled == GRAPH_LARGE:  # The threshold lowered to 1.
        assert compiled_sizes == [None, None]  # Traced for any shape.
