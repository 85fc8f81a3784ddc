"""`sugarify` rewrites every reachable ReLU site, keeps weights and
predictions, never touches the original, and the result reloads with SUGAR."""

import ast
import pathlib
import re

import keras
import numpy as np
import pytest
from keras import ops

from keras_sugar import SugarPatched
from keras_sugar import model_graph
from keras_sugar import patching
from keras_sugar import SugarReLU
from keras_sugar import strip_sugar
from keras_sugar.layers import SugarReLU as SugarReLULayer
from keras_sugar import activation_kinds
from keras_sugar import site_map
from keras_sugar import site_records
from keras_sugar import sugarify
from keras_sugar.rewrite import count_sugar_sites
from tests import zoo
from tests.testing import keras_takes_layer_activations
from tests.testing import save_and_load
from tests.testing import to_numpy
from tests.testing import value_and_gradient


def sample(model, batch=2):
    shape = (batch,) + tuple(model.input_shape[1:])
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def same_report(dry_run, report):
    """The dry run's report says it is one in its first line, and is
    otherwise the rewrite's report, line for line."""
    first = str(dry_run).splitlines()[0]
    assert first.startswith("sugarify dry run (nothing was changed): ")
    assert str(dry_run).splitlines()[1:] == str(report).splitlines()[1:]


