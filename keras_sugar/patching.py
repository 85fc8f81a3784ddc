"""Activation swaps inside layers that rebuild themselves from arguments.

Many layers (custom blocks, keras_hub encoders, Backbones) create their
sublayers in `__init__` from constructor arguments, so setting
`sublayer.activation = SugarReLU()` is undone when the model is saved and
loaded. `SugarPatched` wraps such a layer, records each swap as a `Patch`
(where, what kind, which SugarReLU), and makes them again after the layer
is rebuilt on load.
"""

import dataclasses

import keras

from keras_sugar import layers as sugar_layers
from keras_sugar import model_graph
from keras_sugar.activations import SugarReLU


@dataclasses.dataclass(frozen=True)
class Patch:
    """One activation `SugarPatched` puts into the layer it wraps.

    Attributes:
        kind: `"activation"`: the `attribute` of the sublayer at
            `position` is set to `activation`; `"relu_layer"`: the `ReLU`
            sublayer at `position`, held by one attribute of its parent,
            is replaced by a SugarReLU layer; `"node"`: the node at `node`
            of a functional layer's own graph (a raw op, a `ReLU`, SugarReLU
            or `Lambda` layer) is replaced, in a copy of the graph that
            shares every other layer, by an `Activation(activation)`
            (raw ops, Lambda layers) or a SugarReLU layer (`ReLU` and
            SugarReLU layers), named as it.
        node: Node indices through the graphs of the wrapped layer, from
            its own (see `node_at`); `()` for the wrapped layer itself.
        position: Child indices (see `model_graph.sublayer_at`) in the
            layer at `node`.
        activation: The `SugarReLU`.
        attribute: For `"activation"`, the attribute set. Defaults to
            `"activation"`.
    """

    kind: str
    node: tuple
    position: tuple
    activation: SugarReLU
    attribute: str = "activation"

    def to_config(self):
        return {"kind": self.kind, "node": list(self.node),
                "position": list(self.position),
                "attribute": self.attribute,
                "activation": keras.saving.serialize_keras_object(
                    self.activation)}

    @classmethod
    def from_config(cls, config):
        activation = config["activation"]
        if isinstance(activation, dict):
            activation = keras.saving.deserialize_keras_object(activation)
        _check_sugar(activation)
        return cls(config["kind"], tuple(config["node"]),
                   tuple(config["position"]), activation,
                   config.get("attribute", "activation"))


# In the order they are made: a replaced ReLU sublayer stays tracked (see
# `model_graph.replace_sublayer`), so no position moves.
KINDS = ("relu_layer", "activation", "node")


def _check_sugar(activation):
    if not isinstance(activation, SugarReLU):
        raise ValueError(
            f"SugarPatched expects a SugarReLU activation. Received: "
            f"activation={activation!r}")


def graph_of(layer):
    """The functional graph `layer` runs: its own (a graph model), the
    copy a `SugarPatched` with node patches runs, or None."""
    if isinstance(layer, SugarPatched):
        return graph_of(layer.layer)
    return layer if model_graph.is_graph_model(layer) else None


def node_at(layer, index):
    """The node at `index` (node indices through the graphs from
    `layer`'s, see `graph_of`); `layer` itself for `()`."""
    for step in index:
        graph = graph_of(layer)
        found = model_graph.nodes(graph) if graph is not None else []
        if step >= len(found):
            raise ValueError(
                f"{type(layer).__name__} '{layer.name}' has no node at "
                f"graph position {step}: it was rebuilt with a different "
                f"structure.")
        layer = found[step]
    return layer


def base_of(layer):
    """The layer a `SugarPatched` wraps; any other layer itself."""
    return layer.layer if isinstance(layer, SugarPatched) else layer


def sugar_relu_layer(activation, like):
    """A `keras_sugar.layers.SugarReLU` layer computing `activation` (a
    `SugarReLU`), named and typed as the layer `like` it replaces."""
    return sugar_layers.SugarReLU(**activation.get_config(), name=like.name,
                                  dtype=like.dtype_policy)


def node_replacement(node, activation):
    """The layer that computes `activation` where `node` was: a SugarReLU
    layer for a layer computing ReLU (`ReLU`, SugarReLU), else an
    `Activation`; named as `node`, so its path stays the same."""
    if isinstance(node, (keras.layers.ReLU, sugar_layers.SugarReLU)):
        return sugar_relu_layer(activation, node)
    dtype = node.dtype_policy if isinstance(node, keras.layers.Layer) else (
        None)
    return keras.layers.Activation(activation, name=node.name, dtype=dtype)


