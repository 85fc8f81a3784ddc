"""The benchmark's quick mode runs, so the script cannot rot, and its
statistics are right. No timing is asserted: speed is measured by
`keras-sugar bench`, not by tests."""

import json

import keras
import numpy as np
import pytest

from keras_sugar import SugarReLU
from keras_sugar import implementations
from keras_sugar.experiments import benchmark
from keras_sugar.experiments import machine
from keras_sugar.experiments import xla_memory
from tests.testing import BACKEND
from tests.testing import command_line as _cli
from tests.testing import value_and_gradient


def test_quick_benchmark_measures_every_variant():
    results = benchmark.run(quick=True, repeats=2, batch_size=4)
    assert results["backend"] == BACKEND
    assert results["batch_size"] == 4  # An explicit batch is kept.
    variants = {"relu", "gelu", "sugar/straight_through",
                "sugar/multiplicative", "sugar/custom_gradient"}
    reference = f"reference/{BACKEND}"
    from_input = f"relu_from_input/{BACKEND}"
    assert set(results["rows"]) == variants | {reference, from_input}
    assert results["auto"] in implementations.FUNCTIONS
    for label, row in results["rows"].items():
        inference = ("predict",) + (
            ("predict_jit",) if BACKEND != "torch" else ()) + (
            ("serve",) if BACKEND == "tensorflow" else ())
        # Training as compile() does by default, and on TensorFlow (no
        # XLA by default on a CPU) with XLA too.
        xla = (("vgg_step_xla", "mlp_step_xla") if BACKEND == "tensorflow"
               else ())
        training = ("vgg_step", "mlp_step") + xla
        measures = (("activation",) if label == reference
                    else training if label == from_input
                    else ("activation",) + training + inference)
        assert tuple(row.timings) == measures
        for measure in measures:
            timing = row.timings[measure]
            assert 0 < timing.min_ms <= timing.median_ms <= timing.max_ms
            low, high = timing.spreads["relu"]
            assert low <= timing.ratios["relu"] <= high
        if label not in (reference, from_input):
            assert row.memory_bytes["vgg"] > 0 and row.memory_bytes["mlp"] > 0
    # ReLU against itself, round by round: exactly 1.
    assert results["rows"]["relu"].timings["vgg_step"].ratios["relu"] == 1.0
    # The JSON form --json writes.
    record = json.loads(json.dumps(benchmark.to_json(results)))
    assert record["rows"]["relu"]["vgg_step"]["ratio_relu"] == 1.0
    assert record["rows"]["relu"]["vgg_memory_bytes"] > 0
    # Which machine, and which mode compile() picked by itself.
    cpu = machine.describe()
    assert record["cpu"] == cpu and cpu["cores"] >= 1
    assert record["default_uses_xla"] == (BACKEND == "jax")
    table = benchmark.format_table(results)
    assert machine.one_line(cpu) in table.splitlines()
    default = {"tensorflow": "graph, no XLA", "jax": "XLA",
               "torch": "eager"}[BACKEND]
    assert f"by default ({default})" in table
    assert "sugar/custom_gradient" in table and reference in table
    assert f"{from_input}: ReLU's own gradient read from its kept input" in (
        table)
    assert "predict" in table
    if BACKEND == "tensorflow":
        # The default converts to ReLU's TFLite operations (fused into the
        # convolutions); the straight-through form keeps the surrogate.
        rows = results["rows"]
        assert rows["sugar/custom_gradient"].tflite_ops == (
            rows["relu"].tflite_ops)
        assert rows["sugar/straight_through"].tflite_ops > (
            rows["relu"].tflite_ops)
        assert "tflite_ops" in table


# As the benchmark trains: eager or a graph, and compiled (XLA; torch's
# --torch-compile).
@pytest.mark.parametrize("compiled", [False, True] + (
    ["graph"] if BACKEND == "tensorflow" else []))
def test_relu_from_input_is_relu_forward_and_backward(compiled):
    # Beside ReLU it times only the second reader and the custom gradient
    # if it is ReLU itself (0 at 0, as ReLU's own gradient).
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0], dtype="float32")
    y, grad = value_and_gradient(benchmark.relu_from_input(), x,
                                 compiled=compiled)
    expected_y, expected_grad = value_and_gradient(keras.activations.relu, x)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(grad, expected_grad)
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0, 1.0, 1.0])