def check_rewrite(model, tmp_path, targets=("relu",), surrogate="bsilu"):
    """The properties every rewrite must have; returns the new model."""
    x = sample(model)
    weights_before = model.get_weights()
    sites_before = zoo.relu_sites(model, targets)
    _, grad_before = value_and_gradient(model, x)
    y_before = to_numpy(model(x))

    new = sugarify(model, surrogate, targets=targets)
    report = new.sugar_report

    # Every target site the graph shows is replaced or reported unreachable
    # (relu inside a custom call() is reported too, but no count sees it).
    unreachable_sites = [s for s in report.unreachable
                         if s.form in ("raw op", "ReLU layer")]
    assert len(report.replaced) + len(unreachable_sites) == sites_before, (
        str(report))
    assert count_sugar_sites(new) == len(report.replaced)
    # The original is untouched.
    assert zoo.relu_sites(model, targets) == sites_before
    assert count_sugar_sites(model) == 0
    for before, after in zip(weights_before, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    # Weights carried over; ReLU -> SUGAR keeps predictions exactly.
    for old, new_w in zip(weights_before, new.get_weights()):
        np.testing.assert_array_equal(old, new_w)
    y_new_plain = to_numpy(new(x))
    y_new, grad_new = value_and_gradient(new, x)
    if report.changes_forward:
        assert not np.array_equal(y_new_plain, y_before)
    else:
        # Plain calls of both models: bit for bit.
        np.testing.assert_array_equal(y_new_plain, y_before)
        # The value computed under a gradient comes from another program:
        # on JAX a recurrent layer's scan becomes a forward loop that also
        # keeps what the backward pass needs (for SUGAR, the surrogate's
        # derivative), and XLA may fuse or contract that loop body
        # differently on some CPUs (1 ulp seen on an AMD EPYC). Equal to
        # float32 rounding, not bit for bit.
        np.testing.assert_allclose(y_new, y_before, rtol=1e-6, atol=1e-7)
    # The backward pass changed where there was something to replace.
    assert np.isfinite(grad_new).all()
    if report.replaced:
        # Input gradients of deep models are tiny, and one rewritten site
        # may change them little: demand a change far above float32
        # round-off (~1e-7 relative), not a large one.
        scale = np.abs(grad_before).max()
        assert np.abs(grad_new - grad_before).max() > 1e-5 * scale
    else:
        np.testing.assert_array_equal(grad_new, grad_before)
    # Saved and loaded, the model keeps its SUGAR activations.
    restored = save_and_load(new, tmp_path)
    assert count_sugar_sites(restored) == count_sugar_sites(new)
    np.testing.assert_array_equal(to_numpy(restored(x)), y_new_plain)
    # And it trains.
    new.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    loss = new.train_on_batch(x, np.zeros_like(y_new))
    assert np.isfinite(loss)
    return new


class TestForms:
    def test_every_form_in_one_functional_model(self, tmp_path):
        model = zoo.every_form()
        new = check_rewrite(model, tmp_path)
        report = new.sugar_report
        forms = sorted(site.form for site in report.replaced)
        assert forms == ["Activation layer", "ReLU layer", "inline (Dense)",
                         "inline (Dense)", "inside custom layer", "raw op",
                         "raw op"]
        assert [s.path for s in report.skipped] == ["relu6"]
        assert [s.path for s in report.unreachable] == ["opaque"]
        # GELU is not a default target.
        assert new.get_layer("gelu_dense").activation is (
            keras.activations.gelu)
        # The shared layer is still one layer, called twice.
        shared = [l for l in new.layers if l.name == "shared"]
        assert len(shared) == 1 and len(shared[0]._inbound_nodes) == 2
        assert shared[0].activation == SugarReLU()

    def test_sequential_with_parameters(self, tmp_path):
        model = keras.Sequential([
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Activation("relu"),
            keras.layers.ReLU(),
            keras.layers.Dense(3),
        ])
        new = check_rewrite(model, tmp_path)
        assert isinstance(new, keras.Sequential)
        new = sugarify(model, "nelu", alpha=0.01, negative_only=True)
        assert new.layers[0].activation == SugarReLU(
            "nelu", alpha=0.01, negative_only=True)

    def test_gelu_target_changes_forward_and_says_so(self, tmp_path):
        new = check_rewrite(zoo.every_form(), tmp_path,
                            targets=("relu", "gelu"))
        assert new.sugar_report.changes_forward
        assert "forward pass (predictions) changes" in str(new.sugar_report)

    def test_dead_units_get_a_gradient_after_rewrite(self):
        model = keras.Sequential([
            keras.Input((4,)),
            keras.layers.Dense(6, activation="relu", bias_initializer=(
                keras.initializers.Constant(-8.0))),
            keras.layers.Dense(1),
        ])
        x = sample(model, batch=8)
        _, dead = value_and_gradient(model, x)
        _, alive = value_and_gradient(sugarify(model, "elu"), x)
        assert np.all(dead == 0.0)
        assert np.all(alive != 0.0)

    @pytest.mark.inference
    def test_dry_run_reports_without_returning_a_model(self):
        model = zoo.every_form()
        report = sugarify(model, dry_run=True)
        assert len(report) == 7
        assert "opaque" in str(report)
        assert count_sugar_sites(model) == 0
        # Read on its own, the report says first that nothing changed.
        first = str(report).splitlines()[0]
        assert first.startswith("sugarify dry run (nothing was changed): 7 "
                                "site(s) would be replaced -> ")
        assert "dry run" not in str(sugarify(model).sugar_report)

    @pytest.mark.inference
    def test_dry_run_only_plans(self, monkeypatch):
        # Planning clones nothing and builds no new model.
        def no_clone(*args, **kwargs):
            raise AssertionError("dry_run cloned the model")

        monkeypatch.setattr(keras.models, "clone_model", no_clone)
        report = sugarify(zoo.every_form(), dry_run=True)
        assert report.route == "clone" and len(report) == 7
        assert "route: cloned layer by layer" in str(report)

    @pytest.mark.inference
    @pytest.mark.parametrize("model", ["custom layers", "rebuild route"])
    def test_dry_run_builds_no_model_and_no_keras_layer(self, model,
                                                        monkeypatch):
        model = (zoo.every_form() if model == "custom layers"
                 else zoo.TinyBackbone(name="tiny"))
        expected = sugarify(model).sugar_report

        def no_build(*args, **kwargs):
            raise AssertionError("dry_run built a layer or a model")

        # Custom layers are rebuilt unweighted from their configs (the one
        # way to know whether they round-trip); nothing else is.
        monkeypatch.setattr(keras.models, "clone_model", no_build)
        for cls in (type(model), keras.Model, keras.Sequential,
                    keras.layers.Dense, keras.layers.ReLU,
                    keras.layers.Activation):
            monkeypatch.setattr(cls, "from_config", classmethod(no_build))
        monkeypatch.setattr(keras.layers.Activation, "__init__", no_build)
        monkeypatch.setattr(keras.layers.Layer, "set_weights", no_build)
        monkeypatch.setattr(SugarPatched, "__init__", no_build)
        same_report(sugarify(model, dry_run=True), expected)

    @pytest.mark.inference
    def test_relu_named_as_a_whole_word_in_custom_call(self):
        inputs = keras.Input((4,))
        x = zoo.LeakyBlock(name="leaky")(inputs)
        x = zoo.OpaqueBlock(name="opaque")(x)
        report = sugarify(keras.Model(inputs, x), dry_run=True)
        # leaky_relu( and relu6( are other functions; relu( is a ReLU.
        assert [s.path for s in report.unreachable] == ["opaque"]

    def test_compiled_model_stays_compiled(self):
        model = keras.Sequential([keras.Input((3,)),
                                  keras.layers.Dense(2, activation="relu")])
        model.compile(optimizer="sgd", loss="mse")
        new = sugarify(model)
        assert new.compiled
        assert new.train_on_batch(np.ones((2, 3)), np.ones((2, 2))) >= 0


def hand_placed():
    """SugarReLUs placed by hand in every form, and a ReLU to rewrite."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, activation=SugarReLU("elu"), name="hand")(
        inputs)
    x = keras.layers.Dense(3, activation=SugarReLU("elu", max_value=6.0),
                           name="hand_capped")(x)
    x = SugarReLULayer("selu", name="sugar_layer")(x)
    x = zoo.SugarBlock(3, name="sugar_block")(x)
    x = keras.layers.SimpleRNN(3, activation=SugarReLU("elu"),
                               name="rnn")(keras.layers.Reshape((1, 3))(x))
    outputs = keras.layers.Dense(2, activation="relu", name="relu_dense")(x)
    return keras.Model(inputs, outputs)


def listed(sites):
    return [(site.path, site.form, site.activation) for site in sites]


class TestExistingSugar:
    """SugarReLUs already in the model: kept by default, or replaced."""

    def test_kept_as_they_are_and_listed(self, tmp_path):
        model = hand_placed()
        x = sample(model)
        new = sugarify(model)
        report = new.sugar_report
        assert listed(report.replaced) == [
            ("relu_dense", "inline (Dense)", "relu")]
        assert listed(report.already_sugar) == [
            ("hand", "inline (Dense)", "relu"),
            ("hand_capped", "inline (Dense)", "relu6"),
            ("sugar_layer", "SugarReLU layer", "relu"),
            ("sugar_block/inner", "inside custom layer", "relu"),
            ("sugar_block/capped", "inside custom layer", "relu6"),
            ("rnn", "inline (SimpleRNN)", "relu")]
        assert "already SUGAR (kept): 6" in str(report)
        assert "SugarReLU('elu', alpha=1.0), kept" in str(report)
        assert new.get_layer("hand").activation == SugarReLU("elu")
        assert new.get_layer("hand_capped").activation == SugarReLU(
            "elu", max_value=6.0)
        assert new.get_layer("sugar_layer").activation == SugarReLU("selu")
        assert new.get_layer("relu_dense").activation == SugarReLU()
        np.testing.assert_array_equal(to_numpy(new(x)), to_numpy(model(x)))
        # dry_run reports what the rewrite does.
        same_report(sugarify(model, dry_run=True), report)
        restored = save_and_load(new, tmp_path)
        assert count_sugar_sites(restored) == 7

    def test_replaced_when_asked(self, tmp_path):
        model = hand_placed()
        x = sample(model)
        new = sugarify(model, "nelu", existing="replace")
        report = new.sugar_report
        assert listed(report.replaced) == [
            ("hand", "inline (Dense)", "relu"),
            ("hand_capped", "inline (Dense)", "relu6"),
            ("sugar_layer", "SugarReLU layer", "relu"),
            ("sugar_block/inner", "inside custom layer", "relu"),
            ("sugar_block/capped", "inside custom layer", "relu6"),
            ("rnn", "inline (SimpleRNN)", "relu"),
            ("relu_dense", "inline (Dense)", "relu")]
        assert report.replaced[0].note == "was SugarReLU('elu', alpha=1.0)"
        # Capped ones keep their caps, inside custom layers too.
        assert not report.already_sugar
        assert new.get_layer("hand").activation == SugarReLU("nelu")
        assert new.get_layer("hand_capped").activation == SugarReLU(
            "nelu", max_value=6.0)
        assert new.get_layer("sugar_layer").activation == SugarReLU("nelu")
        assert new.get_layer("rnn").cell.activation == SugarReLU("nelu")
        block = new.get_layer("sugar_block").layer
        assert block.inner.activation == SugarReLU("nelu")
        assert block.capped.activation == SugarReLU("nelu", max_value=6.0)
        np.testing.assert_array_equal(to_numpy(new(x)), to_numpy(model(x)))
        same_report(sugarify(model, "nelu", existing="replace",
                             dry_run=True), report)
        restored = save_and_load(new, tmp_path)
        assert count_sugar_sites(restored) == 7
        assert restored.get_layer("hand").activation == SugarReLU("nelu")

    @pytest.mark.parametrize("existing", ["keep", "replace"])
    def test_sugarify_twice_predicts_as_the_original(self, existing,
                                                     tmp_path):
        model = zoo.every_form()
        x = sample(model)
        once = sugarify(model)
        twice = sugarify(once, "elu", existing=existing)
        report = twice.sugar_report
        # The same sites (a custom layer's sublayers are named as Keras
        # names their rebuilt copies: the numbers differ between copies).
        dry = sugarify(once, "elu", existing=existing, dry_run=True)
        for section in ("replaced", "already_sugar"):
            assert [(s.form, s.activation, s.note)
                    for s in getattr(dry, section)] == [
                (s.form, s.activation, s.note)
                for s in getattr(report, section)]
        # Every site the first rewrite replaced, and nothing else.
        sites = report.replaced + report.already_sugar
        assert len(sites) == len(once.sugar_report.replaced) == 7
        assert {site.activation for site in sites} == {"relu"}
        if existing == "keep":
            assert not report.replaced
        else:
            assert not report.already_sugar
            assert twice.get_layer("shared").activation == SugarReLU("elu")
        np.testing.assert_array_equal(to_numpy(twice(x)),
                                      to_numpy(model(x)))
        restored = save_and_load(twice, tmp_path)
        assert count_sugar_sites(restored) == 7

    def test_relus_first_gelus_later(self):
        model = zoo.every_form()
        twice = sugarify(sugarify(model), targets=("gelu",))
        report = twice.sugar_report
        assert listed(report.replaced) == [
            ("gelu_dense", "inline (Dense)", "gelu")]
        assert len(report.already_sugar) == 7
        assert count_sugar_sites(twice) == 8

    def test_twice_through_the_rebuild_route(self, tmp_path):
        model = zoo.TinyBackbone(name="tiny")
        x = sample(model)
        once = sugarify(model)
        twice = sugarify(once)
        assert not twice.sugar_report.replaced
        assert len(twice.sugar_report.already_sugar) == 2
        np.testing.assert_array_equal(to_numpy(twice(x)),
                                      to_numpy(model(x)))
        restored = save_and_load(twice, tmp_path)
        assert count_sugar_sites(restored) == 2

    def test_replaced_through_the_rebuild_route(self):
        model = zoo.TinyBackbone(name="tiny")
        x = sample(model)
        twice = sugarify(sugarify(model), "elu", existing="replace")
        assert len(twice.sugar_report.replaced) == 2
        assert not twice.sugar_report.already_sugar
        np.testing.assert_array_equal(to_numpy(twice(x)),
                                      to_numpy(model(x)))

    @pytest.mark.parametrize("existing", ["drop", None, True])
    def test_bad_existing_lists_the_choices(self, existing):
        with pytest.raises(ValueError, match=(
                rf"\['keep', 'replace'\]. Received: "
                rf"existing={re.escape(repr(existing))}")):
            sugarify(hand_placed(), existing=existing)


def staged():
    """A stem and four stages, one ReLU site each."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, activation="relu", name="stem")(inputs)
    for stage in range(1, 5):
        x = keras.layers.Dense(8, name=f"stage{stage}_dense")(x)
        x = keras.layers.ReLU(name=f"stage{stage}_relu")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x))


