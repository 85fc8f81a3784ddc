"""The benchmark's quick mode runs, so the script cannot rot, and its
statistics are right. No timing is asserted: speed is measured by
`keras-sugar bench`, not by tests."""

import keras
import numpy as np
import pytest

from keras_sugar import SugarReLU
from keras_sugar import implementations
from keras_sugar.experiments import benchmark
from keras_sugar.experiments import xla_memory
from tests.testing import BACKEND


def test_quick_benchmark_measures_every_variant():
    results = benchmark.run(quick=True, repeats=2, batch_size=4)
    assert results["backend"] == BACKEND
    assert results["batch_size"] == 4  # An explicit batch is kept.
    variants = {"relu", "gelu", "sugar/straight_through",
                "sugar/multiplicative", "sugar/custom_gradient"}
    reference = f"reference/{BACKEND}"
    assert set(results["rows"]) == variants | {reference}
    assert results["auto"] in implementations.FUNCTIONS
    for label, row in results["rows"].items():
        inference = ("predict",) + (
            ("predict_jit",) if BACKEND != "torch" else ()) + (
            ("serve",) if BACKEND == "tensorflow" else ())
        measures = (("activation",) if label == reference
                    else ("activation", "vgg_step", "mlp_step") + inference)
        for measure in measures:
            timing = row[measure]
            assert 0 < timing["min_ms"] <= timing["median_ms"] <= (
                timing["max_ms"])
            low, high = timing["ratio_relu_iqr"]
            assert low <= timing["ratio_relu"] <= high
        if label != reference:
            assert row["vgg_memory_bytes"] > 0 and row["mlp_memory_bytes"] > 0
    # ReLU against itself, round by round: exactly 1.
    assert results["rows"]["relu"]["vgg_step"]["ratio_relu"] == 1.0
    table = benchmark.format_table(results)
    assert "sugar/custom_gradient" in table and reference in table
    assert "predict" in table
    if BACKEND == "tensorflow":
        # The default converts to ReLU's TFLite operations (fused into the
        # convolutions); the straight-through form keeps the surrogate.
        rows = results["rows"]
        assert rows["sugar/custom_gradient"]["vgg_tflite_ops"] == (
            rows["relu"]["vgg_tflite_ops"])
        assert rows["sugar/straight_through"]["vgg_tflite_ops"] > (
            rows["relu"]["vgg_tflite_ops"])
        assert "tflite_ops" in table


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
    row = benchmark.summarize(seconds)["sugar"]
    assert row["ratio_relu"] == pytest.approx(1.05)
    assert row["ratio_relu_iqr"] == pytest.approx([1.0, 1.2])
    assert row["ratio_gelu"] == pytest.approx(0.525)
    assert row["noisy"]  # A spread of 0.2 is too wide.
    assert not benchmark.summarize(seconds)["relu"]["noisy"]


def test_default_keeps_no_more_than_gelu_for_the_backward_pass():
    # What a training step keeps (XLA's temporary buffers on TensorFlow and
    # JAX, autograd's saved tensors on torch) is decided before it runs.
    # SUGAR needs the negative inputs that ReLU discards, so where ReLU's
    # saved output is also the next layer's saved input it keeps x too, as
    # GELU does (XLA often recomputes relu(x) instead: 1.00x ReLU on the
    # benchmark's full-size VGG on every backend); never more than GELU.
    results = benchmark.run(quick=True, repeats=1)
    memory = {label: row.get("vgg_memory_bytes")
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
