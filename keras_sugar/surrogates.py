"""The surrogate registry: smooth functions whose derivative SUGAR borrows.

A surrogate is a smooth primitive `f` (and, where cheaper or safer, its
analytic derivative `f'`). `SugarReLU` never outputs `f(x)`: it outputs
`relu(x)` and uses `f'(x)` as the derivative in the backward pass.

Every built-in primitive is written so that neither it nor its derivative can
overflow anywhere in the finite range of float16, bfloat16 and float32
(exponentials only of non-positive arguments, polynomials only of clipped
arguments), because an `inf` in `f` would turn the straight-through forward
pass `relu(x) + (f(x) - f(x))` into NaN.

Example:

>>> from keras_sugar import surrogates
>>> surrogates.available()[:3]
['bsilu', 'elu', 'gelu']
>>> surrogates.get("B-SiLU").name
'bsilu'
>>> surrogates.get("B-SiLU").defaults
{'alpha': 1.67}
"""

import inspect
import math
import numbers

from keras import KerasTensor
from keras import backend
from keras import ops

from keras_sugar import surrogate_names

# Keyword names that `SugarReLU` and its layer use themselves; a surrogate
# parameter with one of these names could never be passed through.
RESERVED_PARAMETER_NAMES = frozenset(
    {"surrogate", "negative_only", "implementation", "max_value", "name",
     "dtype", "trainable", "autocast"}
)


class Surrogate:
    """A registered surrogate: its primitive, derivative and parameters.

    Args:
        name: Canonical name, e.g. `"bsilu"`.
        function: The smooth primitive `f(x, **params)`. Its keyword
            arguments with defaults are the surrogate's parameters.
        derivative: Optional analytic derivative `f'(x, **params)`. The
            `"multiplicative"` and `"custom_gradient"` implementations need it;
            without it only `"straight_through"` (autodiff of `f`) is used.
        constraints: Optional dict mapping a parameter name to a
            `(predicate, description)` pair, e.g.
            `{"alpha": (lambda v: v > 0, "a positive number")}`.
        description: One line for listings and plots. Defaults to the
            function's docstring.
    """

    def __init__(
        self, name, function, derivative=None, constraints=None,
        description="",
    ):
        if not callable(function):
            raise TypeError(
                f"Surrogate '{name}': the primitive must be a function. "
                f"Received: function={function!r}")
        if derivative is not None and not callable(derivative):
            raise TypeError(
                f"Surrogate '{name}': derivative must be a function "
                f"f'(x, **params) or None. Received: "
                f"derivative={derivative!r}")
        self.name = name
        self.function = function
        self.derivative = derivative
        self.defaults = _keyword_defaults(function)
        self.constraints = _checked_constraints(name, constraints)
        self.description = description or (function.__doc__ or "").strip()
        reserved = RESERVED_PARAMETER_NAMES.intersection(self.defaults)
        if reserved:
            raise ValueError(
                f"Surrogate '{name}' uses reserved parameter names "
                f"{sorted(reserved)}; rename them. "
                f"Reserved: {sorted(RESERVED_PARAMETER_NAMES)}"
            )
        unknown = set(self.constraints) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"Constraints for unknown parameters {sorted(unknown)} of "
                f"surrogate '{name}'. Its parameters: {sorted(self.defaults)}"
            )
        for key, (predicate, description) in self.constraints.items():
            if not predicate(self.defaults[key]):
                raise ValueError(
                    f"Surrogate '{name}': the default {key}="
                    f"{self.defaults[key]!r} is not {description}.")
        for probed in (function, derivative):
            if probed is not None:
                _check_elementwise(name, probed, self.defaults)

    def resolve_params(self, params):
        """Validates user parameters and fills in the defaults.

        Args:
            params: Dict of keyword arguments given by the user.

        Returns:
            A new dict with every parameter of the surrogate.

        Raises:
            ValueError: For an unknown parameter or an out-of-range value.
            TypeError: For a value of the wrong type.
        """
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {unknown} for surrogate "
                f"'{self.name}'. Valid parameters: "
                f"{sorted(self.defaults) or 'none'}. Received: {params}"
            )
        resolved = dict(self.defaults)
        for key, value in params.items():
            resolved[key] = _check_value(self.name, key, value,
                                         self.defaults[key])
            if key in self.constraints:
                predicate, description = self.constraints[key]
                if not predicate(resolved[key]):
                    raise ValueError(
                        f"Parameter '{key}' of surrogate '{self.name}' must "
                        f"be {description}. Received: {key}={value!r}"
                    )
        return resolved

    def __repr__(self):
        return f"<Surrogate {self.name} {self.defaults}>"