def by_last_two_stages(site):
    return site.path.startswith(("stage3", "stage4"))


@pytest.mark.inference
class TestLayersFilter:
    """`layers=` rewrites the sites it selects and lists the others."""

    def check(self, model, layers, tmp_path):
        """Returns the dry run's report and the new model, which reports
        the same, predicts as `model`, holds exactly the selected
        SugarReLUs, and reloads with them."""
        report = sugarify(model, layers=layers, dry_run=True)
        new = sugarify(model, layers=layers)
        same_report(report, new.sugar_report)
        x = sample(model)
        np.testing.assert_array_equal(to_numpy(new(x)), to_numpy(model(x)))
        assert count_sugar_sites(new) == len(report.replaced)
        restored = save_and_load(new, tmp_path)
        assert count_sugar_sites(restored) == len(report.replaced)
        np.testing.assert_array_equal(to_numpy(restored(x)),
                                      to_numpy(new(x)))
        return report, new

    def test_every_relu_but_the_stem(self, tmp_path):
        model = staged()
        report, new = self.check(model, lambda site: site.path != "stem",
                                 tmp_path)
        assert [s.path for s in report.left_by_filter] == ["stem"]
        assert len(report.replaced) == 4
        assert new.get_layer("stem").activation is keras.activations.relu
        assert isinstance(new.get_layer("stage1_relu"), SugarReLULayer)

    @pytest.mark.parametrize("layers", [
        "stage[34]_*", re.compile(r"^stage[34]"), by_last_two_stages],
        ids=["glob", "regex", "predicate"])
    def test_only_the_last_two_stages(self, layers, tmp_path):
        report, new = self.check(staged(), layers, tmp_path)
        assert [s.path for s in report.replaced] == ["stage3_relu",
                                                     "stage4_relu"]
        assert [s.path for s in report.left_by_filter] == [
            "stem", "stage1_relu", "stage2_relu"]
        assert not isinstance(new.get_layer("stage2_relu"), SugarReLULayer)

    def test_the_glob_matches_the_whole_path(self):
        report = sugarify(staged(), layers="stage1*", dry_run=True)
        assert [s.path for s in report.replaced] == ["stage1_relu"]
        with pytest.raises(ValueError, match="layers='relu'"):
            sugarify(staged(), layers="relu")  # Not a part of a path.

    def test_dry_run_shows_the_selection(self):
        text = str(sugarify(staged(), layers="stage4*", dry_run=True))
        assert "layers='stage4*'" in text
        assert re.search(r"replaced: 1\n +stage4_relu ", text)
        assert re.search(r"left by the filter: 4\n +stem ", text)

    def test_a_custom_layer_and_the_rebuild_route(self, tmp_path):
        # The sites a custom layer builds itself and those of a rebuilt
        # graph are selected as the others.
        report, _ = self.check(zoo.every_form(), "block*", tmp_path)
        assert [s.form for s in report.replaced] == ["inside custom layer"]
        assert len(report.left_by_filter) == 6
        report, _ = self.check(zoo.TinyBackbone(name="tiny"), "dense_relu",
                               tmp_path)
        assert [s.form for s in report.replaced] == ["in place (rebuilt)"]
        assert [s.form for s in report.left_by_filter] == [
            "raw op (rebuilt)"]

    def test_left_sugar_is_kept_and_counted(self, tmp_path):
        model = sugarify(staged(), "elu")
        new = sugarify(model, "nelu", existing="replace", layers="stem")
        assert new.get_layer("stem").activation == SugarReLU("nelu")
        assert new.get_layer("stage1_relu").activation == SugarReLU("elu")
        assert count_sugar_sites(save_and_load(new, tmp_path)) == 5

    def test_a_filter_that_matches_nothing_names_it(self):
        with pytest.raises(ValueError, match=(
                r"layers='block_9\*' matches none of the 5 site\(s\) it "
                r"could replace: 'stem', 'stage1_relu', ")):
            sugarify(staged(), layers="block_9*")

    def test_a_filter_of_the_wrong_type(self):
        with pytest.raises(TypeError, match="glob string.*layers=3"):
            sugarify(staged(), layers=3)


