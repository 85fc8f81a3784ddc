"""Saved models load back with their surrogates, on every backend."""

import importlib.util
import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import keras_sugar
from keras_sugar import SugarReLU
from keras_sugar import layers
from tests import cross_backend_model
from tests.testing import BACKEND
from tests.testing import save_and_load
from tests.testing import to_numpy
from tests.testing import value_and_gradient

BACKENDS = ("tensorflow", "jax", "torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What `tests.cross_backend_model` saved on each of BACKENDS.
SAVED_MODELS = os.path.join(ROOT, "tests", "data", "saved_models")


@pytest.mark.inference
def test_config_round_trip_keeps_surrogate_and_parameters():
    activation = SugarReLU("NeLU", alpha=0.1, negative_only=True,
                           implementation="multiplicative")
    config = keras.saving.serialize_keras_object(activation)
    assert config["registered_name"] == "keras_sugar>SugarReLU"
    restored = keras.saving.deserialize_keras_object(config)
    assert restored == activation
    assert restored.get_config() == {
        "surrogate": "nelu", "negative_only": True,
        "implementation": "multiplicative", "alpha": 0.1}


@pytest.mark.inference
def test_layer_config_round_trip():
    layer = layers.SugarReLU("gelu", approximate=True, name="act")
    restored = layers.SugarReLU.from_config(layer.get_config())
    assert restored.name == "act"
    assert restored.activation == SugarReLU("gelu", approximate=True)


@pytest.mark.inference
def test_same_backend_save_load_predicts_identically(tmp_path):
    model = cross_backend_model.build_model()
    x = cross_backend_model.sample_input()
    restored = save_and_load(model, tmp_path)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(x)),
        keras.ops.convert_to_numpy(model(x)))
    assert (cross_backend_model.sugar_configs(restored)
            == cross_backend_model.sugar_configs(model))
    assert len(cross_backend_model.sugar_configs(model)) == 9


def installed(backend):
    return importlib.util.find_spec(backend) is not None


@pytest.fixture(scope="module")
def saved_on_every_backend(tmp_path_factory):
    """Saves the model on every installed backend, one process each."""
    directory = tmp_path_factory.mktemp("cross_backend")
    for backend in filter(installed, BACKENDS):
        env = dict(os.environ, KERAS_BACKEND=backend)
        subprocess.run(
            [sys.executable, "-m", "tests.cross_backend_model",
             str(directory)],
            cwd=ROOT, env=env, check=True, capture_output=True)
    return directory


@pytest.mark.parametrize("saved_on", BACKENDS)
def test_model_saved_on_any_backend_loads_here(saved_on,
                                               saved_on_every_backend):
    if not installed(saved_on):
        pytest.skip(f"saving on the {saved_on} backend needs {saved_on}, "
                    f"which is not installed")
    path = os.path.join(saved_on_every_backend, f"{saved_on}.keras")
    restored = keras.saving.load_model(path, safe_mode=True)
    expected = np.load(os.path.join(saved_on_every_backend, f"{saved_on}.npy"))
    actual = keras.ops.convert_to_numpy(
        restored(cross_backend_model.sample_input()))
    if saved_on == BACKEND:
        np.testing.assert_array_equal(actual, expected)
    else:
        # Same weights; matmul/conv kernels differ between backends by ulps.
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    configs = cross_backend_model.sugar_configs(restored)
    assert configs == [a.get_config()
                       for a in cross_backend_model.ACTIVATIONS] + [
        SugarReLU("nelu", alpha=0.01).get_config()]


def _keras_version_of(path):
    """The Keras version that saved the `.keras` file at `path`."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("metadata.json"))["keras_version"]


def _version(text):
    return tuple(int(part) for part in text.split(".")[:3])


@pytest.mark.inference
@pytest.mark.parametrize("saved_on", BACKENDS)
def test_files_saved_on_a_training_backend_serve_on_every_backend(saved_on):
    """`.keras` files saved on TensorFlow, JAX and PyTorch (a model with
    every form of SugarReLU, and its `strip_sugar` result) load on every
    backend, numpy and OpenVINO included. A call gives the saving
    backend's predictions to float32 rounding; `predict` gives the SUGAR
    model exactly its stripped twin's values (on OpenVINO both at the CPU
    plugin's default precision, bfloat16 where the CPU has it)."""
    saved_with = _keras_version_of(os.path.join(SAVED_MODELS,
                                                f"{saved_on}.keras"))
    if _version(keras.__version__) < _version(saved_with):
        pytest.skip(f"saved with Keras {saved_with}: Keras "
                    f"{keras.__version__} does not read a newer Keras' files "
                    f"(their initializer configs); the test saving on the "
                    f"installed backends covers this Keras")
    x = cross_backend_model.sample_input()
    predictions = []
    for name in (saved_on, f"{saved_on}-stripped"):
        restored = keras.saving.load_model(
            os.path.join(SAVED_MODELS, f"{name}.keras"), safe_mode=True)
        expected = np.load(os.path.join(SAVED_MODELS, f"{name}.npy"))
        np.testing.assert_allclose(to_numpy(restored(x)), expected,
                                   rtol=1e-5, atol=1e-6, err_msg=name)
        predictions.append(restored.predict(x, verbose=0))
    np.testing.assert_array_equal(*predictions)
    assert cross_backend_model.sugar_configs(keras.saving.load_model(
        os.path.join(SAVED_MODELS, f"{saved_on}.keras"))) == (
        cross_backend_model.sugar_configs(cross_backend_model.build_model()))


@pytest.mark.inference
def test_loading_an_unregistered_surrogate_fails_clearly(tmp_path):
    from keras_sugar import surrogates

    @surrogates.register("temporary")
    def temporary(x):
        return x

    try:
        model = keras.Sequential([keras.Input((2,)),
                                  keras.layers.Dense(2, activation=SugarReLU(
                                      "temporary"))])
        model.save(tmp_path / "m.keras")
    finally:
        surrogates._REGISTRY.pop("temporary")
    with pytest.raises(Exception, match="Unknown surrogate 'temporary'"):
        keras.saving.load_model(tmp_path / "m.keras")


def test_sugar_relu_function_as_an_activation_saves_and_loads(tmp_path):
    # Saved by its registered name, as keras.activations.relu is by its.
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(3, activation=keras_sugar.sugar_relu),
        keras.layers.Dense(2),
    ])
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    config = keras.saving.serialize_keras_object(keras_sugar.sugar_relu)
    assert config["config"] == "keras_sugar>sugar_relu"
    restored = save_and_load(model, tmp_path)  # safe_mode=True
    assert restored.layers[0].activation is keras_sugar.sugar_relu
    np.testing.assert_array_equal(restored.predict(x, verbose=0),
                                  model.predict(x, verbose=0))
    # The surrogate gradient comes back too, not a plain ReLU's.
    _, grad = value_and_gradient(restored, x)
    _, expected = value_and_gradient(model, x)
    np.testing.assert_array_equal(grad, expected)
    relu_model = keras.models.clone_model(model, clone_function=lambda l: (
        l.__class__.from_config({**l.get_config(), "activation": "relu"})
        if l.name == model.layers[0].name else l))
    _, relu_grad = value_and_gradient(relu_model, x)
    assert not np.array_equal(relu_grad, expected)
