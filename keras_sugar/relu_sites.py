"""What counts as a ReLU (or GELU, SiLU) site in a Keras model, and where.

Shared by `sugarify` (what to rewrite), `strip_sugar` and the diagnostics
(what to measure): activation functions, `ReLU` layers and raw op nodes,
and the walkers that find them inside layers (by position, as
`SugarPatched` stores them) and count the SugarReLUs a model holds.
"""

import keras

from keras_sugar import model_graph
from keras_sugar.activations import SugarReLU

# Activation functions and raw-op class names per target. `ops.relu` makes
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
# Targets whose SUGAR keeps the forward pass exactly.
EXACT_FORWARD = ("relu", "relu6")
# Layer attributes that hold an activation and appear under the same key
# in the layer's config (recurrent layers have both).
ACTIVATION_KEYS = ("activation", "recurrent_activation")


# Keras ecosystem libraries define their own activation functions by these
# names (keras_hub's BERT and GPT-2 use `gelu_approximate`).
ECOSYSTEM = ("keras_hub", "keras_nlp", "keras_cv")
ECOSYSTEM_NAMES = {"relu": ("relu",), "gelu": ("gelu", "gelu_approximate"),
                   "silu": ("silu", "swish"), "relu6": ("relu6",)}


def target_of_function(function, targets):
    """The target an activation function is, or None.

    Example:

    >>> target_of_function(keras.ops.relu, ("relu", "gelu"))
    'relu'
    """
    for target in targets:
        if any(function is f for f in TARGETS[target][0]):
            return target
    module = getattr(function, "__module__", None) or ""
    if module.split(".")[0] in ECOSYSTEM:
        for target in targets:
            if getattr(function, "__name__", None) in ECOSYSTEM_NAMES[target]:
                return target
    return None


def is_plain_relu(relu):
    """For `ReLU` layers and ops: no cap, slope or threshold."""
    return (relu.max_value is None and not relu.negative_slope
            and not relu.threshold)


def is_capped_relu(relu):
    """For `ReLU` layers and ops: a cap, but no slope or threshold."""
    return (relu.max_value is not None and not relu.negative_slope
            and not relu.threshold)


def cap(site):
    """The cap of a relu6 site: a `ReLU` layer or op's `max_value`, 6.0 for
    relu6 functions and ops."""
    return float(getattr(site, "max_value", None) or 6.0)


def sugar_target(activation):
    """The target a `SugarReLU` computes forward: `"relu6"` when capped,
    `"relu"` otherwise."""
    return "relu" if activation.max_value is None else "relu6"


def relu_layer_target(relu, targets):
    """The target a `ReLU` layer or op is, if among `targets`: `"relu"`
    when plain, `"relu6"` when capped; None otherwise (a slope or a
    threshold is neither)."""
    if is_plain_relu(relu):
        return "relu" if "relu" in targets else None
    if is_capped_relu(relu):
        return "relu6" if "relu6" in targets else None
    return None


def raw_op_target(op, targets):
    """The target a raw (non-layer) op computes, if among `targets`, or
    None."""
    if isinstance(op, keras.layers.Layer):
        return None
    name = type(op).__name__
    if name == "ReLU":
        return relu_layer_target(op, targets)
    for target in targets:
        if name in TARGETS[target][1]:
            return target
    return None


def is_uncovered_relu_op(op, targets):
    """Whether a raw op is a ReLU variant that `targets` do not cover (a
    relu6 without the `"relu6"` target, a leaky or thresholded ReLU) while
    `"relu"` is a target: such ops are reported as kept."""
    if ("relu" not in targets or isinstance(op, keras.layers.Layer)
            or raw_op_target(op, targets)):
        return False
    return type(op).__name__ in ("ReLU", "Relu6")


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


