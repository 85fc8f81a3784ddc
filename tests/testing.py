"""Test helpers: gradients and compilation per backend, save/load round trips,
the command line run in this process.

This is the only module that imports backend libraries directly: Keras has
no backend-agnostic `grad`, and tests need one.
"""

import contextlib
import os
import re
import unittest.mock

import keras
import numpy as np
from keras import ops

BACKEND = keras.backend.backend()


def to_numpy(x):
    """Converts a backend tensor (any dtype, bfloat16 included) to numpy."""
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) == "bfloat16":
        x = ops.cast(x, "float32")
    return np.asarray(ops.convert_to_numpy(x))


def assert_allclose(actual, expected, rtol=1e-6, atol=1e-6, err_msg=""):
    np.testing.assert_allclose(to_numpy(actual), to_numpy(expected),
                               rtol=rtol, atol=atol, err_msg=err_msg)


# The compiled modes a training step runs in on this backend: XLA (JAX's
# jit; TensorFlow's jit_compile=True; torch.compile), and on TensorFlow its
# graph without XLA, Keras' default compile() on a CPU and under
# tf.distribute. There a tensor's backward runs as TensorFlow's own ops
# below `_XLA_BACKWARD_FROM` elements (most test tensors: "graph") and as
# an XLA-compiled function from there on, decided as the step runs where
# the batch size is unknown ("graph, large": that threshold lowered to 1
# and the step traced for any shape).
GRAPH_LARGE = "graph, large"
COMPILED = ((True, "graph", GRAPH_LARGE) if BACKEND == "tensorflow"
            else (True,))


def _tensorflow_function(step, compiled):
    """`step` of one tensor as a `tf.function` in the mode `compiled`."""
    import tensorflow as tf

    if compiled != GRAPH_LARGE:
        return tf.function(step, jit_compile=compiled is True)

    from keras_sugar.native import tensorflow as native_tensorflow

    def large(t):
        # The threshold is read as the step is traced, at the first call.
        with unittest.mock.patch.object(native_tensorflow,
                                        "_XLA_BACKWARD_FROM", 1):
            function = tf.function(step, input_signature=[tf.TensorSpec(
                [None] * t.shape.rank, t.dtype)])
            return function(t)

    return large


def value_and_gradient(fn, x, compiled=False):
    """Returns `fn(x)` and d sum(fn(x)) / dx, both as numpy arrays.

    For an elementwise `fn` the gradient is the elementwise derivative.

    Args:
        fn: Function of one tensor, built from `keras.ops`.
        x: Numpy array.
        compiled: Compile with XLA (TensorFlow, JAX) or `torch.compile`;
            `"graph"`, `GRAPH_LARGE` (see `COMPILED`): TensorFlow's graph
            without XLA.
    """
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def step(t):
            with tf.GradientTape() as tape:
                tape.watch(t)
                y = fn(t)
                total = tf.reduce_sum(tf.cast(y, "float32"))
            return y, tape.gradient(total, t)

        if compiled:
            step = _tensorflow_function(step, compiled)
        y, g = step(tf.convert_to_tensor(x))
    elif BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        def total(t):
            y = fn(t)
            return jnp.sum(y.astype("float32")), y

        step = jax.value_and_grad(total, has_aux=True)
        if compiled:
            step = jax.jit(step)
        (_, y), g = step(jnp.asarray(x))
    elif BACKEND == "torch":
        import torch

        def step(t):
            y = fn(t)
            (g,) = torch.autograd.grad(y.float().sum(), t)
            return y, g

        if compiled:
            torch._dynamo.reset()
            step = torch.compile(step, fullgraph=False)
        t = ops.convert_to_tensor(x).detach().requires_grad_(True)
        y, g = step(t)
        y, g = y.detach(), g.detach()
    else:
        raise NotImplementedError(BACKEND)
    return to_numpy(y), to_numpy(g)


def weight_gradients(model, x):
    """d sum(model(x)) / dw for each of `model`'s trainable weights, by
    the backend's own autodiff in eager mode, as numpy arrays."""
    weights = model.trainable_variables
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            total = tf.reduce_sum(model(x))
        return [to_numpy(g) for g in tape.gradient(total, weights)]
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        others = [v.value for v in model.non_trainable_variables]

        def total(values):
            return jnp.sum(model.stateless_call(values, others, x)[0])

        return [to_numpy(g) for g in jax.grad(total)(
            [v.value for v in weights])]
    if BACKEND == "torch":
        import torch

        total = model(x).sum()
        return [to_numpy(g) for g in torch.autograd.grad(
            total, [v.value for v in weights])]
    raise NotImplementedError(BACKEND)


def on_feature_maps(fn):
    """`fn` of a 1-D tensor applied to it reshaped as rank-4 feature maps
    `(1, 1, n, 1)`, the result flattened back: under XLA the default
    computes f'(x) of feature maps in the forward pass (see
    `keras_sugar.native`), of other tensors in the backward pass."""
    return lambda t: ops.reshape(fn(ops.reshape(t, (1, 1, -1, 1))), (-1,))