def test_relu_from_input_keeps_its_input_for_a_custom_gradient():
    # What it measures: the input kept for the backward pass (a reader of
    # the pre-activation), not ReLU's output as ReLU's own gradient keeps.
    relu = benchmark.relu_from_input()
    x = np.array([-1.0, 2.0], dtype="float32")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        @tf.function
        def gradient(t):
            with tf.GradientTape() as tape:
                tape.watch(t)
                y = relu(t)
            return tape.gradient(y, t)

        graph = gradient.get_concrete_function(tf.constant(x)).graph
        by_type = {op.type: op for op in graph.get_operations()}
        assert "IdentityN" in by_type  # tf.custom_gradient's mark.
        # ReLU's gradient kernel reads what ReLU reads, not its output.
        features = by_type["ReluGrad"].inputs[1]
        assert features.name == by_type["Relu"].inputs[0].name
    elif BACKEND == "jax":
        import jax

        assert "custom_vjp_call" in str(jax.make_jaxpr(relu)(x))
        _, kept = relu.fwd(x)
        np.testing.assert_array_equal(kept, x)
    else:
        import torch

        t = torch.tensor(x, requires_grad=True)
        node = relu(t).grad_fn
        assert type(node).__name__ == "ReluFromInputBackward"
        (kept,) = node.saved_tensors
        assert torch.equal(kept, t)


def test_interleaving_rotates_the_order_every_round():
    calls = []
    steps = {name: (lambda n=name: calls.append(n)) for name in "abc"}
    seconds = benchmark.interleaved(steps, rounds=3, warmup=0)
    assert calls == list("abcbcacab")
    assert all(len(times) == 3 for times in seconds.values())


def test_ratios_are_per_round_medians_with_their_spread():
    seconds = {"relu": [1.0, 2.0, 4.0, 1.0],
               "gelu": [2.0, 4.0, 8.0, 2.0],
               "sugar": [1.1, 2.0, 4.0, 1.5]}  # ratios 1.1, 1, 1, 1.5
    timing = benchmark.summarize(seconds)["sugar"]
    assert timing.ratios["relu"] == pytest.approx(1.05)
    assert timing.spreads["relu"] == pytest.approx([1.0, 1.2])
    assert timing.ratios["gelu"] == pytest.approx(0.525)
    assert timing.noisy  # A spread of 0.2 is too wide.
    assert not benchmark.summarize(seconds)["relu"].noisy


def test_default_keeps_no_more_than_gelu_for_the_backward_pass():
    # What a training step keeps (XLA's temporary buffers on TensorFlow and
    # JAX, autograd's saved tensors on torch) is decided before it runs.
    # SUGAR needs the negative inputs that ReLU discards, so where ReLU's
    # saved output is also the next layer's saved input it keeps x too, as
    # GELU does (XLA often recomputes relu(x) instead: 1.00x ReLU on the
    # benchmark's full-size VGG on every backend); never more than GELU.
    results = benchmark.run(quick=True, repeats=1)
    memory = {label: row.memory_bytes.get("vgg")
              for label, row in results["rows"].items()}
    auto = f"sugar/{results['auto']}"
    assert memory["relu"] <= memory[auto] <= memory["gelu"]
    # The measure tells kept tensors apart: straight_through keeps f's
    # intermediates too.
    assert memory["sugar/straight_through"] > memory[auto]


def test_torch_compile_times_the_compiled_step_or_is_refused():
    activations = {"relu": keras.activations.relu, "sugar": SugarReLU()}
    if BACKEND != "torch":
        with pytest.raises(ValueError, match="torch_compile applies to the "
                           "torch backend.*backend '"):
            benchmark.run(quick=True, torch_compile=True)
        return
    eager = benchmark.activation_steps(activations, (4, 8))
    compiled = benchmark.activation_steps(activations, (4, 8),
                                          torch_compile=True)
    for label in activations:
        # The step returns the sum of the input's gradient.
        np.testing.assert_allclose(compiled[label](), eager[label](),
                                   rtol=1e-6)


