"""Dead-unit report and callback: right numbers, visible in training logs,
and SUGAR revives units that ReLU leaves dead."""

import csv
import logging
import re
import warnings

import keras
import numpy as np
import pytest

from keras_sugar import DeadUnitMonitor
from keras_sugar import SugarReLU
from keras_sugar import dead_unit_report
from keras_sugar import diagnostics
from keras_sugar import sugarify
from tests import zoo

_PROBE = diagnostics._Probe


def dying_mlp(depth=4, width=16, bias=-1.0, seed=0):
    """A narrow ReLU MLP with a negative bias: many units start dead.

    Weights come from numpy, so every backend starts from the same point.
    """
    model = keras.Sequential(
        [keras.Input((8,))]
        + [keras.layers.Dense(width, activation="relu", name=f"hidden_{i}")
           for i in range(depth)]
        + [keras.layers.Dense(1, name="out")])
    rng = np.random.default_rng(seed)
    model.set_weights([
        (rng.normal(size=w.shape) * np.sqrt(2.0 / w.shape[0])).astype(
            "float32") if w.ndim == 2 else np.full(w.shape, bias, "float32")
        for w in model.get_weights()])
    return model


def regression_data(n=256):
    x = np.random.default_rng(0).normal(size=(n, 8)).astype("float32")
    return x, (2.0 * x[:, :1] + 1.0).astype("float32")


def numpy_dead_fractions(model, x):
    """Dead fraction per hidden layer, straight from the layer outputs."""
    fractions = []
    for layer in model.layers[:-1]:
        outputs = keras.ops.convert_to_numpy(
            keras.Model(model.inputs, layer.output)(x))
        fractions.append(float(np.mean(np.all(outputs == 0, axis=0))))
    return fractions


def train(model, x, y, epochs=10):
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model.fit(x, y, epochs=epochs, batch_size=32, verbose=0,
                     shuffle=False)


@pytest.mark.inference
def test_report_matches_numpy_on_a_model_built_to_die():
    model = dying_mlp()
    x, _ = regression_data()
    rows = dead_unit_report(model, x, batch_size=100)
    expected = numpy_dead_fractions(model, x)
    assert [r["layer"] for r in rows] == [f"hidden_{i}" for i in range(4)] + [
        "total"]
    np.testing.assert_allclose([r["dead_fraction"] for r in rows[:-1]],
                               expected)
    assert rows[-1]["units"] == 64
    assert rows[-1]["dead_fraction"] == pytest.approx(np.mean(expected))
    assert rows[-1]["dead_fraction"] > 0.3  # built to die
    # From the values the report reads, `predict_on_batch`'s (OpenVINO
    # computes them at its CPU plugin's default precision, a call at
    # float32's).
    sparsity = np.mean([np.mean(keras.Model(
        model.inputs, l.output).predict_on_batch(x) == 0)
        for l in model.layers[:-1]])
    assert rows[-1]["sparsity"] == pytest.approx(sparsity)


def test_sugar_starts_equally_dead_and_revives_units():
    x, y = regression_data()
    relu_model = dying_mlp()
    sugar_model = sugarify(relu_model, "bsilu")
    relu_before = dead_unit_report(relu_model, x)[-1]["dead_fraction"]
    sugar_before = dead_unit_report(sugar_model, x)[-1]["dead_fraction"]
    assert sugar_before == relu_before  # identical forward pass
    train(relu_model, x, y)
    train(sugar_model, x, y)
    relu_after = dead_unit_report(relu_model, x)[-1]["dead_fraction"]
    sugar_after = dead_unit_report(sugar_model, x)[-1]["dead_fraction"]
    assert relu_after == relu_before  # dead ReLUs never come back
    assert sugar_after < relu_after - 0.1, (relu_after, sugar_after)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_monitor_writes_history_csv_and_per_layer_logs(tmp_path,
                                                       jit_compile):
    x, y = regression_data()
    model = sugarify(dying_mlp(), "elu")
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse",
                  jit_compile=jit_compile)
    monitor = DeadUnitMonitor(probe=x[:128], every_n_batches=4)
    csv_path = tmp_path / "log.csv"
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0,
                        callbacks=[monitor, keras.callbacks.CSVLogger(
                            str(csv_path))])
    logs = history.history
    assert len(logs["dead_units"]) == 2
    assert logs["dead_units"][-1] == pytest.approx(
        dead_unit_report(model, x[:128])[-1]["dead_fraction"])
    for i in range(4):
        assert len(logs[f"dead_units/hidden_{i}"]) == 2
    assert "sparsity" in logs
    # 8 batches per epoch, every 4 batches, plus each epoch end.
    assert [(e, b) for e, b, _ in monitor.history] == [
        (0, 3), (0, 7), (0, None), (1, 3), (1, 7), (1, None)]
    with open(csv_path) as f:
        header = next(csv.reader(f))
    assert "dead_units" in header and "dead_units/hidden_0" in header