def holder_attribute(parent, child):
    """The one attribute of `parent` that holds `child`, or None (held in a
    list, under several names, or only as a node of a functional graph,
    where replacing an attribute would not change what is called)."""
    if model_graph.is_graph_model(parent):
        return None
    names = [name for name in model_graph.attribute_names(parent)
             if getattr(parent, name, None) is child]
    return names[0] if len(names) == 1 else None


def _replace_relu_layer(root, position, activation):
    parent = model_graph.sublayer_at(root, position[:-1])
    relu = model_graph.sublayer_at(root, position)
    name = holder_attribute(parent, relu)
    if not isinstance(relu, keras.layers.ReLU) or name is None:
        raise ValueError(
            f"The sublayer at {list(position)} of {type(root).__name__} "
            f"'{root.name}' ({relu.name}) is not a ReLU layer held by one "
            f"attribute: it was rebuilt with a different structure.")
    model_graph.replace_sublayer(parent, name,
                                 sugar_relu_layer(activation, relu))


def _set_activation(root, patch):
    sublayer = model_graph.sublayer_at(root, patch.position)
    if not hasattr(sublayer, patch.attribute):
        raise ValueError(
            f"The sublayer at {list(patch.position)} of "
            f"{type(root).__name__} '{root.name}' ({sublayer.name}) has no "
            f"{patch.attribute} to set: it was rebuilt with a different "
            f"structure.")
    setattr(sublayer, patch.attribute, patch.activation)


def _with_node_patches(model, patches):
    """A functional copy of `model`'s graph that shares every layer but
    the nodes the `"node"` patches replace (see `Patch`). Nothing is
    rebuilt from a config, so layers whose config does not round-trip are
    kept as they are."""
    nodes = model_graph.nodes(model)
    replacements = {}
    for patch in patches:
        (index,) = patch.node
        node = nodes[index] if index < len(nodes) else None
        if node is None or isinstance(node, keras.layers.InputLayer):
            raise ValueError(
                f"{type(model).__name__} '{model.name}' has no node to "
                f"replace at graph position {index}: it was rebuilt with a "
                f"different structure.")
        replacements[id(node)] = node_replacement(node, patch.activation)
    return keras.models.clone_model(
        model, input_tensors=model_graph.new_inputs(model),
        clone_function=lambda op: replacements.get(id(op), op),
        call_function=model_graph.call_as_node)


def name_nodes(graph, names):
    """Names the nodes of `graph` (`[node index, name]`) as the model it
    was rebuilt from named them: a model rebuilt from its constructor
    arguments (a Backbone) makes its raw ops and unnamed layers anew, with
    new automatic names (`re_lu_7`), and their paths would change."""
    nodes = model_graph.nodes(graph)
    if len(names) != len(nodes):
        raise ValueError(
            f"{type(graph).__name__} '{graph.name}' has {len(nodes)} nodes, "
            f"not the {len(names)} it had when it was wrapped: it was "
            f"rebuilt with a different structure.")
    for node, name in zip(nodes, names):
        node.name = name


def node_names_of(graph):
    """The names of the nodes of `graph`, in order."""
    return [node.name for node in model_graph.nodes(graph)]


def apply_patches(layer, patches):
    """Makes `patches` in `layer` (the layer and its sublayers are changed
    in place); returns what to call: `layer`, or for node patches a copy
    of its graph."""
    ordered = sorted(patches, key=lambda p: KINDS.index(p.kind))
    for patch in ordered:
        if patch.kind == "node":
            continue
        root = base_of(node_at(layer, patch.node))
        if patch.kind == "relu_layer":
            _replace_relu_layer(root, patch.position, patch.activation)
        else:
            _set_activation(root, patch)
    graph_patches = [p for p in ordered if p.kind == "node"]
    if graph_patches:
        return _with_node_patches(layer, graph_patches)
    return layer