def config_sites(layer, targets, key_path=(), names=(),
                 replace_sugar=False):
    """Yields `(key_path, names, owner, attribute, target)` for every target
    activation a layer holds in its config: its own `activation` or
    `recurrent_activation`, and those of the sublayers it serializes
    (`nested_layers`); with `replace_sugar`, every `SugarReLU` there too
    (see `sugar_target`). `key_path` leads through the config to the value
    (e.g. `("layer", "config", "activation")` for `TimeDistributed(Dense)`),
    `names` are the sublayer names on the way, for reports, and `owner` the
    (sub)layer holding the `attribute`.

    Example:

    >>> dense = keras.layers.Dense(2, activation="relu")
    >>> [site[0] for site in config_sites(
    ...     keras.layers.TimeDistributed(dense), ("relu",))]
    [('layer', 'config', 'activation')]
    """
    config = layer.get_config()
    for key in ACTIVATION_KEYS:
        function = getattr(layer, key, None)
        if replace_sugar and isinstance(function, SugarReLU):
            target = sugar_target(function)
        else:
            target = (target_of_function(function, targets)
                      if callable(function) else None)
        if target and key in config:
            yield key_path + (key,), names, layer, key, target
    for key, sublayer in nested_layers(layer).items():
        yield from config_sites(sublayer, targets,
                                key_path + (key, "config"),
                                names + (sublayer.name,), replace_sugar)


def activation_sites(layer, match, index_path=(), name_path=""):
    """Yields `(index_path, name_path, sublayer)` for every sublayer whose
    activation matches.

    Sites are addressed by position (`index_path`, a tuple of child indices,
    see `model_graph.sublayer_at`) because auto-generated names (`conv2d_4`)
    differ when a layer is rebuilt; `name_path` ("/"-joined names) is for
    reports.

    Args:
        layer: The root layer; its own activation is not considered.
        match: Predicate on an activation function.
    """
    for index, child in enumerate(model_graph.children(layer)):
        indices, names = index_path + (index,), f"{name_path}{child.name}"
        activation = getattr(child, "activation", None)
        if callable(activation) and match(activation):
            yield indices, names, child
        yield from activation_sites(child, match, indices, f"{names}/")


def holder_attribute(parent, child):
    """The one attribute of `parent` that holds `child`, or None (held in a
    list, under several names, or only as a node of a functional graph,
    where replacing an attribute would not change what is called)."""
    if model_graph.is_graph_model(parent):
        return None
    names = [name for name in model_graph.attribute_names(parent)
             if getattr(parent, name, None) is child]
    return names[0] if len(names) == 1 else None


def relu_layer_sites(layer, index_path=(), name_path=""):
    """Yields `(index_path, name_path, relu)` for every plain `ReLU`
    sublayer that can be replaced in its parent's attribute (see
    `holder_attribute`)."""
    for index, child in enumerate(model_graph.children(layer)):
        indices, names = index_path + (index,), f"{name_path}{child.name}"
        if (isinstance(child, keras.layers.ReLU) and is_plain_relu(child)
                and holder_attribute(layer, child) is not None):
            yield indices, names, child
        yield from relu_layer_sites(child, indices, f"{names}/")


def sugar_holders(layer, names=(), inside=False, inherited=(), seen=None):
    """Yields `(names, holder, attribute, activation, inside)` for every
    `SugarReLU` anywhere in `layer`.

    Each is yielded once, on the layer that holds it: a recurrent layer's
    on its cell, and one a layer passes on to the sublayers it builds
    (keras_hub's `TransformerEncoder` to its feed-forward `Dense`) on that
    layer only. `names` are the layer names from `layer` down (a path, see
    `keras_sugar.model_graph`); `inside` tells a sublayer that a custom
    layer of a model's graph builds itself.
    """
    seen = set() if seen is None else seen
    for child in model_graph.children(layer):
        if id(child) in seen:
            continue  # A shared layer.
        seen.add(id(child))
        held = () if isinstance(child, keras.layers.RNN) else [
            (key, getattr(child, key, None)) for key in ACTIVATION_KEYS]
        own = [(key, a) for key, a in held if isinstance(a, SugarReLU)
               and not any(a is b for b in inherited)]
        child_names = names + (child.name,)
        for key, activation in own:
            yield child_names, child, key, activation, inside
        # The sublayers a custom node of a graph builds itself.
        child_inside = inside or (model_graph.is_graph_model(layer)
                                  and not model_graph.is_graph_model(child)
                                  and not model_graph.is_core_keras(child))
        yield from sugar_holders(
            child, child_names, child_inside,
            inherited + tuple(a for _, a in own), seen)


def count_sugar_sites(model):
    """Number of SugarReLU activations anywhere in `model`.

    Each is counted once, on the layer that holds it (see
    `sugar_holders`).

    Example:

    >>> dense = keras.layers.Dense(2, activation=SugarReLU())
    >>> count_sugar_sites(keras.Sequential([keras.Input((3,)), dense]))
    1
    """
    return sum(1 for _ in sugar_holders(model))