# The probe `register` checks a surrogate on: symbolic, so registering
# computes nothing and initializes no device (a GPU's memory settings and
# `jax.distributed.initialize` must come before the first computation).
_PROBE_SHAPE, _PROBE_DTYPE = (2, 3), "float32"


def _check_elementwise(name, function, params):
    """Refuses a function that does not map a tensor to one of the same
    shape and dtype: a scalar or another shape would be broadcast into the
    gradient, silently wrong (a constant 7.0 gives 7.0 everywhere)."""
    probe = KerasTensor(_PROBE_SHAPE, _PROBE_DTYPE)
    output = function(probe, **params)
    shape = getattr(output, "shape", None)
    dtype = getattr(output, "dtype", None)
    if shape is not None and dtype is not None:
        shape, dtype = tuple(shape), backend.standardize_dtype(dtype)
        if shape == _PROBE_SHAPE and dtype == _PROBE_DTYPE:
            return
        received = f"a {shape} {dtype} tensor"
    else:
        received = repr(output)
    function_name = getattr(function, "__name__", repr(function))
    raise ValueError(
        f"Surrogate '{name}': {function_name}(x) must map a tensor to one "
        f"of the same shape and dtype, element by element; on a "
        f"{_PROBE_SHAPE} {_PROBE_DTYPE} probe it gave {received}. Use "
        f"elementwise keras.ops (no sums, reshapes or casts).")


def _checked_constraints(name, constraints):
    """`{param: (predicate, description)}`, each entry checked."""
    if constraints is None:
        return {}
    if not isinstance(constraints, dict):
        raise TypeError(
            f"Surrogate '{name}': constraints must be a dict "
            f"{{param: (predicate, description)}}. Received: "
            f"constraints={constraints!r}")
    for key, entry in constraints.items():
        if not (isinstance(entry, tuple) and len(entry) == 2
                and callable(entry[0]) and isinstance(entry[1], str)):
            raise TypeError(
                f"Surrogate '{name}': constraint '{key}' must be a "
                f"(predicate, description) pair, e.g. (lambda v: v > 0, "
                f"'a positive number'). Received: {entry!r}")
    return dict(constraints)


def _keyword_defaults(function):
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    if not params:
        raise TypeError(
            f"A surrogate function takes the input tensor as its first "
            f"argument. Received: {function}"
        )
    defaults = {}
    for param in params[1:]:
        if param.default is inspect.Parameter.empty:
            raise TypeError(
                f"Every surrogate parameter needs a default value; "
                f"'{param.name}' of {function.__name__} has none."
            )
        if not isinstance(param.default, (bool, numbers.Real, str)):
            raise TypeError(
                f"Surrogate parameter '{param.name}' of "
                f"{function.__name__} must default to a number, bool or "
                f"string, to be saved in a model's config. Received: "
                f"{param.name}={param.default!r}")
        defaults[param.name] = param.default
    return defaults


def _check_value(surrogate, key, value, default):
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError(
                f"Parameter '{key}' of surrogate '{surrogate}' must be a "
                f"bool. Received: {key}={value!r}"
            )
        return value
    if isinstance(default, numbers.Integral):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(
                f"Parameter '{key}' of surrogate '{surrogate}' must be an "
                f"integer. Received: {key}={value!r}"
            )
        return int(value)
    if isinstance(default, numbers.Real):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"Parameter '{key}' of surrogate '{surrogate}' must be a "
                f"real number. Received: {key}={value!r}"
            )
        if not math.isfinite(value):
            raise ValueError(
                f"Parameter '{key}' of surrogate '{surrogate}' must be "
                f"finite. Received: {key}={value!r}"
            )
        return float(value)
    return value


