"""The SUGAR contract, for every surrogate, implementation and float dtype:
forward is exactly `ops.relu`, backward is the surrogate's derivative, and
nothing overflows anywhere in the dtype's finite range."""

import ast
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from keras_sugar import SugarReLU
from keras_sugar.layers import SugarReLU as SugarReLULayer
from keras_sugar import implementations
from keras_sugar import sugar_relu
from keras_sugar import surrogates
from tests import reference
from tests.testing import BACKEND
from tests.testing import COMPILED
from tests.testing import float64_enabled
from tests.testing import on_feature_maps
from tests.testing import to_numpy
from tests.testing import value_and_gradient

IMPLEMENTATIONS = implementations.IMPLEMENTATIONS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = ("float32", "float16", "bfloat16")
# Derivative tolerance per dtype: float32 as the issue asks; the 16-bit
# types are checked against the reference at the rounded input.
TOLERANCE = {"float32": 1e-6, "float16": 1e-2, "bfloat16": 4e-2,
             "float64": 1e-9}
FINFO_MAX = {"float32": 3.4028235e38, "float16": 65504.0,
             "bfloat16": 3.3895314e38, "float64": 1.7976931348623157e308}
FINFO_TINY = {"float32": 1.1754944e-38, "float16": 6.1035156e-05,
              "bfloat16": 1.1754944e-38, "float64": 2.2250738585072014e-308}


def special_inputs(dtype):
    """The whole range: +-max, +-tiny, +-smallest subnormal, +-0, +-inf and
    NaN, beside the extreme finite inputs."""
    smallest = {"float16": 2.0 ** -24, "bfloat16": 2.0 ** -133,
                "float32": 2.0 ** -149, "float64": 5e-324}[dtype]
    return np.concatenate([extreme_inputs(dtype), [
        smallest, -smallest, np.inf, -np.inf, np.nan, -0.0]])