def test_site_docstring_names_every_target():
    for target in activation_kinds.TARGETS:
        assert f'`"{target}"`' in site_records.Site.__doc__


@pytest.mark.parametrize("saved_as", ["relu_layers", "marked in sites"])
def test_patched_configs_saved_before_patches_still_load(saved_as):
    # Before `patches`, one activation served `sites`, `relu_layers` and
    # (with their own) `graph_sites`; before `relu_layers`, their
    # positions ended in "layer" in `sites`.
    inputs = keras.Input((4,))
    model = keras.Model(inputs, zoo.ReluLayerBlock(8, name="blk")(inputs))
    config = sugarify(model).get_layer("blk").get_config()
    (patch,) = config.pop("patches")
    old = {**config, "activation": patch["activation"], "sites": []}
    if saved_as == "relu_layers":
        old["relu_layers"] = [patch["position"]]
    else:
        old["sites"] = [patch["position"] + ["layer"]]
    restored = SugarPatched.from_config(old)
    assert restored.patches == (patching.Patch(
        "relu_layer", (), tuple(patch["position"]), SugarReLU()),)
    assert isinstance(restored.layer.act, SugarReLULayer)
    assert restored.get_config() == {**config, "patches": [patch]}


def test_rebuilt_configs_saved_with_graph_sites_still_load():
    model = zoo.TinyBackbone(name="tiny")
    new = sugarify(model)
    config = new.get_layer("tiny").get_config()
    patches = config.pop("patches")
    config.pop("node_names")
    (node,) = [p for p in patches if p["kind"] == "node"]
    # Old sites were child positions from the model itself.
    dense = model_graph.position_of(model, model.get_layer("dense_relu"))
    old = {**config, "activation": node["activation"],
           "sites": [list(dense)],
           "graph_sites": [[node["node"][0], "op", node["activation"]]]}
    restored = SugarPatched.from_config(old)
    restored.set_weights(model.get_weights())
    x = sample(model)
    np.testing.assert_array_equal(to_numpy(restored(x)), to_numpy(model(x)))
    # Its patches now count in the graph, so a rewrite keeps them.
    assert sorted(p.node for p in restored.patches) == sorted(
        tuple(p["node"]) for p in patches)
    inputs = keras.Input((4,))
    again = sugarify(keras.Model(inputs, restored(inputs), name="tiny"))
    kept = [c.path for c in again.sugar_report.already_sugar]
    assert kept[0] == "dense_relu" and re.fullmatch(r"relu(_\d+)?", kept[1])


