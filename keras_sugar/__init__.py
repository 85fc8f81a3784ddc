"""SUGAR for Keras 3: exact ReLU forward, smooth surrogate gradient backward.

Example:

>>> import keras
>>> from keras_sugar import SugarReLU
>>> layer = keras.layers.Dense(8, activation=SugarReLU("nelu", alpha=0.1))
"""

from keras_sugar import layers
from keras_sugar import surrogates
from keras_sugar.activations import SugarReLU
from keras_sugar.activations import sugar_relu
from keras_sugar.diagnostics import DeadUnitMonitor
from keras_sugar.diagnostics import dead_unit_report
from keras_sugar.patching import SugarPatched
from keras_sugar.sugarify import SugarifyReport
from keras_sugar.sugarify import sugarify

__version__ = "0.1.0"

__all__ = [
    "DeadUnitMonitor", "SugarPatched", "SugarReLU", "SugarifyReport",
    "dead_unit_report", "layers", "sugar_relu", "sugarify", "surrogates",
]
