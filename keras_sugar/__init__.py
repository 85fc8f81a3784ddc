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


# Why importing decides from the command line: `import keras_sugar` must
# register the serializable classes at once (Keras finds them by name when
# a saved model loads, and would fail on "Could not locate class" if they
# were registered lazily), and that imports Keras and starts its backend.
# The `keras-sugar` command lives in this package too (its entry point,
# `keras_sugar.experiments.cli`, imports this module first), and must read
# `--help` and `--backend` before Keras starts: so for the command, and
# only for it, the names load on first use. A separate top-level package
# for the command would avoid the check, at the cost of a second package
# to install and import.
if not backend_selection.is_command_line():
    backend_selection.choose()
    for _name in __all__:
        __getattr__(_name)
    del _name