def package_imports():
    """`{module: modules of keras_sugar it imports}` for the package's own
    top-level modules."""
    root = pathlib.Path(site_map.__file__).parent
    found = {}
    for path in root.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "keras_sugar":
                    imported |= {alias.name for alias in node.names}
                elif node.module.startswith("keras_sugar."):
                    imported.add(node.module.split(".")[1])
        found[path.stem] = imported & {p.stem for p in root.glob("*.py")}
    return found


# The rewrite's modules, each importing only those before it.
REWRITE_LAYERS = ["model_graph", "activation_kinds", "patching",
                  "site_records", "site_map", "report_rows", "rewrite_plan",
                  "cloning", "rewrite"]


def test_the_rewrite_modules_import_downward_without_cycles():
    imports = package_imports()
    for index, module in enumerate(REWRITE_LAYERS):
        above = set(REWRITE_LAYERS[index:])
        assert not imports[module] & above, (module, imports[module])
    assert "rewrite" not in imports["strip"]
    # No cycle anywhere in the package.
    done, active = set(), []

    def visit(module):
        assert module not in active, active + [module]
        if module in done:
            return
        active.append(module)
        for imported in imports.get(module, ()):
            visit(imported)
        active.pop()
        done.add(module)

    for module in imports:
        visit(module)


def input_names(model):
    return [layer.name for layer in model.layers
            if isinstance(layer, keras.layers.InputLayer)]


@pytest.mark.inference
@pytest.mark.parametrize("build", ["functional", "nested", "rebuild"])
def test_inputs_keep_their_names(build):
    if build == "rebuild":
        model = zoo.TinyBackbone(name="tiny")
    else:
        first, second = keras.Input((4,)), keras.Input((3,), name="zb")
        x = keras.layers.Concatenate()([first, second])
        if build == "nested":
            inner_input = keras.Input((7,))
            x = keras.Model(inner_input, keras.layers.Dense(
                2, activation="relu")(inner_input), name="inner")(x)
        model = keras.Model([first, second], keras.layers.Dense(
            2, activation="relu")(x))
    names = input_names(model)
    assert any(name.startswith("input_layer") for name in names)
    new = sugarify(model)
    assert input_names(new) == names
    if build == "nested":
        assert input_names(new.get_layer("inner")) == input_names(
            model.get_layer("inner"))


def test_model_with_a_python_lambda_is_rewritten(tmp_path):
    # The user built it, so sugarify may rebuild it: no safe_mode advice.
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, activation="relu")(inputs)
    x = keras.layers.Lambda(lambda t: 2.0 * t, name="double")(x)
    model = keras.Model(inputs, x)
    new = sugarify(model)
    assert len(new.sugar_report.replaced) == 1
    x = sample(model)
    np.testing.assert_array_equal(to_numpy(new(x)), to_numpy(model(x)))


@pytest.mark.parametrize("name", list(zoo.wrapped_and_recurrent()))
def test_wrapped_recurrent_and_function_relus_are_rewritten(name, tmp_path):
    build, sites = zoo.wrapped_and_recurrent()[name]
    new = check_rewrite(build(), tmp_path)
    report = new.sugar_report
    assert len(report.replaced) == sites, str(report)
    assert not report.unreachable and "nothing to replace" not in str(report)
    # The gradient is exactly that of the model written with SugarReLU.
    direct = build(SugarReLU())
    direct.set_weights(new.get_weights())
    x = sample(new)
    y_new, grad_new = value_and_gradient(new, x)
    y_direct, grad_direct = value_and_gradient(direct, x)
    # Like with like: the same program, both under a gradient.
    np.testing.assert_array_equal(y_new, y_direct)
    np.testing.assert_allclose(grad_new, grad_direct, rtol=1e-6, atol=1e-7)


