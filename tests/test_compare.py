"""The comparison harness: specs, one run's numbers, the summary, files,
and the command line."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_sugar import SugarReLU
from keras_sugar.experiments import compare
from keras_sugar.experiments import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("spec, expected", [
    ("relu", keras.activations.relu), ("gelu", keras.activations.gelu),
    ("sugar:bsilu", SugarReLU("bsilu")),
    ("sugar:nelu:alpha=0.1", SugarReLU("nelu", alpha=0.1)),
    ("sugar:gelu:approximate=true", SugarReLU("gelu", approximate=True)),
])
def test_parse_activation(spec, expected):
    assert compare.parse_activation(spec) == expected


@pytest.mark.parametrize("spec, match", [
    ("sugar:", "not of the form"), ("sugar:nelu:alpha=big", "'big'"),
    ("sugar:nope", "Unknown surrogate 'nope'"),
    ("sugar:nelu:beta=1", r"Unknown parameter\(s\) \['beta'\]"),
])
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        compare.parse_activation(spec)


def test_one_run_reports_what_the_model_does():
    data = datasets.load("digits")
    result = compare.train_once(data, "mlp", "sugar:bsilu", seed=0, epochs=2,
                                batch_size=64, lr=0.1, verbose=0, depth=2,
                                units=32)
    assert result["test_accuracy"] > 0.5  # digits is easy
    assert 0.0 <= result["dead_units"] <= 1.0
    assert 0.0 < result["sparsity"] < 1.0
    assert len(result["curves"]["val_accuracy"]) == 2
    assert result["curves"]["val_accuracy"][-1] == pytest.approx(
        result["test_accuracy"], abs=1e-6)
    gelu = compare.train_once(data, "mlp", "gelu", seed=0, epochs=1,
                              batch_size=64, lr=0.1, verbose=0, depth=2,
                              units=32)
    assert gelu["dead_units"] is None  # GELU has no rectified units


def test_same_seed_same_initial_weights_for_every_activation():
    data = datasets.load("digits")
    weights = []
    for spec in ("relu", "sugar:elu"):
        keras.utils.set_random_seed(3)
        weights.append(compare.build("vgg", data, compare.parse_activation(
            spec), layout=[4, "M", 8], width=1.0).get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_summary_is_mean_and_std_over_seeds():
    runs = [{"activation": "relu", "test_accuracy": a, "dead_units": d,
             "sparsity": 0.5, "seconds_per_epoch": 1.0}
            for a, d in ((0.5, 0.1), (0.7, 0.3))]
    (row,) = compare.summarize(runs)
    assert row["test_accuracy"] == pytest.approx(0.6)
    assert row["test_accuracy_std"] == pytest.approx(0.1)
    assert row["dead_units"] == pytest.approx(0.2)
    assert "60.00 +- 10.00" in compare.format_table([row])


def test_command_line_prints_the_table_and_writes_files(tmp_path):
    # --backend switches to another backend than this process's.
    other = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}[
        keras.backend.backend()]
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "keras_sugar", "compare", "--data", "digits",
         "--model", "mlp", "--epochs", "1", "--seeds", "2",
         "--activations", "relu,sugar:bsilu", "--quiet", "--out", str(out),
         "--backend", other],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"backend={other}" in proc.stdout
    assert "test acc % (mean +- std)" in proc.stdout
    assert "sugar:bsilu" in proc.stdout
    with open(out / "results.json") as f:
        results = json.load(f)
    assert [r["activation"] for r in results["runs"]] == [
        "relu", "relu", "sugar:bsilu", "sugar:bsilu"]
    assert (out / "results.csv").exists() and (out / "comparison.png").exists()


def test_command_line_names_a_malformed_data_file(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((3, 2)))
    proc = subprocess.run(
        [sys.executable, "-m", "keras_sugar", "compare", "--data", str(path),
         "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode != 0
    assert "missing ['y_train', 'x_test', 'y_test']" in proc.stderr
