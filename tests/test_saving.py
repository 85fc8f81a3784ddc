"""Saved models load back with their surrogates, on every backend."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_sugar import SugarReLU
from keras_sugar import layers
from tests import cross_backend_model
from tests.testing import BACKEND
from tests.testing import save_and_load

BACKENDS = ("tensorflow", "jax", "torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def test_layer_config_round_trip():
    layer = layers.SugarReLU("gelu", approximate=True, name="act")
    restored = layers.SugarReLU.from_config(layer.get_config())
    assert restored.name == "act"
    assert restored.activation == SugarReLU("gelu", approximate=True)


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


@pytest.fixture(scope="module")
def saved_on_every_backend(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cross_backend")
    for backend in BACKENDS:
        env = dict(os.environ, KERAS_BACKEND=backend)
        subprocess.run(
            [sys.executable, "-m", "tests.cross_backend_model",
             str(directory)],
            cwd=ROOT, env=env, check=True, capture_output=True)
    return directory


@pytest.mark.parametrize("saved_on", BACKENDS)
def test_model_saved_on_any_backend_loads_here(saved_on,
                                               saved_on_every_backend):
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
