"""One map of a model's activation sites: `sugarify`, `strip_sugar` and the
dead-unit diagnostics read the same sites under the same paths, and every
composition of them round-trips."""

import tempfile
import warnings

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from keras import ops

import keras_sugar
from keras_sugar import SugarReLU
from keras_sugar import dead_unit_report
from keras_sugar import diagnostics
from keras_sugar import site_map
from keras_sugar import strip_sugar
from keras_sugar import sugarify
from tests import zoo
from tests.testing import save_and_load
from tests.testing import to_numpy


def sample(model, batch=4, seed=0):
    shape = (batch,) + tuple(model.input_shape[1:])
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@keras.saving.register_keras_serializable(package="keras_sugar_map_tests")
class TwoDenseBlock(keras.layers.Layer):
    """A custom block that builds two ReLU sublayers itself."""

    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense_a = keras.layers.Dense(units, activation="relu",
                                          name="dense_a")
        self.dense_b = keras.layers.Dense(units, activation="relu",
                                          name="dense_b")

    def call(self, x):
        return self.dense_b(self.dense_a(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def block_then_top():
    """The model of the issue: a custom block, then a ReLU Dense."""
    inputs = keras.Input((4,))
    x = TwoDenseBlock(8, name="blk")(inputs)
    outputs = keras.layers.Dense(8, activation="relu", name="top")(x)
    return keras.Model(inputs, outputs)


def sugar_paths(model):
    return [site.path for site in site_map.read(model).sugar_sites]


def site_paths(model):
    return [site.path for site in site_map.read(model).sites]


def units(model, x):
    """`(layer, units)` of the dead-unit report, or [] for a model whose
    rectified units cannot be observed (inside a recurrent loop)."""
    if not diagnostics.rectified_sites(model):
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Unobservable sites, named.
        return [(row["layer"], row["units"])
                for row in dead_unit_report(model, x)]


class TestTheEightFailures:
    """Each case broke on the three walkers' disagreement."""

    def test_two_rewrites_then_strip(self, tmp_path):
        model = block_then_top()
        x = sample(model)
        twice = sugarify(sugarify(model), "elu", existing="replace")
        assert sugar_paths(twice) == ["blk/dense_a", "blk/dense_b", "top"]
        assert {str(site.sugar) for site in site_map.read(
            twice).sugar_sites} == {repr(SugarReLU("elu"))}
        plain = strip_sugar(twice)
        assert site_map.count_sugar_sites(plain) == 0
        np.testing.assert_array_equal(to_numpy(plain(x)),
                                      to_numpy(model(x)))
        assert isinstance(plain.get_layer("blk"), TwoDenseBlock)
        restored = save_and_load(plain, tmp_path)
        np.testing.assert_array_equal(to_numpy(restored(x)),
                                      to_numpy(model(x)))

    def test_a_second_partial_pass_keeps_the_paths(self, tmp_path):
        model = block_then_top()
        first = sugarify(model, layers="blk/dense_b")
        assert [c.path for c in first.sugar_report.left_by_filter] == [
            "blk/dense_a", "top"]
        second = sugarify(first, "elu", layers="blk/dense_a")
        assert [c.path for c in second.sugar_report.replaced] == [
            "blk/dense_a"]
        assert [c.path for c in second.sugar_report.already_sugar] == [
            "blk/dense_b"]
        assert site_paths(second) == site_paths(model)
        # One patch per site, each with its own surrogate, in one wrapper.
        sites = {site.path: site.sugar
                 for site in site_map.read(second).sugar_sites}
        assert sites == {"blk/dense_a": SugarReLU("elu"),
                         "blk/dense_b": SugarReLU()}
        x = sample(model)
        np.testing.assert_array_equal(to_numpy(second(x)),
                                      to_numpy(model(x)))
        restored = save_and_load(second, tmp_path)
        assert {site.path: site.sugar for site in site_map.read(
            restored).sugar_sites} == sites

    @pytest.mark.parametrize("function", [keras.activations.relu, ops.relu],
                             ids=["activations.relu", "ops.relu"])
    def test_lambda_relu_in_a_functional_model(self, function, tmp_path):
        inputs = keras.Input((4,))
        x = keras.layers.Dense(8, name="dense")(inputs)
        x = keras.layers.Lambda(function, name="lam")(x)
        model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
        new = sugarify(model)
        assert [(c.path, c.form) for c in new.sugar_report.replaced] == [
            ("lam", "Lambda layer")]
        x = sample(model)
        np.testing.assert_array_equal(to_numpy(new(x)), to_numpy(model(x)))
        assert sugar_paths(save_and_load(new, tmp_path)) == ["lam"]

    def test_a_sequential_without_input(self):
        model = keras.Sequential([keras.layers.Dense(4, activation="relu"),
                                  keras.layers.Dense(2)])
        new = sugarify(model)
        assert len(new.sugar_report.replaced) == 1
        assert new.layers[0].activation == SugarReLU()
        x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        model(x), new(x)  # Built by their first call.
        new.set_weights(model.get_weights())
        np.testing.assert_array_equal(to_numpy(new(x)), to_numpy(model(x)))
        # Built by a call before the rewrite: its weights are kept.
        again = sugarify(model)
        np.testing.assert_array_equal(to_numpy(again(x)),
                                      to_numpy(model(x)))

    def test_dead_units_of_a_transformer_are_its_feed_forward_units(self):
        pytest.importorskip("keras_hub")
        build, inputs, _ = zoo.transformers()["BERT"]
        model = sugarify(build(), "nelu", alpha=0.01, targets=("gelu",))
        rows = units(model, inputs)
        # intermediate_dim=16 rectified units per block, not its output's 8.
        assert rows == [("transformer_layer_0", 16),
                        ("transformer_layer_1", 16), ("total", 32)]
        # They are the rectified tensor itself: kill block 0's units.
        dense = model.get_layer(
            "transformer_layer_0")._feedforward_intermediate_dense
        dense.bias.assign(np.full(dense.bias.shape, -100.0, "float32"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = dead_unit_report(model, inputs)
        assert report[0]["dead"] == 16 and report[0]["sparsity"] == 1.0
        assert report[1]["dead_fraction"] < 1.0

    @pytest.mark.parametrize("activation", ["relu", SugarReLU()],
                             ids=["relu", "SugarReLU"])
    def test_dead_units_through_time_distributed(self, activation):
        model = keras.Sequential([keras.Input((5, 4)),
                                  keras.layers.TimeDistributed(
                                      keras.layers.Dense(
                                          6, activation=activation),
                                      name="td")])
        x = sample(model, batch=8)
        (row, total) = dead_unit_report(model, x)
        outputs = to_numpy(model(x)).reshape(-1, 6)
        # Named as the map (and sugarify) names it: the layer in "td".
        (site,) = site_map.read(model).sites
        assert row["layer"] == site.path and site.path.startswith("td/")
        assert row["units"] == 6 == total["units"]
        assert row["dead"] == int(np.all(outputs == 0, axis=0).sum())
        assert row["sparsity"] == pytest.approx(np.mean(outputs == 0))

    def test_the_function_form_is_a_site(self):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
            16, activation=keras_sugar.sugar_relu, name="d")])
        assert site_map.count_sugar_sites(model) == 1
        (site,) = site_map.read(model).sites
        assert site.sugar == SugarReLU() and site.activation == "relu"
        x = sample(model, batch=32)
        row = dead_unit_report(model, x)[0]
        assert (row["layer"], row["units"]) == ("d", 16)
        assert row["dead"] == int(np.all(to_numpy(model(x)) == 0,
                                         axis=0).sum())
        plain = strip_sugar(model)
        assert plain.get_layer("d").activation is keras.activations.relu

    def test_the_strip_report_says_what_it_put(self):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
            4, activation=SugarReLU(max_value=6.0), name="d6")])
        plain = strip_sugar(model)
        assert plain.get_layer("d6").activation is keras.activations.relu6
        (row,) = plain.strip_report.replaced
        assert (row.path, row.form, row.activation) == (
            "d6", "inline (Dense)", "relu6")
        assert row.note.endswith("-> relu6")
        # The same columns as sugarify's report.
        line = str(plain.strip_report).splitlines()[1]
        assert line.split()[:4] == ["d6", "inline", "(Dense)", "relu6"]

    @pytest.mark.parametrize("build", ["functional", "sequential"])
    def test_an_unnamed_input_keeps_its_names(self, build):
        if build == "functional":
            inputs = keras.Input((8,))
            model = keras.Model(inputs, keras.layers.Dense(
                2, activation="relu")(inputs))
        else:
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(
                2, activation="relu")])
        names = (model.inputs[0].name,
                 model.inputs[0]._keras_history.operation.name)
        for new in (sugarify(model), strip_sugar(sugarify(model))):
            assert (new.inputs[0].name,
                    new.inputs[0]._keras_history.operation.name) == names


