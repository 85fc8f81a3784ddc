"""Speed and memory of SugarReLU against plain ReLU and GELU, in one run.

Measures, for the current backend: (a) the activation alone, forward and
backward, on a large tensor; (b) one `train_on_batch` step of a VGG-style
CNN and of an MLP; (c) what a training step of each keeps for its
backward pass; (d) inference of the VGG model: `predict_on_batch`
uncompiled and compiled, and on TensorFlow the `serve` endpoint of
`model.export` and the number of TFLite operations it converts to.
Every SUGAR implementation is measured beside `relu` and `gelu`, and for
the activation alone beside a reference written in the backend itself
(B-SiLU, outside Keras), so the cost of going through Keras shows.

A noisy machine cannot fool it: the variants are interleaved round by
round (each round times every variant once, in a rotating order), each
round's time is divided by ReLU's in the same round, and a ratio is
reported as the median over rounds with its interquartile spread; a spread
wider than `NOISY_SPREAD` is flagged as too wide to conclude from.

This module and `xla_memory` are the harness's only imports of backend
libraries: Keras has no backend-agnostic gradient function or memory
statistics.

Run: `keras-sugar bench [--quick] [--torch-compile] [--json out.json]`.
"""

import functools
import json
import statistics
import time

import keras
import numpy as np
from keras import ops

from keras_sugar import implementations
from keras_sugar import native
from keras_sugar.experiments import bench_models
from keras_sugar.experiments import xla_memory
from keras_sugar.experiments.bench_command import DEFAULTS
from keras_sugar.activations import SugarReLU

# Timed measures, in the order of the table: the activation alone, VGG and
# MLP training steps, and VGG inference (`predict_on_batch` without and
# with compilation; TensorFlow's exported `serve`).
MEASURES = ("activation", "vgg_step", "mlp_step", "predict", "predict_jit",
            "serve")

# An interquartile spread of the per-round ratio wider than this (10% of
# ReLU's time) is too wide to tell a few percent apart.
NOISY_SPREAD = 0.10


