"""Ways to inject a surrogate derivative under an exact ReLU forward pass.

All implementations return exactly `ops.relu(x)` (with a cap,
`keras.layers.ReLU(max_value=cap)`, e.g. relu6) for every input (NaN,
+-inf, +-0 and values where the surrogate overflows included) and have the
derivative `f'(x)` (or, with `negative_only=True`, 1 for x > 0 and `f'(x)`
otherwise) at every finite `x` (below the cap, if any: at or above it
the gradient is 0, as ReLU6's); at non-finite inputs the gradient is 0.
They differ only in speed and in what they keep for the backward pass:

- `"straight_through"`: `sg(relu(x)) - (sg(f(x)) - f(x))`, paper eq. 4.
  Autodiff of `f`; works for any surrogate, keeps f's intermediates.
- `"multiplicative"`: the paper's multiplication trick (eqs. 5-6): `f'(x)`
  computed in the forward pass and kept, the gradient carrier
  `(x - sg(x)) * sg(f'(x))` (natively on JAX and PyTorch). Needs the
  analytic derivative; keeps one tensor, `f'(x)`; first derivatives only.
- `"custom_gradient"`: forward `relu(x)` and derivative `f'(x)` by each
  backend's own mechanism (`keras_sugar.native`: `jax.custom_jvp`, a
  `torch.autograd.Function`, `tf.custom_gradient` around the
  straight-through value, which TensorFlow's forward mode and
  `vectorized_map` differentiate), so forward-mode autodiff and
  vectorization work too. Needs the analytic derivative; keeps one
  tensor: `x`, or under XLA for tensors of rank 4 or more f'(x), computed
  in the forward pass (faster there, see `native`).
- `"auto"`: the fastest of these on the current backend, as measured by
  `keras-sugar bench`.

On backends without autodiff (numpy, OpenVINO: inference only) every
implementation is its forward value, Keras' (capped) ReLU.

The carrier `c = sg(g) - g` (for `g = f(x)` or the multiplicative product)
is exactly +0 wherever `g` is finite and has derivative `-g'`, and
`relu - (+0)` is `relu` bit for bit, the sign of zero included (adding +0
would turn -0 into +0). Where `g` is not finite (a NaN input, a surrogate
that overflows) the carrier is replaced by 0, so the forward value never
depends on `f`. Non-finite inputs are replaced by 0 before `f` sees them,
so no NaN reaches the gradient through an unused branch; `f'` is masked
after it is computed.
"""

import functools

import keras
from keras import ops

from keras_sugar import native
from keras_sugar import surrogates

IMPLEMENTATIONS = ("auto", "straight_through", "multiplicative",
                   "custom_gradient")

# Measured with `keras-sugar bench` on a 2-core CPU (table in the README):
# the custom gradient keeps one tensor for the backward pass (no more
# memory than ReLU; straight_through keeps f's intermediates, 1.28x ReLU under
# XLA), was fastest or tied on every backend, and its inference graph is
# plain ReLU's. One choice for all backends, so far.
_AUTO = "custom_gradient"