class TestOneMap:
    @pytest.mark.filterwarnings("ignore:Dead units are not measured")
    def test_each_call_reads_the_model_once(self, monkeypatch):
        model = zoo.every_form()
        x = sample(model)
        reads = []
        original = site_map.read
        monkeypatch.setattr(site_map, "read", lambda m: reads.append(
            m) or original(m))
        new = sugarify(model)
        # The model once; the reloaded rewrite once, to check it.
        assert [m is model for m in reads] == [True, False]
        reads.clear()
        strip_sugar(new)
        # The SUGAR model once; the stripped one once, to check it.
        assert [m is new for m in reads] == [True, False]
        reads.clear()
        dead_unit_report(new, x)
        dead_unit_report(new, x)  # A report's probe is kept with the model.
        assert [m is new for m in reads] == [True]

    def test_a_walk_visits_each_node_once(self, monkeypatch):
        calls = []
        original = site_map._Walk.node
        monkeypatch.setattr(site_map._Walk, "node", lambda self, node, *a:
                            calls.append(id(node)) or original(self, node, *a))
        model = zoo.every_form()  # A shared layer, a nested model.
        site_map.read(model)
        assert len(calls) == len(set(calls))

    def test_sugarify_strip_and_the_report_name_the_same_sites(self):
        model = zoo.every_form()
        x = sample(model, batch=16)
        new = sugarify(model)
        plain = strip_sugar(new)
        replaced = [c.path for c in new.sugar_report.replaced]
        assert [row.path for row in plain.strip_report.replaced] == replaced
        measured = {layer for layer, _ in units(new, x)} - {"total"}
        # Every ReLU measured is one sugarify replaced: the relu6 layer
        # (kept) and the unreachable one excepted.
        assert measured - set(replaced) == {"relu6"}
        assert units(model, x) == units(new, x) == units(plain, x)

    def test_unobservable_sites_are_named_with_why(self):
        model = zoo.every_form()
        assert diagnostics.unobserved_sites(model) == [
            ("opaque", "its call() uses relu directly; rewrite that code "
                       "with keras_sugar.SugarReLU")]
        with pytest.warns(UserWarning, match="not measured at 'opaque'"):
            dead_unit_report(model, sample(model))


