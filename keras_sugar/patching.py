"""Activation swaps inside layers that rebuild themselves from arguments.

Many layers (custom blocks, keras_hub encoders, Backbones) create their
sublayers in `__init__` from constructor arguments, so setting
`sublayer.activation = SugarReLU()` is undone when the model is saved and
loaded. `SugarPatched` wraps such a layer, records which sublayer paths got
which activation, and re-applies them after the layer is rebuilt on load.
"""

import keras

from keras_sugar import model_graph
from keras_sugar.activations import SugarReLU


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


def sublayer_at(layer, index_path):
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
    if not hasattr(layer, "activation"):
        raise ValueError(
            f"The sublayer at {list(index_path)} of {type(root).__name__} "
            f"'{root.name}' ({layer.name}) has no activation to set.")
    return layer


@keras.saving.register_keras_serializable(package="keras_sugar")
class SugarPatched(keras.layers.Layer):
    """Wraps a layer whose inner activations were replaced by SugarReLU.

    Calls the wrapped layer unchanged. Its config holds the wrapped layer's
    own config plus the replaced sublayer paths, so loading rebuilds the
    layer and applies the same SugarReLU at the same places again.

    Args:
        layer: The layer (or model) to wrap.
        sites: Sublayer positions (lists of child indices, see
            `activation_sites`) whose `activation` is set to `activation`.
        activation: The `SugarReLU` to set.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, layer, sites, activation, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer
        self.sites = [list(site) for site in sites]
        self.sugar_activation = activation
        for path in self.sites:
            sublayer_at(layer, path).activation = activation

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
            "layer": keras.saving.serialize_keras_object(self.layer),
            "sites": self.sites,
            "activation": keras.saving.serialize_keras_object(
                self.sugar_activation),
        })
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
        return cls(**config)