def resolve(implementation, surrogate):
    """Returns the concrete implementation name to use for `surrogate`.

    Args:
        implementation: One of `IMPLEMENTATIONS`.
        surrogate: A `Surrogate`.

    Raises:
        ValueError: For an unknown implementation, or one that needs an
            analytic derivative the surrogate does not have.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"Unknown implementation '{implementation}'. Valid choices: "
            f"{list(IMPLEMENTATIONS)}. Received: "
            f"implementation={implementation!r}"
        )
    if implementation == "auto":
        if surrogate.derivative is None:
            return "straight_through"
        return _AUTO
    if implementation != "straight_through" and surrogate.derivative is None:
        raise ValueError(
            f"implementation='{implementation}' needs an analytic derivative, "
            f"and surrogate '{surrogate.name}' was registered without one. "
            f"Use implementation='straight_through' or 'auto', or register "
            f"it with derivative=..."
        )
    return implementation


def _finite_inputs(x):
    """`x` with its non-finite entries replaced by 0, so that `f` never
    sees them and its derivative there is never multiplied into a
    gradient (the `where` passes 0 to them)."""
    return ops.where(ops.isfinite(x), x, ops.zeros_like(x))


def _surrogate_function(x, surrogate, params, negative_only):
    f = surrogate.function(x, **params)
    if negative_only:
        f = ops.where(x > 0, x, f)
    # Python-float constants can promote float16 to float32 on some
    # backends; the carrier must keep x's dtype.
    return ops.cast(f, x.dtype)


def _surrogate_derivative(x, surrogate, params, negative_only,
                          max_value=None):
    """`f'(x)` at finite `x` below the cap, 0 at non-finite `x` and at or
    above the cap."""
    d = surrogate.derivative(x, **params)
    if negative_only:
        d = ops.where(x > 0, 1.0, d)
    d = ops.cast(d, x.dtype)
    # One `where` on the result: a `where` on the input as well would make
    # XLA keep another tensor for the backward pass.
    keep = ops.isfinite(x)
    if max_value is not None:
        keep = ops.logical_and(keep, x < _cap(max_value, x))
    return ops.where(keep, d, ops.zeros_like(d))


def _cap(max_value, x):
    return ops.cast(max_value, x.dtype)


def relu_forward(x, max_value=None):
    """The forward value: `ops.relu(x)`, or with a cap exactly what
    `keras.layers.ReLU(max_value=...)` computes (`relu6` for 6)."""
    if max_value is None:
        return ops.relu(x)
    return keras.activations.relu(x, max_value=max_value)


def _capped_forward(max_value):
    """The forward function for `native` when there is a cap; None (its
    plain ReLU, the fastest) otherwise."""
    if max_value is None:
        return None
    return functools.partial(relu_forward, max_value=max_value)


def _relu_with_carrier(x, g, keep, max_value):
    """The ReLU forward value exactly, with the derivative of `g` where
    `keep`."""
    carrier = ops.stop_gradient(g) - g
    carrier = ops.where(keep, carrier, ops.zeros_like(carrier))
    carrier = ops.cast(carrier, x.dtype)  # +0 stays +0.
    return ops.stop_gradient(relu_forward(x, max_value)) - carrier


def straight_through(x, surrogate, params, negative_only=False,
                     max_value=None):
    """`sg(relu(x)) - (sg(f(x)) - f(x))`: exact ReLU, gradient `f'`."""
    if not native.DIFFERENTIATES:  # Nothing to carry a gradient for.
        return relu_forward(x, max_value)
    safe = _finite_inputs(x)
    if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
        # f and its autodiff run in float32: autodiff multiplies the
        # upstream gradient by intermediates such as x (in x * sigmoid(x)),
        # which a loss-scaled float16 gradient would overflow to NaN.
        safe = ops.cast(safe, "float32")
    f = _surrogate_function(safe, surrogate, params, negative_only)
    if max_value is not None:  # No gradient at or above the cap.
        f = ops.where(x < _cap(max_value, x), f, ops.stop_gradient(f))
    # At non-finite x, f(0) is finite and its carrier is 0 with gradient 0
    # (the `where` in `safe`): only f's own overflow needs dropping.
    return _relu_with_carrier(x, f, ops.isfinite(ops.stop_gradient(f)),
                              max_value)


def multiplicative(x, surrogate, params, negative_only=False,
                   max_value=None):
    """Carrier `(x - sg(x)) * sg(f'(x))`: exact ReLU, gradient `f'`.

    Keeps `f'(x)` for the backward pass, so it gives first derivatives
    only: on JAX and PyTorch (`keras_sugar.native`) a second derivative is
    refused with a clear error; TensorFlow's autodiff returns None for it.
    """
    def derivative(t):
        return _surrogate_derivative(t, surrogate, params, negative_only,
                                     max_value)

    native_result = native.relu_saving_derivative(
        x, derivative, _capped_forward(max_value))
    if native_result is not None:
        return native_result
    safe = _finite_inputs(x)
    d = ops.stop_gradient(derivative(x))
    zero_with_gradient_one = safe - ops.stop_gradient(safe)
    return _relu_with_carrier(x, zero_with_gradient_one * d, ops.isfinite(d),
                              max_value)


def custom_gradient(x, surrogate, params, negative_only=False,
                    max_value=None):
    """Forward `relu(x)`, backward `upstream * f'(x)`, by each backend's
    own custom-derivative mechanism (`keras_sugar.native`).

    Only call this on real tensors (inside a layer's `call` or eagerly):
    on a symbolic `KerasTensor` a custom gradient raises or is dropped.
    `sugar_relu` guarantees that.
    """
    # Fused kernels compute the built-in, uncapped derivatives only.
    fused = (native.FUSED_BACKWARD.get(surrogate.name)
             if surrogates.is_builtin(surrogate) and not negative_only
             and max_value is None else None)
    if fused is not None:
        fused = functools.partial(fused, **params)
    return native.relu_with_derivative(
        x, lambda t: _surrogate_derivative(t, surrogate, params,
                                           negative_only, max_value),
        fused, _capped_forward(max_value),
        traced_forward=functools.partial(
            straight_through, surrogate=surrogate, params=params,
            negative_only=negative_only, max_value=max_value))


FUNCTIONS = {
    "straight_through": straight_through,
    "multiplicative": multiplicative,
    "custom_gradient": custom_gradient,
}