def test_a_relu_layer_a_custom_layer_builds_itself_is_replaced(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(zoo.ReluLayerBlock(8, name="blk")(inputs))
    model = keras.Model(inputs, outputs)
    new = check_rewrite(model, tmp_path)
    report = new.sugar_report
    (site,) = report.replaced
    assert site.form == "inside custom layer (ReLU layer)"
    # Named by the attribute holding it: the same in every copy.
    assert site.path == "blk/act"
    # The one held in a list cannot be swapped: reported, not ignored.
    (unreachable,) = report.unreachable
    assert unreachable.form == "ReLU layer" and "in a list" in (
        unreachable.note)
    block = new.get_layer("blk").layer
    assert isinstance(block.act, SugarReLULayer)
    restored = save_and_load(new, tmp_path)
    assert isinstance(restored.get_layer("blk").layer.act, SugarReLULayer)


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_config_the_layer_holds_is_not_edited(dry_run, tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, zoo.HeldConfigBlock(8, name="held")(inputs))
    before = keras.saving.serialize_keras_object(model)
    new = sugarify(model, dry_run=dry_run)
    assert keras.saving.serialize_keras_object(model) == before
    assert model.get_layer("held").get_config()["activation"] == "relu"
    if not dry_run:
        check_rewrite(model, tmp_path)
        assert count_sugar_sites(new) == 1


def test_a_lambda_computing_relu_in_its_own_code_is_reported(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: ops.relu(t) * 2.0)(inputs)
    report = sugarify(keras.Model(inputs, outputs), dry_run=True)
    (site,) = report.unreachable
    assert site.form == "Lambda layer" and "calls relu" in site.note
    assert "NOT reachable" in str(report)


class TestCappedReLU:
    """`targets=("relu", "relu6")`: ReLU6 sites get a capped SugarReLU,
    predictions stay identical."""

    @pytest.mark.inference
    def test_every_relu6_form(self, tmp_path):
        inputs = keras.Input((4,))
        x = keras.layers.Dense(8, activation="relu6", name="inline")(inputs)
        x = keras.layers.Activation(keras.activations.relu6, name="act")(x)
        x = keras.layers.ReLU(max_value=2.5, name="capped")(x)
        x = ops.relu6(x)
        x = keras.layers.ReLU(max_value=6.0, negative_slope=0.1,
                              name="leaky6")(x)
        x = keras.layers.Dense(8, activation="relu", name="plain")(x)
        model = keras.Model(inputs, keras.layers.Dense(2)(x))
        assert sugarify(model, dry_run=True).skipped  # Default: kept.
        new = sugarify(model, targets=("relu", "relu6"))
        report = new.sugar_report
        caps = {}
        for layer in new.layers:
            activation = getattr(layer, "activation", None)
            if isinstance(activation, SugarReLU):
                caps[layer.name] = activation.max_value
        assert caps["inline"] == 6.0 and caps["act"] == 6.0
        assert caps["capped"] == 2.5 and caps["plain"] is None
        assert sorted(caps.values(), key=str).count(6.0) == 3  # raw op too
        assert [s.path for s in report.skipped] == ["leaky6"]
        assert not report.changes_forward
        x = sample(model)
        np.testing.assert_array_equal(to_numpy(new(x)), to_numpy(model(x)))
        restored = save_and_load(new, tmp_path)
        assert {layer.name: layer.activation.max_value
                for layer in restored.layers
                if isinstance(getattr(layer, "activation", None),
                              SugarReLU)} == caps
        np.testing.assert_array_equal(to_numpy(restored(x)),
                                      to_numpy(new(x)))

    @pytest.mark.inference
    def test_a_relu_layer_held_as_an_activation(self):
        """`Dense(activation=keras.layers.ReLU(max_value=2.5))` is a capped
        site: kept by default, with relu6 targets a SugarReLU with its cap
        (not 6), and `strip_sugar` gives the ReLU layer back."""
        relu = keras.layers.ReLU(max_value=2.5)
        if not keras_takes_layer_activations():
            pytest.skip(f"Keras {keras.__version__} rebuilds no layer held "
                        f"as an activation from its config, nor clones it")
        inputs = keras.Input((4,))
        x = keras.layers.Dense(8, activation=relu, name="held")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2)(x))
        (kept,) = sugarify(model, dry_run=True).skipped
        assert (kept.path, kept.activation) == ("held", "relu6")
        new = sugarify(model, targets=("relu", "relu6"))
        assert new.get_layer("held").activation.max_value == 2.5
        x = sample(model) * 4
        np.testing.assert_array_equal(to_numpy(new(x)), to_numpy(model(x)))
        plain = strip_sugar(new)
        assert plain.get_layer("held").activation.max_value == 2.5
        np.testing.assert_array_equal(to_numpy(plain(x)), to_numpy(model(x)))

    @pytest.mark.inference
    def test_the_report_says_how_to_reach_capped_relus(self):
        model = keras.Sequential([keras.Input((3,)), keras.layers.ReLU(6.0)])
        report = sugarify(model, dry_run=True)
        assert "targets=('relu', 'relu6')" in str(report)


