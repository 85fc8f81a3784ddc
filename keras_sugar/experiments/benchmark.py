"""Speed and memory of SugarReLU against plain ReLU and GELU, in one run.

Measures, for the current backend: (a) the activation alone, forward and
backward, on a large tensor; (b) one `train_on_batch` step of a VGG-style
CNN and of an MLP; (c) what a training step keeps for its backward pass.
Every SUGAR implementation is measured beside `relu` and `gelu`, so the
ratios come from the same process, machine and moment.

This is the one module that imports backend libraries: Keras has no
backend-agnostic gradient function or memory statistics.

Run: `keras-sugar bench [--quick] [--json out.json]`.
"""

import json
import statistics
import time

import keras
import numpy as np
from keras import ops

from keras_sugar import implementations
from keras_sugar.experiments import architectures
from keras_sugar.experiments.bench_command import DEFAULTS
from keras_sugar.activations import SugarReLU

SUGAR_IMPLEMENTATIONS = ("straight_through", "multiplicative",
                         "custom_gradient")


def variants(surrogate=DEFAULTS["surrogate"]):
    """Returns `{label: activation}` for every measured variant."""
    found = {"relu": keras.activations.relu, "gelu": keras.activations.gelu}
    for name in SUGAR_IMPLEMENTATIONS:
        found[f"sugar/{name}"] = SugarReLU(surrogate, implementation=name)
    return found


def _summary(seconds):
    ms = [1000.0 * s for s in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms),
            "max_ms": max(ms)}


def _timed(step, repeats, warmup):
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return _summary(seconds)


