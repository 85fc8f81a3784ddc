"""`keras_sugar.layers.SugarReLU`: the layer form of the SUGAR activation.

Two classes share the name, as `keras.layers.ReLU` and
`keras.activations.relu` do: `keras_sugar.layers.SugarReLU` (this module) is
a `keras.layers.Layer`, for models written as a stack of layers;
`keras_sugar.SugarReLU` (`keras_sugar.activations`) is the activation object
to pass as `activation=`. The layer holds one of those as `.activation`.
"""

import keras

from keras_sugar import activations
from keras_sugar import model_graph
from keras_sugar import surrogates


@keras.saving.register_keras_serializable(package="keras_sugar.layers")
class SugarReLU(keras.layers.Layer):
    """Layer applying ReLU forward with a surrogate gradient backward.

    The layer form (`keras_sugar.layers.SugarReLU`); for the activation
    object that goes in `activation=`, see `keras_sugar.SugarReLU`.

    Args:
        surrogate: Registered surrogate name. Defaults to `"bsilu"`.
        negative_only: Apply the surrogate only where `x <= 0`. Defaults to
            `False`.
        implementation: See `keras_sugar.sugar_relu`. Defaults to `"auto"`.
        max_value: A cap (6.0 for ReLU6), see `keras_sugar.SugarReLU`.
            Defaults to `None`.
        **kwargs: The surrogate's parameters (e.g. `alpha=0.1`) and the base
            layer's keyword arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> layer = SugarReLU("elu")
    >>> keras.ops.convert_to_numpy(layer(np.array([-1.0, 2.0]))).tolist()
    [0.0, 2.0]
    """

    def __init__(self, surrogate="bsilu", negative_only=False,
                 implementation="auto", max_value=None, **kwargs):
        activations.check_not_called_on_a_tensor(surrogate)
        surrogate = surrogates.get(surrogate)
        params = {k: kwargs.pop(k) for k in list(kwargs)
                  if k in surrogate.defaults}
        super().__init__(**kwargs)
        self.activation = activations.SugarReLU(
            surrogate, negative_only=negative_only,
            implementation=implementation, max_value=max_value, **params)
        self.supports_masking = True
        model_graph.mark_built(self)

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(self.activation.get_config())
        return config
