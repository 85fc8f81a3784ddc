import keras
import pytest


@pytest.fixture(autouse=True)
def _isolated_keras_state():
    """Each test starts from float32 and a fixed seed, whatever ran before."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