def assert_same_bits(actual, expected):
    """Equal values, NaN where NaN, and the same sign of zero."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    np.testing.assert_array_equal(actual, expected)
    numbers = ~np.isnan(expected)
    np.testing.assert_array_equal(np.signbit(actual[numbers]),
                                  np.signbit(expected[numbers]))


def moderate_inputs():
    # Avoids |x| < 1e-3, where NeLU, ELU and LeakyReLU's derivatives jump.
    x = np.linspace(-8.0, 8.0, 161) + 0.0123
    return np.concatenate([x, [-1e-2, 1e-2, -0.5773, -3.8, 1.5]])


def extreme_inputs(dtype):
    big, tiny = FINFO_MAX[dtype], FINFO_TINY[dtype]
    magnitudes = [big, big / 2, big / 1000, 1e4, 300.0, 257.0, 40.0, 30.0,
                  1.0, tiny, 0.0]
    magnitudes = [m for m in magnitudes if m <= big]
    return np.array([-m for m in magnitudes] + magnitudes)


def rounded(x, dtype):
    return to_numpy(ops.cast(ops.convert_to_tensor(x, "float32"), dtype))


def sugar_fn(case, dtype, implementation, negative_only=False):
    name, params = case
    activation = SugarReLU(name, negative_only=negative_only,
                           implementation=implementation, **params)
    return lambda t: activation(ops.cast(t, dtype))


@pytest.mark.inference
def test_every_builtin_has_a_reference_case():
    assert set(surrogates.BUILTINS) == set(reference.DERIVATIVES)
    assert {name for name, _ in reference.CASES} == set(surrogates.BUILTINS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", reference.CASES, ids=reference.case_id)
class TestEager:
    @pytest.mark.inference
    def test_forward_is_relu_bit_for_bit(self, case, implementation, dtype):
        x = np.concatenate([moderate_inputs(), special_inputs(dtype)])
        y = sugar_fn(case, dtype, implementation)(x)
        expected = ops.relu(ops.cast(x, dtype))
        assert y.dtype == expected.dtype
        assert_same_bits(to_numpy(y), to_numpy(expected))

    def test_gradient_is_surrogate_derivative(self, case, implementation,
                                              dtype):
        # x == 0 included: every implementation must agree on f'(0) too.
        x = rounded(np.append(moderate_inputs(), 0.0), dtype)
        _, grad = value_and_gradient(sugar_fn(case, dtype, implementation), x)
        expected = reference.derivative(*case, x)
        tol = TOLERANCE[dtype]
        np.testing.assert_allclose(grad, expected, rtol=tol, atol=tol)

    def test_no_nan_or_inf_over_finite_range(self, case, implementation,
                                             dtype):
        x = extreme_inputs(dtype)
        y, grad = value_and_gradient(sugar_fn(case, dtype, implementation), x)
        assert np.isfinite(y).all() and np.isfinite(grad).all(), (x, y, grad)
        np.testing.assert_array_equal(y, np.maximum(rounded(x, dtype), 0))

    def test_gradient_is_right_at_extreme_inputs(self, case, implementation,
                                                 dtype):
        # Values, not only finiteness, against the float64 reference.
        x = rounded(extreme_inputs(dtype), dtype)
        resolved = implementations.resolve(implementation,
                                           surrogates.get(case[0]))
        if case[0] == "selu" and resolved == "straight_through":
            # The documented corner: SELU's primitive cannot represent its
            # slope in the top 6% of the range (README).
            x = x[np.abs(x) < FINFO_MAX[dtype] / 1.07]
        _, grad = value_and_gradient(sugar_fn(case, dtype, implementation), x)
        expected = reference.derivative(*case, x)
        tol = TOLERANCE[dtype]
        np.testing.assert_allclose(grad, expected, rtol=tol, atol=tol,
                                   err_msg=str(x))

    def test_gradient_is_zero_at_non_finite_inputs(self, case,
                                                   implementation, dtype):
        x = np.array([np.inf, -np.inf, np.nan, 1.0])
        _, grad = value_and_gradient(sugar_fn(case, dtype, implementation), x)
        np.testing.assert_array_equal(grad[:3], 0.0)

    def test_upstream_gradient_is_multiplied_in_nan_included(
            self, case, implementation, dtype):
        # A dense range (every point where a kernel switches formula, such
        # as where sigmoid rounds to 1, lies inside) and an upstream
        # gradient that is not 1, NaN at some finite inputs: NaN must pass.
        x = rounded(np.linspace(-50.0, 50.0, 1001) + 0.0123, dtype)
        upstream = rounded(np.random.default_rng(0).normal(size=x.shape),
                           dtype)
        upstream[::97] = np.nan
        activation = sugar_fn(case, dtype, implementation)
        weight = ops.convert_to_tensor(upstream, dtype)
        _, grad = value_and_gradient(lambda t: activation(t) * weight, x)
        expected = upstream * reference.derivative(*case, x)
        tol = 4 * TOLERANCE[dtype]
        np.testing.assert_allclose(grad, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", [c for c in reference.CASES
                                  if c[0] in ("bsilu", "silu")],
                         ids=reference.case_id)
def test_large_tensor_gradient_is_surrogate_derivative(case, implementation,
                                                       dtype):
    # Above 2**21 elements PyTorch's B-SiLU and SiLU kernels switch to
    # their one-buffer form: the same contract there, specials included.
    pattern = np.concatenate([np.linspace(-50.0, 50.0, 1001) + 0.0123,
                              special_inputs(dtype)])
    x = rounded(np.resize(pattern, 2 ** 21 + 7), dtype)
    # |upstream| <= 1: at x = +-max a larger one overflows autodiff's
    # intermediates in straight_through (README).
    upstream = np.resize(rounded([0.5, -0.75, 1.0, np.nan], dtype),
                         x.shape)
    activation = sugar_fn(case, dtype, implementation)
    weight = ops.convert_to_tensor(upstream, dtype)
    _, grad = value_and_gradient(lambda t: activation(t) * weight, x)
    grad = np.array(grad)
    finite = np.isfinite(x)
    expected = np.where(finite, upstream * reference.derivative(
        *case, np.where(finite, x, 0.0)), 0.0)
    # A NaN upstream gives NaN at a finite input; at a non-finite input
    # the gradient is 0, or NaN where the upstream is NaN too.
    at_nan_upstream = ~finite & np.isnan(upstream)
    grad[at_nan_upstream] = 0.0
    tol = 4 * TOLERANCE[dtype]
    np.testing.assert_allclose(grad, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ("float16", "bfloat16"))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", reference.CASES, ids=reference.case_id)
def test_loss_scaled_16_bit_gradient_does_not_overflow(case, implementation,
                                                       dtype):
    # Mixed precision scales the loss (Keras' LossScaleOptimizer starts at
    # 2**15): upstream * f'(x) is representable, so it must come out so,
    # not as inf or NaN from an intermediate such as upstream * x.
    x = rounded(np.concatenate([moderate_inputs(), [-100.0, -30.0, 30.0,
                                                    100.0]]), dtype)
    scale = 2.0 ** 15
    activation = sugar_fn(case, dtype, implementation)
    _, grad = value_and_gradient(lambda t: activation(t) * scale, x)
    expected = scale * reference.derivative(*case, x)
    np.testing.assert_allclose(grad, expected, rtol=4 * TOLERANCE[dtype],
                               atol=scale * TOLERANCE[dtype])


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", reference.CASES, ids=reference.case_id)
def test_negative_only_keeps_gradient_one_above_zero(case, implementation):
    x = moderate_inputs().astype("float32")
    fn = sugar_fn(case, "float32", implementation, negative_only=True)
    y, grad = value_and_gradient(fn, x)
    expected = np.where(x > 0, 1.0, reference.derivative(*case, x))
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", reference.CASES, ids=reference.case_id)
def test_gradient_matches_finite_differences_of_the_primitive(case):
    name, params = case
    surrogate = surrogates.get(name)
    params = surrogate.resolve_params(params)
    x, h = moderate_inputs(), 1e-6
    with float64_enabled():
        f = lambda v: to_numpy(surrogate.function(
            ops.convert_to_tensor(v, "float64"), **params))
        finite_difference = (f(x + h) - f(x - h)) / (2 * h)
    _, grad = value_and_gradient(sugar_fn(case, "float32", "auto"),
                                 x.astype("float32"))
    np.testing.assert_allclose(grad, finite_difference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES + ("float64",))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_compiled_matches_contract(implementation, dtype, compiled):
    """One compiled function per (implementation, dtype) covers all cases,
    to keep XLA and torch.compile time small; on TensorFlow also its graph
    without XLA, where the backward pass is a function XLA compiles."""
    with float64_enabled():
        x = np.concatenate([rounded(moderate_inputs(), dtype),
                            special_inputs(dtype)])
        if dtype == "float64":
            x = x.astype("float64")
        # Every case, on a 1-D tensor and on feature maps.
        fns = [form(sugar_fn(case, dtype, implementation))
               for form in (lambda f: f, on_feature_maps)
               for case in reference.CASES]
        # ReLU compiled in the same function is the reference: compilers
        # may treat the sign of zero differently from eager mode.
        fns.append(lambda t: ops.stop_gradient(ops.relu(ops.cast(t, dtype))))
        y, grad = value_and_gradient(
            lambda t: ops.stack([f(t) for f in fns]), x, compiled=compiled)
        *y, relu = y
    assert np.isfinite(grad).all()
    moderate = slice(0, len(moderate_inputs()))
    expected = 2 * sum(reference.derivative(*case, x[moderate])
                       for case in reference.CASES)
    tol = 2 * TOLERANCE[dtype] * len(reference.CASES)
    for row in y:
        assert_same_bits(row, relu)
    np.testing.assert_allclose(grad[moderate], expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_compiled_gradient_passes_upstream_nan_and_zeroes_non_finite(
        implementation, dtype, compiled):
    """The compiled training path (on TensorFlow under XLA f'(x) is kept
    from the forward pass): an upstream that is not 1, NaN at some finite
    inputs, over a dense range, and 0 at non-finite inputs; one compiled
    function for every surrogate, on a 1-D tensor and on feature maps."""
    x = rounded(np.concatenate([np.linspace(-50.0, 50.0, 1001) + 0.0123,
                                [np.inf, -np.inf, np.nan]]), dtype)
    upstream = rounded(np.random.default_rng(0).normal(size=x.shape), dtype)
    upstream[:-3:97] = np.nan
    weight = ops.convert_to_tensor(upstream, dtype)
    fns = [form(sugar_fn(case, dtype, implementation))
           for form in (lambda f: f, on_feature_maps)
           for case in reference.CASES]
    _, grad = value_and_gradient(
        lambda t: ops.stack([f(t) * weight for f in fns]), x,
        compiled=compiled)
    finite = slice(0, -3)
    expected = 2 * upstream[finite] * sum(
        reference.derivative(*case, x[finite]) for case in reference.CASES)
    tol = 8 * TOLERANCE[dtype] * len(reference.CASES)
    np.testing.assert_allclose(grad[finite], expected, rtol=tol, atol=tol)
    np.testing.assert_array_equal(grad[-3:], 0.0)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", reference.CASES, ids=reference.case_id)
def test_float64_forward_and_gradient_over_the_whole_range(case,
                                                           implementation):
    with float64_enabled():
        x = np.concatenate([moderate_inputs(), special_inputs("float64")])
        fn = sugar_fn(case, "float64", implementation)
        y, grad = value_and_gradient(fn, x)
        expected = to_numpy(ops.relu(ops.convert_to_tensor(x, "float64")))
    assert y.dtype == np.float64
    assert_same_bits(y, expected)
    finite = np.isfinite(x)
    np.testing.assert_array_equal(grad[~finite], 0.0)
    moderate = slice(0, len(moderate_inputs()))
    np.testing.assert_allclose(
        grad[moderate], reference.derivative(*case, x[moderate]),
        rtol=1e-9, atol=1e-9)
    assert np.isfinite(grad).all()


def test_functional_form_matches_object():
    x = moderate_inputs().astype("float32")
    _, g1 = value_and_gradient(lambda t: sugar_relu(t, "nelu", alpha=0.1), x)
    _, g2 = value_and_gradient(SugarReLU("nelu", alpha=0.1), x)
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.inference
@pytest.mark.parametrize("value", [None, "abc", ["a", "b"], {"x": 1.0}])
def test_non_numeric_input_is_a_type_error_naming_it(value):
    with pytest.raises(TypeError, match=r"SugarReLU takes a floating-point"):
        SugarReLU()(value)


@pytest.mark.inference
def test_default_is_bsilu_with_paper_alpha():
    activation = SugarReLU()
    assert activation.surrogate.name == "bsilu"
    assert activation.params == {"alpha": 1.67}
    assert activation.negative_only is False


@pytest.mark.inference
@pytest.mark.parametrize("dtype", ["int32", "bool", "uint8"])
def test_non_float_input_is_a_type_error(dtype):
    with pytest.raises(TypeError, match=f"Received: dtype={dtype}.*float32"):
        SugarReLU()(np.zeros((2,), dtype=dtype))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"surrogate": "relu6"}, ValueError,
         "Unknown surrogate 'relu6'.*bsilu"),
        ({"surrogate": 3}, TypeError, "surrogate=3"),
        ({"surrogate": "nelu", "beta": 1.0}, ValueError,
         r"Unknown parameter\(s\) \['beta'\].*\['alpha'\]"),
        ({"surrogate": "nelu", "alpha": -0.1}, ValueError,
         "positive number. Received: alpha=-0.1"),
        ({"surrogate": "nelu", "alpha": 0.0}, ValueError, "alpha=0.0"),
        ({"surrogate": "bsilu", "alpha": float("nan")}, ValueError,
         "finite. Received: alpha=nan"),
        ({"surrogate": "bsilu", "alpha": "big"}, TypeError, "alpha='big'"),
        ({"surrogate": "gelu", "approximate": 1}, TypeError,
         "approximate=1"),
        ({"surrogate": "leaky_relu", "negative_slope": -1}, ValueError,
         "negative_slope=-1"),
        ({"negative_only": "yes"}, TypeError, "negative_only='yes'"),
        ({"implementation": "fast"}, ValueError,
         "'fast'.*straight_through.*implementation='fast'"),
        ({"max_value": 0}, ValueError, "max_value=0"),
        ({"max_value": float("inf")}, ValueError, "max_value=inf"),
        ({"max_value": "6"}, ValueError, "max_value='6'"),
        ({"max_value": True}, ValueError, "max_value=True"),
    ],
)
@pytest.mark.inference
def test_bad_arguments_name_the_value_and_the_choices(kwargs, error, match):
    with pytest.raises(error, match=match):
        SugarReLU(**kwargs)


@pytest.mark.inference
def test_auto_implementation_is_defined_for_this_backend():
    name = implementations.resolve("auto", surrogates.get("bsilu"))
    assert name in implementations.FUNCTIONS, (BACKEND, name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("max_value", [6.0, 2.5])
class TestCapped:
    """SUGAR for capped ReLUs (ReLU6): forward exactly Keras' capped ReLU,
    backward the surrogate's derivative below the cap and 0 at and above
    it, as ReLU6's own gradient."""

    def fn(self, implementation, dtype, max_value, negative_only=False):
        activation = SugarReLU("bsilu", implementation=implementation,
                               max_value=max_value,
                               negative_only=negative_only)
        return lambda t: activation(ops.cast(t, dtype))

    @pytest.mark.inference
    def test_forward_is_the_capped_relu_bit_for_bit(self, implementation,
                                                    dtype, max_value):
        import keras

        x = np.concatenate([moderate_inputs(), special_inputs(dtype),
                            [max_value, -max_value]])
        y = self.fn(implementation, dtype, max_value)(x)
        # What keras.layers.ReLU(max_value=...) computes, in x's dtype.
        expected = keras.activations.relu(ops.cast(x, dtype),
                                          max_value=max_value)
        assert_same_bits(to_numpy(y), to_numpy(expected))
        if max_value == 6.0:
            assert_same_bits(to_numpy(y),
                             to_numpy(ops.relu6(ops.cast(x, dtype))))

    def test_gradient_is_the_derivative_below_the_cap_only(
            self, implementation, dtype, max_value):
        x = rounded(np.concatenate([moderate_inputs(), [max_value]]), dtype)
        _, grad = value_and_gradient(
            self.fn(implementation, dtype, max_value), x)
        expected = np.where(x < max_value, reference.bsilu(x), 0.0)
        tol = TOLERANCE[dtype]
        np.testing.assert_allclose(grad, expected, rtol=tol, atol=tol)
        _, grad = value_and_gradient(self.fn(
            implementation, dtype, max_value, negative_only=True), x)
        expected = np.where(x >= max_value, 0.0, np.where(
            x > 0, 1.0, reference.bsilu(x)))
        np.testing.assert_allclose(grad, expected, rtol=tol, atol=tol)


