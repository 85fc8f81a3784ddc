"""Speed and memory of SugarReLU against plain ReLU and GELU, in one run.

Measures, for the current backend: (a) the activation alone, forward and
backward, on a large tensor; (b) one `train_on_batch` step of a VGG-style
CNN and of an MLP, compiled as `model.compile()` does by default (XLA on
JAX; on TensorFlow a graph without XLA on a CPU, XLA on a GPU; eager
PyTorch), and on TensorFlow also with `jit_compile=True` (XLA); (c) what a training step of each keeps for its
backward pass; (d) inference of the VGG model: `predict_on_batch`
uncompiled and compiled, and on TensorFlow the `serve` endpoint of
`model.export` and the number of TFLite operations it converts to.
Every SUGAR implementation is measured beside `relu` and `gelu`, and for
the activation alone beside a reference written in the backend itself
(B-SiLU, outside Keras), so the cost of going through Keras shows. The
training steps also time `relu_from_input/<backend>` (`relu_from_input`):
ReLU's own gradient read from its kept input through a custom gradient,
what the second reader of the pre-activation that every surrogate
gradient needs and the custom gradient cost, before any surrogate's math.

A noisy machine cannot fool it: the variants are interleaved round by
round (each round times every variant once, in a rotating order), each
round's time is divided by ReLU's in the same round, and a ratio is
reported as the median over rounds with its interquartile spread; a spread
wider than `NOISY_SPREAD` is flagged as too wide to conclude from.

This module and `xla_memory` are the harness's only imports of backend
libraries: Keras has no backend-agnostic gradient function or memory
statistics.

The CPU it ran on (model, vector instruction sets, cores) heads the
table and `--json`: ratios measured on one machine hold for it.

Run: `keras-sugar bench [--quick] [--torch-compile] [--json out.json]`.
"""

import dataclasses
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
from keras_sugar.experiments import machine
from keras_sugar.experiments import xla_memory
from keras_sugar.experiments.bench_command import BenchSettings
from keras_sugar.activations import SugarReLU

# Timed measures, in the order of the table: the activation alone, VGG and
# MLP training steps as `compile()` compiles them by default and (on
# TensorFlow, whose default on a CPU is no XLA) with XLA, and VGG inference
# (`predict_on_batch` without and with compilation; TensorFlow's exported
# `serve`).
MEASURES = ("activation", "vgg_step", "mlp_step", "vgg_step_xla",
            "mlp_step_xla", "predict", "predict_jit", "serve")

# An interquartile spread of the per-round ratio wider than this (10% of
# ReLU's time) is too wide to tell a few percent apart.
NOISY_SPREAD = 0.10
# What every variant's times are divided by, round by round.
REFERENCES = ("relu", "gelu")


@dataclasses.dataclass(frozen=True)
class Timing:
    """One variant's times for one measure over the rounds.

    Attributes:
        median_ms: Median time of a step, in milliseconds.
        min_ms: The fastest step.
        max_ms: The slowest step.
        ratios: Per reference label (`REFERENCES` measured beside it): the
            median over rounds of (this step / the reference's step in the
            same round).
        spreads: Per reference label: `(q1, q3)` of those ratios.
        noisy: Whether the spread of the ratio to the first reference is
            wider than `NOISY_SPREAD`.
    """

    median_ms: float
    min_ms: float
    max_ms: float
    ratios: dict
    spreads: dict
    noisy: bool

    def to_json(self):
        """`median_ms`, `min_ms`, `max_ms`, `ratio_<reference>` and
        `ratio_<reference>_iqr` per reference, `noisy`."""
        record = {"median_ms": self.median_ms, "min_ms": self.min_ms,
                  "max_ms": self.max_ms}
        for reference, ratio in self.ratios.items():
            record[f"ratio_{reference}"] = ratio
            record[f"ratio_{reference}_iqr"] = list(self.spreads[reference])
        record["noisy"] = self.noisy
        return record


@dataclasses.dataclass
class Row:
    """Everything measured of one variant (a row of the table).

    Attributes:
        timings: Per measure (`MEASURES`): its `Timing`.
        memory_bytes: Per benchmarked model (`bench_models.MODELS`): what
            a training step keeps, in bytes (None where not measurable).
        tflite_ops: TensorFlow: the operations of the VGG model converted
            to TFLite; None elsewhere.
    """

    timings: dict = dataclasses.field(default_factory=dict)
    memory_bytes: dict = dataclasses.field(default_factory=dict)
    tflite_ops: int = None

    def to_json(self):
        """Each measure's `Timing.to_json()` under its name, then
        `<model>_memory_bytes` and `vgg_tflite_ops`."""
        record = {measure: timing.to_json()
                  for measure, timing in self.timings.items()}
        for kind, size in self.memory_bytes.items():
            record[f"{kind}_memory_bytes"] = size
        if self.tflite_ops is not None:
            record["vgg_tflite_ops"] = self.tflite_ops
        return record


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