# The model forms of the zoo the compositions run on: every form in one
# model, a block that builds its ReLUs itself, ReLU layers a block holds,
# the rebuild route, wrapped and recurrent layers, and the model.
FORMS = {
    "every_form": zoo.every_form,
    "block_then_top": block_then_top,
    "relu_layer_block": lambda: keras.Sequential([
        keras.Input((4,)), zoo.ReluLayerBlock(8, name="blk"),
        keras.layers.Dense(2)]),
    "rebuild_route": lambda: zoo.TinyBackbone(name="tiny"),
    "time_distributed": zoo.wrapped_and_recurrent()[
        "TimeDistributed(Dense)"][0],
    "lstm": zoo.wrapped_and_recurrent()["LSTM both activations"][0],
    "lambda": zoo.wrapped_and_recurrent()["Lambda(activations.relu)"][0],
}

OPERATIONS = st.lists(st.one_of(
    st.just(("sugarify",)),
    st.tuples(st.just("filter"), st.integers(0, 50)),
    st.tuples(st.just("replace"), st.sampled_from(["elu", "nelu", "selu"])),
    st.just(("strip",))), min_size=1, max_size=3)


def apply(model, operation):
    """One operation of a composition on `model`."""
    kind = operation[0]
    if kind == "sugarify":
        return sugarify(model)
    if kind == "replace":
        return sugarify(model, operation[1], existing="replace")
    if kind == "strip":
        return strip_sugar(model)
    paths = [c.path for c in sugarify(model, dry_run=True).replaced]
    if not paths:  # Nothing left to pick: the filter would match none.
        return model
    return sugarify(model, layers=paths[operation[1] % len(paths)])


def check_composition(name, operations):
    """Every step of `operations` on the model form `name`: the original's
    predictions bit for bit, also once saved and loaded; the same site
    paths; the same dead units; and a final strip leaves no SugarReLU."""
    model = FORMS[name]()
    x = sample(model)
    expected = to_numpy(model(x))
    paths, measured = site_paths(model), units(model, x)
    with tempfile.TemporaryDirectory() as folder:
        for step, operation in enumerate(operations + [("strip",)]):
            model = apply(model, operation)
            np.testing.assert_array_equal(to_numpy(model(x)), expected,
                                          err_msg=str(operation))
            assert site_paths(model) == paths, operation
            assert units(model, x) == measured, operation
            restored = save_and_load(model, folder, f"step{step}.keras")
            np.testing.assert_array_equal(to_numpy(restored(x)), expected)
            assert sugar_paths(restored) == sugar_paths(model), operation
    assert site_map.count_sugar_sites(model) == 0


@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(FORMS)), operations=OPERATIONS)
def test_every_composition_round_trips(name, operations):
    check_composition(name, operations)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(FORMS)), operations=OPERATIONS)
def test_every_composition_round_trips_many(name, operations):
    check_composition(name, operations)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_each_form_through_every_operation(name):
    # The default run covers each form once, whatever hypothesis draws.
    check_composition(name, [("filter", 1), ("sugarify",),
                             ("replace", "elu")])