def _activation_step(activation, x, upstream):
    """A compiled (TF, JAX) or eager (torch) forward+backward, blocking."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def grad_sum(t):
            with tf.GradientTape() as tape:
                tape.watch(t)
                loss = tf.reduce_sum(activation(t) * upstream)
            return tf.reduce_sum(tape.gradient(loss, t))

        return lambda: float(grad_sum(x))
    if backend == "jax":
        import jax

        grad = jax.jit(lambda t: jax.grad(
            lambda v: (activation(v) * upstream).sum())(t).sum())
        return lambda: float(grad(x))
    if backend == "torch":
        def step():
            t = x.detach().requires_grad_(True)
            activation(t).backward(upstream)
            return float(t.grad.sum())

        return step
    raise NotImplementedError(f"No benchmark for backend '{backend}'.")


def time_activation(activation, shape, repeats, warmup=2):
    """Median/min/max milliseconds of one forward+backward of `activation`."""
    rng = np.random.default_rng(0)
    x = ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))
    upstream = ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))
    return _timed(_activation_step(activation, x, upstream), repeats, warmup)


def build_model(kind, activation, quick):
    """The benchmarked models: a no-BN VGG-style CNN (32x32x3) and an MLP."""
    if kind == "vgg":
        layout = ([16, 16, "M", 32, 32, "M", 64, 64, "M"] if not quick
                  else [4, "M", 8])
        return architectures.vgg((32, 32, 3), 10, activation, layout=layout,
                                 width=1.0, dense_units=128)
    return architectures.mlp((784,), 10, activation, depth=4,
                             units=512 if not quick else 16)


def _batch(model, batch_size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch_size,) + model.input_shape[1:]).astype(
        "float32")
    y = rng.integers(0, 10, size=(batch_size,)).astype("int32")
    return x, y


def _compiled(model):
    # jit where Keras compiles by default (XLA on TF and JAX); torch eager,
    # as most torch users train.
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True),
                  jit_compile=keras.backend.backend() != "torch")
    return model


def time_train_step(kind, activation, batch_size, repeats, quick, warmup=3):
    """Median/min/max milliseconds of one `train_on_batch` step."""
    keras.utils.set_random_seed(0)
    model = _compiled(build_model(kind, activation, quick))
    x, y = _batch(model, batch_size)
    return _timed(lambda: model.train_on_batch(x, y), repeats, warmup)


def train_step_memory(kind, activation, batch_size, quick):
    """Bytes a training step needs beyond the weights, where measurable.

    JAX: temporary buffers of the compiled forward+backward (XLA memory
    analysis). torch: bytes autograd saves for the backward pass. TF has no
    CPU allocator statistics: `None`.
    """
    keras.utils.set_random_seed(0)
    model = build_model(kind, activation, quick)
    x, y = _batch(model, batch_size)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def loss(trainable, non_trainable):
            logits, _ = model.stateless_call(trainable, non_trainable, x)
            return loss_fn(y, logits)

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        compiled = jax.jit(jax.grad(loss)).lower(
            trainable, non_trainable).compile()
        return int(compiled.memory_analysis().temp_size_in_bytes)
    if backend == "torch":
        import torch

        saved = {}

        def pack(tensor):
            # Count each storage once: autograd often saves the same tensor
            # for several nodes.
            key = (tensor.untyped_storage().data_ptr(), tensor.dtype)
            saved[key] = tensor.untyped_storage().nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = loss_fn(ops.convert_to_tensor(y), model(x))
        loss.backward()
        parameters = {v.value.untyped_storage().data_ptr()
                      for v in model.trainable_variables}
        return int(sum(n for (ptr, _), n in saved.items()
                       if ptr not in parameters))
    return None


def run(quick=False, surrogate=DEFAULTS["surrogate"], repeats=None,
        batch_size=DEFAULTS["batch_size"], activation_shape=None):
    """Runs every measurement and returns the results as a dict."""
    repeats = repeats or (3 if quick else 30)
    activation_shape = activation_shape or ((64, 64) if quick
                                            else (64, 64, 32, 32))
    batch_size = 8 if quick else batch_size
    results = {
        "backend": keras.backend.backend(), "keras": keras.__version__,
        "surrogate": surrogate, "repeats": repeats,
        "batch_size": batch_size, "activation_shape": list(activation_shape),
        "auto": implementations.resolve(
            "auto", SugarReLU(surrogate).surrogate),
        "rows": {},
    }
    for label, activation in variants(surrogate).items():
        results["rows"][label] = {
            "activation": time_activation(activation, activation_shape,
                                          repeats),
            "vgg_step": time_train_step("vgg", activation, batch_size,
                                        repeats, quick),
            "mlp_step": time_train_step("mlp", activation, batch_size,
                                        repeats, quick),
            "vgg_memory_bytes": train_step_memory("vgg", activation,
                                                  batch_size, quick),
        }
    return results


def _ratio(value, reference):
    if value is None or not reference:
        return "n/a"
    return f"{value / reference:.2f}x"


def format_table(results):
    """Renders the results as a plain-text table with ratios."""
    rows = results["rows"]
    lines = [
        f"backend={results['backend']} keras={results['keras']} "
        f"surrogate={results['surrogate']} repeats={results['repeats']} "
        f"batch={results['batch_size']} auto={results['auto']}",
        f"{'variant':<24}{'measure':<12}{'median ms':>10}{'min':>8}"
        f"{'max':>8}{'/relu':>8}{'/gelu':>8}",
    ]
    for measure in ("activation", "vgg_step", "mlp_step"):
        relu = rows["relu"][measure]["median_ms"]
        gelu = rows["gelu"][measure]["median_ms"]
        for label, row in rows.items():
            t = row[measure]
            lines.append(
                f"{label:<24}{measure:<12}{t['median_ms']:>10.2f}"
                f"{t['min_ms']:>8.2f}{t['max_ms']:>8.2f}"
                f"{_ratio(t['median_ms'], relu):>8}"
                f"{_ratio(t['median_ms'], gelu):>8}")
    relu_memory = rows["relu"]["vgg_memory_bytes"]
    gelu_memory = rows["gelu"]["vgg_memory_bytes"]
    for label, row in rows.items():
        memory = row["vgg_memory_bytes"]
        shown = "n/a" if memory is None else f"{memory / 2**20:.2f} MiB"
        lines.append(f"{label:<24}{'vgg_memory':<12}{shown:>10}{'':>16}"
                     f"{_ratio(memory, relu_memory):>8}"
                     f"{_ratio(memory, gelu_memory):>8}")
    return "\n".join(lines)


def main(args):
    """Runs `keras-sugar bench` with the parsed arguments."""
    results = run(quick=args.quick, surrogate=args.surrogate,
                  repeats=args.repeats, batch_size=args.batch_size)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"wrote {args.json}")
    return results
