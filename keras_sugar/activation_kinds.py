"""What an activation function, `ReLU` layer or raw op computes.

The vocabulary of the site map (`keras_sugar.site_map`): ReLU, capped ReLU
(relu6), GELU and SiLU in every form Keras and its ecosystem write them,
and SUGAR's own `SugarReLU` and `sugar_relu`.
"""

import keras

from keras_sugar.activations import SugarReLU
from keras_sugar.activations import sugar_relu

# Activation functions and raw-op class names per kind. `ops.relu` makes
# `Relu` nodes; `keras.activations.relu` on a symbolic tensor makes `ReLU`.
# `keras.ops.relu` is a function of its own (`Dense(activation=ops.relu)`).
TARGETS = {
    "relu": ((keras.activations.relu, keras.ops.relu), ("Relu", "ReLU")),
    "gelu": ((keras.activations.gelu, keras.ops.gelu), ("Gelu",)),
    "silu": ((keras.activations.silu, keras.activations.swish,
              keras.ops.silu, keras.ops.swish), ("Silu", "Swish")),
    # Capped ReLUs: relu6, and `ReLU(max_value=...)` layers and ops.
    "relu6": ((keras.activations.relu6, keras.ops.relu6), ("Relu6",)),
}
# Kinds whose SUGAR keeps the forward pass exactly; their outputs are
# rectified (zero wherever the input is not positive).
RECTIFIED = ("relu", "relu6")
# What a ReLU layer or op with a slope or threshold computes: none of the
# kinds above (leaky, or thresholded).
RELU_VARIANT = "ReLU variant"
# Layer attributes that hold an activation and appear under the same key
# in the layer's config (recurrent layers have both).
ACTIVATION_KEYS = ("activation", "recurrent_activation")

# Keras ecosystem libraries define their own activation functions by these
# names (keras_hub's BERT and GPT-2 use `gelu_approximate`).
ECOSYSTEM = ("keras_hub", "keras_nlp", "keras_cv")
ECOSYSTEM_NAMES = {"relu": ("relu",), "gelu": ("gelu", "gelu_approximate"),
                   "silu": ("silu", "swish"), "relu6": ("relu6",)}


def as_sugar(function):
    """The `SugarReLU` an activation is (`sugar_relu` is the default one),
    or None."""
    if isinstance(function, SugarReLU):
        return function
    if function is sugar_relu:
        return SugarReLU()
    return None


def sugar_kind(activation):
    """What a `SugarReLU` computes forward: `"relu6"` when capped (any
    cap), `"relu"` otherwise."""
    return "relu" if activation.max_value is None else "relu6"


def function_kind(function):
    """The kind an activation function computes (`"relu"`, `"relu6"`,
    `"gelu"`, `"silu"`, SugarReLU's too), or None for any other.

    Example:

    >>> function_kind(keras.ops.relu), function_kind(keras.activations.tanh)
    ('relu', None)
    """
    sugar = as_sugar(function)
    if sugar is not None:
        return sugar_kind(sugar)
    if isinstance(function, keras.layers.ReLU):  # A layer as activation.
        return relu_layer_kind(function)
    for kind, (functions, _) in TARGETS.items():
        if any(function is f for f in functions):
            return kind
    module = getattr(function, "__module__", None) or ""
    if module.split(".")[0] in ECOSYSTEM:
        for kind, names in ECOSYSTEM_NAMES.items():
            if getattr(function, "__name__", None) in names:
                return kind
    return None


def relu_layer_kind(relu):
    """For `ReLU` layers and ops: `"relu"` when plain, `"relu6"` when only
    capped, `RELU_VARIANT` with a slope or a threshold."""
    if relu.negative_slope or relu.threshold:
        return RELU_VARIANT
    return "relu" if relu.max_value is None else "relu6"


def raw_op_kind(op):
    """The kind a raw (non-layer) op computes, or None for ops that are
    no activation."""
    name = type(op).__name__
    if name == "ReLU":
        return relu_layer_kind(op)
    for kind, (_, op_names) in TARGETS.items():
        if name in op_names:
            return kind
    return None


def cap(holder):
    """The cap of a capped ReLU: a `ReLU` layer or op's, or a SugarReLU's
    `max_value`; 6.0 for relu6 functions and ops."""
    return float(getattr(holder, "max_value", None) or 6.0)


def nested_layers(layer):
    """`{config key: sublayer}` for the sublayers a core Keras layer
    serializes inside its own config: a wrapper's layer (both directions of
    `Bidirectional`), a generic `RNN`'s cell."""
    if isinstance(layer, keras.layers.Bidirectional):
        return {"layer": layer.forward_layer,
                "backward_layer": layer.backward_layer}
    if isinstance(layer, keras.layers.Wrapper):
        return {"layer": layer.layer}
    cell = getattr(layer, "cell", None)
    if (isinstance(layer, keras.layers.RNN)
            and isinstance(layer.get_config().get("cell"), dict)
            and isinstance(cell, keras.layers.Layer)):
        return {"cell": cell}
    return {}
