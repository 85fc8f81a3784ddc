"""ReLU with a given derivative, written with each backend's own autodiff.

The one module with backend-native code, for correctness: Keras'
`ops.custom_gradient` is a `jax.custom_vjp` on JAX (no forward-mode
autodiff: `jax.jvp`, `jax.jacfwd` fail) and a `torch.autograd.Function`
without `setup_context` on PyTorch (no `torch.vmap`, so
`ops.vectorized_map` fails). Here JAX gets a `jax.custom_jvp`, which gives
reverse and forward mode and derivatives of every order, and PyTorch a
`torch.autograd.Function` with `setup_context`, a vmap rule, a forward-mode
rule and a differentiable backward. TensorFlow keeps Keras' own
`ops.custom_gradient` (`tf.custom_gradient`) for reverse mode; its forward
mode (`ForwardAccumulator`) and `vectorized_map` (pfor) differentiate the
ops inside instead, so there the forward value is computed in a form whose
own derivative is the surrogate's (`traced_forward`). Under XLA (JAX, and
TensorFlow's compiled training step) f'(x) of a tensor of rank 4 or more
(a convolution's feature maps) is computed in the forward pass and kept,
which XLA runs faster (`_exactly_zero`).

Each function takes the input tensor and `derivative`, a function of the
input built from `keras.ops`; the forward value is exactly `ops.relu(x)`
and the derivative is `derivative(x)`. `relu_with_derivative` keeps one
tensor for the backward pass, `x` (under XLA, for tensors of rank 4 or
more, `derivative(x)` computed in the forward pass instead);
`relu_saving_derivative` (the `multiplicative` implementation) keeps
`derivative(x)`, computed in the forward pass.
"""

import functools
import inspect
import math

import keras
from keras import ops


FIRST_ORDER_ONLY = (
    "implementation='multiplicative' keeps f'(x), not x, for the backward "
    "pass, so it gives first derivatives only; for second derivatives use "
    "implementation='custom_gradient' or 'straight_through'.")


def _jax_first_order_only(value):
    """The identity, whose derivative is refused: marks a saved f'(x)."""
    import jax

    @jax.custom_jvp
    def first_order_only(v):
        return v

    @first_order_only.defjvp
    def first_order_only_jvp(primals, tangents):
        raise NotImplementedError(FIRST_ORDER_ONLY)

    return first_order_only(value)


def _jax_relu(x, derivative, forward, first_order_only=False):
    import jax

    @jax.custom_jvp
    def relu(inputs):
        return forward(inputs)

    @relu.defjvp
    def relu_jvp(primals, tangents):
        (inputs,), (tangent,) = primals, tangents
        if first_order_only:
            # Reverse mode keeps f'(x). Differentiating this rule (a second
            # derivative) reaches first_order_only, which refuses.
            slope = _jax_first_order_only(derivative(inputs))
            return relu(inputs), slope * tangent
        if not _feature_maps(inputs):
            # Rematerialized: reverse mode keeps x (as ReLU keeps one
            # tensor) and recomputes f'(x), instead of keeping f'(x).
            return relu(inputs), jax.checkpoint(derivative)(inputs) * tangent
        # Reverse mode keeps f'(x) (one tensor too), computed in the
        # forward pass: the value depends on it, minus an exact zero (see
        # `_exactly_zero`). `relu` itself, not `forward`, so that
        # differentiating this value again gives f'(x) too.
        slope = derivative(inputs)
        value = relu(inputs) - _exactly_zero(inputs, slope)
        return value, slope * tangent

    return relu(x)


_TORCH_FUNCTIONS = {}


