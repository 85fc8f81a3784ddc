"""The registry: names, aliases, parameters, user-defined surrogates."""

import re
import sys

import numpy as np
import pytest
from keras import ops

import keras_sugar
from keras_sugar import SugarReLU
from keras_sugar import surrogate_names
from keras_sugar import surrogates
from tests.testing import value_and_gradient


@pytest.fixture
def scratch_registry():
    """Registers test surrogates and removes them afterwards."""
    names = []
    yield names
    for name in names:
        key = surrogates._key(name)
        surrogates._REGISTRY.pop(key, None)
        for alias, target in list(surrogates._ALIASES.items()):
            if target == key:
                surrogates._ALIASES.pop(alias)


@pytest.mark.inference
def test_available_is_sorted_and_lists_every_builtin():
    names = surrogates.available()
    assert names == sorted(names)
    assert set(surrogates.BUILTINS) == {"bsilu", "nelu", "elu", "selu", "gelu",
                                        "silu", "mish", "leaky_relu"}


@pytest.mark.parametrize("spelling, name", [
    ("B-SiLU", "bsilu"), ("bsilu", "bsilu"), ("B_SILU", "bsilu"),
    ("NeLU", "nelu"), ("swish", "silu"), ("Swish", "silu"),
    ("LeakyReLU", "leaky_relu"), ("leaky-relu", "leaky_relu"),
])
@pytest.mark.inference
def test_names_are_case_dash_and_underscore_insensitive(spelling, name):
    assert surrogates.get(spelling).name == name


@pytest.mark.parametrize("name, defaults", [
    ("bsilu", {"alpha": 1.67}), ("nelu", {"alpha": 0.05}),
    ("elu", {"alpha": 1.0}), ("selu", {}), ("gelu", {"approximate": False}),
    ("silu", {}), ("mish", {}), ("leaky_relu", {"negative_slope": 0.01}),
])
@pytest.mark.inference
def test_paper_defaults(name, defaults):
    assert surrogates.get(name).defaults == defaults


@pytest.mark.inference
def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"Unknown surrogate 'sofplus'.*"
                       r"\['bsilu', 'elu'"):
        surrogates.get("sofplus")


def test_user_surrogate_is_used_for_the_gradient(scratch_registry):
    @surrogates.register("scaled_identity")
    def scaled_identity(x, beta=2.0):
        return beta * x

    scratch_registry.append("scaled_identity")
    x = np.array([-3.0, -0.5, 0.5, 3.0], "float32")
    y, grad = value_and_gradient(SugarReLU("scaled-identity", beta=0.5), x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_allclose(grad, np.full(4, 0.5))
    # No analytic derivative: "auto" falls back to straight-through, and the
    # analytic implementations refuse clearly.
    with pytest.raises(ValueError, match="needs an analytic derivative"):
        SugarReLU("scaled_identity", implementation="custom_gradient")


def test_user_surrogate_with_derivative_works_with_every_implementation(
        scratch_registry):
    @surrogates.register("cube_root_ish", derivative=lambda x, k=1.0: k * (
        1.0 / (1.0 + x * x)))
    def cube_root_ish(x, k=1.0):
        return k * ops.arctan(x)

    scratch_registry.append("cube_root_ish")
    x = np.linspace(-4, 4, 9).astype("float32") + 0.1
    for implementation in ("straight_through", "multiplicative",
                           "custom_gradient"):
        _, grad = value_and_gradient(
            SugarReLU("cube_root_ish", k=3.0, implementation=implementation),
            x)
        np.testing.assert_allclose(grad, 3.0 / (1 + x.astype("float64")**2),
                                   rtol=1e-6)


@pytest.mark.inference
def test_registering_a_name_twice_needs_override(scratch_registry):
    @surrogates.register("twice")
    def first(x):
        return x

    scratch_registry.append("twice")
    with pytest.raises(ValueError, match="already registered.*override=True"):
        surrogates.register("Twice")(lambda x: 2 * x)

    @surrogates.register("twice", override=True)
    def second(x):
        return 2 * x

    assert surrogates.get("twice").function is second


@pytest.mark.inference
def test_builtin_names_and_aliases_are_protected():
    with pytest.raises(ValueError, match="already registered"):
        surrogates.register("Swish")(lambda x: x)


@pytest.mark.parametrize("function, match", [
    (lambda x, alpha: x, "needs a default value"),
    (lambda x, name=1.0: x, "reserved parameter names"),
    # SugarReLU's cap: a surrogate parameter by that name never arrives.
    (lambda x, max_value=1.0: x, "reserved parameter names"),
])
@pytest.mark.inference
def test_bad_registrations_are_refused(function, match):
    with pytest.raises((TypeError, ValueError), match=match):
        surrogates.register("bad_one")(function)
    assert "bad_one" not in surrogates.available()


def _registry_state():
    return dict(surrogates._REGISTRY), dict(surrogates._ALIASES)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"aliases": "sp"}, TypeError, r"aliases=\'sp\'"),
    ({"aliases": ("ok", "")}, TypeError, "non-empty names"),
    ({"derivative": 3.0}, TypeError, "derivative=3.0"),
    ({"constraints": {"beta": lambda v: v > 0}}, TypeError,
     "constraint 'beta' must be a"),
    ({"constraints": [("beta", abs)]}, TypeError, "must be a dict"),
    ({"constraints": {"beta": (lambda v: v > 5, "above 5")}}, ValueError,
     r"default beta=1.0 is not above 5"),
    ({"override": "yes"}, TypeError, "override='yes'"),
])
@pytest.mark.inference
def test_misregistration_is_refused_and_changes_nothing(kwargs, error,
                                                         match):
    before = _registry_state()
    with pytest.raises(error, match=match):
        @surrogates.register("checked_one", **kwargs)
        def checked_one(x, beta=1.0):
            return beta * x
    assert _registry_state() == before
    assert "checked_one" not in surrogates.available()