@keras.saving.register_keras_serializable(package="keras_sugar")
class SugarPatched(keras.layers.Layer):
    """Wraps a layer whose inner activations were replaced by SugarReLU.

    Calls the wrapped layer with its patches made. Its config holds the
    wrapped layer's own config plus the patches, so loading rebuilds the
    layer and makes the same patches again.

    Args:
        layer: The layer (or model) to wrap.
        patches: The `Patch`es to make (or their configs).
        node_names: For a functional `layer` rebuilt from its config, the
            names of its graph's nodes in the model it stands for (see
            `name_nodes`). Defaults to none: as they are.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, layer, patches, node_names=(), **kwargs):
        super().__init__(**kwargs)
        self.node_names = list(node_names)
        if self.node_names:
            name_nodes(layer, self.node_names)
        self.patches = tuple(p if isinstance(p, Patch) else
                             Patch.from_config(p) for p in patches)
        for patch in self.patches:
            _check_sugar(patch.activation)
            if patch.kind not in KINDS:
                raise ValueError(
                    f"Unknown SugarPatched patch kind '{patch.kind}'. Valid "
                    f"kinds: {list(KINDS)}")
        # With node patches, what is saved is the layer as it came, which
        # rebuilds from its own config; the copy is made again on load.
        self._source = (keras.saving.serialize_keras_object(layer)
                        if any(p.kind == "node" for p in self.patches)
                        else None)
        self.layer = apply_patches(layer, self.patches)

    def build(self, input_shape):
        # Build the wrapped layer as calling it unwrapped would; the default
        # build cannot trace through this wrapper's generic call signature.
        if not self.layer.built:
            self.layer.build(input_shape)

    def call(self, inputs, *args, **kwargs):
        return self.layer(inputs, *args, **kwargs)

    def compute_output_spec(self, *args, **kwargs):
        return self.layer.compute_output_spec(*args, **kwargs)

    def source_config(self):
        """The serialized layer as it came, before any patch."""
        return self._source or keras.saving.serialize_keras_object(
            self.layer)

    def get_config(self):
        config = super().get_config()
        config.update({
            "layer": self.source_config(),
            "patches": [patch.to_config() for patch in self.patches],
        })
        if self.node_names:
            config["node_names"] = self.node_names
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(
            config["layer"])
        if "patches" not in config:
            config["patches"] = [
                _in_graph(config["layer"], patch)
                for patch in _patches_of_old_config(config)]
        return cls(**config)


def _in_graph(layer, patch):
    """An old patch of a functional layer (its position counted from the
    layer's children) as one of its graph's nodes (see `Patch.node`)."""
    if graph_of(layer) is None or patch.kind == "node" or not patch.position:
        return patch
    child = model_graph.children(layer)[patch.position[0]]
    index = [i for i, node in enumerate(model_graph.nodes(layer))
             if node is child][0]
    return dataclasses.replace(patch, node=(index,),
                               position=patch.position[1:])


# The mark of a position that ends in a replaced `ReLU` sublayer in configs
# saved before `relu_layers` was a list of its own.
_OLD_RELU_LAYER_MARK = "layer"
# The kinds of the old `graph_sites`, as saved.
_OLD_GRAPH_KINDS = ("op", "relu_layer")


def _patches_of_old_config(config):
    """The patches of a config saved before `patches` (one activation for
    `sites`, `relu_layers` and, with their own, `graph_sites`); pops the
    old keys."""
    activation = keras.saving.deserialize_keras_object(
        config.pop("activation"))
    _check_sugar(activation)
    sites = config.pop("sites", [])
    relu_layers = config.pop("relu_layers", []) + [
        p[:-1] for p in sites if p and p[-1] == _OLD_RELU_LAYER_MARK]
    patches = [Patch("relu_layer", (), tuple(p), activation)
               for p in relu_layers]
    patches += [Patch("activation", (), tuple(p), activation)
                for p in sites if not p or p[-1] != _OLD_RELU_LAYER_MARK]
    for index, kind, graph_activation in config.pop("graph_sites", []):
        if kind not in _OLD_GRAPH_KINDS:
            raise ValueError(f"Unknown SugarPatched graph site kind "
                             f"'{kind}'. Valid kinds: {list(_OLD_GRAPH_KINDS)}")
        if isinstance(graph_activation, dict):
            graph_activation = keras.saving.deserialize_keras_object(
                graph_activation)
        _check_sugar(graph_activation)
        patches.append(Patch("node", (index,), (), graph_activation))
    return patches