def test_callbacks_listed_before_the_monitor_see_its_values(tmp_path):
    x, y = regression_data()
    model = dying_mlp(bias=-100.0)  # Every unit dead, and it stays so.
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    csv_path = tmp_path / "log.csv"
    stopper = keras.callbacks.EarlyStopping(monitor="dead_units",
                                            patience=0, mode="min")
    monitor = DeadUnitMonitor(probe=x[:64])
    callbacks = [keras.callbacks.CSVLogger(str(csv_path)), stopper, monitor]
    history = model.fit(x, y, epochs=5, verbose=0, callbacks=callbacks)
    # EarlyStopping read dead_units (1.0, not improving) and stopped.
    assert history.history["dead_units"] == [1.0, 1.0]
    assert stopper.stopped_epoch == 1
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert [float(row["dead_units"]) for row in rows] == [1.0, 1.0]


def test_monitor_does_not_change_training():
    x, y = regression_data()
    plain, monitored = dying_mlp(), dying_mlp()
    for model in (plain, monitored):
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    plain.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    monitored.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False,
                  callbacks=[DeadUnitMonitor(x, every_n_batches=1)])
    for a, b in zip(plain.get_weights(), monitored.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.inference
def test_every_form_is_measured_including_nested_models():
    model = zoo.every_form()
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    names = [r["layer"] for r in dead_unit_report(model, x)]
    # The two raw ops get automatic names, numbered by what ran before.
    assert re.fullmatch(r"relu(_\d+)?", names[0]), names
    assert re.fullmatch(r"re_lu(_\d+)?", names[1]), names
    # In graph order: the nested model's where it is called; the shared
    # layer is one layer, measured over its two calls; the capped ReLU
    # and the ReLU a custom block builds itself are rectified too.
    assert names[2:] == ["inner/inner_dense", "inner/inner_relu", "shared",
                         "act", "relu6", "block/inner", "total"]
    sugar_names = [r["layer"] for r in dead_unit_report(sugarify(model), x)]
    assert len(sugar_names) == len(names)
    # sugarify's report names the same layers by the same paths.
    replaced = {site.path for site in sugarify(model).sugar_report.replaced}
    assert {"shared", "act", "inner/inner_dense",
            "inner/inner_relu"} <= replaced


@pytest.mark.inference
def test_conv_units_are_channels():
    model = keras.Sequential([
        keras.Input((6, 6, 1)),
        keras.layers.Conv2D(4, 3, activation=SugarReLU(), bias_initializer=(
            keras.initializers.Constant(-100.0))),
    ])
    x = np.random.default_rng(0).normal(size=(5, 6, 6, 1)).astype("float32")
    row = dead_unit_report(model, x)[0]
    assert row["units"] == 4 and row["dead"] == 4 and row["sparsity"] == 1.0


@pytest.mark.inference
def test_nested_list_probe_is_read_as_one_array():
    model = dying_mlp()
    x = np.random.default_rng(0).normal(size=(16, 8)).astype("float32")
    assert dead_unit_report(model, x.tolist()) == dead_unit_report(model, x)


def test_sequential_without_input_is_measured():
    model = keras.Sequential([keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = regression_data()
    history = model.fit(x, y, epochs=2, verbose=0,
                        callbacks=[DeadUnitMonitor(x)])
    # The last measurement saw the final weights.
    assert len(history.history["dead_units"]) == 2
    assert history.history["dead_units"][-1] == (
        dead_unit_report(model, x)[-1]["dead_fraction"])


class TestBadInput:
    @pytest.mark.inference
    def test_empty_probe(self):
        with pytest.raises(ValueError, match="probe data is empty"):
            dead_unit_report(dying_mlp(), np.zeros((0, 8), "float32"))

    @pytest.mark.inference
    def test_wrong_shape(self):
        with pytest.raises(ValueError, match=r"shape \(5,\).*takes \(8,\)"):
            dead_unit_report(dying_mlp(), np.zeros((4, 5), "float32"))

    @pytest.mark.inference
    def test_no_rectified_units(self):
        model = keras.Sequential([keras.Input((3,)),
                                  keras.layers.Dense(2, activation="tanh")])
        with pytest.raises(ValueError, match="no rectified units"):
            dead_unit_report(model, np.ones((2, 3), "float32"))

    def test_callback_checks_at_train_begin(self):
        model = dying_mlp()
        model.compile(optimizer="sgd", loss="mse")
        x, y = regression_data()
        with pytest.raises(ValueError, match="probe data is empty"):
            model.fit(x, y, verbose=0,
                      callbacks=[DeadUnitMonitor(x[:0])])

    @pytest.mark.inference
    @pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
    def test_bad_batch_size(self, batch_size):
        with pytest.raises(ValueError, match=f"batch_size={batch_size!r}"):
            DeadUnitMonitor(np.ones((2, 8)), batch_size=batch_size)
        with pytest.raises(ValueError, match=f"batch_size={batch_size!r}"):
            dead_unit_report(dying_mlp(), np.ones((2, 8)),
                             batch_size=batch_size)

    @pytest.mark.inference
    def test_dataset_probe_is_refused_with_advice(self):
        with pytest.raises(TypeError, match="list_iterator.*dataset.take"):
            dead_unit_report(dying_mlp(), iter([np.ones((2, 8))]))
        tf = pytest.importorskip("tensorflow")
        dataset = tf.data.Dataset.from_tensor_slices(
            np.ones((4, 8), "float32")).batch(2)
        with pytest.raises(TypeError, match="BatchDataset.*dataset.take"):
            dead_unit_report(dying_mlp(), dataset)

    def test_subclassed_model_is_refused_clearly(self):
        model = zoo.Subclassed()
        model.compile(optimizer="sgd", loss="mse")
        x = np.ones((4, 3), "float32")
        with pytest.raises(ValueError, match="Subclassed.*no layer graph"):
            model.fit(x, np.ones((4, 2)), verbose=0,
                      callbacks=[DeadUnitMonitor(x)])

    @pytest.mark.inference
    @pytest.mark.parametrize("every", [0, -2, 1.5, True, False])
    def test_bad_frequency(self, every):
        # A bool is an int to Python, but True is not a count of batches.
        with pytest.raises(ValueError, match=(
                rf"positive integer or None. Received: "
                rf"every_n_batches={every!r}")):
            DeadUnitMonitor(np.ones((2, 8)), every_n_batches=every)


def shared_layer_model():
    """The shared `sh` (4 units, called twice) and a `head`. On negative
    inputs, unit 0 of `sh` is zero at the first call and active at the
    second, units 1 and 3 the other way round, unit 2 zero at both."""
    inputs = keras.Input((4,))
    sh = keras.layers.Dense(4, activation="relu", name="sh")
    outputs = keras.layers.Dense(3, activation="relu", name="head")(
        sh(sh(inputs)))
    model = keras.Model(inputs, outputs)
    kernel = np.tile(np.array([1.0, -1.0, 0.0, -1.0], "float32"), (4, 1))
    bias = np.array([0.0, 0.0, -1.0, 0.0], "float32")
    sh.set_weights([kernel, bias])
    return model, kernel, bias


def test_a_shared_layer_is_one_layer_measured_over_all_its_calls():
    model, kernel, bias = shared_layer_model()
    x = -np.abs(np.random.default_rng(0).normal(size=(16, 4))).astype(
        "float32")
    rows = dead_unit_report(model, x, batch_size=5)
    assert [row["layer"] for row in rows] == ["sh", "head", "total"]
    first = np.maximum(x @ kernel + bias, 0.0)
    second = np.maximum(first @ kernel + bias, 0.0)
    # Per call, 3 and 3 units would be dead; over both calls only unit 2.
    assert np.all(first[:, [0, 2]] == 0) and np.all(second[:, 1:] == 0)
    both = np.concatenate([first, second])
    assert rows[0]["units"] == 4 and rows[0]["dead"] == 1
    assert rows[0]["sparsity"] == np.count_nonzero(both == 0) / both.size
    assert rows[-1]["units"] == 7
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    history = model.fit(x, np.zeros((16, 3)), verbose=0,
                        callbacks=[DeadUnitMonitor(x)])
    assert history.history["dead_units/sh"] == [0.25]


def two_input_model(dict_inputs=False):
    za, ab = keras.Input((4,), name="za"), keras.Input((3,), name="ab")
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(
        keras.layers.Concatenate()([za, ab]))
    outputs = keras.layers.Dense(1, name="out")(hidden)
    inputs = {"za": za, "ab": ab} if dict_inputs else [za, ab]
    return keras.Model(inputs, outputs)


# A model taking a dict is given a dict; one taking a list, any structure.
@pytest.mark.parametrize("dict_inputs, structure", [
    (False, "list"), (False, "tuple"), (False, "dict"), (True, "dict")],
    ids=["list_inputs-list", "list_inputs-tuple", "list_inputs-dict",
         "dict_inputs-dict"])
def test_every_input_structure_predict_takes(dict_inputs, structure):
    model = two_input_model(dict_inputs)
    rng = np.random.default_rng(0)
    xa = rng.normal(size=(12, 4)).astype("float32")
    xb = rng.normal(size=(12, 3)).astype("float32")
    probe = {"list": [xa, xb], "tuple": (xa, xb),
             "dict": {"za": xa, "ab": xb}}[structure]
    model.predict(probe, verbose=0)  # What predict takes...
    kernel, bias = model.get_layer("hidden").get_weights()
    hidden = np.maximum(np.concatenate([xa, xb], axis=1) @ kernel + bias, 0)
    rows = dead_unit_report(model, probe, batch_size=5)  # ...is measured.
    assert rows[0]["sparsity"] == np.count_nonzero(hidden == 0) / hidden.size
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    monitor = DeadUnitMonitor(probe, batch_size=5)
    model.fit(probe, np.zeros((12, 1)), verbose=0, callbacks=[monitor])
    assert monitor.history[-1][2]["sparsity"] == rows[-1]["sparsity"]


@pytest.mark.parametrize("with_input", [True, False])
def test_monitor_without_rectified_units_fails_before_any_batch(with_input):
    model = keras.Sequential(
        ([keras.Input((8,))] if with_input else [])
        + [keras.layers.Dense(4, activation="gelu"), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = regression_data()
    batches = []
    counter = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: batches.append(batch))
    with pytest.raises(ValueError, match="has no rectified units"):
        model.fit(x, y, verbose=0, callbacks=[counter, DeadUnitMonitor(x)])
    assert batches == []


@pytest.mark.parametrize("name", ["single", "list", "dict", "nested",
                                  "shared"])
def test_no_warning_for_any_probe(name):
    x = np.random.default_rng(0).normal(size=(10, 4)).astype("float32")
    if name == "single":
        model, probe = dying_mlp(), np.concatenate([x, x], axis=1)
    elif name in ("list", "dict"):
        model = two_input_model()
        probe = [x, x[:, :3]] if name == "list" else {"za": x,
                                                      "ab": x[:, :3]}
    elif name == "nested":
        model, probe = zoo.every_form(), x
    else:
        model, probe = shared_layer_model()[0], x
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # The one warning every_form warrants: its opaque block's relu.
        warnings.filterwarnings("ignore", "Dead units are not measured at "
                                "'opaque'")
        dead_unit_report(model, probe, batch_size=3)
    # Nothing the user did warrants a warning (Keras' "structure of
    # `inputs` doesn't match", on PyTorch, was one per batch).
    assert not [w for w in caught if issubclass(w.category, UserWarning)], [
        str(w.message) for w in caught]


def test_repeated_reports_see_the_current_weights_and_trace_once(
        monkeypatch):
    """Reports on one model share its probe: compiled once (TensorFlow
    warned of functions traced again and again), yet always measuring
    the weights as they are now."""
    model = dying_mlp(depth=2, bias=0.0)
    x = np.random.default_rng(0).normal(size=(10, 8)).astype("float32")
    probes = []
    monkeypatch.setattr(diagnostics, "_Probe", lambda *args: probes.append(
        _PROBE(*args)) or probes[-1])
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        alive = [dead_unit_report(model, x, batch_size=3)[-1]
                 for _ in range(7)]
        weights = model.get_weights()
        model.set_weights([np.full_like(w, -100.0) if w.ndim == 1 else w
                           for w in weights])
        dead = dead_unit_report(model, x, batch_size=3)[-1]
    finally:
        logger.removeHandler(handler)
    assert len(probes) == 1
    assert all(report == alive[0] for report in alive)
    assert alive[0]["dead_fraction"] < 1.0 and dead["dead_fraction"] == 1.0
    assert not [r for r in records if "retracing" in r.getMessage()], [
        r.getMessage() for r in records]


@pytest.mark.inference
def test_a_sequential_that_gains_or_loses_a_layer_is_measured_as_it_is():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(
        4, activation="relu", name="first")])
    x = np.ones((5, 8), "float32")
    layers = lambda: [row["layer"] for row in dead_unit_report(model, x)]
    assert layers() == ["first", "total"]
    model.add(keras.layers.Dense(4, activation="relu", name="second"))
    assert layers() == ["first", "second", "total"]
    model.pop()
    assert layers() == ["first", "total"]