def interleaved(steps, rounds, warmup):
    """Times each step once per round, the order rotating every round, so
    a slow moment of a busy machine falls on every variant alike.

    Args:
        steps: `{label: function}`, each running one blocking step.
        rounds: Number of rounds.
        warmup: Untimed calls of each step first (compilation, caches).

    Returns:
        `{label: [seconds, one per round]}`.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    labels = list(steps)
    seconds = {label: [] for label in labels}
    for round_index in range(rounds):
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            start = time.perf_counter()
            steps[label]()
            seconds[label].append(time.perf_counter() - start)
    return seconds


def _quartiles(values):
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return float(q1), float(median), float(q3)


def summarize(seconds, baseline="relu", other="gelu"):
    """Per label: median/min/max ms, and the median and interquartile range
    of the per-round ratios to `baseline` and `other` (where present).

    Example:

    >>> row = summarize({"relu": [1.0, 2.0, 1.0], "x": [1.1, 2.2, 1.1]})["x"]
    >>> round(row["ratio_relu"], 6), row["noisy"]
    (1.1, False)
    """
    summary = {}
    for label, times in seconds.items():
        ms = [1000.0 * t for t in times]
        row = {"median_ms": float(statistics.median(ms)),
               "min_ms": float(min(ms)), "max_ms": float(max(ms))}
        for reference in (baseline, other):
            if reference not in seconds:
                continue
            ratios = [t / r for t, r in zip(times, seconds[reference])]
            q1, median, q3 = _quartiles(ratios)
            row[f"ratio_{reference}"] = median
            row[f"ratio_{reference}_iqr"] = [q1, q3]
        low, high = row.get(f"ratio_{baseline}_iqr", (1.0, 1.0))
        row["noisy"] = bool(high - low > NOISY_SPREAD)
        summary[label] = row
    return summary


def _activation_step(activation, x, upstream, torch_compile=False):
    """A compiled (TF, JAX; torch with `torch_compile`) or eager (torch)
    forward+backward, blocking."""
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
        if torch_compile:
            import torch

            # Forward and backward compiled together (AOTAutograd).
            activation = torch.compile(activation)

        def step():
            t = x.detach().requires_grad_(True)
            activation(t).backward(upstream)
            return float(t.grad.sum())

        return step
    raise NotImplementedError(f"No benchmark for backend '{backend}'.")


def _reference_activation(alpha=1.67):
    """SUGAR B-SiLU written in the backend itself, outside Keras: what the
    activation alone costs without Keras' dispatch. On torch, the plainest
    `autograd.Function` around the package's own backward kernel."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        backward_kernel = native.FUSED_BACKWARD["bsilu"]

        class ReferenceBSiLU(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return torch.relu(x)

            @staticmethod
            def backward(ctx, upstream):
                (x,) = ctx.saved_tensors
                return backward_kernel(x, upstream, alpha)

        return ReferenceBSiLU.apply
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        @jax.custom_jvp
        def reference(x):
            return jnp.maximum(x, 0.0)

        @reference.defjvp
        def reference_jvp(primals, tangents):
            (x,), (t,) = primals, tangents
            s = jax.nn.sigmoid(x)
            return reference(x), (s + (x + alpha) * s * (1.0 - s)) * t

        return reference
    import tensorflow as tf

    @tf.custom_gradient
    def reference(x):
        def grad(upstream):
            s = tf.sigmoid(x)
            return upstream * (s + (x + alpha) * s * (1.0 - s))

        return tf.nn.relu(x), grad

    return reference


def activation_steps(activations, shape, torch_compile=False):
    """`{label: step}`: one forward+backward of each activation alone."""
    rng = np.random.default_rng(0)
    x = ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))
    upstream = ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))
    return {label: _activation_step(activation, x, upstream, torch_compile)
            for label, activation in activations.items()}


def _compiled(model, torch_compile=False):
    # jit where Keras compiles by default (XLA on TF and JAX); torch eager,
    # as most torch users train, unless asked (Keras' torch jit_compile is
    # torch.compile).
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True),
                  jit_compile=(keras.backend.backend() != "torch"
                               or torch_compile))
    return model


def _seeded_model(kind, activation, quick):
    """The benchmarked model `kind` with `activation`, built from seed 0:
    every variant starts from the same weights."""
    keras.utils.set_random_seed(0)
    return bench_models.build_model(kind, activation, quick)


def train_steps(kind, activations, batch_size, quick, torch_compile=False):
    """`{label: step}`: one `train_on_batch` of the model `kind` built with
    each activation (same seed, same initial weights)."""
    steps = {}
    for label, activation in activations.items():
        model = _compiled(_seeded_model(kind, activation, quick),
                          torch_compile)
        x, y = bench_models.batch(model, batch_size)
        steps[label] = functools.partial(model.train_on_batch, x, y)
    return steps


def predict_steps(activations, batch_size, quick, jit_compile):
    """`{label: step}`: one `predict_on_batch` of the VGG model built with
    each activation: inference, outside any gradient computation."""
    steps = {}
    for label, activation in activations.items():
        model = _seeded_model("vgg", activation, quick)
        model.compile(jit_compile=jit_compile)
        x, _ = bench_models.batch(model, batch_size)
        steps[label] = functools.partial(model.predict_on_batch, x)
    return steps


def _exported_models(activations, quick):
    """TensorFlow: `{label: (keras model, loaded SavedModel)}` of the VGG
    model exported with `model.export` (its `serve` endpoint)."""
    import tempfile

    import tensorflow as tf

    exported = {}
    with tempfile.TemporaryDirectory() as directory:
        for label, activation in activations.items():
            model = _seeded_model("vgg", activation, quick)
            path = f"{directory}/{label.replace('/', '_')}"
            model.export(path, verbose=False)
            exported[label] = (model, tf.saved_model.load(path))
    return exported