DEFAULT_MOBILENETS = {"MobileNetV3Small"}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if name in DEFAULT_MOBILENETS
                 else pytest.mark.slow)
    for name in ["MobileNetV2", "MobileNetV3Small", "MobileNetV3Large"]])
def test_keras_applications_mobilenets_with_relu6(name, tmp_path):
    model = zoo.applications()[name]()
    new = check_rewrite(model, tmp_path, targets=("relu", "relu6"))
    report = new.sugar_report
    relu6 = [site for site in report.replaced if site.activation == "relu6"]
    assert relu6 and not report.skipped and not report.unreachable
    expected = {"MobileNetV2": 35, "MobileNetV3Small": 9,
                "MobileNetV3Large": 8}[name]
    assert len(relu6) == expected


class TestTransformers:
    """The paper's advice for GELU networks: SUGAR with NeLU, small alpha,
    on every feed-forward activation."""

    @pytest.mark.parametrize("name", ["BERT", "GPT2", "ViT"])
    def test_every_feed_forward_gelu_is_reached(self, name, tmp_path):
        pytest.importorskip("keras_hub")
        build, inputs, layers = zoo.transformers()[name]
        model = build()
        new = sugarify(model, "nelu", alpha=0.01, targets=("gelu",))
        report = new.sugar_report
        assert len(report.replaced) == layers, str(report)
        assert report.changes_forward and not report.unreachable
        assert count_sugar_sites(new) == layers
        descendants = new._flatten_layers(include_self=False, recursive=True)
        dense = [layer for layer in descendants
                 if isinstance(layer, keras.layers.Dense)]
        assert sum(layer.activation == SugarReLU("nelu", alpha=0.01)
                   for layer in dense) == layers
        # No GELU is left anywhere.
        assert not [layer.name for layer in descendants
                    if "gelu" in getattr(getattr(layer, "activation", None),
                                         "__name__", "")]
        restored = save_and_load(new, tmp_path)
        assert count_sugar_sites(restored) == layers
        np.testing.assert_array_equal(_main_output(restored(inputs)),
                                      _main_output(new(inputs)))
        # Weights kept: the rewrite changes only the activation.
        for old, kept in zip(model.get_weights(), new.get_weights()):
            np.testing.assert_array_equal(old, kept)
        # A training step changes the rewritten feed-forward layers.
        head = keras.Model(new.input, _main_output(new.output))
        head.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        ffn = [layer for layer in dense
               if isinstance(layer.activation, SugarReLU)]
        before = [to_numpy(layer.kernel) for layer in ffn]
        target = np.ones_like(_main_output(new(inputs)))
        loss = head.train_on_batch(inputs, target)
        assert np.isfinite(loss)
        # Small-init transformers learn slowly: demand a change, not a size.
        assert any(not np.array_equal(to_numpy(layer.kernel), kernel)
                   for layer, kernel in zip(ffn, before))
        assert all(np.isfinite(to_numpy(w)).all() for w in head.weights)


def _main_output(outputs):
    """A backbone's sequence output (text backbones return a dict)."""
    if isinstance(outputs, dict):
        outputs = outputs["sequence_output"]
    return outputs if isinstance(outputs, keras.KerasTensor) else to_numpy(
        outputs)


class TestRoutes:
    def test_layer_config_that_does_not_round_trip_rebuilds(self, tmp_path):
        model = zoo.TinyBackbone(name="tiny")
        report = sugarify(model, dry_run=True)
        assert report.route == "rebuild"
        assert "'helper_block' (HelperBlock)" in report.route_reason
        assert "does not round-trip" in str(report)
        new = check_rewrite(model, tmp_path)
        report = new.sugar_report
        # The raw relu op of the rebuilt graph is replaced in a copy of
        # that graph which shares the other layers.
        forms = {s.path: s.form for s in report.replaced}
        assert forms.pop("dense_relu") == "in place (rebuilt)"
        assert list(forms.values()) == ["raw op (rebuilt)"]
        assert not report.unreachable

    def test_a_failure_of_the_clone_route_is_not_hidden(self, monkeypatch):
        def broken_clone(*args, **kwargs):
            raise RuntimeError("a bug in the clone route")

        monkeypatch.setattr(keras.models, "clone_model", broken_clone)
        with pytest.raises(RuntimeError, match="a bug in the clone route"):
            sugarify(zoo.every_form())