def _torch_functions():
    """The two `torch.autograd.Function`s, defined on first use."""
    if _TORCH_FUNCTIONS:
        return _TORCH_FUNCTIONS
    import torch

    class ReluWithDerivative(torch.autograd.Function):
        # setup_context (not ctx in forward) is what torch.vmap and
        # torch.func need; the vmap rule is generated from these methods.
        generate_vmap_rule = True

        @staticmethod
        def forward(x, derivative, fused_backward, relu):
            return relu(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, derivative, fused_backward, _ = inputs
            ctx.derivative = derivative
            ctx.fused_backward = fused_backward
            ctx.save_for_backward(x)
            ctx.save_for_forward(x)

        @staticmethod
        def backward(ctx, upstream):
            (x,) = ctx.saved_tensors
            if ctx.fused_backward is not None and not torch.is_grad_enabled():
                # A first derivative: the in-place kernel, fewer passes
                # over memory than the generic ops.
                return ctx.fused_backward(x, upstream), None, None, None
            # Plain differentiable ops: with create_graph=True the second
            # derivative is upstream * f''(x).
            return upstream * ctx.derivative(x), None, None, None

        @staticmethod
        def jvp(ctx, tangent, *_):
            (x,) = ctx.saved_tensors
            return tangent * ctx.derivative(x)

    class ReluWithDerivativeOutsideTransforms(torch.autograd.Function):
        """The same, with `ctx` in `forward`: `Function.apply` binds the
        arguments of a `setup_context` Function to `forward`'s signature
        on every call (about 20 us, as much as the rest of the call), a
        `ctx` one does not. `torch.func` transforms need the other."""

        @staticmethod
        def forward(ctx, x, derivative, fused_backward, relu):
            ReluWithDerivative.setup_context(
                ctx, (x, derivative, fused_backward, relu), None)
            return relu(x)

        backward = ReluWithDerivative.backward
        jvp = ReluWithDerivative.jvp

    class ReluSavingDerivative(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x, derivative, relu):
            return relu(x), derivative(x)

        @staticmethod
        def setup_context(ctx, inputs, outputs):
            _, saved = outputs
            ctx.mark_non_differentiable(saved)
            ctx.save_for_backward(saved)
            ctx.save_for_forward(saved)

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, upstream, _):
            # once_differentiable: torch refuses a second derivative
            # through this node instead of returning a wrong one.
            (saved,) = ctx.saved_tensors
            return upstream * saved, None, None

        @staticmethod
        def jvp(ctx, tangent, *_):
            (saved,) = ctx.saved_tensors
            return tangent * saved, None

    for function in (ReluWithDerivative, ReluSavingDerivative):
        # `Function.apply` binds its arguments to `forward`'s signature on
        # every call; `inspect` returns a `__signature__` instead of
        # rebuilding it (a third of the per-call cost).
        function.forward.__signature__ = inspect.signature(function.forward)
    _TORCH_FUNCTIONS.update(
        exact=ReluWithDerivative, saving=ReluSavingDerivative,
        exact_outside_transforms=ReluWithDerivativeOutsideTransforms)
    return _TORCH_FUNCTIONS


def _generic_relu(x, derivative, forward):
    @ops.custom_gradient
    def relu(inputs):
        # torch passes the saved inputs positionally and the incoming
        # gradient as `upstream`; TensorFlow and JAX pass only the gradient.
        def grad(*args, upstream=None):
            if upstream is None:
                upstream = args[0]
            return upstream * derivative(inputs)

        return forward(inputs), grad

    return relu(x)


def _sigmoid_is_one_beyond(dtype):
    """A t beyond which sigmoid(t) rounds to 1 in `dtype` (1 - sigmoid(t)
    is about exp(-t) < eps / 4) while exp(t) stays finite."""
    import torch

    return 2.0 - math.log(torch.finfo(dtype).eps)


# Below this many elements (on CPU) a second new tensor is cheap, the
# allocator reusing freed memory, and one exponential fewer wins; above
# it, faulting in a new tensor's pages costs more than an exponential.
# Measured for this kernel alone on a 2-core CPU: the two-buffer form is
# 20-30% faster up to 1M elements, even at 2M and 18% slower at 4M.
_TORCH_TWO_BUFFERS_BELOW = 2 ** 21