def serve_steps(exported, batch_size):
    """TensorFlow: `{label: step}`, one call of each exported `serve`."""
    steps = {}
    for label, (model, loaded) in exported.items():
        x, _ = bench_models.batch(model, batch_size)
        steps[label] = functools.partial(loaded.serve, x)
    return steps


def tflite_ops(model):
    """The operations of `model` converted to TFLite (TensorFlow)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    return [op["op_name"] for op in interpreter._get_ops_details()]


def set_threads(threads):
    """Limits the backend's CPU threads where it can be done at run time
    (torch); TensorFlow and JAX read theirs before starting (see
    `bench_command.before_keras`)."""
    if threads and keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(threads)


def train_step_memory(kind, activation, batch_size, quick):
    """Bytes a training step needs beyond the weights, where measurable.

    JAX: temporary buffers of the compiled forward+backward (XLA memory
    analysis). torch: bytes autograd saves for the backward pass.
    TensorFlow: see `xla_memory`, which measures every variant at once.
    """
    model = _seeded_model(kind, activation, quick)
    x, y = bench_models.batch(model, batch_size)
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


def check_torch_compile(torch_compile):
    """Refuses `torch_compile` on a backend other than torch."""
    if torch_compile and keras.backend.backend() != "torch":
        raise ValueError(
            f"torch_compile applies to the torch backend; TensorFlow and "
            f"JAX steps are always compiled with XLA. Received: "
            f"torch_compile=True on backend '{keras.backend.backend()}'.")


def run(quick=False, surrogate=DEFAULTS["surrogate"], repeats=None,
        batch_size=None, activation_shape=None,
        threads=None, torch_compile=False):
    """Runs every measurement and returns the results as a dict.

    Args:
        quick: Tiny sizes and few rounds (a smoke run).
        surrogate: Surrogate of the SUGAR variants.
        repeats: Rounds per measure. Defaults to 30 (3 with `quick`).
        batch_size: Batch of the train-step and inference measurements.
            Defaults to 64 (8 with `quick`).
        activation_shape: Tensor shape for the activation alone.
        threads: CPU threads (torch; see `set_threads`), or None.
        torch_compile: On torch, time the steps compiled with
            `torch.compile` (Keras' `jit_compile=True`) instead of eager.
            The first step of each variant compiles (tens of seconds).
    """
    check_torch_compile(torch_compile)
    repeats = repeats or (3 if quick else 30)
    activation_shape = activation_shape or ((64, 64) if quick
                                            else (64, 64, 32, 32))
    batch_size = batch_size or (8 if quick else DEFAULTS["batch_size"])
    set_threads(threads)
    results = {
        "backend": keras.backend.backend(), "keras": keras.__version__,
        "surrogate": surrogate, "repeats": repeats, "threads": threads,
        "torch_compile": torch_compile,
        "batch_size": batch_size, "activation_shape": list(activation_shape),
        "auto": implementations.resolve(
            "auto", SugarReLU(surrogate).surrogate),
        "rows": {},
    }
    found = bench_models.variants(surrogate)
    alone = dict(found)
    if surrogate == "bsilu":
        alone[f"reference/{results['backend']}"] = _reference_activation()
    measured = {
        "activation": activation_steps(alone, activation_shape,
                                       torch_compile),
        "vgg_step": train_steps("vgg", found, batch_size, quick,
                                torch_compile),
        "mlp_step": train_steps("mlp", found, batch_size, quick,
                                torch_compile),
        # Inference: eager on torch (graph on TensorFlow, op by op on JAX)
        # and compiled (XLA; torch.compile with --torch-compile).
        "predict": predict_steps(found, batch_size, quick,
                                 jit_compile=False),
    }
    if results["backend"] != "torch" or torch_compile:
        measured["predict_jit"] = predict_steps(found, batch_size, quick,
                                                jit_compile=True)
    if results["backend"] == "tensorflow":
        exported = _exported_models(found, quick)
        measured["serve"] = serve_steps(exported, batch_size)
        for label, (model, _) in exported.items():
            results["rows"].setdefault(label, {})["vgg_tflite_ops"] = len(
                tflite_ops(model))
    rows = results["rows"]
    for measure, steps in measured.items():
        warmup = 2 if measure == "activation" else 3
        summary = summarize(interleaved(steps, repeats, warmup))
        for label, row in summary.items():
            rows.setdefault(label, {})[measure] = row
    if results["backend"] == "tensorflow":
        memory = xla_memory.temp_bytes(bench_models.MODELS, surrogate,
                                       batch_size, quick)
    else:
        memory = {kind: {label: train_step_memory(kind, activation,
                                                  batch_size, quick)
                         for label, activation in found.items()}
                  for kind in bench_models.MODELS}
    for kind, sizes in memory.items():
        for label, size in sizes.items():
            rows[label][f"{kind}_memory_bytes"] = size
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
        f"surrogate={results['surrogate']} rounds={results['repeats']} "
        f"batch={results['batch_size']} threads={results['threads']} "
        f"torch_compile={results['torch_compile']} auto={results['auto']}",
        "ratios: median over rounds of (variant / ReLU in the same round), "
        "[interquartile range]",
        f"{'variant':<28}{'measure':<12}{'median ms':>10}{'/relu':>8}"
        f"{'[spread]':>15}{'/gelu':>8}",
    ]
    noisy = []
    for measure in MEASURES:
        for label, row in rows.items():
            if measure not in row:
                continue
            t = row[measure]
            low, high = t["ratio_relu_iqr"]
            flag = " !" if t["noisy"] else ""
            if t["noisy"]:
                noisy.append(f"{label} {measure}")
            lines.append(
                f"{label:<28}{measure:<12}{t['median_ms']:>10.2f}"
                f"{t['ratio_relu']:>7.2f}x"
                f"{f'[{low:.2f}, {high:.2f}]':>15}"
                f"{t['ratio_gelu']:>7.2f}x{flag}")
    for kind in bench_models.MODELS:
        key = f"{kind}_memory_bytes"
        for label, row in rows.items():
            if key not in row:
                continue
            memory = row[key]
            shown = "n/a" if memory is None else f"{memory / 2**20:.2f} MiB"
            lines.append(f"{label:<28}{kind + '_memory':<12}{shown:>10}"
                         f"{_ratio(memory, rows['relu'][key]):>8}{'':>15}"
                         f"{_ratio(memory, rows['gelu'][key]):>8}")
    for label, row in rows.items():
        if "vgg_tflite_ops" in row:
            ops_count = row["vgg_tflite_ops"]
            lines.append(f"{label:<28}{'tflite_ops':<12}{ops_count:>10}"
                         f"{_ratio(ops_count, rows['relu']['vgg_tflite_ops']):>8}"
                         f"{'':>15}"
                         f"{_ratio(ops_count, rows['gelu']['vgg_tflite_ops']):>8}")
    if noisy:
        lines.append(
            f"! spread wider than {NOISY_SPREAD:.2f}x: too noisy to tell "
            f"a few percent apart ({', '.join(noisy)}); run again on a "
            f"quiet machine, with more rounds (--repeats) or --threads.")
    return "\n".join(lines)


def main(args):
    """Runs `keras-sugar bench` with the parsed arguments."""
    try:
        check_torch_compile(args.torch_compile)
    except ValueError as error:
        args.parser.error(str(error))
    results = run(quick=args.quick, surrogate=args.surrogate,
                  repeats=args.repeats, batch_size=args.batch_size,
                  threads=args.threads, torch_compile=args.torch_compile)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"wrote {args.json}")
    return results