@pytest.mark.inference
def test_capped_activation_serializes_and_uncapped_config_is_unchanged():
    import keras

    capped = SugarReLU("nelu", alpha=0.01, max_value=6)
    assert capped.get_config()["max_value"] == 6.0
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(capped))
    assert restored == capped and restored.max_value == 6.0
    assert "max_value" not in SugarReLU().get_config()
    assert repr(capped) == "SugarReLU('nelu', alpha=0.01, max_value=6.0)"


@pytest.mark.parametrize("cls", [SugarReLU, SugarReLULayer],
                         ids=["activation", "layer"])
@pytest.mark.inference
@pytest.mark.parametrize("call", ["eager", "predict"])
def test_the_class_as_an_activation_asks_for_an_instance(cls, call):
    # `activation=SugarReLU` (the class) calls the class on the tensor, at
    # the layer's first call on values (a Dense in a graph being built
    # computes only its output's shape).
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation=cls)(inputs))
    x = np.ones((2, 4), "float32")
    with pytest.raises(TypeError) as error:
        model(x) if call == "eager" else model.predict(x, verbose=0)
    message = str(error.value)
    assert "an instance is needed" in message
    assert "activation=SugarReLU()" in message
    # Under `predict` on TensorFlow the batch size is not known yet.
    assert re.search(r"Received: the class SugarReLU called on a tensor of "
                     r"shape \((2|None), 3\), float32", message), message


