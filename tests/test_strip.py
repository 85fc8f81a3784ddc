"""`strip_sugar` turns every SugarReLU back into Keras' ReLU: same weights,
the same predictions bit for bit, the original untouched, and a saved file
that loads where keras_sugar cannot be imported."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_sugar import SugarReLU
from keras_sugar import layers as sugar_layers
from keras_sugar import strip_sugar
from keras_sugar import sugarify
from keras_sugar.rewrite import count_sugar_sites
from tests import zoo
from tests.testing import keras_takes_layer_activations
from tests.testing import to_numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sample(model, batch=2):
    shape = (batch,) + tuple(model.input_shape[1:])
    return np.random.default_rng(1).normal(size=shape).astype("float32")


def weights_as_values(model):
    """Sets `model`'s weights to their own values, as a rewritten model
    holds its own: OpenVINO compiles weights an initializer made (a zeros
    bias is an operation there) into other kernels, 1 ulp apart."""
    model.set_weights(model.get_weights())


def check_strip(sugar_model, original=None):
    """The properties every strip must have; returns the plain model."""
    weights_as_values(sugar_model)
    x = sample(sugar_model)
    y_sugar = to_numpy(sugar_model(x))
    sites = count_sugar_sites(sugar_model)
    weights = sugar_model.get_weights()
    config = json.dumps(keras.saving.serialize_keras_object(sugar_model))

    plain = strip_sugar(sugar_model)

    assert count_sugar_sites(plain) == 0
    # Nothing of this package (the tests' own layers are "keras_sugar_tests").
    assert not re.search(r"keras_sugar[.>\"]", json.dumps(
        keras.saving.serialize_keras_object(plain)))
    assert len(plain.strip_report) > 0, str(plain.strip_report)
    np.testing.assert_array_equal(to_numpy(plain(x)), y_sugar)
    for before, after in zip(weights, plain.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    # The SUGAR model is untouched, its config (what it saves) included.
    assert json.dumps(keras.saving.serialize_keras_object(sugar_model)) == (
        config)
    assert count_sugar_sites(sugar_model) == sites
    np.testing.assert_array_equal(to_numpy(sugar_model(x)), y_sugar)
    if original is not None:  # strip_sugar(sugarify(m)) predicts as m.
        weights_as_values(original)
        np.testing.assert_array_equal(to_numpy(plain(x)),
                                      to_numpy(original(x)))
    return plain


@pytest.mark.inference
def test_every_form_of_a_rewrite():
    model = zoo.every_form()
    plain = check_strip(sugarify(model), model)
    # The custom block comes back as itself, with its own ReLU inside.
    block = plain.get_layer("block")
    assert isinstance(block, zoo.Block)
    assert block.inner.activation is keras.activations.relu


@pytest.mark.inference
@pytest.mark.parametrize("name", list(zoo.wrapped_and_recurrent()))
def test_wrapped_recurrent_and_function_forms(name):
    build, _ = zoo.wrapped_and_recurrent()[name]
    model = build()
    check_strip(sugarify(model), model)
    # Written with SugarReLU directly, too.
    check_strip(build(SugarReLU("elu")))


@pytest.mark.inference
def test_capped_relus_come_back_with_their_caps():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, activation="relu6", name="inline")(inputs)
    x = keras.layers.ReLU(max_value=2.5, name="capped")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    rewritten = check_strip(sugarify(model, targets=("relu", "relu6")),
                            model)
    assert rewritten.get_layer("inline").activation is (
        keras.activations.relu6)
    # Hand-placed, with caps Keras has no activation function for.
    x = keras.layers.Activation(SugarReLU(max_value=3.0), name="act3")(inputs)
    x = sugar_layers.SugarReLU(max_value=1.5, name="layer_form")(x)
    hand_placed = check_strip(keras.Model(inputs, x))
    for plain, name, cap in [(rewritten, "capped", 2.5),
                             (hand_placed, "act3", 3.0),
                             (hand_placed, "layer_form", 1.5)]:
        layer = plain.get_layer(name)
        assert type(layer) is keras.layers.ReLU and layer.max_value == cap


@pytest.mark.inference
def test_hand_placed_sugar_of_every_kind():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, activation=SugarReLU("nelu"), name="dense")(
        inputs)
    x = sugar_layers.SugarReLU("elu", name="sugar_layer")(x)
    x = keras.layers.Activation(SugarReLU("gelu"), name="act")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    plain = check_strip(model)
    assert type(plain.get_layer("sugar_layer")) is keras.layers.ReLU
    assert plain.get_layer("act").activation is keras.activations.relu
    rows = [(row.path, row.form, row.activation)
            for row in plain.strip_report.replaced]
    assert rows == [("dense", "inline (Dense)", "relu"),
                    ("sugar_layer", "SugarReLU layer", "relu"),
                    ("act", "Activation layer", "relu")]


@pytest.mark.inference
def test_relu_layers_a_custom_layer_builds_itself():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(zoo.ReluLayerBlock(8, name="blk")(inputs))
    model = keras.Model(inputs, outputs)
    plain = check_strip(sugarify(model), model)
    assert type(plain.get_layer("blk").act) is keras.layers.ReLU


@pytest.mark.inference
def test_the_rebuild_route():
    model = zoo.TinyBackbone(name="tiny")
    plain = check_strip(sugarify(model), model)
    # The backbone itself, its nodes named as in the SUGAR model.
    assert isinstance(plain, zoo.TinyBackbone)
    assert [node.name for node in plain.operations] == [
        node.name for node in model.operations]


@keras.saving.register_keras_serializable(package="keras_sugar_strip_tests")
class ArgsBlock(keras.layers.Layer):
    """Keeps its arguments in a dict it hands out from get_config(), as
    some ecosystem blocks do (`block_args`)."""

    def __init__(self, block_args, **kwargs):
        super().__init__(**kwargs)
        self.block_args = block_args
        self.dense = keras.layers.Dense(4, activation=(
            keras.activations.deserialize(block_args["activation"])))

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "block_args": self.block_args}


@pytest.mark.inference
def test_a_config_a_layer_hands_out_is_not_edited_in_place():
    inputs = keras.Input((3,))
    block = ArgsBlock({"activation": keras.saving.serialize_keras_object(
        SugarReLU("elu"))}, name="args")
    model = keras.Model(inputs, block(inputs))
    plain = check_strip(model)  # Checks the SUGAR model's config too.
    assert plain.get_layer("args").dense.activation is keras.activations.relu
    assert isinstance(block.dense.activation, SugarReLU)


@pytest.mark.parametrize("name", [
    "MobileNetV3Small",
    pytest.param("MobileNetV2", marks=pytest.mark.slow),
    pytest.param("ResNet50", marks=pytest.mark.slow)])
@pytest.mark.inference
def test_keras_applications(name):
    model = zoo.applications()[name]()
    check_strip(sugarify(model, targets=("relu", "relu6")), model)


@pytest.mark.parametrize("name", [
    "MobileNetV3",
    pytest.param("ResNet", marks=pytest.mark.slow),
    pytest.param("EfficientNetV2", marks=pytest.mark.slow)])
def test_keras_cv_backbones(name):
    pytest.importorskip("keras_cv")
    model = zoo.keras_cv_backbones()[name]()
    targets = ("relu", "relu6") if name == "MobileNetV3" else ("relu",)
    check_strip(sugarify(model, targets=targets), model)


@pytest.mark.parametrize("name", [
    "ResNet", pytest.param("MobileNet", marks=pytest.mark.slow)])
def test_keras_hub_backbones(name):
    pytest.importorskip("keras_hub")
    model = zoo.keras_hub_backbones()[name]()
    check_strip(sugarify(model), model)


def test_keras_hub_transformer_gelus_through_their_config():
    pytest.importorskip("keras_hub")
    build, inputs, _ = zoo.transformers()["BERT"]
    model = sugarify(build(), "nelu", alpha=0.01, targets=("gelu",))
    plain = strip_sugar(model)
    assert count_sugar_sites(plain) == 0
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_array_equal(to_numpy(plain(inputs)[key]),
                                      to_numpy(model(inputs)[key]))


def test_a_gelu_a_layer_builds_itself_is_refused():
    """keras_hub's ViT builds its MLP with GELU itself (the rebuild
    route): without keras_sugar it would be GELU again."""
    pytest.importorskip("keras_hub")
    model = sugarify(zoo.keras_hub_backbones()["ViT"](), targets=("gelu",))
    with pytest.raises(ValueError, match=r"'vit_encoder/.*/dense_1' .*"
                       r"builds it itself with another activation \(gelu"
                       r".*nothing was returned"):
        strip_sugar(model)


def test_the_same_model_trains_and_ships():
    """Train with SUGAR, strip, and the plain model predicts what the
    trained one does."""
    model = sugarify(zoo.every_form(), "nelu")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = sample(model, batch=8)
    model.fit(x, np.ones((8, 2)), epochs=2, verbose=0)
    plain = check_strip(model)
    np.testing.assert_array_equal(plain.predict(x, verbose=0),
                                  model.predict(x, verbose=0))


_LOAD_WITHOUT_KERAS_SUGAR = """
import sys
import numpy as np
sys.modules["keras_sugar"] = None  # `import keras_sugar` now fails.
import keras
from tests import zoo  # The test's own custom layers.
for name in sys.argv[1:]:
    data = np.load(name + ".npz")
    model = keras.saving.load_model(name + ".keras")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(data["x"])), data["y"])