@pytest.mark.inference
def test_a_refused_override_keeps_the_old_entry(scratch_registry):
    scratch_registry.append("kept_one")

    @surrogates.register("kept_one")
    def kept_one(x, beta=1.0):
        return beta * x

    before = _registry_state()
    with pytest.raises(TypeError, match="derivative="):
        surrogates.register("kept_one", derivative="d", override=True)(
            kept_one)
    assert _registry_state() == before


def test_a_builtin_name_overridden_uses_the_new_derivative():
    original = surrogates.get("bsilu")
    try:
        @surrogates.register("bsilu", override=True,
                             derivative=lambda x, alpha=1.67: 0.5 + 0.0 * x)
        def half_slope(x, alpha=1.67):
            return 0.5 * x

        x = np.array([-1.0, 2.0], "float32")
        for implementation in ("custom_gradient", "straight_through"):
            _, grad = value_and_gradient(
                SugarReLU("bsilu", implementation=implementation), x)
            np.testing.assert_allclose(grad, [0.5, 0.5])
    finally:
        surrogates._REGISTRY["bsilu"] = original


@pytest.mark.inference
def test_integer_parameters_stay_integers(scratch_registry):
    scratch_registry.append("power_demo")

    @surrogates.register("power_demo")
    def power_demo(x, power=3):
        return x ** power

    assert SugarReLU("power_demo", power=5).params == {"power": 5}
    assert isinstance(SugarReLU("power_demo", power=5).params["power"], int)
    with pytest.raises(TypeError, match="must be an integer.*power=2.5"):
        SugarReLU("power_demo", power=2.5)


@pytest.mark.inference
def test_public_api():
    assert keras_sugar.SugarReLU is SugarReLU
    assert callable(keras_sugar.sugar_relu)


@pytest.mark.parametrize("body, received", [
    (lambda x: ops.sum(x) * 0.0 + 7.0, "a () float32 tensor"),
    (lambda x: 7.0, "7.0"),
    (lambda x: ops.reshape(x, (-1,)), "a (6,) float32 tensor"),
    (lambda x: ops.cast(x, "float16"), "a (2, 3) float16 tensor"),
])
def test_a_surrogate_that_is_not_elementwise_is_refused_by_name(body,
                                                                received):
    """A scalar or another shape would broadcast into wrong gradients
    (7.0 everywhere), silently: register checks on a small probe."""
    def not_elementwise(x, beta=1.0):
        return body(x)

    before = _registry_state()
    with pytest.raises(ValueError, match=(
            r"Surrogate 'not_elementwise': not_elementwise\(x\) must map a "
            r"tensor to one of the same shape and dtype, element by "
            r"element; on a \(2, 3\) float32 probe it gave " + re.escape(
                received))):
        surrogates.register("not_elementwise")(not_elementwise)
    assert _registry_state() == before


def test_a_derivative_that_is_not_elementwise_is_refused_by_name():
    def constant_slope(x, beta=1.0):
        return 0.5

    before = _registry_state()
    with pytest.raises(ValueError, match=r"Surrogate 'half': constant_slope"
                       r"\(x\) must map a tensor"):
        @surrogates.register("half", derivative=constant_slope)
        def half(x, beta=1.0):
            return 0.5 * x
    assert _registry_state() == before


def test_the_command_lines_names_are_the_registrys(monkeypatch):
    # The command checks a name before Keras starts, from its own list.
    assert sorted(surrogate_names.BUILTIN_ALIASES) == list(
        surrogates.BUILTINS)
    names = {alias: surrogates.get(alias).name
             for name, aliases in surrogate_names.BUILTIN_ALIASES.items()
             for alias in (name, *aliases)}
    monkeypatch.delitem(sys.modules, "keras_sugar.surrogates")
    for alias, name in names.items():
        assert surrogate_names.canonical(alias) == name
    with pytest.raises(ValueError, match=r"Unknown surrogate 'nope'. Valid "
                       r"names: \['bsilu', 'elu'"):
        surrogate_names.canonical("nope")