@pytest.mark.inference
class TestErrors:
    def test_subclassed_model_is_refused_clearly(self):
        model = zoo.Subclassed()
        model(np.ones((1, 3)))
        with pytest.raises(ValueError, match="Subclassed.*no graph"):
            sugarify(model)
        assert model.dense.activation is keras.activations.relu

    @pytest.mark.parametrize("kwargs, match", [
        ({"targets": None}, "targets=None"),
        ({"targets": 3}, "targets=3"),
        ({"dry_run": "yes"}, "dry_run='yes'"),
    ])
    def test_arguments_of_the_wrong_type(self, kwargs, match):
        with pytest.raises(TypeError, match=f"sugarify.*{match}"):
            sugarify(zoo.every_form(), **kwargs)

    def test_not_a_model(self):
        with pytest.raises(TypeError, match="sugarify takes a Keras model"):
            sugarify("model.keras")

    @pytest.mark.parametrize("kwargs, match", [
        ({"targets": ("tanh",)}, r"Unknown sugarify target.*\['gelu', "
                                 r"'relu', 'relu6', 'silu'\]"),
        ({"targets": ()}, "Unknown sugarify target"),
        ({"surrogate": "nope"}, "Unknown surrogate 'nope'"),
        ({"alpha": -1.0}, "alpha=-1.0"),
    ])
    def test_bad_arguments(self, kwargs, match):
        model = zoo.every_form()
        with pytest.raises(ValueError, match=match):
            sugarify(model, **kwargs)
        assert count_sugar_sites(model) == 0


# One representative per family runs by default; the rest are marked slow.
DEFAULT_APPLICATIONS = {"VGG16"}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if name in DEFAULT_APPLICATIONS
                 else pytest.mark.slow)
    for name in zoo.applications()])
def test_keras_applications(name, tmp_path):
    model = zoo.applications()[name]()
    targets = ("gelu",) if name == "ConvNeXtTiny" else ("relu",)
    new = check_rewrite(model, tmp_path, targets=targets)
    report = new.sugar_report
    if name == "EfficientNetB0":
        assert not report.replaced and "nothing to replace" in str(report)
    if name == "MobileNetV2":  # relu6 everywhere: kept exactly, reported.
        assert not report.replaced and len(report.skipped) == 35
    if name not in ("EfficientNetB0", "MobileNetV2"):
        assert len(report.replaced) > 0 and not report.unreachable


DEFAULT_CV = {"ResNet", "MobileNetV3"}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if name in DEFAULT_CV else pytest.mark.slow)
    for name in ["ResNet", "ResNetV2", "DenseNet", "MobileNetV3",
                 "EfficientNetV2"]])
def test_keras_cv_backbones(name, tmp_path):
    pytest.importorskip("keras_cv")
    model = zoo.keras_cv_backbones()[name]()
    new = check_rewrite(model, tmp_path)
    assert type(new).__name__ == "Functional"
    assert not new.sugar_report.unreachable
    if name == "MobileNetV3":
        # keras_cv's HardSigmoidActivation cannot be rebuilt from its
        # config, so the backbone is rebuilt from its own, and its graph's
        # raw relu ops are replaced in a copy that shares its layers.
        report = new.sugar_report
        assert report.route == "rebuild"
        assert any(site.form == "raw op (rebuilt)"
                   for site in report.replaced)


def test_keras_cv_mobilenet_v3_relu6_through_the_rebuild_route(tmp_path):
    pytest.importorskip("keras_cv")
    model = zoo.keras_cv_backbones()["MobileNetV3"]()
    new = check_rewrite(model, tmp_path, targets=("relu", "relu6"))
    report = new.sugar_report
    assert not report.unreachable and not report.skipped
    assert {site.form for site in report.replaced
            if site.activation == "relu6"} == {"ReLU layer (rebuilt)"}


def test_keras_cv_image_classifier_on_rewritten_backbone(tmp_path):
    keras_cv = pytest.importorskip("keras_cv")
    backbone = sugarify(zoo.keras_cv_backbones()["ResNet"](), "nelu")
    classifier = keras_cv.models.ImageClassifier(backbone=backbone,
                                                 num_classes=3)
    x = sample(backbone, batch=4)
    y = np.array([0, 1, 2, 0])
    classifier.compile(optimizer=keras.optimizers.SGD(1e-2),
                       loss="sparse_categorical_crossentropy")
    assert np.isfinite(classifier.train_on_batch(x, y))
    restored = save_and_load(classifier, tmp_path)
    assert count_sugar_sites(restored) == count_sugar_sites(backbone)
    np.testing.assert_allclose(to_numpy(restored(x)), to_numpy(
        classifier(x)), rtol=1e-6, atol=1e-6)


DEFAULT_HUB = {"ResNet", "ViT"}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if name in DEFAULT_HUB else pytest.mark.slow)
    for name in ["ResNet", "VGG", "DenseNet", "MobileNet", "ViT"]])
def test_keras_hub_backbones(name, tmp_path):
    pytest.importorskip("keras_hub")
    model = zoo.keras_hub_backbones()[name]()
    targets = ("gelu",) if name == "ViT" else ("relu",)
    new = check_rewrite(model, tmp_path, targets=targets)
    assert len(new.sugar_report.replaced) > 0
    if name == "MobileNet":  # Its blocks' own ReLU layers are reached too.
        assert not new.sugar_report.unreachable


def test_keras_hub_image_classifier_on_rewritten_backbone(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    backbone = sugarify(zoo.keras_hub_backbones()["ResNet"]())
    classifier = keras_hub.models.ImageClassifier(backbone=backbone,
                                                  num_classes=3)
    x = sample(backbone, batch=4)
    classifier.compile(optimizer=keras.optimizers.SGD(1e-2),
                       loss="sparse_categorical_crossentropy")
    assert np.all(np.isfinite(classifier.train_on_batch(
        x, np.array([0, 1, 2, 0]))))
    restored = save_and_load(classifier, tmp_path)
    assert count_sugar_sites(restored) == count_sugar_sites(backbone)