print("loaded", len(sys.argv) - 1)
"""


@pytest.mark.inference
def test_stripped_files_load_where_keras_sugar_cannot_be_imported(tmp_path):
    models = {
        "every_form": sugarify(zoo.every_form()),
        "recurrent": zoo.wrapped_and_recurrent()["Bidirectional(LSTM)"][0](
            SugarReLU()),
        "rebuild_route": sugarify(zoo.TinyBackbone(name="tiny")),
    }
    names = []
    for name, model in models.items():
        plain = strip_sugar(model)
        x = sample(plain)
        path = str(tmp_path / name)
        plain.save(path + ".keras")
        np.savez(path + ".npz", x=x, y=to_numpy(plain(x)))
        names.append(path)
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_WITHOUT_KERAS_SUGAR, *names],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"loaded {len(names)}" in result.stdout


@pytest.mark.inference
def test_a_cap_keras_has_no_function_for():
    """A SugarReLU with a cap other than 6 held as an activation becomes
    Keras' ReLU layer with that cap, held as the activation (as a ReLU
    model can hold it); a Keras that takes no layer as an activation
    (3.9) refuses it, naming the layer."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        2, activation=SugarReLU(max_value=3.0), name="capped_dense")])
    if not keras_takes_layer_activations():
        with pytest.raises(ValueError, match=r"'capped_dense' \(Dense\).*"
                           r"ReLU\(max_value=3.0\)"):
            strip_sugar(model)
        return
    plain = check_strip(model)
    activation = plain.get_layer("capped_dense").activation
    assert type(activation) is keras.layers.ReLU
    assert activation.max_value == 3.0