def _torch_bsilu_backward(x, upstream, alpha):
    """`upstream * f'(x)` for B-SiLU: f'(x) = s * (1 + (x + alpha) * (1 - s)),
    s = sigmoid(x), in as few passes and new tensors as eager PyTorch
    allows (each op is its own pass over memory)."""
    import torch

    if x.device.type == "cpu" and x.numel() < _TORCH_TWO_BUFFERS_BELOW:
        # One sigmoid, two new tensors: d = (x + alpha) * s * (1 - s) is
        # PyTorch's own one-pass sigmoid_backward kernel, written in place.
        d = torch.add(x, alpha)
        s = torch.sigmoid(x)
        torch.ops.aten.sigmoid_backward.grad_input(d, s, grad_input=d)
        d.add_(s)
    else:
        # One new tensor, the result: `softplus_backward(g, x, beta, ...)`
        # is PyTorch's one-pass kernel of `g * sigmoid(beta * x)`, used in
        # place to multiply by 1 - s (beta -1), then by s (beta 1).
        softplus_backward = torch.ops.aten.softplus_backward.grad_input
        beyond = _sigmoid_is_one_beyond(x.dtype)
        d = torch.add(x, alpha)
        softplus_backward(d, x, -1.0, beyond, grad_input=d)
        softplus_backward(d.add_(1.0), x, 1.0, beyond, grad_input=d)
    # Finite for every finite x; NaN or inf only at non-finite x, where
    # the gradient is 0. Before the upstream, whose NaNs must pass.
    return d.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0).mul_(upstream)


# In-place PyTorch kernels of `upstream * f'(x)` for the default and the
# most used surrogates (eager PyTorch runs every op as its own pass over
# memory). Other surrogates, user ones included, use the generic ops.
TORCH_FUSED_BACKWARD = {
    "bsilu": _torch_bsilu_backward,
    # SiLU's derivative is B-SiLU's with alpha 0.
    "silu": functools.partial(_torch_bsilu_backward, alpha=0.0),
}


def relu_with_derivative(x, derivative, fused_backward=None, forward=None,
                         traced_forward=None):
    """`forward(x)` (default `ops.relu(x)`) whose derivative is
    `derivative(x)`.

    Only call this on real tensors (inside a layer's `call` or eagerly),
    never on a symbolic `KerasTensor`: `sugar_relu` guarantees that.

    Args:
        x: A floating-point backend tensor.
        derivative: Function of a tensor, built from `keras.ops`.
        fused_backward: Optional PyTorch function `(x, upstream) ->
            upstream * derivative(x)`, faster for first derivatives; the
            same values to rounding.
        forward: The forward function, built from `keras.ops` (a capped
            ReLU). Defaults to `ops.relu`.
        traced_forward: Optional function equal to `forward` bit for bit
            whose own autodiff gives `derivative` (the straight-through
            form). TensorFlow computes the forward value with it, for its
            forward mode and `vectorized_map`; reverse mode still uses
            `derivative`, keeping one tensor.

    Returns:
        `forward(x)`, with the given derivative.
    """
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        transformed = torch._C._functorch.is_functorch_wrapped_tensor(x)
        if not transformed and not _torch_autograd_sees(x):
            # Inference: plain ReLU, at ReLU's cost, and traceable
            # (`torch.jit.trace`, `torch.onnx.export`).
            return (forward or _torch_relu)(x)
        kind = "exact" if transformed else "exact_outside_transforms"
        return _torch_functions()[kind].apply(
            x, derivative, fused_backward, forward or _torch_relu)
    forward = forward or ops.relu
    if backend == "jax":
        return _jax_relu(x, derivative, forward)
    if traced_forward is not None and _tensorflow_differentiates_inside(x):
        return _generic_relu(x, derivative, traced_forward)
    if _feature_maps(x) and _tensorflow_trains_under_xla(x):
        return _tensorflow_xla_relu(x, derivative, forward)
    return _generic_relu(x, derivative, forward)


def _torch_autograd_sees(x):
    """Whether PyTorch's autograd can see `x`: reverse mode (grad enabled
    and `x` requiring grad) or forward mode (a dual level). `torch.func`
    transforms are told by the tensor, `is_functorch_wrapped_tensor`."""
    import torch

    return ((torch.is_grad_enabled() and x.requires_grad)
            or torch.autograd.forward_ad._current_level >= 0)


def _torch_may_differentiate(x):
    """Whether any of PyTorch's autodiff modes can see `x`."""
    import torch

    return (_torch_autograd_sees(x)
            or torch._C._functorch.is_functorch_wrapped_tensor(x))


