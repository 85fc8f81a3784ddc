"""What counts as a ReLU (or GELU, SiLU) site in a Keras model.

Shared by `sugarify` (what to rewrite) and the diagnostics (what to
measure): activation functions, `ReLU` layers and raw op nodes.
"""

import keras

# Activation functions and raw-op class names per target. `ops.relu` makes
# `Relu` nodes; `keras.activations.relu` on a symbolic tensor makes `ReLU`.
TARGETS = {
    "relu": ((keras.activations.relu,), ("Relu", "ReLU")),
    "gelu": ((keras.activations.gelu,), ("Gelu",)),
    "silu": ((keras.activations.silu, keras.activations.swish),
             ("Silu", "Swish")),
}


def target_of_function(function, targets):
    """The target an activation function is, or None."""
    for target in targets:
        if any(function is f for f in TARGETS[target][0]):
            return target
    return None


def is_plain_relu(relu):
    """For `ReLU` layers and ops: no cap, slope or threshold."""
    return (relu.max_value is None and not relu.negative_slope
            and not relu.threshold)


def raw_op_target(op, targets):
    """The target a raw (non-layer) op computes, `"capped"` for ReLU
    variants (relu6, leaky, thresholded), or None."""
    if isinstance(op, keras.layers.Layer):
        return None
    name = type(op).__name__
    if name == "Relu6" or name == "ReLU" and not is_plain_relu(op):
        return "capped" if "relu" in targets else None
    for target in targets:
        if name in TARGETS[target][1]:
            return target
    return None
