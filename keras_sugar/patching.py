"""Activation swaps inside layers that rebuild themselves from arguments.

Many layers (custom blocks, keras_hub encoders, Backbones) create their
sublayers in `__init__` from constructor arguments, so setting
`sublayer.activation = SugarReLU()` is undone when the model is saved and
loaded. `SugarPatched` wraps such a layer, records which sublayer paths got
which activation, and re-applies them after the layer is rebuilt on load.
"""

import keras

from keras_sugar import layers as sugar_layers
from keras_sugar import model_graph
from keras_sugar import relu_sites
from keras_sugar.activations import SugarReLU

# Marks a site whose sublayer (a plain `ReLU` layer) is replaced by a
# `keras_sugar.layers.SugarReLU` layer, rather than given an activation.
LAYER = "layer"


def activation_sites(layer, match, index_path=(), name_path=""):
    """Yields `(index_path, name_path, sublayer)` for every sublayer whose
    activation matches.

    Sites are addressed by position (`index_path`, a tuple of child indices)
    because auto-generated names (`conv2d_4`) differ when a layer is
    rebuilt; `name_path` ("/"-joined names) is for reports.

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
    sublayer that `SugarPatched` can replace (see `holder_attribute`)."""
    for index, child in enumerate(model_graph.children(layer)):
        indices, names = index_path + (index,), f"{name_path}{child.name}"
        if (isinstance(child, keras.layers.ReLU)
                and relu_sites.is_plain_relu(child)
                and holder_attribute(layer, child) is not None):
            yield indices, names, child
        yield from relu_layer_sites(child, indices, f"{names}/")


def _replace_relu_layer(root, index_path, activation):
    parent = sublayer_at(root, index_path[:-1], need_activation=False)
    relu = sublayer_at(root, index_path, need_activation=False)
    name = holder_attribute(parent, relu)
    if not isinstance(relu, keras.layers.ReLU) or name is None:
        raise ValueError(
            f"The sublayer at {list(index_path)} of {type(root).__name__} "
            f"'{root.name}' ({relu.name}) is not a ReLU layer held by one "
            f"attribute: it was rebuilt with a different structure.")
    model_graph.replace_sublayer(parent, name,
                                 sugar_relu_layer(activation, relu))


def sublayer_at(layer, index_path, need_activation=True):
    """The sublayer of `layer` at a tuple of child indices."""
    root = layer
    for index in index_path:
        found = model_graph.children(layer)
        if index >= len(found):
            raise ValueError(
                f"{type(root).__name__} '{root.name}' has no sublayer at "
                f"{list(index_path)}: it was rebuilt with a different "
                f"structure.")
        layer = found[index]
    if need_activation and not hasattr(layer, "activation"):
        raise ValueError(
            f"The sublayer at {list(index_path)} of {type(root).__name__} "
            f"'{root.name}' ({layer.name}) has no activation to set.")
    return layer


def sugar_relu_layer(activation, like):
    """A `keras_sugar.layers.SugarReLU` layer computing `activation` (a
    `SugarReLU`), named and typed as the layer `like` it replaces."""
    return sugar_layers.SugarReLU(**activation.get_config(), name=like.name,
                                  dtype=like.dtype_policy)


def _clone_with_graph_sites(model, graph_sites):
    """A functional copy of `model`'s graph that shares every layer but
    those at `graph_sites` (`[node index, kind, activation]`): a raw op
    (`"op"`) becomes an `Activation(activation)` layer, a `ReLU` layer
    (`"relu_layer"`) a SugarReLU layer. Nothing is rebuilt from a config,
    so layers whose config does not round-trip are kept as they are."""
    nodes = model_graph.nodes(model)
    replacements = {}
    for index, kind, activation in graph_sites:
        node = nodes[index] if index < len(nodes) else None
        expected = (isinstance(node, keras.layers.ReLU) if kind == "relu_layer"
                    else node is not None and not isinstance(
                        node, keras.layers.Layer))
        if not expected:
            raise ValueError(
                f"{type(model).__name__} '{model.name}' has no {kind} at "
                f"graph position {index}: it was rebuilt with a different "
                f"structure.")
        replacements[id(node)] = (
            sugar_relu_layer(activation, node) if kind == "relu_layer"
            else keras.layers.Activation(activation,
                                         name=f"sugar_{node.name}"))
    return keras.models.clone_model(
        model, input_tensors=model_graph.new_inputs(model),
        clone_function=lambda op: replacements.get(id(op), op))


@keras.saving.register_keras_serializable(package="keras_sugar")
class SugarPatched(keras.layers.Layer):
    """Wraps a layer whose inner activations were replaced by SugarReLU.

    Calls the wrapped layer unchanged. Its config holds the wrapped layer's
    own config plus the replaced sublayer paths, so loading rebuilds the
    layer and applies the same SugarReLU at the same places again.

    Args:
        layer: The layer (or model) to wrap.
        sites: Sublayer positions (lists of child indices, see
            `activation_sites`) whose `activation` is set to `activation`;
            a position ending in `LAYER` is a plain `ReLU` sublayer (see
            `relu_layer_sites`), replaced by a SugarReLU layer in its
            parent's attribute.
        activation: The `SugarReLU` to set.
        graph_sites: For a functional `layer`, nodes of its own graph to
            replace: `[node index, kind, activation]` (see
            `_clone_with_graph_sites`); the layer is then called through a
            copy of its graph that shares every other layer, and its config
            stays the original's. Defaults to none.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, layer, sites, activation, graph_sites=(), **kwargs):
        super().__init__(**kwargs)
        self.sites = [list(site) for site in sites]
        self.sugar_activation = activation
        self.graph_sites = [list(site) for site in graph_sites]
        # With graph sites, what is saved is the layer as it came, which
        # rebuilds from its own config; the copy is made again on load.
        self._source = (keras.saving.serialize_keras_object(layer)
                        if self.graph_sites else None)
        for path in self.sites:
            if path and path[-1] == LAYER:
                _replace_relu_layer(layer, tuple(path[:-1]), activation)
            else:
                sublayer_at(layer, path).activation = activation
        if self.graph_sites:
            layer = _clone_with_graph_sites(layer, self.graph_sites)
        self.layer = layer

    def build(self, input_shape):
        # Build the wrapped layer as calling it unwrapped would; the default
        # build cannot trace through this wrapper's generic call signature.
        if not self.layer.built:
            self.layer.build(input_shape)

    def call(self, inputs, *args, **kwargs):
        return self.layer(inputs, *args, **kwargs)

    def compute_output_spec(self, *args, **kwargs):
        return self.layer.compute_output_spec(*args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({
            "layer": self._source or keras.saving.serialize_keras_object(
                self.layer),
            "sites": self.sites,
            "activation": keras.saving.serialize_keras_object(
                self.sugar_activation),
        })
        if self.graph_sites:
            config["graph_sites"] = [
                [index, kind, keras.saving.serialize_keras_object(a)]
                for index, kind, a in self.graph_sites]
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(
            config["layer"])
        activation = keras.saving.deserialize_keras_object(
            config["activation"])
        if not isinstance(activation, SugarReLU):
            raise ValueError(
                f"SugarPatched expects a SugarReLU activation. Received: "
                f"activation={activation!r}")
        config["activation"] = activation
        config["graph_sites"] = [
            [index, kind, keras.saving.deserialize_keras_object(a)]
            for index, kind, a in config.get("graph_sites", [])]
        return cls(**config)