def test_tensorflow_memory_failure_shows_the_childs_error():
    # The measure runs TensorFlow in a child process (on any backend): its
    # failure must come back with the child's own message.
    with pytest.raises(RuntimeError, match="(?s)Measuring TensorFlow's "
                       "memory failed.*Unknown surrogate 'no_such'"):
        xla_memory.temp_bytes(["mlp"], "no_such", 8, quick=True)


@pytest.mark.parametrize("args, message", [
    (["--repeats", "0"], "argument --repeats: '0' is not an integer >= 1"),
    (["--repeats", "-5"], "argument --repeats: '-5' is not an integer >= 1"),
    (["--batch-size", "0"],
     "argument --batch-size: '0' is not an integer >= 1"),
    (["--threads", "0"], "argument --threads: '0' is not an integer >= 1"),
    (["--threads", "-1"], "argument --threads: '-1' is not an integer >= 1"),
    (["--surrogate", "nope"], "argument --surrogate: Unknown surrogate "
     "'nope'. Valid names: ['bsilu', 'elu', 'gelu', 'leaky_relu', 'mish', "
     "'nelu', 'selu', 'silu']"),
    (["--json", "/nonexistent/dir/x.json"],
     "--json /nonexistent/dir/x.json: no folder /nonexistent/dir"),
])
def test_bad_arguments_are_one_line_before_any_work(args, message, capsys,
                                                    monkeypatch):
    def started(*args, **kwargs):
        raise AssertionError("the benchmark started")

    monkeypatch.setattr(benchmark, "interleaved", started)
    status, out, err = _cli(["bench", "--quick", *args], capsys)
    assert status == 2, err
    assert message in err, err
    assert "Traceback" not in err and out == ""


def test_one_settings_object_from_python_and_the_command_line():
    from keras_sugar.experiments import cli
    from keras_sugar.experiments.bench_command import BenchSettings

    args = cli.parser().parse_args(["bench", "--quick", "--repeats", "5"])
    assert BenchSettings.from_args(args) == BenchSettings(quick=True,
                                                          repeats=5)
    settings = BenchSettings(quick=True, repeats=5, surrogate="B-SiLU")
    assert (settings.repeats, settings.batch_size, settings.surrogate) == (
        5, 8, "bsilu")  # An explicit value kept, an unset one --quick's.
    full = BenchSettings()
    assert (full.repeats, full.batch_size) == (30, 64)
    for bad, message in [(dict(repeats=0), "repeats=0"),
                         (dict(batch_size=-1), "batch_size=-1"),
                         (dict(threads=0), "threads=0"),
                         (dict(surrogate="nope"), "Unknown surrogate")]:
        with pytest.raises(ValueError, match=message):
            benchmark.run(**bad)


def test_json_to_a_folder_is_refused_before_any_work(tmp_path, capsys,
                                                     monkeypatch):
    monkeypatch.setattr(benchmark, "interleaved", None)
    status, out, err = _cli(["bench", "--quick", "--json", str(tmp_path)],
                            capsys)
    assert status == 2 and out == ""
    assert f"--json {tmp_path} is a folder" in err


def test_command_line_writes_the_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    status, out, err = _cli(["bench", "--quick", "--repeats", "1",
                             "--batch-size", "2", "--json", str(path)],
                            capsys)
    assert status in (0, None), err
    assert f"wrote {path}" in out
    with open(path) as f:
        results = json.load(f)
    assert (results["repeats"], results["batch_size"]) == (1, 2)
    assert results["rows"]["relu"]["vgg_step"]["ratio_relu"] == 1.0
    assert "sugar/custom_gradient" in out


@pytest.mark.inference
def test_the_cpu_is_read_from_cpuinfo(tmp_path):
    """The model name and the vector sets that change elementwise speed,
    from Linux's cpuinfo, x86 (flags) and Arm (Features) alike."""
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) "
                   "Processor\nflags\t\t: fpu sse4_2 avx avx2 avx512f "
                   "amx_tile\n\nprocessor\t: 1\nmodel name\t: other\n")
    cpu = machine.describe(str(x86))
    assert cpu["model"] == "Intel(R) Xeon(R) Processor"
    assert cpu["vector_sets"] == ["amx_tile", "avx512f", "avx2", "avx",
                                  "sse4_2"]
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve\n")
    assert machine.describe(str(arm))["vector_sets"] == ["asimd", "sve"]
    assert machine.describe(str(tmp_path / "none"))["vector_sets"] == []