_REGISTRY = {}
_ALIASES = {}


_key = surrogate_names.key  # Case-, dash-, underscore-insensitive.


def register(name, *, derivative=None, constraints=None, aliases=(),
             override=False):
    """Decorator registering a surrogate primitive under `name`.

    The decorated function takes a tensor and keyword parameters with
    defaults; it must use `keras.ops` only so that it runs on every backend.
    A registered surrogate is serializable by name: register it again (e.g.
    by importing your module) before loading a saved model that uses it.

    Args:
        name: The name users pass to `SugarReLU`.
        derivative: Optional analytic derivative with the same signature.
        constraints: Optional `{param: (predicate, description)}` checks.
        aliases: Other names that resolve to this surrogate.
        override: Allow replacing an existing entry. Defaults to `False`.

    Returns:
        A decorator that registers the function and returns it unchanged.

    Raises:
        ValueError: Naming the function, when it or `derivative` does not
            map a tensor to one of the same shape and dtype (checked on a
            symbolic `(2, 3)` float32 probe, so nothing is computed): a
            surrogate is elementwise, and a scalar or another shape would
            be broadcast into wrong gradients.

    Example:

    >>> from keras import ops
    >>> @register("softplus_demo", override=True)
    ... def softplus_demo(x, beta=1.0):
    ...     return ops.softplus(beta * x) / beta
    >>> get("softplus-demo").defaults
    {'beta': 1.0}
    """
    if not isinstance(name, str) or not _key(name):
        raise ValueError(
            f"A surrogate name must be a non-empty string. Received: "
            f"name={name!r}"
        )
    # A string is a sequence too: "sp" would register "s" and "p".
    if isinstance(aliases, str) or not all(
            isinstance(alias, str) and _key(alias) for alias in aliases):
        raise TypeError(
            f"aliases must be a tuple of non-empty names, e.g. "
            f"aliases=('swish',). Received: aliases={aliases!r}")
    if not isinstance(override, bool):
        raise TypeError(
            f"override must be True or False. Received: override={override!r}")

    def decorator(function):
        # Every check runs before the registry changes: a refused
        # registration leaves it as it was.
        surrogate = Surrogate(name, function, derivative, constraints)
        keys = [_key(name)] + [_key(alias) for alias in aliases]
        taken = [k for k in keys if k in _REGISTRY or k in _ALIASES]
        if taken and not override:
            raise ValueError(
                f"A surrogate named '{name}' (or alias {list(aliases)}) is "
                f"already registered. Pass override=True to replace it. "
                f"Registered: {available()}"
            )
        for key in taken:
            _REGISTRY.pop(key, None)
            _ALIASES.pop(key, None)
        _REGISTRY[keys[0]] = surrogate
        for alias_key in keys[1:]:
            _ALIASES[alias_key] = keys[0]
        return function

    return decorator


def get(identifier):
    """Returns the `Surrogate` for a name (or passes a `Surrogate` through).

    Args:
        identifier: A registered name or alias in any case, with or without
            dashes and underscores (`"B-SiLU"`, `"leaky_relu"`,
            `"LeakyReLU"`), or a `Surrogate`.

    Returns:
        The registered `Surrogate`.

    Raises:
        ValueError: If the name is not registered; the message lists the
            valid names.
    """
    if isinstance(identifier, Surrogate):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(
            f"A surrogate is identified by its name (a string). Received: "
            f"surrogate={identifier!r}. Valid names: {available()}"
        )
    key = _ALIASES.get(_key(identifier), _key(identifier))
    if key not in _REGISTRY:
        raise ValueError(
            f"Unknown surrogate '{identifier}'. Valid names: {available()} "
            f"(aliases: {sorted(_ALIASES)}). To use your own, decorate it "
            f"with keras_sugar.surrogates.register(...) before use or load."
        )
    return _REGISTRY[key]


def available():
    """Returns the sorted canonical names of all registered surrogates."""
    return sorted(surrogate.name for surrogate in _REGISTRY.values())


