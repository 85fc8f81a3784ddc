import keras
import pytest

from keras_sugar import backend_selection


def pytest_collection_modifyitems(config, items):
    """On an inference-only backend (numpy, OpenVINO: no autodiff) only
    the tests marked `inference` run; the others are deselected."""
    if keras.backend.backend() not in backend_selection.INFERENCE_ONLY:
        return
    kept = [item for item in items if item.get_closest_marker("inference")]
    deselected = [item for item in items
                  if not item.get_closest_marker("inference")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(autouse=True)
def _isolated_keras_state():
    """Each test starts from float32 and a fixed seed, whatever ran before."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
