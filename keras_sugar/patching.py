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

# The mark of a position that ends in a replaced `ReLU` sublayer in configs
# saved before `relu_layers` was a list of its own.
_OLD_RELU_LAYER_MARK = "layer"
# The kinds of `graph_sites`, as saved.
GRAPH_OP = "op"
GRAPH_RELU_LAYER = "relu_layer"


def _replace_relu_layer(root, index_path, activation):
    parent = model_graph.sublayer_at(root, index_path[:-1],
                                     need_activation=False)
    relu = model_graph.sublayer_at(root, index_path, need_activation=False)
    name = relu_sites.holder_attribute(parent, relu)
    if not isinstance(relu, keras.layers.ReLU) or name is None:
        raise ValueError(
            f"The sublayer at {list(index_path)} of {type(root).__name__} "
            f"'{root.name}' ({relu.name}) is not a ReLU layer held by one "
            f"attribute: it was rebuilt with a different structure.")
    model_graph.replace_sublayer(parent, name,
                                 sugar_relu_layer(activation, relu))


def sugar_relu_layer(activation, like):
    """A `keras_sugar.layers.SugarReLU` layer computing `activation` (a
    `SugarReLU`), named and typed as the layer `like` it replaces."""
    return sugar_layers.SugarReLU(**activation.get_config(), name=like.name,
                                  dtype=like.dtype_policy)


def _clone_with_graph_sites(model, graph_sites):
    """A functional copy of `model`'s graph that shares every layer but
    those at `graph_sites` (`[node index, kind, activation]`): a raw op
    (`GRAPH_OP`) becomes an `Activation(activation)` layer, a `ReLU` layer
    (`GRAPH_RELU_LAYER`) a SugarReLU layer. Nothing is rebuilt from a config,
    so layers whose config does not round-trip are kept as they are."""
    nodes = model_graph.nodes(model)
    replacements = {}
    for index, kind, activation in graph_sites:
        node = nodes[index] if index < len(nodes) else None
        expected = (isinstance(node, keras.layers.ReLU)
                    if kind == GRAPH_RELU_LAYER
                    else node is not None and not isinstance(
                        node, keras.layers.Layer))
        if not expected:
            raise ValueError(
                f"{type(model).__name__} '{model.name}' has no {kind} at "
                f"graph position {index}: it was rebuilt with a different "
                f"structure.")
        replacements[id(node)] = (
            sugar_relu_layer(activation, node) if kind == GRAPH_RELU_LAYER
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
            `relu_sites.activation_sites`) whose `activation` is set to
            `activation`.
        activation: The `SugarReLU` to set.
        relu_layers: Positions of plain `ReLU` sublayers (see
            `relu_sites.relu_layer_sites`), each replaced by a SugarReLU
            layer in its parent's attribute. Defaults to none.
        graph_sites: For a functional `layer`, nodes of its own graph to
            replace: `[node index, kind, activation]` (see
            `_clone_with_graph_sites`); the layer is then called through a
            copy of its graph that shares every other layer, and its config
            stays the original's. Defaults to none.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, layer, sites, activation, relu_layers=(),
                 graph_sites=(), **kwargs):
        super().__init__(**kwargs)
        self.sites = [list(site) for site in sites]
        self.relu_layers = [list(site) for site in relu_layers]
        self.sugar_activation = activation
        self.graph_sites = [list(site) for site in graph_sites]
        # With graph sites, what is saved is the layer as it came, which
        # rebuilds from its own config; the copy is made again on load.
        self._source = (keras.saving.serialize_keras_object(layer)
                        if self.graph_sites else None)
        for path in self.relu_layers:
            _replace_relu_layer(layer, tuple(path), activation)
        for path in self.sites:
            model_graph.sublayer_at(layer, path).activation = activation
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
        if self.relu_layers:
            config["relu_layers"] = self.relu_layers
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
        # Configs saved before `relu_layers` marked those in `sites`.
        sites = config["sites"]
        config["sites"] = [p for p in sites
                           if not p or p[-1] != _OLD_RELU_LAYER_MARK]
        config["relu_layers"] = config.get("relu_layers", []) + [
            p[:-1] for p in sites if p and p[-1] == _OLD_RELU_LAYER_MARK]
        config["graph_sites"] = [
            [index, kind, keras.saving.deserialize_keras_object(a)]
            for index, kind, a in config.get("graph_sites", [])]
        return cls(**config)