# ---------------------------------------------------------------------------
# Built-in surrogates (paper: arXiv 2505.22074, Section 3 and Table 1).
# ---------------------------------------------------------------------------


_FLOAT_MAX = {"float16": 65504.0, "bfloat16": 3.3895314e38,
              "float32": 3.4028235e38, "float64": 1.7976931348623157e308}


def _positive(value):
    return value > 0


def _non_negative(value):
    return value >= 0


_POSITIVE = (_positive, "a positive number")
_NON_NEGATIVE = (_non_negative, "a non-negative number")


def _negative_part(x):
    # `where`, not `minimum`: gradient 1 at x == 0 (so ELU's f'(0) is
    # alpha, as in its analytic derivative), and keras' torch `minimum`
    # with a Python float turns float64 into float32.
    return ops.where(x > 0, 0.0, x)


def _bsilu_derivative(x, alpha=1.67):
    s = ops.sigmoid(x)
    # 1 - s costs no second exp; where s rounds near 1 (8 < x < 17) the
    # term's absolute error stays below 1.2e-6 and it is exact beyond.
    # (1 - s) * x, never x + alpha: that overflows near the dtype's max.
    t = 1.0 - s
    return s + s * (t * x + t * alpha)


@register("bsilu", derivative=_bsilu_derivative,
          constraints={"alpha": _NON_NEGATIVE}, aliases=("b_silu",))
def bsilu(x, alpha=1.67):
    """B-SiLU: `(x + alpha) * sigmoid(x) - alpha / 2` (paper default 1.67)."""
    s = ops.sigmoid(x)
    # x * s + alpha * (s - 1/2): the same function, and no x + alpha to
    # overflow near the dtype's max.
    return x * s + alpha * (s - 0.5)


def _float_max(x):
    """The largest finite value of `x`'s dtype."""
    return _FLOAT_MAX[backend.standardize_dtype(x.dtype)]


def _nelu_negative(x):
    # Clipping at -sqrt(max)/2 keeps x^2 finite (float16 overflows at
    # |x| > 256); below it NeLU's derivative ~ 2a/x^3 is already far below
    # the dtype's smallest normal, so no value changes.
    return ops.clip(x, -math.sqrt(_float_max(x)) / 2.0, 0.0)


def _nelu_derivative(x, alpha=0.05):
    xn = _nelu_negative(x)
    r = 1.0 / (1.0 + xn * xn)
    return ops.where(x > 0, 1.0, 2.0 * alpha * xn * r * r)


@register("nelu", derivative=_nelu_derivative,
          constraints={"alpha": _POSITIVE})
def nelu(x, alpha=0.05):
    """NeLU: `x` for x > 0, `-alpha / (1 + x^2)` for x <= 0."""
    xn = _nelu_negative(x)
    return ops.where(x > 0, x, -alpha / (1.0 + xn * xn))


def _elu_derivative(x, alpha=1.0):
    return ops.where(x > 0, 1.0, alpha * ops.exp(_negative_part(x)))


@register("elu", derivative=_elu_derivative,
          constraints={"alpha": _POSITIVE})
def elu(x, alpha=1.0):
    """ELU: `x` for x > 0, `alpha * (exp(x) - 1)` for x <= 0."""
    return ops.where(x > 0, x, alpha * ops.expm1(_negative_part(x)))


SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _selu_derivative(x):
    return SELU_SCALE * _elu_derivative(x, SELU_ALPHA)


@register("selu", derivative=_selu_derivative)
def selu(x):
    """SELU: `scale * elu(x, alpha)` with the self-normalizing constants."""
    # scale > 1, so scale * x would overflow in the top 6% of the range
    # (1% margin for rounding the bound); there the straight-through
    # gradient is 0, the analytic implementations still give `scale`.
    bound = _float_max(x) / (SELU_SCALE * 1.01)
    return SELU_SCALE * elu(ops.where(x > bound, bound, x), SELU_ALPHA)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
# The tanh term saturates (is exactly +-1 in every float dtype) beyond
# |x| = 10, so clipping the cubic's argument there keeps x^3 finite
# without changing any value.
_GELU_TANH_CLIP = 10.0
_GELU_ERF_CLIP = 40.0