# Serves a ReLU model, then the same with every SugarReLU implementation
# (capped ones too), sugarify, strip_sugar and a dead-unit report; prints
# the backend libraries and the user warnings each added.
_SERVE = """
import sys
import warnings

import keras
import numpy as np

LIBRARIES = {"tensorflow", "jax", "torch", "openvino"}


def served(activations):
    inputs = keras.Input((6,))
    x = inputs
    for activation in activations:
        if isinstance(activation, keras.layers.Layer):
            x = activation(keras.layers.Dense(6)(x))
        else:
            x = keras.layers.Dense(6, activation=activation)(x)
    model = keras.Model(inputs, x)
    model.predict(np.ones((4, 6), "float32"), verbose=0)
    return model


def added(work):
    before = {name.split(".")[0] for name in sys.modules} & LIBRARIES
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        work()
    after = {name.split(".")[0] for name in sys.modules} & LIBRARIES
    return sorted(after - before), sorted({
        str(w.message) for w in caught
        if issubclass(w.category, UserWarning)})


relu = lambda: served(["relu", "relu6", keras.layers.ReLU(max_value=2.5)])
# Keras' own clone reads every config, as sugarify does (Keras' serializer
# imports TensorFlow when it is installed, whatever the backend).
plain = added(lambda: keras.models.clone_model(relu()))
import keras_sugar
from keras_sugar import SugarReLU


def sugar():
    model = served([SugarReLU(implementation=name, max_value=cap)
                    for name in ("auto", "straight_through",
                                 "multiplicative", "custom_gradient")
                    for cap in (None, 6.0)])
    keras_sugar.strip_sugar(keras_sugar.sugarify(relu()))
    keras_sugar.dead_unit_report(model, np.ones((4, 6), "float32"))


print(plain)
print(added(sugar))
"""


@pytest.mark.inference
def test_sugar_adds_no_backend_library_and_no_warning():
    """On every backend, serving SUGAR models imports no library and
    warns nothing that the same work on ReLU models (served and cloned by
    Keras) does not (on numpy
    and OpenVINO, no other backend and no "custom_gradient acts as a
    pass-through" warning)."""
    proc = subprocess.run([sys.executable, "-c", _SERVE], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain, sugar = proc.stdout.strip().splitlines()[-2:]
    libraries, warned = ast.literal_eval(sugar)
    plain_libraries, plain_warned = ast.literal_eval(plain)
    assert libraries == []
    assert set(warned) <= set(plain_warned), warned