@pytest.mark.inference
class TestRefusals:
    def test_sugar_outside_a_layers_config(self):
        @keras.saving.register_keras_serializable(package="strip_tests")
        class Hidden(keras.layers.Layer):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.dense = keras.layers.Dense(2, name="inner_dense")
                self.dense.activation = SugarReLU()

            def call(self, x):
                return self.dense(x)

        inputs = keras.Input((3,))
        model = keras.Model(inputs, Hidden(name="hidden")(inputs))
        model(np.zeros((1, 3), "float32"))
        with pytest.raises(ValueError, match=r"layer 'inner_dense' \(Dense\).*"
                           r"not hold it in its config"):
            strip_sugar(model)

    def test_subclassed_model(self):
        with pytest.raises(ValueError, match="subclassed model has no graph"):
            strip_sugar(zoo.Subclassed())

    def test_not_a_model(self):
        with pytest.raises(TypeError, match="takes a Keras model"):
            strip_sugar("model.keras")


@pytest.mark.parametrize("optimizer", [
    lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    lambda: keras.optimizers.Adam(0.01)], ids=["SGD", "Adam"])
def test_a_compiled_model_keeps_its_optimizer_state(optimizer):
    """A trained, compiled model comes back compiled as it was, its
    optimizer's state (step count, momentum) carried over: a fresh
    optimizer would silently restart from step 0 without momentum."""
    model = sugarify(zoo.every_form(), "nelu")
    model.compile(optimizer=optimizer(), loss="mse", metrics=["mae"])
    x = sample(model, batch=8)
    y = np.ones((8, 2), "float32")
    model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    plain = check_strip(model)
    assert plain.compiled
    assert int(plain.optimizer.iterations) == 6
    before, after = model.optimizer.variables, plain.optimizer.variables
    assert len(before) == len(after)
    for old, new in zip(before, after):
        assert tuple(old.shape) == tuple(new.shape), (old.path, new.path)
        np.testing.assert_array_equal(to_numpy(old), to_numpy(new),
                                      err_msg=old.path)
    # Each momentum is its own weight's: the weights are in the same
    # order, each with its momentum's shape.
    for old, new in zip(model.trainable_variables,
                        plain.trainable_variables, strict=True):
        np.testing.assert_array_equal(to_numpy(old), to_numpy(new))
    assert plain.evaluate(x, y, verbose=0, return_dict=True) == (
        model.evaluate(x, y, verbose=0, return_dict=True))
    name = type(model.optimizer).__name__
    assert f"optimizer: {name}, its state carried over (step 6)" in str(
        plain.strip_report)


def test_an_uncompiled_model_stays_uncompiled():
    plain = strip_sugar(sugarify(zoo.every_form()))
    assert not plain.compiled
    assert "optimizer" not in str(plain.strip_report)
