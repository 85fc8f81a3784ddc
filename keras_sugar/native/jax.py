"""JAX: a `jax.custom_jvp`, for reverse and forward mode and derivatives
of every order (Keras' `ops.custom_gradient` is a `jax.custom_vjp`, which
has no forward mode: `jax.jvp`, `jax.jacfwd` fail). Under `jit`, f'(x) of
feature maps is computed in the forward pass (`xla.exactly_zero`)."""

import jax
from keras import ops

from keras_sugar.native import xla

FIRST_ORDER_ONLY = (
    "implementation='multiplicative' keeps f'(x), not x, for the backward "
    "pass, so it gives first derivatives only; for second derivatives use "
    "implementation='custom_gradient' or 'straight_through'.")

DIFFERENTIATES = True
FUSED_BACKWARD = {}


def _first_order_only(value):
    """The identity, whose derivative is refused: marks a saved f'(x)."""

    @jax.custom_jvp
    def first_order_only(v):
        return v

    @first_order_only.defjvp
    def first_order_only_jvp(primals, tangents):
        raise NotImplementedError(FIRST_ORDER_ONLY)

    return first_order_only(value)


def _relu(x, derivative, forward, first_order_only=False):
    @jax.custom_jvp
    def relu(inputs):
        return forward(inputs)

    @relu.defjvp
    def relu_jvp(primals, tangents):
        (inputs,), (tangent,) = primals, tangents
        if first_order_only:
            # Reverse mode keeps f'(x). Differentiating this rule (a second
            # derivative) reaches first_order_only, which refuses.
            slope = _first_order_only(derivative(inputs))
            return relu(inputs), slope * tangent
        if not xla.feature_maps(inputs):
            # Rematerialized: reverse mode keeps x (as ReLU keeps one
            # tensor) and recomputes f'(x), instead of keeping f'(x).
            return relu(inputs), jax.checkpoint(derivative)(inputs) * tangent
        # Reverse mode keeps f'(x) (one tensor too), computed in the
        # forward pass: the value depends on it, minus an exact zero (see
        # `xla.exactly_zero`). `relu` itself, not `forward`, so that
        # differentiating this value again gives f'(x) too.
        slope = derivative(inputs)
        value = relu(inputs) - xla.exactly_zero(inputs, slope)
        return value, slope * tangent

    return relu(x)


def relu_with_derivative(x, derivative, fused_backward=None, forward=None,
                         traced_forward=None):
    """`forward(x)` (default `ops.relu(x)`) whose derivative is
    `derivative(x)`, keeping `x` for the backward pass (under `jit`, for
    tensors of rank 4 or more, `derivative(x)` computed in the forward
    pass instead). `fused_backward` and `traced_forward` are for other
    backends."""
    return _relu(x, derivative, forward or ops.relu)


def relu_saving_derivative(x, derivative, forward=None):
    """`forward(x)` whose derivative is `derivative(x)`, computed in the
    forward pass and kept; a second derivative is refused with
    `FIRST_ORDER_ONLY`."""
    return _relu(x, derivative, forward or ops.relu, first_order_only=True)
