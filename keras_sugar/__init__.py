"""SUGAR for Keras 3: exact ReLU forward, smooth surrogate gradient backward.

Example:

>>> import keras
>>> from keras_sugar import SugarReLU
>>> layer = keras.layers.Dense(8, activation=SugarReLU("nelu", alpha=0.1))
"""

import importlib

from keras_sugar import backend_selection

__version__ = "0.1.0"

# The public names and the modules that define them.
_EXPORTS = {
    "DeadUnitMonitor": "keras_sugar.diagnostics",
    "SugarPatched": "keras_sugar.patching",
    "SugarReLU": "keras_sugar.activations",
    "SugarifyReport": "keras_sugar.rewrite_plan",
    "dead_unit_report": "keras_sugar.diagnostics",
    "layers": "keras_sugar.layers",
    "sugar_relu": "keras_sugar.activations",
    "strip_sugar": "keras_sugar.strip",
    "sugarify": "keras_sugar.rewrite",
    "surrogates": "keras_sugar.surrogates",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(
            f"module 'keras_sugar' has no attribute '{name}'")
    module = importlib.import_module(_EXPORTS[name])
    value = module if module.__name__ == f"keras_sugar.{name}" else getattr(
        module, name)
    globals()[name] = value
    return value


# The `keras-sugar` command reads its arguments (--help, --backend) before
# Keras is imported, and loads these names on first use. Everyone else gets
# them now: loading a saved model needs the serializable classes registered
# as soon as `keras_sugar` is imported.
if not backend_selection.is_command_line():
    backend_selection.choose()
    for _name in __all__:
        __getattr__(_name)
    del _name