def summarize(seconds, references=REFERENCES):
    """Per label, its `Timing`: median/min/max ms, and the median and
    interquartile range of the per-round ratios to each of `references`
    that was measured.

    Example:

    >>> timing = summarize({"relu": [1.0, 2.0, 1.0],
    ...                     "x": [1.1, 2.2, 1.1]})["x"]
    >>> round(timing.ratios["relu"], 6), timing.noisy
    (1.1, False)
    """
    summary = {}
    for label, times in seconds.items():
        ms = [1000.0 * t for t in times]
        ratios, spreads = {}, {}
        for reference in references:
            if reference not in seconds:
                continue
            q1, median, q3 = _quartiles(
                [t / r for t, r in zip(times, seconds[reference])])
            ratios[reference], spreads[reference] = median, (q1, q3)
        low, high = spreads.get(references[0], (1.0, 1.0))
        summary[label] = Timing(
            median_ms=float(statistics.median(ms)), min_ms=float(min(ms)),
            max_ms=float(max(ms)), ratios=ratios, spreads=spreads,
            noisy=bool(high - low > NOISY_SPREAD))
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


def relu_from_input():
    """Returns ReLU whose gradient, ReLU's own, is read from its kept input.

    ReLU's own backward kernel (`ReluGrad`, `threshold_backward`; JAX's
    select) given the input, through a plain custom gradient that keeps it
    (`tf.custom_gradient`, `jax.custom_vjp`, a `torch.autograd.Function`).
    On TensorFlow and PyTorch ReLU's own gradient reads only its output,
    so this adds the second reader of the pre-activation that every
    surrogate gradient needs; JAX's ReLU gradient reads the input already,
    so there it adds the custom gradient alone. Its cost beside ReLU's is
    what those cost, before any surrogate's math. SUGAR's own path can
    cost less: under XLA it computes f'(x) of feature maps in the forward
    pass and keeps it instead of x (`native/xla.py`).

    Returns:
        A function of a tensor: exactly ReLU's value and gradient.

    Example:

    >>> relu = relu_from_input()
    >>> [float(v) for v in relu(keras.ops.convert_to_tensor([-1.0, 2.0]))]
    [0.0, 2.0]
    """
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        class ReluFromInput(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return torch.relu(x)

            @staticmethod
            def backward(ctx, upstream):
                (x,) = ctx.saved_tensors
                # ReLU's own backward kernel, given the input.
                return torch.ops.aten.threshold_backward(upstream, x, 0.0)

        def relu(x):
            if not (torch.is_grad_enabled() and x.requires_grad):
                return torch.relu(x)  # Inference: nothing to keep.
            return ReluFromInput.apply(x)

        return relu
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        @jax.custom_vjp
        def relu(x):
            return jax.nn.relu(x)

        def forward(x):
            return jax.nn.relu(x), x

        def backward(x, upstream):
            return (jnp.where(x > 0, upstream, 0.0),)

        relu.defvjp(forward, backward)
        return relu
    import tensorflow as tf

    @tf.custom_gradient
    def relu(x):
        # ReluGrad takes ReLU's input or output (same values either way).
        return tf.nn.relu(x), lambda upstream: tf.raw_ops.ReluGrad(
            gradients=upstream, features=x)

    return relu


def activation_steps(activations, shape, torch_compile=False):
    """`{label: step}`: one forward+backward of each activation alone."""
    rng = np.random.default_rng(0)
    x = ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))
    upstream = ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))
    return {label: _activation_step(activation, x, upstream, torch_compile)
            for label, activation in activations.items()}


def _compiled(model, torch_compile=False, jit_compile="auto"):
    # `jit_compile="auto"` is what `compile()` picks by itself: XLA on JAX,
    # and on TensorFlow only on a GPU outside tf.distribute. torch eager, as
    # most torch users train, unless asked (Keras' torch jit_compile is
    # torch.compile).
    if keras.backend.backend() == "torch":
        jit_compile = torch_compile
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True),
                  jit_compile=jit_compile)
    return model


def _seeded_model(kind, activation, quick):
    """The benchmarked model `kind` with `activation`, built from seed 0:
    every variant starts from the same weights."""
    keras.utils.set_random_seed(0)
    return bench_models.build_model(kind, activation, quick)


