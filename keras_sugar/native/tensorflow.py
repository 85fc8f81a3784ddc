"""TensorFlow: `tf.custom_gradient` for reverse mode; its forward mode
(`ForwardAccumulator`) and `vectorized_map` (pfor) differentiate the ops
inside instead, so there the forward value is computed in a form whose own
derivative is the surrogate's (`traced_forward`). Under XLA (a compiled
training step) f'(x) of feature maps is computed in the forward pass
(`xla.exactly_zero`). A graph traced where no tape records the input
(inference, `predict`, every `model.export` format) holds Keras' own ReLU
operations, the derivative attached to them for a later symbolic
gradient. A training step traced as a graph without XLA (Keras' default
on a CPU) runs the backward pass's `upstream * f'(x)` of a large tensor
as one function compiled by XLA (`_graph_backward`)."""

import itertools

import tensorflow as tf
from keras import ops
from tensorflow.python.eager import forwardprop_util
from tensorflow.python.eager import record
from tensorflow.python.ops import control_flow_util

from keras_sugar.native import xla

DIFFERENTIATES = True
FUSED_BACKWARD = {}

# Unique names for the gradients registered by `_relu_in_graph`.
_GRADIENT_NAMES = itertools.count()


def relu_with_derivative(x, derivative, fused_backward=None, forward=None,
                         traced_forward=None):
    """`forward(x)` (default `ops.relu(x)`) whose derivative is
    `derivative(x)`, keeping `x` for the backward pass (under XLA, for
    tensors of rank 4 or more, `derivative(x)` computed in the forward
    pass instead).

    Args:
        x: A floating-point tensor (a variable is read first).
        derivative: Function of a tensor, built from `keras.ops`.
        fused_backward: For PyTorch; unused here.
        forward: The forward function, built from `keras.ops` (a capped
            ReLU). Defaults to `ops.relu`.
        traced_forward: Optional function equal to `forward` bit for bit
            whose own autodiff gives `derivative` (the straight-through
            form), used where TensorFlow differentiates the ops inside a
            custom gradient (forward mode, `vectorized_map`).

    Returns:
        `forward(x)`, with the given derivative.
    """
    if isinstance(x, tf.Variable):
        # tf.custom_gradient takes tensors; read outside it, the variable
        # gets its gradient through the read.
        x = tf.convert_to_tensor(x)
    if traced_forward is not None and _differentiates_inside(x):
        return _custom_gradient_relu(x, derivative, traced_forward)
    forward = forward or ops.relu
    if xla.feature_maps(x) and _trains_under_xla(x):
        return _xla_relu(x, derivative, forward)
    if tf.executing_eagerly():
        return _custom_gradient_relu(x, derivative, forward)
    if not record.should_record_backprop([x]):
        return _relu_in_graph(x, derivative, forward)
    if _in_xla():  # The whole step is compiled already.
        return _custom_gradient_relu(x, derivative, forward)
    return _custom_gradient_relu(x, derivative, forward,
                                 backward=_graph_backward(derivative))


def relu_saving_derivative(x, derivative, forward=None):
    """None: TensorFlow uses the generic `multiplicative` formula."""
    return None


def _custom_gradient_relu(x, derivative, forward, backward=None):
    """`forward(x)` with the gradient `backward(upstream, x)`, by default
    `upstream * derivative(x)`."""
    backward = backward or (lambda upstream, t: upstream * derivative(t))

    @tf.custom_gradient
    def relu(inputs):
        return forward(inputs), lambda upstream: backward(upstream, inputs)

    return relu(x)


# Elements from which `_xla_backward` beats TensorFlow's own ops in a
# training step without XLA. Measured (train steps of a 4x512 MLP, ReLU's
# time = 1): at batch 64 (32,768 elements per activation) the ops 1.02x,
# the XLA function 1.10x; at batch 256 1.09x against 1.04x, at 1024 1.14x
# against 1.08x; VGG feature maps (524,288 to 2,097,152) 1.25x against
# 1.07x. Calling the XLA function costs about as much as the ops it saves
# on a small tensor.
_XLA_BACKWARD_FROM = 2 ** 16


def _graph_backward(derivative):
    """`(upstream, x) -> upstream * derivative(x)` for a training step
    TensorFlow runs as a graph without XLA: TensorFlow's own ops for a
    tensor below `_XLA_BACKWARD_FROM` elements, the XLA-compiled
    `_xla_backward` from there on; decided by the static shape where it
    tells, else when the step runs (a batch of unknown size)."""
    compiled = _xla_backward(derivative)

    def plain(upstream, x):
        return upstream * derivative(x)

    def backward(upstream, x):
        large = _has_at_least(x, _XLA_BACKWARD_FROM)
        if large is None:  # A batch of unknown size: decided as it runs.
            return tf.cond(tf.size(x) >= _XLA_BACKWARD_FROM,
                           lambda: compiled(upstream, x),
                           lambda: plain(upstream, x))
        return (compiled if large else plain)(upstream, x)

    return backward


