"""The Keras internals `model_graph` relies on, where Keras has no public
API, behave as it expects: at the lowest Keras tested (CI's floors run)
and the newest (the full run)."""

import keras
import numpy as np
import pytest

from keras_sugar import SugarReLU
from keras_sugar import layers as sugar_layers
from keras_sugar import model_graph
from tests.testing import save_and_load


class Inner(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.deep = keras.layers.Dense(3, name="deep")

    def call(self, x):
        return self.deep(x)


class Block(keras.layers.Layer):
    """A custom layer holding sublayers, one of them with its own."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3, name="dense")
        self.act = keras.layers.ReLU(name="act")
        self.inner = Inner(name="inner")

    def call(self, x):
        return self.inner(self.act(self.dense(x)))


def built_block():
    block = Block()
    block(np.ones((2, 4), "float32"))
    return block


def test_children_are_the_direct_sublayers_in_tracking_order():
    block = built_block()
    assert [layer.name for layer in model_graph.children(block)] == [
        "dense", "act", "inner"]
    assert model_graph.sublayer_at(block, (1,)) is (
        block.act)


def test_descendants_reach_every_depth_once():
    block = built_block()
    names = [layer.name for layer in model_graph.descendants(block)]
    assert sorted(names) == ["act", "deep", "dense", "inner"]


def test_replace_sublayer_in_a_built_layer_keeps_the_lock():
    block = built_block()
    x = np.full((2, 4), -1.0, "float32")
    before = keras.ops.convert_to_numpy(block(x))
    model_graph.replace_sublayer(block, "act", sugar_layers.SugarReLU())
    assert isinstance(block.act, sugar_layers.SugarReLU)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(block(x)),
                                  before)
    # The lock is back: a built layer still refuses new state.
    with pytest.raises(ValueError, match="already built"):
        block.extra = keras.layers.Dense(2)


def test_a_layer_marked_built_is_built_before_its_first_call(tmp_path):
    layer = sugar_layers.SugarReLU("nelu")
    assert layer.built
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer))
    assert restored.built and restored.activation == SugarReLU("nelu")
    model = keras.Sequential([keras.Input((3,)), layer])
    x = np.array([[-1.0, 0.0, 2.0]], "float32")
    np.testing.assert_array_equal(
        save_and_load(model, tmp_path).predict(x, verbose=0),
        [[0.0, 0.0, 2.0]])


def test_new_inputs_copy_shape_dtype_and_name():
    inputs = keras.Input((3,), dtype="float16", name="pixels")
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    (new,) = keras.tree.flatten(model_graph.new_inputs(model))
    assert new is not inputs
    assert tuple(new.shape) == (None, 3) and new.dtype == "float16"
    assert new._keras_history.operation.name == "pixels"


class Recorder(keras.callbacks.Callback):
    """Moves itself to the front at train begin; records what it saw."""

    def __init__(self, name, order):
        super().__init__()
        self.name, self.order, self.found = name, order, None

    def on_train_begin(self, logs=None):
        self.found = model_graph.move_to_front_of_calling_list(self)

    def on_epoch_end(self, epoch, logs=None):
        self.order.append(self.name)


class Plain(keras.callbacks.Callback):
    def __init__(self, name, order):
        super().__init__()
        self.name, self.order = name, order

    def on_epoch_end(self, epoch, logs=None):
        self.order.append(self.name)


class DerivedRecorder(Recorder):
    """Calls the move from one frame deeper (through `super()`)."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)


@pytest.mark.parametrize("recorder", [Recorder, DerivedRecorder])
def test_move_to_front_of_calling_list_from_fit(recorder):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    order = []
    moved = recorder("moved", order)
    model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
              callbacks=[Plain("a", order), Plain("b", order), moved])
    assert moved.found
    assert order == ["moved", "a", "b"] * 2


def test_move_to_front_outside_a_callback_list_finds_none():
    assert not model_graph.move_to_front_of_calling_list(
        Recorder("alone", []))