def of_unknown_rank(fn):
    """`fn`, on TensorFlow traced for inputs of unknown rank (a
    `tf.function` with `TensorSpec(None)`, as shapeless signatures and
    some `tf.data` maps give); on JAX and PyTorch, whose tensors always
    have a rank, `fn` itself."""
    if BACKEND != "tensorflow":
        return fn
    import tensorflow as tf

    return tf.function(fn, input_signature=[tf.TensorSpec(None, "float32")])


@contextlib.contextmanager
def float64_enabled():
    """Lets float64 tensors stay float64 (JAX truncates them by default)."""
    if BACKEND == "jax":
        import jax

        # `jax.enable_x64` replaced `jax.experimental.enable_x64` (gone
        # from newer releases) after jax 0.4.30, the lowest tested.
        if hasattr(jax, "enable_x64"):
            enable_x64 = jax.enable_x64
        else:
            from jax.experimental import enable_x64
        with enable_x64(True):
            yield
    else:
        yield


def keras_takes_layer_activations():
    """Whether this Keras rebuilds a layer held as an activation from its
    config (`Dense(activation=keras.layers.ReLU(...))`); Keras 3.9 does
    not."""
    relu = keras.saving.serialize_keras_object(keras.layers.ReLU())
    try:
        keras.activations.get(relu)
    except ValueError:
        return False
    return True


def save_and_load(model, directory, name="model.keras"):
    """Saves `model` in the `.keras` format and loads it back (safe mode)."""
    path = os.path.join(str(directory), name)
    model.save(path)
    return keras.saving.load_model(path, safe_mode=True)


def second_derivative(fn, x, compiled=False):
    """d/dx of the elementwise derivative of `fn` (sum of `fn`'s gradient),
    as numpy; for an elementwise `fn` this is f'' elementwise. None where
    the backend's autodiff finds no second derivative (TensorFlow's None,
    a torch gradient without grad_fn), as for a piecewise-linear `fn`.
    `compiled`: with XLA (TensorFlow, JAX) or `torch.compile`."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def second_of(t):
            with tf.GradientTape() as outer:
                outer.watch(t)
                with tf.GradientTape() as inner:
                    inner.watch(t)
                    total = tf.reduce_sum(fn(t))
                first = inner.gradient(total, t)
            return outer.gradient(first, t)

        if compiled:
            second_of = _tensorflow_function(second_of, compiled)
        second = second_of(tf.convert_to_tensor(x))
        return None if second is None else to_numpy(second)
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        first = jax.grad(lambda t: jnp.sum(fn(t)))
        second_of = jax.grad(lambda t: jnp.sum(first(t)))
        if compiled:
            second_of = jax.jit(second_of)
        return to_numpy(second_of(jnp.asarray(x)))
    if BACKEND == "torch":
        import torch

        def second_of(t):
            (first,) = torch.autograd.grad(fn(t).sum(), t, create_graph=True)
            if not first.requires_grad:
                return None
            (second,) = torch.autograd.grad(first.sum(), t)
            return second

        # `compiled` is ignored: torch.compile refuses double backward
        # ("aot_autograd does not currently support double backward").
        second = second_of(torch.as_tensor(x).requires_grad_(True))
        return None if second is None else to_numpy(second.detach())
    raise NotImplementedError(BACKEND)


def forward_mode_derivative(fn, x):
    """The Jacobian-vector product of `fn` at `x` with a vector of ones,
    by forward-mode autodiff, as numpy."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        t = tf.convert_to_tensor(x)
        with tf.autodiff.ForwardAccumulator(t, tf.ones_like(t)) as acc:
            y = fn(t)
        return to_numpy(acc.jvp(y))
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        t = jnp.asarray(x)
        return to_numpy(jax.jvp(fn, (t,), (jnp.ones_like(t),))[1])
    if BACKEND == "torch":
        import torch

        t = torch.as_tensor(x)
        return to_numpy(torch.func.jvp(fn, (t,), (torch.ones_like(t),))[1])
    raise NotImplementedError(BACKEND)


def command_line(args, capsys):
    """Runs the `keras-sugar` command in this process; returns `(status,
    stdout, stderr)`, the status as the process would exit with."""
    from keras_sugar.experiments import cli

    try:
        status = cli.main(args)
    except SystemExit as exit:
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def runs_begun_by_workers(output, workers=2):
    """How many runs the workers of `compare --jobs workers` began, from
    their progress lines in `output` ("[worker k] run i/N: ...", k from
    1). How many each worker takes is a race: on a busy machine the first
    up may take them all."""
    return len(re.findall(rf"^\[worker [1-{workers}]\] run ", output,
                          re.M))


def trained_runs(monkeypatch):
    """A list that gets the `(activation, seed)` of every run
    `compare.Trainer` trains from now on, in order."""
    from keras_sugar.experiments import compare

    trained = []
    original = compare.Trainer.run

    def run(self, seed, *args, **kwargs):
        trained.append((self.spec.text, seed))
        return original(self, seed, *args, **kwargs)

    monkeypatch.setattr(compare.Trainer, "run", run)
    return trained
