"""Every `>>>` example in the library's docstrings runs and is right."""

import doctest
import importlib
import pkgutil

import pytest

import keras_sugar
from keras_sugar import surrogates

MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(keras_sugar.__path__,
                                                 "keras_sugar.")
    if not name.endswith("__main__")
)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    try:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS,
                                 verbose=False)
    finally:
        # The register() example adds a demo surrogate; keep the registry
        # as other tests expect it.
        surrogates._REGISTRY.pop("softplusdemo", None)
    assert result.failed == 0