def train_steps(kind, activations, batch_size, quick, torch_compile=False,
                jit_compile="auto"):
    """`{label: step}`: one `train_on_batch` of the model `kind` built with
    each activation (same seed, same initial weights), compiled with
    `jit_compile` (`"auto"`: as `compile()` does by default)."""
    steps = {}
    for label, activation in activations.items():
        model = _compiled(_seeded_model(kind, activation, quick),
                          torch_compile, jit_compile)
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


def default_uses_xla(torch_compile=False):
    """Whether `compile()`'s default (`jit_compile="auto"`) trains with
    XLA here: on JAX always, on TensorFlow on a GPU (Keras' own rule), on
    torch never (its jit is `torch.compile`, `--torch-compile`)."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    _compiled(model, torch_compile)
    return keras.backend.backend() != "torch" and bool(model.jit_compile)


def check_torch_compile(torch_compile):
    """Refuses `torch_compile` on a backend other than torch."""
    if torch_compile and keras.backend.backend() != "torch":
        raise ValueError(
            f"torch_compile applies to the torch backend; TensorFlow and "
            f"JAX steps are always compiled with XLA. Received: "
            f"torch_compile=True on backend '{keras.backend.backend()}'.")


def run(settings=None, **kwargs):
    """Runs every measurement and returns the results.

    Args:
        settings: A `bench_command.BenchSettings`; or, instead, its keyword
            arguments (`quick`, `surrogate`, `repeats`, `batch_size`,
            `activation_shape`, `threads`, `torch_compile`), checked the
            same way. With `torch_compile` the first step of each variant
            compiles (tens of seconds).

    Returns:
        A dict: the settings and versions (as `--json` writes them:
        `backend`, `keras`, `surrogate`, `repeats`, ...) and `rows`, a
        `Row` per variant label.
    """
    if settings is None:
        settings = BenchSettings(**kwargs)
    elif kwargs:
        raise TypeError(f"run takes a BenchSettings or keyword arguments, "
                        f"not both. Received: {sorted(kwargs)}")
    s = settings
    check_torch_compile(s.torch_compile)
    set_threads(s.threads)
    results = {
        "backend": keras.backend.backend(), "keras": keras.__version__,
        "surrogate": s.surrogate, "repeats": s.repeats, "threads": s.threads,
        "torch_compile": s.torch_compile,
        "batch_size": s.batch_size,
        "activation_shape": list(s.activation_shape),
        "auto": implementations.resolve(
            "auto", SugarReLU(s.surrogate).surrogate),
        "cpu": machine.describe(),
        "default_uses_xla": default_uses_xla(s.torch_compile),
        "rows": {},
    }
    found = bench_models.variants(s.surrogate)
    alone = dict(found)
    if s.surrogate == "bsilu":
        alone[f"reference/{results['backend']}"] = _reference_activation()
    # Training also times ReLU's own gradient read from its kept input.
    trained = {**found,
               f"relu_from_input/{results['backend']}": relu_from_input()}
    measured = {
        "activation": activation_steps(alone, s.activation_shape,
                                       s.torch_compile),
        "vgg_step": train_steps("vgg", trained, s.batch_size, s.quick,
                                s.torch_compile),
        "mlp_step": train_steps("mlp", trained, s.batch_size, s.quick,
                                s.torch_compile),
    }
    if results["backend"] == "tensorflow" and not results["default_uses_xla"]:
        for kind in bench_models.MODELS:
            measured[f"{kind}_step_xla"] = train_steps(
                kind, trained, s.batch_size, s.quick, jit_compile=True)
    measured.update({
        # Inference: eager on torch (graph on TensorFlow, op by op on JAX)
        # and compiled (XLA; torch.compile with --torch-compile).
        "predict": predict_steps(found, s.batch_size, s.quick,
                                 jit_compile=False),
    })
    if results["backend"] != "torch" or s.torch_compile:
        measured["predict_jit"] = predict_steps(found, s.batch_size, s.quick,
                                                jit_compile=True)
    rows = results["rows"]
    if results["backend"] == "tensorflow":
        exported = _exported_models(found, s.quick)
        measured["serve"] = serve_steps(exported, s.batch_size)
        for label, (model, _) in exported.items():
            rows.setdefault(label, Row()).tflite_ops = len(tflite_ops(model))
    for measure, steps in measured.items():
        warmup = 2 if measure == "activation" else 3
        summary = summarize(interleaved(steps, s.repeats, warmup))
        for label, timing in summary.items():
            rows.setdefault(label, Row()).timings[measure] = timing
    if results["backend"] == "tensorflow":
        memory = xla_memory.temp_bytes(bench_models.MODELS, s.surrogate,
                                       s.batch_size, s.quick)
    else:
        memory = {kind: {label: train_step_memory(kind, activation,
                                                  s.batch_size, s.quick)
                         for label, activation in found.items()}
                  for kind in bench_models.MODELS}
    for kind, sizes in memory.items():
        for label, size in sizes.items():
            rows[label].memory_bytes[kind] = size
    return results


def to_json(results):
    """`results` (see `run`) as JSON-ready dicts: what `--json` writes."""
    return {**results, "rows": {label: row.to_json()
                                for label, row in results["rows"].items()}}


def _default_mode(results):
    if results["backend"] == "torch":
        return "torch.compile" if results["torch_compile"] else "eager"
    return "XLA" if results["default_uses_xla"] else "graph, no XLA"


def _ratio(value, reference):
    if value is None or not reference:
        return "n/a"
    return f"{value / reference:.2f}x"


def format_table(results):
    """Renders the results (see `run`) as a plain-text table with ratios."""
    rows = results["rows"]
    relu, gelu = (rows[reference] for reference in REFERENCES)
    lines = [
        f"backend={results['backend']} keras={results['keras']} "
        f"surrogate={results['surrogate']} rounds={results['repeats']} "
        f"batch={results['batch_size']} threads={results['threads']} "
        f"torch_compile={results['torch_compile']} auto={results['auto']}",
        machine.one_line(results["cpu"]),
        f"train steps: *_step as compile() trains by default ("
        f"{_default_mode(results)})" + (
            "; *_step_xla with jit_compile=True (XLA)"
            if any("vgg_step_xla" in row.timings
                   for row in results["rows"].values()) else ""),
        "ratios: median over rounds of (variant / ReLU in the same round), "
        "[interquartile range]",
        f"relu_from_input/{results['backend']}: ReLU's own gradient read "
        f"from its kept input in a plain custom gradient (the reader of the "
        f"pre-activation every surrogate gradient needs)",
        f"{'variant':<28}{'measure':<12}{'median ms':>10}{'/relu':>8}"
        f"{'[spread]':>15}{'/gelu':>8}",
    ]
    noisy = []
    for measure in MEASURES:
        for label, row in rows.items():
            if measure not in row.timings:
                continue
            t = row.timings[measure]
            low, high = t.spreads["relu"]
            flag = " !" if t.noisy else ""
            if t.noisy:
                noisy.append(f"{label} {measure}")
            lines.append(
                f"{label:<28}{measure:<12}{t.median_ms:>10.2f}"
                f"{t.ratios['relu']:>7.2f}x"
                f"{f'[{low:.2f}, {high:.2f}]':>15}"
                f"{t.ratios['gelu']:>7.2f}x{flag}")
    for kind in bench_models.MODELS:
        for label, row in rows.items():
            if kind not in row.memory_bytes:
                continue
            memory = row.memory_bytes[kind]
            shown = "n/a" if memory is None else f"{memory / 2**20:.2f} MiB"
            lines.append(
                f"{label:<28}{kind + '_memory':<12}{shown:>10}"
                f"{_ratio(memory, relu.memory_bytes[kind]):>8}{'':>15}"
                f"{_ratio(memory, gelu.memory_bytes[kind]):>8}")
    for label, row in rows.items():
        if row.tflite_ops is not None:
            lines.append(f"{label:<28}{'tflite_ops':<12}{row.tflite_ops:>10}"
                         f"{_ratio(row.tflite_ops, relu.tflite_ops):>8}"
                         f"{'':>15}"
                         f"{_ratio(row.tflite_ops, gelu.tflite_ops):>8}")
    if noisy:
        lines.append(
            f"! spread wider than {NOISY_SPREAD:.2f}x: too noisy to tell "
            f"a few percent apart ({', '.join(noisy)}); run again on a "
            f"quiet machine, with more rounds (--repeats) or --threads.")
    return "\n".join(lines)


def main(args):
    """Runs `keras-sugar bench` with the parsed and checked arguments
    (`args.settings`, see `bench_command.BenchSettings`)."""
    s = args.settings
    try:
        check_torch_compile(s.torch_compile)
    except ValueError as error:
        args.parser.error(str(error))
    results = run(s)
    print(format_table(results))
    if s.json:
        with open(s.json, "w") as f:
            json.dump(to_json(results), f, indent=2)
        print(f"wrote {s.json}")
    return results