def _tensorflow_differentiates_inside(x):
    """Whether TensorFlow may differentiate the ops inside a
    `tf.custom_gradient` rather than use its gradient: a forward-mode
    `ForwardAccumulator` watching `x`, or the body of a `vectorized_map`
    (pfor converts each op, losing the custom gradient). Elsewhere
    (inference, exported graphs, reverse mode) the forward value is plain
    ReLU, at ReLU's cost."""
    import tensorflow as tf
    from tensorflow.python.eager import forwardprop_util

    if forwardprop_util.pack_tangents([x]).tangents:
        return True
    if tf.executing_eagerly():
        return False
    # pfor traces the mapped function under this name scope; a tf.function
    # called there is traced in a graph of its own, whose outer graphs
    # show it.
    graph = tf.compat.v1.get_default_graph()
    while graph is not None:
        if "loop_body" in graph.get_name_scope().split("/"):
            return True
        graph = getattr(graph, "outer_graph", None)
    return False


def _tensorflow_trains_under_xla(x):
    """Whether a TensorFlow tape watches `x` while XLA compiles this op (a
    `jit_compile=True` training step; Keras' default on TensorFlow). A
    tape that watches neither `x` nor what it comes from (the weights)
    does not count: a compiled `predict` traced inside it stays plain
    ReLU."""
    import tensorflow as tf
    from tensorflow.python.eager import record
    from tensorflow.python.ops import control_flow_util

    return (record.should_record_backprop([x])
            and control_flow_util.GraphOrParentsInXlaContext(
                tf.compat.v1.get_default_graph()))


def _feature_maps(x):
    """Whether `x` has rank 4 or more (a 2-D convolution's feature maps,
    typically), where XLA runs f'(x) faster in the forward pass (see
    `_exactly_zero`). A TensorFlow tensor of unknown rank is not."""
    rank = x.shape.rank if hasattr(x.shape, "rank") else len(x.shape)
    return rank is not None and rank >= 4


def _exactly_zero(x, d):
    """+0 for every `x` and `d`, computed from both (XLA folds neither
    `t - t` nor `x - x` for floats), so that a value minus it is the value
    bit for bit (the sign of zero included) and depends on `d`.

    Under XLA (TensorFlow's `jit_compile=True`, JAX's `jit`) this decides
    where f'(x) is computed, so it is used where that pays. Measured on a
    2-core CPU (`keras-sugar bench`, interleaved runs): in a VGG step,
    f'(x) computed in the backward pass, fused with the product by the
    upstream gradient, cost 1.05x ReLU's step on TensorFlow and 1.03x on
    JAX; computed in the forward pass, in a loop of its own that nothing
    waits for until the backward pass, 0.99x and 1.00x. After a Dense
    layer (rank 2, batches of 64 to 1024) it is the other way round (JAX
    MLP step 1.02x against 1.06x-1.10x), so there f'(x) stays in the
    backward pass (`_feature_maps`). Either way one tensor is kept.
    """
    t = (x - x) * d
    return ops.where(ops.isfinite(t), t - t, ops.zeros_like(t))


def _tensorflow_xla_relu(x, derivative, forward):
    """`_generic_relu` for a TensorFlow training step compiled by XLA:
    f'(x) computed in the forward pass and kept (see `_exactly_zero`). In
    a graph the tape records how f'(x) was computed, so a second
    derivative still differentiates it.
    """
    import tensorflow as tf

    @tf.custom_gradient
    def relu(inputs):
        d = derivative(inputs)
        return forward(inputs) - _exactly_zero(inputs, d), lambda g: g * d

    return relu(x)


def relu_saving_derivative(x, derivative, forward=None):
    """`forward(x)` (default `ops.relu(x)`) whose derivative is
    `derivative(x)`, computed in the forward pass and kept for the
    backward pass (first derivatives only: a second one is refused with
    `FIRST_ORDER_ONLY`), on JAX and PyTorch; None on other backends, which
    use the generic formula.
    """
    backend = keras.backend.backend()
    if backend == "torch":
        if not _torch_may_differentiate(x):
            return (forward or _torch_relu)(x)
        return _torch_functions()["saving"].apply(
            x, derivative, forward or _torch_relu)[0]
    if backend == "jax":
        return _jax_relu(x, derivative, forward or ops.relu,
                         first_order_only=True)
    return None


def _torch_relu(x):
    import torch

    return torch.relu(x)  # Without Keras' dispatch: this path is hot.
