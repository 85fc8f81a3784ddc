"""PyTorch: a `torch.autograd.Function` with `setup_context`, a vmap rule,
a forward-mode rule and a differentiable backward (Keras'
`ops.custom_gradient` is a Function without `setup_context`: no
`torch.vmap`, so `ops.vectorized_map` fails), fused in-place backward
kernels for the most used surrogates, and plain ReLU where no autodiff
sees the input or a graph is captured for export."""

import functools
import inspect
import math

import keras
import torch

DIFFERENTIATES = True


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


for _function in (ReluWithDerivative, ReluSavingDerivative):
    # `Function.apply` binds its arguments to `forward`'s signature on
    # every call; `inspect` returns a `__signature__` instead of
    # rebuilding it (a third of the per-call cost).
    _function.forward.__signature__ = inspect.signature(_function.forward)
del _function


def _sigmoid_is_one_beyond(dtype):
    """A t beyond which sigmoid(t) rounds to 1 in `dtype` (1 - sigmoid(t)
    is about exp(-t) < eps / 4) while exp(t) stays finite."""
    return 2.0 - math.log(torch.finfo(dtype).eps)


# Below this many elements (on CPU) a second new tensor is cheap, the
# allocator reusing freed memory, and one exponential fewer wins; above
# it, faulting in a new tensor's pages costs more than an exponential.
# Measured for this kernel alone on a 2-core CPU: the two-buffer form is
# 20-30% faster up to 1M elements, even at 2M and 18% slower at 4M.
_TWO_BUFFERS_BELOW = 2 ** 21


def _bsilu_backward(x, upstream, alpha):
    """`upstream * f'(x)` for B-SiLU: f'(x) = s * (1 + (x + alpha) * (1 - s)),
    s = sigmoid(x), in as few passes and new tensors as eager PyTorch
    allows (each op is its own pass over memory)."""
    if x.device.type == "cpu" and x.numel() < _TWO_BUFFERS_BELOW:
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


# In-place kernels of `upstream * f'(x)` for the default and the most used
# surrogates (eager PyTorch runs every op as its own pass over memory).
# Other surrogates, user ones included, use the generic ops.
FUSED_BACKWARD = {
    "bsilu": _bsilu_backward,
    # SiLU's derivative is B-SiLU's with alpha 0.
    "silu": functools.partial(_bsilu_backward, alpha=0.0),
}


def relu_with_derivative(x, derivative, fused_backward=None, forward=None,
                         traced_forward=None):
    """`forward(x)` (default ReLU) whose derivative is `derivative(x)`,
    keeping `x` for the backward pass. `fused_backward`: an optional
    `(x, upstream) -> upstream * derivative(x)`, faster for first
    derivatives (the same values to rounding). `traced_forward` is for
    TensorFlow."""
    if _captured_for_export():
        return _plain(x, forward)
    transformed = torch._C._functorch.is_functorch_wrapped_tensor(x)
    if not transformed and not _autograd_sees(x):
        # Inference: plain ReLU, at ReLU's cost, and traceable.
        return (forward or _relu)(x)
    function = (ReluWithDerivative if transformed
                else ReluWithDerivativeOutsideTransforms)
    return function.apply(x, derivative, fused_backward, forward or _relu)


def relu_saving_derivative(x, derivative, forward=None):
    """`forward(x)` whose derivative is `derivative(x)`, computed in the
    forward pass and kept (first derivatives only: torch refuses a
    second one through this node)."""
    if _captured_for_export():
        return _plain(x, forward)
    if not _may_differentiate(x):
        return (forward or _relu)(x)
    return ReluSavingDerivative.apply(x, derivative, forward or _relu)[0]


def _captured_for_export():
    """Whether the model is being turned into a graph that runs without
    Python (`torch.jit.trace`, as Keras' OpenVINO export does under
    autograd; `torch.export`, as the `torch`, ONNX and LiteRT exports
    do): such a graph serves inference, and an `autograd.Function` would
    be a Python call in it (`torch.jit.trace` refuses it)."""
    return torch.jit.is_tracing() or torch.compiler.is_exporting()


def _plain(x, forward):
    """The forward value with exactly the operations Keras' own
    (capped) ReLU records, so that an exported graph is the ReLU
    model's."""
    return (forward or keras.activations.relu)(x)


def _autograd_sees(x):
    """Whether PyTorch's autograd can see `x`: reverse mode (grad enabled
    and `x` requiring grad) or forward mode (a dual level). `torch.func`
    transforms are told by the tensor, `is_functorch_wrapped_tensor`."""
    return ((torch.is_grad_enabled() and x.requires_grad)
            or torch.autograd.forward_ad._current_level >= 0)


def _may_differentiate(x):
    """Whether any of PyTorch's autodiff modes can see `x`."""
    return (_autograd_sees(x)
            or torch._C._functorch.is_functorch_wrapped_tensor(x))


def _relu(x):
    return torch.relu(x)  # Without Keras' dispatch: this path is hot.