def _gelu_tanh_inner(x):
    xc = ops.clip(x, -_GELU_TANH_CLIP, _GELU_TANH_CLIP)
    return xc, _SQRT_2_OVER_PI * (xc + _GELU_CUBIC * xc * xc * xc)


def _gelu_derivative(x, approximate=False):
    if approximate:
        # 0.5 * (1 + tanh(u)) == sigmoid(2u); sigmoid(2u) * sigmoid(-2u)
        # keeps full precision in both tails, unlike 1 - tanh(u)^2.
        xc, inner = _gelu_tanh_inner(x)
        p, q = ops.sigmoid(2.0 * inner), ops.sigmoid(-2.0 * inner)
        dinner = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_CUBIC * xc * xc)
        # The clipped x multiplies the clipped terms: beyond the clip the
        # true x * p * q is below any dtype's precision, and the unclipped
        # x would scale a tiny q (1e-38) back up to O(1).
        return p + xc * (2.0 * p * q * dinner)
    xc = _gelu_erf_argument(x)
    cdf = 0.5 * (1.0 + ops.erf(xc * _SQRT_HALF))
    return cdf + xc * (_INV_SQRT_2PI * ops.exp(-0.5 * (xc * xc)))


def _gelu_erf_argument(x):
    # erf is exactly +-1 and exp(-x^2/2) exactly 0 (even in float64) beyond
    # |x| = 40; clipping there changes no value, keeps x^2 finite, and
    # avoids TensorFlow's float64 erf, which is NaN above about 2e154.
    return ops.clip(x, -_GELU_ERF_CLIP, _GELU_ERF_CLIP)


@register("gelu", derivative=_gelu_derivative)
def gelu(x, approximate=False):
    """GELU: `x * Phi(x)`, exact or with the tanh approximation."""
    if approximate:
        _, inner = _gelu_tanh_inner(x)
        return x * ops.sigmoid(2.0 * inner)
    return 0.5 * x * (1.0 + ops.erf(_gelu_erf_argument(x) * _SQRT_HALF))


def _silu_derivative(x):
    s = ops.sigmoid(x)
    return s + x * s * (1.0 - s)


@register("silu", derivative=_silu_derivative, aliases=("swish",))
def silu(x):
    """SiLU (Swish): `x * sigmoid(x)`."""
    return x * ops.sigmoid(x)


def _mish_parts(x):
    # With w = exp(-softplus(x)) = sigmoid(-x): tanh(softplus(x)) =
    # (1 - w^2) / (1 + w^2) and 1 - tanh^2 = 4 w^2 / (1 + w^2)^2. Both keep
    # full precision where tanh(softplus(x)) rounds to 1.
    s, w = ops.sigmoid(x), ops.sigmoid(-x)
    w2 = w * w
    return s, s * (1.0 + w) / (1.0 + w2), 4.0 * w2 / ((1.0 + w2) * (1.0 + w2))


def _mish_derivative(x):
    s, t, sech2 = _mish_parts(x)
    return t + x * s * sech2


@register("mish", derivative=_mish_derivative)
def mish(x):
    """Mish: `x * tanh(softplus(x))`."""
    _, t, _ = _mish_parts(x)
    return x * t


def _leaky_relu_derivative(x, negative_slope=0.01):
    # full_like: a bare Python slope becomes a float32 constant on torch,
    # which rounds it for float64 inputs.
    return ops.where(x > 0, 1.0, ops.full_like(x, negative_slope))


@register("leaky_relu", derivative=_leaky_relu_derivative,
          constraints={"negative_slope": _NON_NEGATIVE})
def leaky_relu(x, negative_slope=0.01):
    """LeakyReLU: `x` for x > 0, `negative_slope * x` for x <= 0."""
    return ops.where(x > 0, x, negative_slope * x)


BUILTINS = tuple(available())
_BUILTIN_SURROGATES = {name: get(name) for name in BUILTINS}


def is_builtin(surrogate):
    """Whether `surrogate` is the package's own (not one registered under
    a built-in's name with `override=True`)."""
    return _BUILTIN_SURROGATES.get(surrogate.name) is surrogate