def _has_at_least(x, elements):
    """Whether `x` has at least `elements` elements, from its static
    shape; None where the shape does not tell."""
    size = x.shape.num_elements()
    if size is not None:
        return size >= elements
    per_example = x.shape[1:].num_elements() if x.shape.rank else None
    if per_example is not None and per_example >= elements:
        return True
    return None


def _xla_backward(derivative):
    """`upstream * derivative(x)` as one XLA-compiled function, for a
    training step TensorFlow runs as a graph without XLA (Keras' default
    `compile()` on a CPU and under `tf.distribute`).

    There each elementwise op of f'(x) is a kernel of its own that reads
    and writes the whole feature map; compiled, they are one loop over it,
    as ReLU's own gradient is. A second derivative differentiates the
    function as any other."""
    return tf.function(lambda upstream, x: upstream * derivative(x),
                       jit_compile=True, autograph=False,
                       reduce_retracing=True)


def _relu_in_graph(x, derivative, forward):
    """`forward(x)` in a graph that no tape records: exactly the
    operations Keras' own (capped) ReLU adds, whose gradient, if the graph
    is differentiated later (a `tf.function` traced outside a tape, then
    called inside one), is `derivative(x)`.

    `tf.custom_gradient` would add an `IdentityN` passing `x` on, which
    TensorFlow's own converters drop but OpenVINO's keeps as an extra
    model output. Here the rectifier (`Relu`, `Relu6`) gets the derivative
    and a cap's `clip_by_value` (`Minimum`, `Maximum`) passes the gradient
    on: `upstream * derivative(x)`, as from `tf.custom_gradient`.
    """
    rectifier = f"SugarReLU_{next(_GRADIENT_NAMES)}"
    clip = f"{rectifier}_clip"
    # Registered under a new name per call, as tf.custom_gradient does;
    # `x` is closed over (a SavedModel traces these with no `op`).
    tf.RegisterGradient(rectifier)(
        lambda unused_op, upstream: upstream * derivative(x))
    tf.RegisterGradient(clip)(lambda unused_op, upstream: (upstream, None))
    graph = tf.compat.v1.get_default_graph()
    with graph.gradient_override_map({"Relu": rectifier, "Relu6": rectifier,
                                      "Minimum": clip, "Maximum": clip}):
        return forward(x)


def _differentiates_inside(x):
    """Whether TensorFlow may differentiate the ops inside a
    `tf.custom_gradient` rather than use its gradient: a forward-mode
    `ForwardAccumulator` watching `x`, or the body of a `vectorized_map`
    (pfor converts each op, losing the custom gradient). Elsewhere
    (inference, exported graphs, reverse mode) the forward value is plain
    ReLU, at ReLU's cost."""
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


def _trains_under_xla(x):
    """Whether a TensorFlow tape watches `x` while XLA compiles this op (a
    `jit_compile=True` training step; Keras' default on TensorFlow). A
    tape that watches neither `x` nor what it comes from (the weights)
    does not count: a compiled `predict` traced inside it stays plain
    ReLU."""
    return record.should_record_backprop([x]) and _in_xla()


def _in_xla():
    """Whether XLA compiles the graph being traced (or one around it)."""
    return control_flow_util.GraphOrParentsInXlaContext(
        tf.compat.v1.get_default_graph())


def _xla_relu(x, derivative, forward):
    """`_custom_gradient_relu` for a training step compiled by XLA: f'(x)
    computed in the forward pass and kept (see `xla.exactly_zero`). In a
    graph the tape records how f'(x) was computed, so a second derivative
    still differentiates it.
    """
    @tf.custom_gradient
    def relu(inputs):
        d = derivative(inputs)
        return (forward(inputs) - xla.exactly_zero(inputs, d),
                lambda g: _product_for_xla(g, d))

    return relu(x)


def _product_for_xla(upstream, d):
    """`upstream * d`, the same values (NaN from either side included),
    written as a select: XLA's CPU backend leaves a lone product as a
    kernel of its own and splits the bias gradient's sum over it into
    `reduce-window` loops, but hands the sum over a fused select to
    XNNPACK, as it does for ReLU's own gradient (measured on a VGG step
    with `jit_compile=True`: 1.10x ReLU's time as a product, 0.98x as
    this select; its HLO has ReLU's six `__ynn_fusion` reductions)."""
    return tf.where(d == d, upstream * d, d)  # d == d: false only at NaN.
